"""guardkit: a streaming safety guard for chat applications.

>>> from guardkit import Guard
>>> guard = Guard(policy="default")
>>> for text in guard.stream(llm_deltas, prompt=user_prompt):
...     send_to_user(text)
"""

from guardkit.adapters._driver import GuardBlock
from guardkit.adapters.anthropic import aguard_anthropic_stream, guard_anthropic_stream
from guardkit.adapters.openai import aguard_openai_stream, guard_openai_stream
from guardkit.adapters.openai_responses import aguard_responses_stream, guard_responses_stream
from guardkit.errors import (
    GuardConfigError,
    GuardkitError,
    ModelLoadError,
    PolicyError,
    ProviderUnavailableError,
    SchedulerClosedError,
    SessionClosedError,
    SessionLimitError,
    StreamBlocked,
)
from guardkit.guard import Guard
from guardkit.model import StreamModel
from guardkit.policy import Policy, builtin_policies, load_policy
from guardkit.session import StreamSession
from guardkit.streams import AsyncGuardedStream, GuardedStream, OnBlockMode
from guardkit.verdict import CATEGORIES, RISK_LEVELS, Blocked, Event, Flagged, Released, Retracted, Verdict

__version__ = "0.1.0"

__all__ = [
    "CATEGORIES",
    "RISK_LEVELS",
    "AsyncGuardedStream",
    "Blocked",
    "Event",
    "Flagged",
    "Guard",
    "GuardBlock",
    "GuardedStream",
    "GuardConfigError",
    "GuardkitError",
    "ModelLoadError",
    "OnBlockMode",
    "Policy",
    "PolicyError",
    "ProviderUnavailableError",
    "SchedulerClosedError",
    "Released",
    "Retracted",
    "SessionClosedError",
    "SessionLimitError",
    "StreamBlocked",
    "StreamModel",
    "StreamSession",
    "Verdict",
    "__version__",
    "aguard_anthropic_stream",
    "aguard_openai_stream",
    "aguard_responses_stream",
    "builtin_policies",
    "guard_anthropic_stream",
    "guard_openai_stream",
    "guard_responses_stream",
    "load_policy",
]
