"""Guard models served on Ray Serve, shared by many app processes (``pip install 'guardkit[serve]'``).

- :class:`RemoteModel` (client, Ray not needed over HTTP): ``Guard(model=RemoteModel(handle_or_url))``.
- :func:`run` / :func:`build_app` / :class:`ServeOptions` (server, needs Ray Serve): the deployment
  whose replicas each hold one model, its batcher and a bounded session store; ``guardkit serve``
  runs it from the command line.

See the README's "Serve a guard model" section for what crosses the network and how it scales.
"""

from __future__ import annotations

from typing import Any

from guardkit.serve.client import RemoteModel, RemoteState
from guardkit.serve.protocol import GuardModel

__all__ = ["GuardModel", "RemoteModel", "RemoteState", "ServeOptions", "build_app", "run"]

_SERVER = {"ServeOptions", "build_app", "run", "GuardModelServer"}


def __getattr__(name: str) -> Any:
    """The server side imports Ray Serve, so it loads on first use only."""
    if name in _SERVER:
        from guardkit.serve import deployment

        return getattr(deployment, name)
    raise AttributeError(f"module 'guardkit.serve' has no attribute {name!r}")
