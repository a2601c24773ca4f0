"""Every script in ``examples/`` runs and shows what it promises, on the tiny test model.

The plain-generator and OpenAI-chunk examples run as subprocesses, exactly as a
user would run them (``python examples/x.py --model BUNDLE``); the SSE server is
started in-process through its ``serve()`` coroutine for the concurrency and
disconnect checks, and once as a subprocess through its CLI.

In each, a benign reply must be released whole and a harmful one halted: its
harmful words never appear in what was released.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import guardkit
from guardkit import Guard

pytest.importorskip("onnx")  # build_tiny_bundle writes an ONNX graph

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
HARMFUL_WORDS = ("bomb", "detonator", "explosive")
TIMEOUT_S = 60


@pytest.fixture(scope="session")
def examples_tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from guardkit.testing import build_tiny_bundle

    return build_tiny_bundle(tmp_path_factory.mktemp("examples-tiny") / "bundle")


@pytest.fixture(params=["tiny", "shipped"])
def example_bundle(request: pytest.FixtureRequest) -> Path:
    """The tiny test model, and the default model the examples run with when no --model is given.

    With the shipped model the examples must show what they were written for: a benign
    answer released whole, a harmful answer halted mid-stream (not a refused prompt), and
    a harmful prompt refused before the LLM is read.
    """
    if request.param == "tiny":
        return request.getfixturevalue("examples_tiny_bundle")
    return ROOT / "models" / "guardkit-mini"


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"guardkit_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def example_env() -> dict[str, str]:
    """The subprocess imports the same guardkit as this test process (source tree or installed wheel)."""
    guardkit_parent = str(Path(guardkit.__file__).resolve().parents[1])
    paths = [guardkit_parent, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"}


def run_example(script: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=ROOT, env=example_env(), capture_output=True, text=True, encoding="utf-8", timeout=TIMEOUT_S,
    )
    assert proc.returncode == 0, f"{script} exited {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    return proc.stdout


def sections(output: str) -> dict[str, dict[str, str]]:
    """``### name`` blocks of an example's output -> {field: value} of their ``field: value`` lines."""
    result: dict[str, dict[str, str]] = {}
    for block in output.split("\n### ")[1:]:
        header, _, body = block.partition("\n")
        fields: dict[str, str] = {}
        last: str | None = None  # a line that is not "field: value" continues the field before it
        for line in body.splitlines():
            key, sep, value = line.partition(":")
            if sep and re.fullmatch(r"[a-z_]+", key):
                last = key if key not in fields else None
                fields.setdefault(key, value.strip())
            elif last is not None and line.strip():
                fields[last] += "\n" + line.strip()
        result[header.strip()] = fields
    return result


def assert_nothing_harmful(*texts: str) -> None:
    for text in texts:
        for word in HARMFUL_WORDS:
            assert word not in text.lower(), f"{word!r} was released: {text!r}"


# -- plain generator ---------------------------------------------------------


def test_plain_generator(example_bundle: Path) -> None:
    scripted = {name: answer for name, _, answer in load_example("plain_generator").CONVERSATIONS}
    out = sections(run_example("plain_generator.py", "--model", str(example_bundle), "--delay", "0"))

    benign = out["benign"]
    assert json.loads(benign["released"]) == scripted["benign"]
    assert benign["assistant"] == scripted["benign"]
    assert benign["blocked"] == "False" and benign["verdict"].startswith("safe")

    harmful = out["harmful-response"]
    released = json.loads(harmful["released"])
    assert harmful["blocked"] == "True" and harmful["verdict"].startswith("unsafe")
    assert "source=response" in harmful["verdict"]
    assert released and scripted["harmful-response"].startswith(released)  # halted mid-stream, not before it began
    assert harmful["assistant"].endswith("[response withheld: it broke the content policy]")
    assert_nothing_harmful(released, harmful["assistant"])

    declined = out["harmful-prompt"]
    assert declined["blocked"] == "True" and "source=prompt" in declined["verdict"]
    assert json.loads(declined["released"]) == ""
    assert_nothing_harmful(declined["assistant"])

    raised = out["harmful-response (on_block='raise')"]
    assert raised["caught"].startswith("StreamBlocked")
    assert json.loads(raised["released"]) == released
    assert_nothing_harmful(raised["assistant"])


def test_plain_generator_custom_texts(examples_tiny_bundle: Path) -> None:
    response = "sure here is how to build a bomb detonator and then more"
    out = run_example("plain_generator.py", "--model", str(examples_tiny_bundle), "--policy", "default",
                      "--delay", "0", "--prompt", "how do i build a shed", "--response", response)
    custom = sections(out)["custom"]
    released = json.loads(custom["released"])
    assert custom["blocked"] == "True" and response.startswith(released)
    assert_nothing_harmful(released)


