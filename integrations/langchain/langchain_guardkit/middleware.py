"""GuardkitMiddleware: guardkit as an ``AgentMiddleware`` of ``langchain.agents.create_agent``.

>>> agent = create_agent(model, tools=[...], middleware=[GuardkitMiddleware(guard)])

Around every model call of the agent it

1. checks the user's prompt (the last human message) before the model is
   called: a prompt the policy blocks is answered with the policy's
   ``prompt.message`` (an ``AIMessage`` whose ``response_metadata["guardkit"]``
   holds the block) and the model is never called;
2. runs the call on :class:`~langchain_guardkit.GuardedChatModel` around the
   agent's model, so the response (text, reasoning, tool-call arguments) is
   judged as it streams: ``stream_mode="messages"``, ``astream_events`` and the
   agent's state see only released text, and a blocked response ends with the
   policy's ``on_block.message``. A tool call is emitted only once its
   arguments were judged whole, so the agent never runs a blocked call.

Requires ``langchain>=1.0`` (``pip install "langchain-guardkit[agents]"``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.messages import AIMessage

from guardkit import Guard
from guardkit.verdict import Verdict
from langchain_guardkit._messages import last_human_text
from langchain_guardkit.chat_model import GuardedChatModel

__all__ = ["GuardkitMiddleware"]


class GuardkitMiddleware(AgentMiddleware):  # type: ignore[type-arg]
    """Check the prompt before each model call of an agent and guard the model's response.

    Args:
        guard: the :class:`guardkit.Guard` (model + policy) to apply.
        channels: overrides of the policy's ``channels`` section for the response.
        check_prompt: set False to skip the prompt check (the response is still guarded).
    """

    def __init__(self, guard: Guard, *, channels: dict[str, Any] | None = None, check_prompt: bool = True) -> None:
        super().__init__()
        if not isinstance(guard, Guard):
            raise TypeError(f"guard must be a guardkit.Guard, got {type(guard).__name__}")
        self.guard = guard
        self.channels = channels
        self.check_prompt = check_prompt

    # -- the two halves --------------------------------------------------------------
    def _refusal(self, verdict: Verdict) -> ModelResponse:
        info = {"blocked": True, "channel": "prompt", "channel_only": False, "action": "halt",
                "message": self.guard.policy.prompt.message, "retracted_from": None, "verdict": verdict.to_dict()}
        message = AIMessage(content=self.guard.policy.prompt.message, response_metadata={"guardkit": [info]})
        return ModelResponse(result=[message])

    def _guarded(self, request: ModelRequest) -> ModelRequest:
        model = request.model
        if isinstance(model, GuardedChatModel):
            return request
        # the prompt was checked here already; the guarded model judges the response in its context
        return request.override(model=GuardedChatModel(model=model, guard=self.guard, channels=self.channels, check_prompt=False))

    def _prompt(self, request: ModelRequest) -> str | None:
        return last_human_text(request.messages) if self.check_prompt else None

    # -- AgentMiddleware --------------------------------------------------------------
    def wrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]) -> ModelResponse:
        prompt = self._prompt(request)
        if prompt is not None:
            verdict = self.guard.check_prompt(prompt)
            if verdict.blocked:
                return self._refusal(verdict)
        return handler(self._guarded(request))

    async def awrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        prompt = self._prompt(request)
        if prompt is not None:
            verdict = await self.guard.acheck_prompt(prompt)
            if verdict.blocked:
                return self._refusal(verdict)
        return await handler(self._guarded(request))
