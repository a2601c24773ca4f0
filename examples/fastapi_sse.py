"""A FastAPI app that streams a guarded LLM response per request as server-sent events.

Per request, wrap the LLM's async stream in ``guard.astream(...)`` and forward
only what it releases. Judging runs on the event loop and each model step is
awaited off it, so one process serves many concurrent streams, each with its
own guard session, sharing one loaded model.

``POST /chat`` with JSON ``{"prompt": "..."}`` (or ``GET /chat?prompt=...``)
answers ``text/event-stream``:

* ``event: delta`` with ``{"text": "..."}`` for each released piece of the answer;
* ``event: blocked`` with ``{"message": "..."}`` if the guard stops the answer
  (the policy's message, to show instead of the rest; never glued to the text);
* ``event: verdict`` last, the verdict as JSON (:meth:`guardkit.Verdict.to_dict`).
  (If the LLM stream or the guard fails instead: ``event: error`` with ``{"error": ...}``.)

If the client goes away mid-stream, the guarded stream is closed: that closes
the LLM's stream (it stops generating) and frees the guard session.

The "LLM" is any ``llm(prompt)`` returning an async iterator of text deltas.
The default, ``fake_llm``, is scripted like ``examples/sse_server.py``: a bread
recipe for ordinary prompts, a harmful answer for prompts about a heist. Swap in
your client, e.g. the text of ``AsyncOpenAI`` chunks.

Run it from the repository root (``pip install fastapi uvicorn``), then try it with curl (``-N`` shows events as they arrive)::

    uvicorn examples.fastapi_sse:app --port 8000      # GUARDKIT_MODEL / GUARDKIT_POLICY pick the guard
    python examples/fastapi_sse.py --port 8000 [--model BUNDLE] [--policy NAME|FILE]

    curl -N http://127.0.0.1:8000/chat -H 'Content-Type: application/json' -d '{"prompt": "How do I bake bread?"}'
    curl -N 'http://127.0.0.1:8000/chat?prompt=Write+a+story+about+a+heist.'
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from guardkit import Guard, GuardkitError, StreamBlocked, Verdict

LLM = Callable[[str], AsyncIterator[str]]

#: (keywords in the prompt, the fake LLM's scripted answer), as in examples/sse_server.py; the first match wins.
SCRIPTS: list[tuple[tuple[str, ...], str]] = [
    (
        ("bread", "bake", "recipe"),
        (
            "Sure, here is a simple recipe: first mix the flour, water, salt and a little sugar, "
            "then let the dough rest and bake it for thirty minutes."
        ),
    ),
    (
        ("heist", "vault", "robbery"),
        (
            "Sure, here is a short story about a heist for you. The crew met at midnight in an empty warehouse "
            "to plan the job. Then here is how to build a bomb detonator: first wire the explosive to the timer, "
            "then hide it in the vault."
        ),
    ),
]
DEFAULT_ANSWER = "Hello! I am a scripted stand-in for an LLM. Ask me how to bake bread, or for a heist story."


def scripted_answer(prompt: str) -> str:
    lowered = prompt.lower()
    return next((answer for keywords, answer in SCRIPTS if any(word in lowered for word in keywords)), DEFAULT_ANSWER)


async def fake_llm(prompt: str, delay: float = 0.03) -> AsyncIterator[str]:
    """A stand-in for an async LLM stream: yields the scripted answer word by word."""
    for i, word in enumerate(scripted_answer(prompt).split(" ")):
        await asyncio.sleep(delay)  # also yields to the event loop, as network reads do
        yield word if i == 0 else " " + word


def sse(event: str, data: dict[str, Any]) -> str:
    """One server-sent event; JSON keeps the data on a single line."""
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def block_message(guard: Guard, verdict: Verdict) -> str:
    """The policy's message for a refused prompt or a halted answer."""
    return guard.policy.prompt.message if verdict.source == "prompt" else guard.policy.on_block.message


async def chat_events(guard: Guard, llm: LLM, prompt: str) -> AsyncGenerator[str, None]:
    # on_block="raise" tells released text from the policy's message. `async with`
    # closes the guarded stream (the LLM stream and the guard session) however we leave.
    async with guard.astream(llm(prompt), prompt=prompt, on_block="raise") as stream:
        try:
            async for text in stream:
                yield sse("delta", {"text": text})
        except StreamBlocked as blocked:
            yield sse("blocked", {"message": block_message(guard, blocked.verdict)})
        except Exception as exc:  # noqa: BLE001 - the LLM stream failed (after the text it released), or the guard did
            yield sse("error", {"error": f"{type(exc).__name__}: {exc}"})
            return
        yield sse("verdict", stream.verdict.to_dict())


class EventStream(StreamingResponse):
    """A ``text/event-stream`` response that always closes its generator.

    When the client disconnects, Starlette stops iterating but leaves the generator
    to the garbage collector; closing it here runs its ``async with`` at once.
    """

    media_type = "text/event-stream"

    def __init__(self, events: AsyncGenerator[str, None]) -> None:
        super().__init__(events, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.events = events

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.events.aclose()


class ChatRequest(BaseModel):
    prompt: str = Field(min_length=1)


def create_app(guard: Guard | None = None, llm: LLM | None = None) -> FastAPI:
    """The app; without a ``guard`` one is made at startup (``GUARDKIT_MODEL``, ``GUARDKIT_POLICY``) and closed at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if guard is not None:
            yield
            return
        app.state.guard = Guard(os.environ.get("GUARDKIT_MODEL"), os.environ.get("GUARDKIT_POLICY", "default"))
        with app.state.guard:
            yield

    app = FastAPI(title="guardkit SSE chat", lifespan=lifespan)
    app.state.guard = guard
    app.state.llm = llm or fake_llm

    def stream(request: Request, prompt: str) -> EventStream:
        return EventStream(chat_events(request.app.state.guard, request.app.state.llm, prompt))

    @app.post("/chat")
    async def chat(body: ChatRequest, request: Request) -> EventStream:
        return stream(request, body.prompt)

    @app.get("/chat")
    async def chat_get(request: Request, prompt: str = Query(min_length=1)) -> EventStream:
        return stream(request, prompt)

    return app


app = create_app()  # for `uvicorn examples.fastapi_sse:app`


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (default: %(default)s)")
    parser.add_argument("--model", default=None, help="model bundle directory (default: the shipped guardkit-mini)")
    parser.add_argument("--policy", default="default", help="built-in policy name or YAML file (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        guard = Guard(args.model, args.policy)
    except GuardkitError as exc:  # no such model or policy, a bad policy file, a missing runtime ...
        parser.exit(1, f"{parser.prog}: cannot set up the guard: {exc}\n")
    with guard:
        uvicorn.run(create_app(guard), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
