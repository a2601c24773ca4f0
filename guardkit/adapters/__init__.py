"""Adapters from provider stream formats to guarded streams of the same items.

Each provider is one :class:`Shaper` (how its items carry text, how to rebuild
them around released text, how to signal a block) under the one sync/async
driver in :mod:`guardkit.adapters._driver`. To add a provider, subclass
``Shaper`` and wrap items with ``ShapedStream(guard, items, MyShaper())`` (or
``AsyncShapedStream``).
"""

from guardkit.adapters._driver import ALL, AsyncShapedStream, ChannelRules, GuardBlock, Read, ShapedStream, Shaper
from guardkit.adapters.anthropic import (
    AnthropicEventShaper,
    AnthropicGuardedStream,
    AsyncAnthropicGuardedStream,
    aguard_anthropic_stream,
    guard_anthropic_stream,
)
from guardkit.adapters.openai import (
    AsyncOpenAIGuardedStream,
    ChatChunkShaper,
    OpenAIGuardedStream,
    aguard_openai_stream,
    guard_openai_stream,
)
from guardkit.adapters.openai_responses import (
    AsyncResponsesGuardedStream,
    ResponsesEventShaper,
    ResponsesGuardedStream,
    aguard_responses_stream,
    guard_responses_stream,
)

__all__ = [
    "ALL",
    "AnthropicEventShaper",
    "AnthropicGuardedStream",
    "AsyncAnthropicGuardedStream",
    "AsyncOpenAIGuardedStream",
    "AsyncResponsesGuardedStream",
    "AsyncShapedStream",
    "ChannelRules",
    "ChatChunkShaper",
    "GuardBlock",
    "OpenAIGuardedStream",
    "Read",
    "ResponsesEventShaper",
    "ResponsesGuardedStream",
    "ShapedStream",
    "Shaper",
    "aguard_anthropic_stream",
    "aguard_openai_stream",
    "aguard_responses_stream",
    "guard_anthropic_stream",
    "guard_openai_stream",
    "guard_responses_stream",
]
