import sys

from guardkit.cli import main

sys.exit(main())
