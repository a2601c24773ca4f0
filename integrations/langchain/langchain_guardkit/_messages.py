"""Text and prompt extraction from LangChain values (messages, prompt values, chain inputs)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from langchain_core.messages import BaseMessage, HumanMessage, convert_to_messages
from langchain_core.prompt_values import PromptValue

__all__ = ["PROMPT_KEYS", "content_text", "extract_prompt", "last_human_text"]

#: Keys of a dict input tried, in order, before falling back to all its string values.
PROMPT_KEYS: tuple[str, ...] = ("messages", "input", "question", "query", "prompt")


def content_text(content: Any) -> str:
    """The text of a message's ``content``: a str, or the text blocks of a content list.

    Non-text blocks (images, tool calls, reasoning) contribute nothing.
    """
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts: list[str] = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, Mapping) and block.get("type") == "text" and isinstance(block.get("text"), str):
                parts.append(block["text"])
        return "".join(parts)
    raise TypeError(f"message content must be str or a list of content blocks, got {type(content).__name__}")


def last_human_text(messages: Sequence[BaseMessage]) -> str | None:
    """The text of the last human (user) message, or None when there is none."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage) or getattr(message, "type", None) == "human" or (
            getattr(message, "type", None) == "chat" and getattr(message, "role", None) == "user"
        ):
            return content_text(message.content)
    return None


def extract_prompt(value: Any) -> str | None:
    """The user prompt in a Runnable's input, for the guard's prompt check.

    The rule, in order:

    * ``None`` -> no prompt (the prompt check is skipped);
    * a ``str`` -> the string itself;
    * a ``PromptValue`` (what a prompt template produces) -> the text of its last human message;
    * a ``BaseMessage`` -> its text if it is a human message, else no prompt;
    * a list/tuple of messages or message-likes (``("human", "...")``, ``{"role": "user", ...}``)
      -> the text of the last human message;
    * a dict -> the first of the keys ``messages``, ``input``, ``question``, ``query``, ``prompt``
      that is present (its value extracted by this same rule); if none is present, all the
      dict's string values joined with newlines (the template variables a user filled in);
    * anything else -> no prompt.

    Only what the user supplied is checked: a system prompt or template text around it is not.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, PromptValue):
        return last_human_text(value.to_messages())
    if isinstance(value, BaseMessage):
        return last_human_text([value])
    if isinstance(value, Mapping):
        for key in PROMPT_KEYS:
            if key in value:
                found = extract_prompt(value[key])
                if found is not None:
                    return found
        texts = [v for v in value.values() if isinstance(v, str)]
        return "\n".join(texts) if texts else None
    if isinstance(value, (list, tuple)):
        try:
            messages = convert_to_messages(value)
        except Exception:  # noqa: BLE001 - not message-like: no prompt to check
            return None
        return last_human_text(messages)
    return None


class ModelRunsOnly:
    """Callback mixin: only model runs matter, so LangChain can skip dispatching the rest."""

    @property
    def ignore_chain(self) -> bool:
        return True

    @property
    def ignore_agent(self) -> bool:
        return True

    @property
    def ignore_retriever(self) -> bool:
        return True

    @property
    def ignore_custom_event(self) -> bool:
        return True
