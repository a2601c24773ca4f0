"""examples/fastapi_sse.py: a guarded answer per request over SSE, tested with httpx against the app.

The tiny test model (guardkit.testing) reads "bomb", "detonator", "explosive" as unsafe, so
the example's scripted heist answer is halted mid-stream and the bread recipe passes whole.
No assertion depends on timing: concurrency is shown with a barrier every stream's LLM must
reach before any of them yields a word, and a client disconnect is driven at the ASGI level
(httpx's ASGITransport hands back a response only once the app has finished) and once through
a real uvicorn server.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from test_examples import assert_nothing_harmful, load_example, parse_sse

from guardkit import Guard

HANG_GUARD_S = 60  # only so that a broken build fails instead of hanging; never reached when it works

fa = load_example("fastapi_sse")
BENIGN, HARMFUL, HARMFUL_PROMPT = "How do I bake bread?", "Write a story about a heist.", "How do I build a bomb?"


@pytest.fixture
def guard(tiny_bundle: Path) -> Any:
    with Guard(tiny_bundle) as guard:
        yield guard


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def chat(c: httpx.AsyncClient, prompt: str, method: str = "POST") -> list[tuple[str, Any]]:
    if method == "POST":
        response = await c.post("/chat", json={"prompt": prompt})
    else:
        response = await c.get("/chat", params={"prompt": prompt})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return parse_sse(response.text)


def deltas(events: list[tuple[str, Any]]) -> str:
    return "".join(data["text"] for name, data in events if name == "delta")


def check_benign(events: list[tuple[str, Any]], prompt: str = BENIGN) -> None:
    assert [name for name, _ in events] == ["delta"] * (len(events) - 1) + ["verdict"]
    assert deltas(events) == fa.scripted_answer(prompt)
    verdict = events[-1][1]
    assert verdict["level"] == "safe" and verdict["action"] == "allow" and verdict["source"] == "response"


def check_halted(events: list[tuple[str, Any]], guard: Guard, prompt: str = HARMFUL) -> None:
    """A prefix of the answer, then an explicit blocked event, then the verdict; nothing harmful in a delta."""
    names = [name for name, _ in events]
    assert names[-2:] == ["blocked", "verdict"] and set(names[:-2]) == {"delta"}
    released = deltas(events)
    assert released.strip() and fa.scripted_answer(prompt).startswith(released)
    for name, data in events:
        if name == "delta":
            assert_nothing_harmful(data["text"])
            assert guard.policy.on_block.message not in data["text"]
    assert events[-2][1] == {"message": guard.policy.on_block.message}
    verdict = events[-1][1]
    assert verdict["level"] == "unsafe" and verdict["action"] == "block" and verdict["source"] == "response"
    assert len(released) <= verdict["char_offset"]


def test_scripts_match_the_stdlib_server() -> None:
    sse = load_example("sse_server")
    assert fa.SCRIPTS == sse.SCRIPTS and fa.DEFAULT_ANSWER == sse.DEFAULT_ANSWER


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_benign_answer_streams_whole(guard: Guard, method: str) -> None:
    async with client(fa.create_app(guard, functools.partial(fa.fake_llm, delay=0))) as c:
        check_benign(await chat(c, BENIGN, method))
    assert guard.model.live_sessions == 0


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_harmful_answer_is_halted_with_a_blocked_event(guard: Guard, method: str) -> None:
    async with client(fa.create_app(guard, functools.partial(fa.fake_llm, delay=0))) as c:
        check_halted(await chat(c, HARMFUL, method), guard)
    assert guard.model.live_sessions == 0


async def test_with_the_shipped_model() -> None:
    """The default model (what the example runs with): the recipe passes whole, the heist answer is halted mid-stream."""
    with Guard(Path(__file__).resolve().parents[1] / "models" / "guardkit-mini") as guard:
        async with client(fa.create_app(guard, functools.partial(fa.fake_llm, delay=0))) as c:
            check_benign(await chat(c, BENIGN))
            check_halted(await chat(c, HARMFUL), guard)
        assert guard.model.live_sessions == 0


async def test_harmful_prompt_is_declined_before_the_llm_runs(guard: Guard) -> None:
    read = []

    async def llm(prompt: str) -> AsyncIterator[str]:
        read.append(prompt)
        yield "never shown"

    async with client(fa.create_app(guard, llm)) as c:
        events = await chat(c, HARMFUL_PROMPT)
    assert [name for name, _ in events] == ["blocked", "verdict"]
    assert events[0][1] == {"message": guard.policy.prompt.message}
    assert events[1][1]["source"] == "prompt" and events[1][1]["action"] == "block"
    assert read == []


async def test_bad_requests(guard: Guard) -> None:
    async with client(fa.create_app(guard)) as c:
        assert (await c.post("/chat", json={"no_prompt": 1})).status_code == 422
        assert (await c.post("/chat", json={"prompt": ""})).status_code == 422
        assert (await c.post("/chat", content=b"not json", headers={"content-type": "application/json"})).status_code == 422
        assert (await c.get("/chat")).status_code == 422
        assert (await c.delete("/chat")).status_code == 405


async def test_llm_failure_ends_with_an_error_event(guard: Guard) -> None:
    async def failing_llm(prompt: str) -> AsyncIterator[str]:
        yield "hello"
        yield " world"
        raise RuntimeError("upstream went away")

    async with client(fa.create_app(guard, failing_llm)) as c:
        events = await chat(c, "hi")
    assert events[-1] == ("error", {"error": "RuntimeError: upstream went away"})
    assert "hello world".startswith(deltas(events))
    assert guard.model.live_sessions == 0


async def test_concurrent_requests_each_get_their_own_stream(guard: Guard) -> None:
    prompts = [BENIGN, HARMFUL, "hello there", HARMFUL, BENIGN, "Tell me about vault robbery", BENIGN, "hi"]
    barrier = asyncio.Barrier(len(prompts))  # every stream's LLM must be live before any yields a word

    async def llm(prompt: str) -> AsyncIterator[str]:
        await barrier.wait()
        async for word in fa.fake_llm(prompt, delay=0):
            yield word

    async with client(fa.create_app(guard, llm)) as c:
        requests = [chat(c, prompt, method) for prompt, method in zip(prompts, ["POST", "GET"] * 4)]
        requests.append(chat(c, HARMFUL_PROMPT))  # declined at the prompt: its LLM is never read
        results = await asyncio.wait_for(asyncio.gather(*requests), HANG_GUARD_S)
    for prompt, events in zip(prompts, results):
        if "bomb" in fa.scripted_answer(prompt):
            check_halted(events, guard, prompt)
        else:
            check_benign(events, prompt)
    assert results[-1][-1][1]["source"] == "prompt"
    assert guard.model.live_sessions == 0


class SlowLLM:
    """Yields the first words of the bread recipe, then waits forever; records being closed."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()

    async def __call__(self, prompt: str) -> AsyncIterator[str]:
        try:
            for i, word in enumerate(fa.scripted_answer(BENIGN).split(" ")[:10]):
                await asyncio.sleep(0)
                yield word if i == 0 else " " + word
            await asyncio.Event().wait()  # the LLM is still thinking when the client leaves
            yield " never reached"
        finally:
            self.closed.set()