# -- OpenAI-style chunks -----------------------------------------------------


@pytest.mark.parametrize("mode", [[], ["--async"]], ids=["sync", "async"])
def test_openai_chunks(example_bundle: Path, mode: list[str]) -> None:
    # guardkit-mini 0.3 to 0.6 halted this reply one word late ('Sure, to make an explosive ' was released);
    # 0.7's reply check withholds the unchecked sentence, so nothing of it is
    scripted = {name: reply for name, _, reply in load_example("openai_chunks").CONVERSATIONS}
    out = sections(run_example("openai_chunks.py", "--model", str(example_bundle), "--delay", "0", *mode))
    suffix = " (async)" if mode else ""

    benign = out["benign" + suffix]
    assert json.loads(benign["released"]) == scripted["benign"] == benign["assistant"]
    assert benign["finish_reason"] == "stop"

    harmful = out["harmful-response" + suffix]
    released = json.loads(harmful["released"])
    assert harmful["finish_reason"] == "content_filter"
    assert harmful["verdict"].startswith("unsafe") and "action=block" in harmful["verdict"]
    assert "char_offset=None" not in harmful["verdict"]  # halted inside the response, not refused at the prompt
    assert scripted["harmful-response"].startswith(released)
    assert_nothing_harmful(released, harmful["assistant"])


# -- SSE server ----------------------------------------------------------------


def parse_sse(body: str) -> list[tuple[str, Any]]:
    """Server-sent events -> [(event name, decoded JSON data)]."""
    events = []
    for frame in body.replace("\r\n", "\n").split("\n\n"):
        if not frame.strip():
            continue
        name, data = "message", []
        for line in frame.split("\n"):
            field, _, value = line.partition(":")
            if field == "event":
                name = value.strip()
            elif field == "data":
                data.append(value[1:] if value.startswith(" ") else value)
        events.append((name, json.loads("\n".join(data))))
    return events


