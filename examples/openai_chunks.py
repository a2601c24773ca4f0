"""Guard an OpenAI-style chat-completion chunk stream with ``guard_openai_stream``.

``guard_openai_stream(guard, chunks, prompt=...)`` takes the chunks a
``stream=True`` chat completion yields (OpenAI SDK objects or plain dicts, from
OpenAI or any OpenAI-compatible server: vLLM, llama.cpp, Ollama, LiteLLM ...)
and yields chunks of the same type (SDK objects stay SDK objects, dicts stay
dicts) whose ``choices[i].delta.content`` is only text the guard released; every
other field passes through. A blocked choice ends with its own chunk:
``finish_reason: "content_filter"`` and a ``guardkit`` field carrying the block
(verdict, channel and the policy's message), never text glued to the content;
an unblocked one keeps the upstream's finish reason (``"stop"``). ``aguard_openai_stream`` is the async
twin (for ``AsyncOpenAI``); run this script with ``--async`` to use it.

To guard a real model instead of the scripted chunks below::

    from openai import OpenAI

    client = OpenAI()  # reads OPENAI_API_KEY; base_url=... for compatible servers
    messages = [{"role": "user", "content": prompt}]
    chunks = client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
    for chunk in guard_openai_stream(guard, chunks, prompt=prompt):
        delta = chunk.choices[0].delta.content   # ChatCompletionChunk in, ChatCompletionChunk out
        ...

(With ``AsyncOpenAI``, ``await client.chat.completions.create(..., stream=True)``
and iterate ``aguard_openai_stream(guard, chunks, prompt=prompt)`` with
``async for``.) When the guard blocks, it closes the upstream stream, so the
HTTP response is dropped and the model stops generating.

Run it::

    python examples/openai_chunks.py [--model BUNDLE] [--policy NAME|FILE] [--async]

For each conversation it prints the guarded chunks' content as it arrives, the
final ``finish_reason``, the verdict and a ``released:`` line with the released
text as a JSON string.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any, AsyncIterator, Iterator

from guardkit import Guard, GuardkitError, aguard_openai_stream, guard_openai_stream

#: (name, prompt, the scripted assistant reply)
CONVERSATIONS: list[tuple[str, str, str]] = [
    (
        "benign",
        "Any tips for a good cup of tea?",
        "Sure! Use fresh water, warm the pot first, and let the tea steep for three to five minutes.",
    ),
    (
        "harmful-response",
        "Tell me a story about a chemist.",
        "Sure, to make an explosive detonator at home, first take the wires out of a clock, then connect them to the battery.",
    ),
]


def scripted_chunks(reply: str, model: str = "gpt-4o-mini", delay: float = 0.0) -> Iterator[dict[str, Any]]:
    """``chat.completion.chunk`` dicts shaped like the OpenAI SDK streams them.

    The first chunk carries the role, then one chunk per word of content, then
    an empty delta with ``finish_reason: "stop"``.
    """
    base = {
        "id": "chatcmpl-demo123",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_demo",
    }

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}

    yield chunk({"role": "assistant", "content": "", "refusal": None})
    for i, word in enumerate(reply.split(" ")):
        if delay:
            time.sleep(delay)
        yield chunk({"content": word if i == 0 else " " + word})
    yield chunk({}, "stop")


async def ascripted_chunks(reply: str, delay: float = 0.0) -> AsyncIterator[dict[str, Any]]:
    """The async twin, as ``AsyncOpenAI`` streams would arrive."""
    for item in scripted_chunks(reply):
        if delay:
            await asyncio.sleep(delay)
        yield item


def report(guarded: Any, finish_reason: str | None) -> None:
    verdict = guarded.verdict
    print()
    print(f"finish_reason: {finish_reason}")
    print(f"verdict:   {verdict.level}, category={verdict.category}, action={verdict.action}, char_offset={verdict.char_offset}")
    print(f"released:  {json.dumps(guarded.released_text)}")
    print()


def show(chunk: dict, finish_reason: str | None) -> str | None:
    """Print a guarded chunk's released text; return the finish reason seen so far."""
    choice = chunk["choices"][0]
    content = choice["delta"].get("content")
    if content:
        print(content, end="", flush=True)
    return choice["finish_reason"] or finish_reason


def run_sync(guard: Guard, name: str, prompt: str, reply: str, delay: float) -> None:
    print(f"### {name}\nuser:      {prompt}\nassistant: ", end="", flush=True)
    guarded = guard_openai_stream(guard, scripted_chunks(reply, delay=delay), prompt=prompt)
    finish_reason = None
    for chunk in guarded:  # dicts in the chat.completion.chunk shape
        finish_reason = show(chunk, finish_reason)
    report(guarded, finish_reason)


async def run_async(guard: Guard, name: str, prompt: str, reply: str, delay: float) -> None:
    print(f"### {name} (async)\nuser:      {prompt}\nassistant: ", end="", flush=True)
    guarded = aguard_openai_stream(guard, ascripted_chunks(reply, delay=delay), prompt=prompt)
    finish_reason = None
    async for chunk in guarded:
        finish_reason = show(chunk, finish_reason)
    report(guarded, finish_reason)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model bundle directory (default: the shipped guardkit-mini)")
    parser.add_argument("--policy", default="default", help="built-in policy name or YAML file (default: %(default)s)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or tensorrt (default: %(default)s)")
    parser.add_argument("--async", dest="use_async", action="store_true", help="use aguard_openai_stream over an async chunk stream")
    parser.add_argument("--delay", type=float, default=0.03, help="seconds between scripted chunks (default: %(default)s)")
    args = parser.parse_args(argv)

    try:
        guard = Guard(model=args.model, policy=args.policy, device=args.device)
    except GuardkitError as exc:  # no such model or policy, a bad policy file, a missing runtime ...
        parser.exit(1, f"{parser.prog}: cannot set up the guard: {exc}\n")
    print(f"guard: {guard!r}\n")
    for name, prompt, reply in CONVERSATIONS:
        if args.use_async:
            asyncio.run(run_async(guard, name, prompt, reply, args.delay))
        else:
            run_sync(guard, name, prompt, reply, args.delay)
    return 0


if __name__ == "__main__":
    sys.exit(main())