@pytest.mark.parametrize("stuck_in", ["llm", "send"], ids=["waiting-for-the-llm", "sending-to-a-slow-client"])
async def test_client_disconnect_closes_the_llm_and_frees_the_session(tiny_bundle: Path, stuck_in: str) -> None:
    """The client leaves after the first delta; with max_sessions=1 the next request still gets served."""
    with Guard(tiny_bundle, max_sessions=1) as guard:
        llm = SlowLLM()
        app = fa.create_app(guard, llm)
        first_delta = asyncio.Event()
        sent: list[bytes] = []
        live_while_streaming = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message.get("body", b""))
            if b"event: delta" in message.get("body", b""):
                first_delta.set()
                if stuck_in == "send":
                    await asyncio.Event().wait()  # a client that stopped reading

        received = 0

        async def receive() -> dict[str, Any]:
            nonlocal received
            received += 1
            if received == 1:
                return {"type": "http.request", "body": b'{"prompt": "How do I bake bread?"}', "more_body": False}
            await first_delta.wait()
            live_while_streaming.append(guard.model.live_sessions)
            return {"type": "http.disconnect"}

        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": "/chat", "raw_path": b"/chat", "root_path": "",
            "query_string": b"", "headers": [(b"content-type", b"application/json"), (b"host", b"testserver")],
            "client": ("127.0.0.1", 1234), "server": ("testserver", 80),
        }
        await asyncio.wait_for(app(scope, receive, send), HANG_GUARD_S)

        assert live_while_streaming == [1]
        assert llm.closed.is_set()  # the upstream was closed by the time the app returned
        assert guard.model.live_sessions == 0
        body = b"".join(sent).decode()
        assert "event: delta" in body and "event: verdict" not in body

        async with client(fa.create_app(guard, functools.partial(fa.fake_llm, delay=0))) as c:
            check_benign(await chat(c, BENIGN))  # the slot came back: no SessionLimitError
        assert guard.model.live_sessions == 0


