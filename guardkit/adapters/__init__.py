"""Adapters from provider stream formats to guarded streams."""

from guardkit.adapters.openai import AsyncOpenAIGuardedStream, OpenAIGuardedStream, guard_openai_stream, aguard_openai_stream

__all__ = ["AsyncOpenAIGuardedStream", "OpenAIGuardedStream", "aguard_openai_stream", "guard_openai_stream"]