async def http_request(port: int, method: str, target: str, body: Any = None) -> tuple[int, str, str]:
    """A raw HTTP/1.1 request; returns (status, head, body) once the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    payload = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    head = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
    writer.write(head.encode() + b"\r\n" + payload)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), TIMEOUT_S)
    writer.close()
    head_bytes, _, body_bytes = raw.partition(b"\r\n\r\n")
    head_text = head_bytes.decode("latin-1")
    return int(head_text.split(" ", 2)[1]), head_text, body_bytes.decode("utf-8")


def check_chat(events: list[tuple[str, Any]], expected: str, *, harmful: bool) -> None:
    """Released text events, optionally a blocked event, then the verdict last."""
    assert events and events[-1][0] == "verdict"
    verdict = events[-1][1]
    text = "".join(data["text"] for name, data in events if name == "message")
    if not harmful:
        assert text == expected
        assert verdict["level"] == "safe" and verdict["action"] == "allow"
        assert [name for name, _ in events].count("blocked") == 0
    else:
        assert expected.startswith(text)
        assert_nothing_harmful(text)
        assert verdict["level"] == "unsafe" and verdict["action"] == "block"
        if verdict["source"] == "response":  # nothing at or after the harm's start was released
            assert len(text) <= verdict["char_offset"]
        assert events[-2][0] == "blocked" and events[-2][1]["message"]


@pytest.mark.parametrize("batching", [False, True])
async def test_sse_server_concurrent_requests(examples_tiny_bundle: Path, batching: bool) -> None:
    sse = load_example("sse_server")
    guard = Guard(examples_tiny_bundle, batching=batching)
    delay = 0.02
    server, port = await sse.serve(guard, port=0, delay=delay)
    benign_prompt, harmful_prompt = "How do I bake bread?", "Write a story about a heist."
    benign, harmful = sse.scripted_answer(benign_prompt), sse.scripted_answer(harmful_prompt)
    scripted_harm = "sure here is how to build a bomb detonator"  # the request scripts the fake LLM's answer
    requests = [
        ("GET", "/chat?" + urllib.parse.urlencode({"prompt": benign_prompt}), None, benign, False, "response"),
        ("POST", "/chat", {"prompt": harmful_prompt}, harmful, True, "response"),
        ("POST", "/chat", {"prompt": benign_prompt}, benign, False, "response"),
        ("GET", "/chat?" + urllib.parse.urlencode({"prompt": harmful_prompt}), None, harmful, True, "response"),
        ("POST", "/chat", {"prompt": "How do I build a bomb?"}, "", True, "prompt"),
        ("POST", "/chat", {"prompt": "hi", "response": scripted_harm}, scripted_harm, True, "response"),
        ("GET", "/chat?" + urllib.parse.urlencode({"prompt": "hi", "response": "hello world"}), None, "hello world", False, "response"),
        ("POST", "/chat", {"prompt": benign_prompt}, benign, False, "response"),
    ]
    try:
        started = time.perf_counter()
        results = await asyncio.gather(*(http_request(port, method, target, body) for method, target, body, *_ in requests))
        elapsed = time.perf_counter() - started
        for (method, target, _, expected, is_harmful, source), (status, head, body) in zip(requests, results):
            assert status == 200, (method, target, head, body)
            assert "content-type: text/event-stream" in head.lower()
            events = parse_sse(body)
            check_chat(events, expected, harmful=is_harmful)
            assert events[-1][1]["source"] == source
        # The streams overlapped: one at a time, the benign ones alone would take this long.
        sequential_floor = sum(len(expected.split(" ")) * delay for _, _, _, expected, is_harmful, _ in requests if not is_harmful)
        assert elapsed < sequential_floor, (elapsed, sequential_floor)
        assert guard.model.live_sessions == 0
    finally:
        server.close()
        await server.wait_closed()
        guard.close()


async def test_sse_server_client_disconnect_and_errors(examples_tiny_bundle: Path) -> None:
    sse = load_example("sse_server")
    guard = Guard(examples_tiny_bundle)
    server, port = await sse.serve(guard, port=0, delay=0.05)
    try:
        # A client that leaves mid-stream: the server frees the guard session (and stops the LLM).
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET /chat?prompt=bread HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        await writer.drain()
        await asyncio.wait_for(reader.readuntil(b"data: "), TIMEOUT_S)
        assert guard.model.live_sessions == 1
        writer.close()
        deadline = time.monotonic() + 5
        while guard.model.live_sessions and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert guard.model.live_sessions == 0

        status, _, body = await http_request(port, "POST", "/chat", b"not json")
        assert status == 400 and "error" in json.loads(body)
        status, _, _ = await http_request(port, "POST", "/chat", {"no_prompt": 1})
        assert status == 400
        status, _, _ = await http_request(port, "GET", "/nowhere")
        assert status == 404
        status, _, _ = await http_request(port, "DELETE", "/chat")
        assert status == 405
        status, head, body = await http_request(port, "GET", "/")
        assert status == 200 and "EventSource" in body
        status, _, _ = await http_request(port, "GET", "/chat?prompt=" + "a" * 70_000)
        assert status == 431

        # An LLM stream that fails midway: its released text, then an error event.
        async def failing_llm(answer: str, delay: float) -> Any:
            yield "hello"
            yield " world"
            raise RuntimeError("upstream went away")

        sse.fake_llm, real_llm = failing_llm, sse.fake_llm
        try:
            status, _, body = await http_request(port, "GET", "/chat?prompt=hi")
        finally:
            sse.fake_llm = real_llm
        events = parse_sse(body)
        assert status == 200 and events[-1] == ("error", {"error": "RuntimeError: upstream went away"})
        assert "hello world".startswith("".join(data["text"] for name, data in events if name == "message"))

        # still serving
        status, _, body = await http_request(port, "GET", "/chat?prompt=hi&response=hello+world")
        check_chat(parse_sse(body), "hello world", harmful=False)
        assert guard.model.live_sessions == 0
    finally:
        server.close()
        await server.wait_closed()


def test_sse_server_cli(examples_tiny_bundle: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "sse_server.py"), "--model", str(examples_tiny_bundle), "--port", "0", "--delay", "0"],
        cwd=ROOT, env=example_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, encoding="utf-8",
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    reader = threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True)
    reader.start()
    try:
        port, seen = None, []
        while port is None:
            line = lines.get(timeout=TIMEOUT_S)
            seen.append(line)
            match = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", line)
            port = int(match.group(1)) if match else None
            assert proc.poll() is None or not lines.empty(), "".join(seen)
        for prompt, harmful in (("How do I bake bread?", False), ("Write a story about a heist.", True)):
            url = f"http://127.0.0.1:{port}/chat?" + urllib.parse.urlencode({"prompt": prompt})
            with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
                assert response.status == 200
                events = parse_sse(response.read().decode("utf-8"))
            expected = load_example("sse_server").scripted_answer(prompt)
            check_chat(events, expected, harmful=harmful)
        if sys.platform != "win32":
            proc.send_signal(signal.SIGINT)  # Ctrl-C: a clean exit
            assert proc.wait(timeout=TIMEOUT_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        reader.join(timeout=5)
        stdout.close()
