"""Guard models served on Ray Serve, shared by many app processes (``pip install 'guardkit[serve]'``).

- :class:`RemoteModel` (client, Ray not needed over HTTP): ``Guard(model=RemoteModel(handle_or_url))``.
- :func:`run` / :func:`build_app` / :class:`ServeOptions` (server, needs Ray Serve): the deployment
  whose replicas each hold one model, its batcher and a bounded session store; ``guardkit serve``
  runs it from the command line.

See the README's "Serve a guard model" section for what crosses the network and how it scales.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["GuardModel", "RemoteModel", "RemoteState", "ServeOptions", "build_app", "run"]

# loaded on first use: the server side imports Ray Serve, and `guardkit serve --help` should not load a model stack
_HOMES = {
    "RemoteModel": "guardkit.serve.client", "RemoteState": "guardkit.serve.client", "GuardModel": "guardkit.serve.protocol",
    "ServeOptions": "guardkit.serve.deployment", "build_app": "guardkit.serve.deployment", "run": "guardkit.serve.deployment",
    "GuardModelServer": "guardkit.serve.deployment",
}

if TYPE_CHECKING:  # pragma: no cover
    from guardkit.serve.client import RemoteModel, RemoteState
    from guardkit.serve.deployment import ServeOptions, build_app, run
    from guardkit.serve.protocol import GuardModel


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'guardkit.serve' has no attribute {name!r}")