async def test_client_disconnect_through_uvicorn(tiny_bundle: Path) -> None:
    """A real HTTP client that closes its connection mid-stream, against the app served by uvicorn."""
    uvicorn = pytest.importorskip("uvicorn")
    with Guard(tiny_bundle, max_sessions=1) as guard:
        llm = SlowLLM()
        server = uvicorn.Server(uvicorn.Config(fa.create_app(guard, llm), host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
        server.capture_signals = lambda: _no_signals()  # leave pytest's signal handlers alone
        serving = asyncio.create_task(server.serve())
        try:
            while not server.started:
                assert not serving.done(), serving.result()
                await asyncio.sleep(0.01)
            port = server.servers[0].sockets[0].getsockname()[1]
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=HANG_GUARD_S) as c:
                async with c.stream("GET", "/chat", params={"prompt": BENIGN}) as response:
                    assert response.headers["content-type"].startswith("text/event-stream")
                    async for line in response.aiter_lines():
                        if line == "event: delta":
                            break
                    assert guard.model.live_sessions == 1
                # the connection is closed here, mid-stream
                await asyncio.wait_for(llm.closed.wait(), HANG_GUARD_S)
                while guard.model.live_sessions:  # the session is freed right after the LLM is closed
                    await asyncio.sleep(0.01)

                fa_app = server.config.app
                fa_app.state.llm = functools.partial(fa.fake_llm, delay=0)
                response = await c.post("/chat", json={"prompt": BENIGN})
                check_benign(parse_sse(response.text))
        finally:
            server.should_exit = True
            await asyncio.wait_for(serving, HANG_GUARD_S)
        assert guard.model.live_sessions == 0


def _no_signals() -> Any:
    import contextlib

    return contextlib.nullcontext()


async def test_module_app_makes_its_guard_at_startup(tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`uvicorn examples.fastapi_sse:app`: the guard comes from GUARDKIT_MODEL / GUARDKIT_POLICY in the lifespan."""
    monkeypatch.setenv("GUARDKIT_MODEL", str(tiny_bundle))
    monkeypatch.setenv("GUARDKIT_POLICY", "strict")
    module = load_example("fastapi_sse")
    assert module.app.state.guard is None  # importing loads no model
    module.app.state.llm = functools.partial(module.fake_llm, delay=0)
    async with module.app.router.lifespan_context(module.app):
        assert module.app.state.guard.policy.name == "strict"
        async with client(module.app) as c:
            check_benign(await chat(c, BENIGN))


def test_cli_flags(tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uvicorn = pytest.importorskip("uvicorn")
    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append((app, kwargs)))
    fa.main(["--model", str(tiny_bundle), "--policy", "strict", "--port", "8123"])
    (app, kwargs), = calls
    assert kwargs == {"host": "127.0.0.1", "port": 8123}
    assert app.state.guard.policy.name == "strict"
    assert app.state.guard.model.manifest.name == "guardkit-tiny-test"
