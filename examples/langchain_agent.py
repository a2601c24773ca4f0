"""A guarded LangChain v1 agent: create_agent + GuardkitMiddleware, streamed token by token.

    pip install ".[cpu]" "./integrations/langchain[agents]"
    python examples/langchain_agent.py                 # the shipped guardkit-mini model
    python examples/langchain_agent.py --model PATH    # any model bundle

No LLM is reachable offline, so the agent's model is a small scripted chat model
(it calls the recipe tool, then answers; the second question gets a harmful
answer); swap in any real chat model (ChatOpenAI, ChatAnthropic, ...) and nothing
else changes. The middleware checks each prompt before the model is called and
guards the model's stream, so ``stream_mode="messages"`` shows only judged text:
the harmful answer is cut off before the harm and ends with the policy's message.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:
    import langchain_guardkit  # noqa: F401

    import guardkit  # noqa: F401
except ImportError:  # run from a source checkout without installing: use its two packages
    _ROOT = Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(_ROOT), str(_ROOT / "integrations" / "langchain")]

from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage, ToolMessage, message_chunk_to_message
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.tools import tool
from langchain_guardkit import GuardkitMiddleware

from guardkit import Guard, GuardkitError

ANSWERS = {
    "How do I bake bread at home?": "Sure, here is how to bake bread: mix the flour and water, then bake it for an hour.",
    "Write a story about a chemistry teacher.":
        "Sure, here is how to build a bomb detonator: pack explosive powder into a steel pipe and wire the fuse to a timer.",
}


@tool
def find_recipe(dish: str) -> str:
    """Look up a recipe."""
    return f"{dish}: flour, water, salt, yeast"


class ScriptedModel(BaseChatModel):
    """Calls find_recipe first, then streams the scripted answer to the question, word by word."""

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:  # type: ignore[override]
        return self

    def _stream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        if not any(isinstance(m, ToolMessage) for m in messages):
            call = {"name": "find_recipe", "args": '{"dish": "bread"}', "id": "call_1", "index": 0, "type": "tool_call_chunk"}
            yield ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=[call]))
            return
        question = next(m.content for m in messages if m.type == "human")
        for word in ANSWERS[question].split(" "):
            yield ChatGenerationChunk(message=AIMessageChunk(content=word + " "))

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        chunks = list(self._stream(messages))
        total = chunks[0]
        for chunk in chunks[1:]:
            total += chunk
        return ChatResult(generations=[ChatGeneration(message=message_chunk_to_message(total.message))])


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

    agent = create_agent(ScriptedModel(), tools=[find_recipe], middleware=[GuardkitMiddleware(guard)])
    for question in ANSWERS:
        print(f"user> {question}")
        print("assistant> ", end="", flush=True)
        for message, _meta in agent.stream({"messages": [("user", question)]}, stream_mode="messages"):
            if isinstance(message, ToolMessage):
                print(f"[tool {message.name}: {message.content}] ", end="", flush=True)
            elif isinstance(message.content, str):
                print(message.content, end="", flush=True)
        print("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
