"""LangChain integration for guardkit: callback handlers and a guarded Runnable.

>>> from guardkit import Guard
>>> from langchain_guardkit import guard_runnable
>>> chain = guard_runnable(prompt | model | StrOutputParser(), Guard())
>>> for text in chain.stream({"question": "..."}):
...     print(text, end="")
"""

from guardkit import StreamBlocked

from langchain_guardkit._messages import PROMPT_KEYS, extract_prompt
from langchain_guardkit.callbacks import AsyncGuardkitCallbackHandler, GuardkitCallbackHandler
from langchain_guardkit.runnable import GuardkitRunnable, guard_runnable

__version__ = "0.1.0"

__all__ = [
    "PROMPT_KEYS",
    "AsyncGuardkitCallbackHandler",
    "GuardkitCallbackHandler",
    "GuardkitRunnable",
    "StreamBlocked",
    "__version__",
    "extract_prompt",
    "guard_runnable",
]
