"""LangChain integration for guardkit: a guarded chat model, agent middleware, a guarded Runnable, callbacks.

>>> from guardkit import Guard
>>> from langchain_guardkit import GuardedChatModel, GuardkitMiddleware
>>> model = GuardedChatModel(model=ChatOpenAI(model="gpt-4o-mini"), guard=Guard())
>>> for chunk in model.stream("..."):   # only judged text
...     print(chunk.content, end="")
>>> agent = create_agent(ChatOpenAI(...), tools=[...], middleware=[GuardkitMiddleware(Guard())])

``GuardkitMiddleware`` needs ``langchain>=1.0`` (the ``agents`` extra); it is
``None`` here when langchain is not installed.
"""

from guardkit import StreamBlocked
from langchain_guardkit._messages import PROMPT_KEYS, extract_prompt
from langchain_guardkit.callbacks import AsyncGuardkitCallbackHandler, GuardkitCallbackHandler
from langchain_guardkit.chat_model import GuardedChatModel, MessageChunkShaper
from langchain_guardkit.runnable import GuardedAgentRunnable, GuardkitRunnable, guard_runnable

try:
    from langchain_guardkit.middleware import GuardkitMiddleware
except ImportError:  # langchain (the agents package) is not installed: langchain-core alone has no middleware
    GuardkitMiddleware = None  # type: ignore[assignment,misc]

__version__ = "0.1.0"

__all__ = [
    "PROMPT_KEYS",
    "AsyncGuardkitCallbackHandler",
    "GuardedAgentRunnable",
    "GuardedChatModel",
    "GuardkitCallbackHandler",
    "GuardkitMiddleware",
    "GuardkitRunnable",
    "MessageChunkShaper",
    "StreamBlocked",
    "__version__",
    "extract_prompt",
    "guard_runnable",
]
