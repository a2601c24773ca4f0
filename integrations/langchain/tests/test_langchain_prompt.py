"""The prompt extraction rule of langchain_guardkit.extract_prompt."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate

from langchain_guardkit import extract_prompt


def test_strings_and_none() -> None:
    assert extract_prompt("hello") == "hello"
    assert extract_prompt(None) is None
    assert extract_prompt(42) is None


def test_last_human_message() -> None:
    msgs = [SystemMessage("sys"), HumanMessage("first"), AIMessage("answer"), HumanMessage("second")]
    assert extract_prompt(msgs) == "second"
    assert extract_prompt([("system", "sys"), ("human", "hi there")]) == "hi there"
    assert extract_prompt([{"role": "user", "content": "dict form"}]) == "dict form"
    assert extract_prompt([SystemMessage("only system")]) is None
    assert extract_prompt(HumanMessage("single")) == "single"
    assert extract_prompt(AIMessage("not a prompt")) is None


def test_content_blocks() -> None:
    msg = HumanMessage(content=[{"type": "text", "text": "look at "}, {"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "this"}])
    assert extract_prompt([msg]) == "look at this"


def test_prompt_values() -> None:
    chat = ChatPromptTemplate.from_messages([("system", "be nice"), ("human", "{q}")]).invoke({"q": "question"})
    assert extract_prompt(chat) == "question"
    assert extract_prompt(PromptTemplate.from_template("Q: {q}").invoke({"q": "x"})) == "Q: x"


def test_dicts() -> None:
    assert extract_prompt({"messages": [("human", "from messages")], "input": "no"}) == "from messages"
    assert extract_prompt({"input": "the input", "question": "no"}) == "the input"
    assert extract_prompt({"question": "the question", "context": "docs"}) == "the question"
    assert extract_prompt({"query": "q"}) == "q"
    assert extract_prompt({"topic": "cats", "style": "haiku", "n": 3}) == "cats\nhaiku"
    assert extract_prompt({"n": 3}) is None
