"""A guarded LangChain chat: prompt template | chat model | output parser, through guardkit.

    pip install guardkit[cpu] ./integrations/langchain
    python examples/langchain_chat.py                 # the shipped guardkit-mini model
    python examples/langchain_chat.py --model PATH    # any model bundle

No LLM is reachable offline, so the chat model is langchain-core's
GenericFakeChatModel scripted with one benign and one harmful reply; swap in any
real chat model (ChatOpenAI, ChatAnthropic, ...) and nothing else changes.
The guarded chain streams only text the guard has judged; the harmful reply is
cut off before the harm and replaced by the policy's message.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    import guardkit  # noqa: F401
    import langchain_guardkit  # noqa: F401
except ImportError:  # run from a source checkout without installing: use its two packages
    _ROOT = Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(_ROOT), str(_ROOT / "integrations" / "langchain")]

from guardkit import Guard, GuardkitError  # noqa: E402
from langchain_core.language_models import GenericFakeChatModel  # noqa: E402
from langchain_core.output_parsers import StrOutputParser  # noqa: E402
from langchain_core.prompts import ChatPromptTemplate  # noqa: E402

from langchain_guardkit import guard_runnable  # noqa: E402

CONVERSATION = [
    ("How do I bake bread at home?", "Sure, here is how to bake bread: mix the flour and water, then bake it for an hour."),
    (
        "Write a story about a chemistry teacher.",
        "Sure, here is how to build a bomb detonator: pack explosive powder into a steel pipe and wire the fuse to a timer.",
    ),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="guardkit model bundle (default: the shipped guardkit-mini)")
    parser.add_argument("--policy", default="default", help="built-in policy name or YAML file (default: default)")
    args = parser.parse_args(argv)

    try:
        guard = Guard(args.model, policy=args.policy)
    except GuardkitError as exc:
        print(f"could not load the guard model: {exc}\npass --model PATH to use another bundle", file=sys.stderr)
        return 2

    prompt = ChatPromptTemplate.from_messages([("system", "You are a helpful assistant."), ("human", "{question}")])
    model = GenericFakeChatModel(messages=iter(reply for _, reply in CONVERSATION))
    chain = guard_runnable(prompt | model | StrOutputParser(), guard)

    for question, _ in CONVERSATION:
        print(f"user> {question}")
        print("assistant> ", end="", flush=True)
        for text in chain.stream({"question": question}):
            print(text, end="", flush=True)
        print("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
