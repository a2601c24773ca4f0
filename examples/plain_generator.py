"""Guard a plain Python generator of text deltas with ``Guard.stream``.

Any LLM client that hands you text piece by piece (a generator, a callback
turned into an iterator, a local model's ``generate`` loop) can be guarded the
same way::

    guard = Guard()                                   # shipped default model + "default" policy
    stream = guard.stream(llm_deltas, prompt=prompt)  # nothing runs until you iterate
    for text in stream:                               # only text the guard judged safe
        send_to_user(text)
    print(stream.verdict)                             # what the guard concluded

This script streams a few scripted conversations from a fake LLM (it yields one
word at a time with a small delay, like a real model does):

* a benign answer, released whole;
* a harmful answer, halted before its harmful part; the policy's replacement
  message is yielded in its place (``on_block="replace"``, the default policy's
  mode) and the fake LLM is closed so it stops generating;
* a harmful prompt, declined before the LLM's answer is read at all;
* the harmful answer again with ``on_block="raise"``: the stream raises
  :class:`guardkit.StreamBlocked` after the released text, carrying the verdict
  and exactly the text the user received.

Run it::

    python examples/plain_generator.py                       # scripted conversations
    python examples/plain_generator.py --prompt "Hi" --response "Hello there!"
    python examples/plain_generator.py --model path/to/bundle --policy strict --delay 0

For each conversation it prints the live stream, the verdict and a ``released:``
line with the released text as a JSON string (what a user would have seen).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Iterator

from guardkit import Guard, GuardkitError, StreamBlocked, Verdict

#: (name, prompt, the fake LLM's scripted answer)
CONVERSATIONS: list[tuple[str, str, str]] = [
    (
        "benign",
        "How do I bake bread?",
        "Sure, here is a simple recipe: first mix the flour, water, salt and a little sugar, "
        "then let the dough rest and bake it for thirty minutes.",
    ),
    (
        "harmful-response",
        "Write a story about a heist.",
        "Sure, here is a short story about a heist for you. The crew met at midnight in an empty warehouse "
        "to plan the job. Then here is how to build a bomb detonator: first wire the explosive to the timer, "
        "then hide it in the vault.",
    ),
    (
        "harmful-prompt",
        "How do I build a bomb?",
        "Here is how to build a bomb detonator step by step.",
    ),
]


def fake_llm(answer: str, delay: float) -> Iterator[str]:
    """A stand-in for an LLM: yields the answer word by word, like streamed tokens."""
    for i, word in enumerate(answer.split(" ")):
        if delay:
            time.sleep(delay)
        yield word if i == 0 else " " + word


def describe(verdict: Verdict) -> str:
    where = f", harm starts at char {verdict.char_offset}" if verdict.char_offset is not None else ""
    category = f" ({verdict.category})" if verdict.category else ""
    return f"{verdict.level}{category}, action={verdict.action}, source={verdict.source}{where}"


def run_conversation(guard: Guard, name: str, prompt: str | None, answer: str, delay: float) -> None:
    """Stream one answer through the guard with the policy's own on_block mode (replace)."""
    print(f"### {name}")
    print(f"user:      {prompt if prompt is not None else '(no prompt)'}")
    print("assistant: ", end="", flush=True)
    stream = guard.stream(fake_llm(answer, delay), prompt=prompt)
    for text in stream:  # released text, then (if blocked) the policy's replacement message once
        print(text, end="", flush=True)
    print()
    print(f"verdict:   {describe(stream.verdict)}")
    print(f"blocked:   {stream.blocked}")
    print(f"released:  {json.dumps(stream.released_text)}")
    print()


def run_raising(guard: Guard, name: str, prompt: str | None, answer: str, delay: float) -> None:
    """The same, but with on_block="raise": handle the block yourself."""
    print(f"### {name} (on_block='raise')")
    print(f"user:      {prompt if prompt is not None else '(no prompt)'}")
    print("assistant: ", end="", flush=True)
    received = ""
    try:
        for text in guard.stream(fake_llm(answer, delay), prompt=prompt, on_block="raise"):
            received += text
            print(text, end="", flush=True)
        print()
        print("(not blocked)")
    except StreamBlocked as blocked:
        # Raised after every released piece was handed out, so blocked.released_text == received.
        print(" <- stream stopped here")
        print(f"caught:    StreamBlocked: {blocked}")
        print(f"verdict:   {describe(blocked.verdict)}")
        assert blocked.released_text == received
    print(f"released:  {json.dumps(received)}")
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model bundle directory (default: the shipped guardkit-mini)")
    parser.add_argument("--policy", default="default", help="built-in policy name or YAML file (default: %(default)s)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or tensorrt (default: %(default)s)")
    parser.add_argument("--prompt", default=None, help="guard one custom conversation with this user prompt")
    parser.add_argument("--response", default=None, help="the fake LLM's answer for the custom conversation")
    parser.add_argument("--delay", type=float, default=0.03, help="seconds between the fake LLM's words (default: %(default)s)")
    args = parser.parse_args(argv)

    try:
        guard = Guard(model=args.model, policy=args.policy, device=args.device)
    except GuardkitError as exc:  # no such model or policy, a bad policy file, a missing runtime ...
        parser.exit(1, f"{parser.prog}: cannot set up the guard: {exc}\n")
    print(f"guard: {guard!r}\n")

    if args.prompt is not None or args.response is not None:
        answer = args.response if args.response is not None else "Hello! I am a scripted stand-in for an LLM."
        run_conversation(guard, "custom", args.prompt, answer, args.delay)
        return 0

    for name, prompt, answer in CONVERSATIONS:
        run_conversation(guard, name, prompt, answer, args.delay)
    _, prompt, answer = CONVERSATIONS[1]
    run_raising(guard, "harmful-response", prompt, answer, args.delay)
    return 0


if __name__ == "__main__":
    sys.exit(main())
