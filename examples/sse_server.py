"""An async web endpoint that streams a guarded LLM response as server-sent events.

Standard library only (``asyncio.start_server`` and a minimal HTTP/1.1 parser),
so the pattern is easy to carry into any framework: per request, wrap the
LLM's async stream in ``guard.astream(...)`` and forward what it releases.
Judging runs on the event loop and each model step is awaited off it, so one
event loop serves many concurrent streams, each with its own guard session,
sharing one loaded model. With ``--batching`` their steps share ONNX Runtime
calls (no thread per stream either way).

Endpoints:

* ``GET /chat?prompt=...`` or ``POST /chat`` with JSON ``{"prompt": "..."}``
  stream ``text/event-stream``:

  - one ``data: {"text": "..."}`` event per released piece of the answer;
  - if the guard blocks: ``event: blocked`` with ``{"message": "..."}`` (the
    policy's message to show instead of the rest);
  - always last: ``event: verdict`` with the verdict as JSON
    (:meth:`guardkit.Verdict.to_dict`); then the connection closes. (If the
    LLM stream or the guard fails instead: ``event: error`` with ``{"error": ...}``.)

  The optional ``response`` field (query parameter or JSON) scripts the fake
  LLM's answer, for demos and tests.
* ``GET /`` a small page that shows the stream in a browser (``EventSource``).

The "LLM" is a scripted async generator (``fake_llm``): swap in your client's
async stream, e.g. the text of ``AsyncOpenAI`` chunks, or guard the chunks
themselves with ``guardkit.aguard_openai_stream``.

Run it, then try it with curl (``-N`` shows events as they arrive)::

    python examples/sse_server.py --port 8000 [--model BUNDLE] [--policy NAME|FILE] [--batching]
    curl -N 'http://127.0.0.1:8000/chat?prompt=How+do+I+bake+bread%3F'
    curl -N http://127.0.0.1:8000/chat -d '{"prompt": "Write a story about a heist."}'

From code (e.g. a test): ``server, port = await serve(guard, port=0)``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from typing import Any, AsyncIterator
from urllib.parse import parse_qs, urlsplit

from guardkit import Guard, GuardkitError, StreamBlocked

MAX_HEADER_LINES = 100
MAX_BODY_BYTES = 64 * 1024
READ_TIMEOUT_S = 10.0

#: (keywords in the prompt, the fake LLM's scripted answer); the first match wins.
SCRIPTS: list[tuple[tuple[str, ...], str]] = [
    (
        ("bread", "bake", "recipe"),
        "Sure, here is a simple recipe: first mix the flour, water, salt and a little sugar, "
        "then let the dough rest and bake it for thirty minutes.",
    ),
    (
        ("heist", "vault", "robbery"),
        "Sure, here is a short story about a heist for you. The crew met at midnight in an empty warehouse "
        "to plan the job. Then here is how to build a bomb detonator: first wire the explosive to the timer, "
        "then hide it in the vault.",
    ),
]
DEFAULT_ANSWER = "Hello! I am a scripted stand-in for an LLM. Ask me how to bake bread, or for a heist story."


def scripted_answer(prompt: str) -> str:
    lowered = prompt.lower()
    for keywords, answer in SCRIPTS:
        if any(word in lowered for word in keywords):
            return answer
    return DEFAULT_ANSWER


async def fake_llm(answer: str, delay: float) -> AsyncIterator[str]:
    """A stand-in for an async LLM stream: yields the answer word by word."""
    for i, word in enumerate(answer.split(" ")):
        await asyncio.sleep(delay)  # also yields to the event loop, as network reads do
        yield word if i == 0 else " " + word


# -- HTTP ------------------------------------------------------------------


class HTTPError(Exception):
    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.reason, self.detail = status, reason, detail


class Request:
    def __init__(self, method: str, target: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        url = urlsplit(target)
        self.path = url.path
        self.query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        self.headers = headers
        self.body = body


async def read_line(reader: asyncio.StreamReader) -> str:
    try:
        line = await reader.readline()
    except ValueError:  # longer than the reader's limit (64 KiB)
        raise HTTPError(431, "Request Header Fields Too Large", "request line or header too long") from None
    return line.decode("latin-1").rstrip("\r\n")


async def read_request(reader: asyncio.StreamReader) -> Request:
    """Parse one HTTP/1.1 request: request line, headers, and a Content-Length body."""
    request_line = await read_line(reader)
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise HTTPError(400, "Bad Request", "malformed request line")
    method, target, _ = parts
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADER_LINES):
        line = await read_line(reader)
        if not line:
            break
        name, sep, value = line.partition(":")
        if not sep:
            raise HTTPError(400, "Bad Request", "malformed header line")
        headers[name.strip().lower()] = value.strip()
    else:
        raise HTTPError(431, "Request Header Fields Too Large", "too many header lines")
    body = b""
    if "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise HTTPError(400, "Bad Request", "bad Content-Length") from None
        if length < 0 or length > MAX_BODY_BYTES:
            raise HTTPError(413, "Content Too Large", f"body must be at most {MAX_BODY_BYTES} bytes")
        body = await reader.readexactly(length)
    elif headers.get("transfer-encoding"):
        raise HTTPError(411, "Length Required", "send the body with a Content-Length")
    return Request(method, target, headers, body)


async def send_response(writer: asyncio.StreamWriter, status: int, reason: str, content_type: str, body: bytes) -> None:
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        "Access-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n"
    )
    writer.write(head.encode("latin-1") + body)
    await writer.drain()


async def send_event(writer: asyncio.StreamWriter, data: dict[str, Any], event: str | None = None) -> None:
    """Write one server-sent event (JSON data on a single line) and flush it."""
    frame = (f"event: {event}\n" if event else "") + f"data: {json.dumps(data)}\n\n"
    writer.write(frame.encode("utf-8"))
    await writer.drain()


def chat_params(request: Request) -> tuple[str, str | None]:
    """The prompt (and optional scripted response) from a GET query or a POST JSON body."""
    if request.method == "GET":
        params: Any = request.query
    elif request.method == "POST":
        try:
            params = json.loads(request.body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise HTTPError(400, "Bad Request", "body must be JSON like {\"prompt\": \"...\"}") from None
        if not isinstance(params, dict):
            raise HTTPError(400, "Bad Request", "body must be a JSON object")
    else:
        raise HTTPError(405, "Method Not Allowed", "use GET or POST")
    prompt, response = params.get("prompt"), params.get("response")
    if not isinstance(prompt, str) or not prompt.strip():
        raise HTTPError(400, "Bad Request", "a non-empty 'prompt' string is required")
    if response is not None and not isinstance(response, str):
        raise HTTPError(400, "Bad Request", "'response' must be a string")
    return prompt, response


# -- the guarded endpoint --------------------------------------------------


async def stream_chat(writer: asyncio.StreamWriter, guard: Guard, prompt: str, answer: str, delay: float) -> None:
    """Stream one guarded answer as SSE: released text, then blocked (maybe), then the verdict."""
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-cache\r\n"
        b"Access-Control-Allow-Origin: *\r\nX-Accel-Buffering: no\r\nConnection: close\r\n\r\n"
    )
    await writer.drain()
    # on_block="raise" lets us tell released text from the policy's message.
    # `async with` closes the guard session and the LLM stream even if the
    # client goes away mid-stream (send_event then raises ConnectionError).
    async with guard.astream(fake_llm(answer, delay), prompt=prompt, on_block="raise") as stream:
        try:
            async for text in stream:
                await send_event(writer, {"text": text})
        except StreamBlocked as blocked:
            policy = guard.policy
            message = policy.prompt.message if blocked.verdict.source == "prompt" else policy.on_block.message
            await send_event(writer, {"message": message}, event="blocked")
        except ConnectionError:
            raise
        except Exception as exc:  # the LLM stream failed (its error comes after the released text), or the guard did
            print(f"stream failed: {exc!r}", file=sys.stderr)
            await send_event(writer, {"error": f"{type(exc).__name__}: {exc}"}, event="error")
            return
        await send_event(writer, stream.verdict.to_dict(), event="verdict")


INDEX_HTML = """<!doctype html>
<meta charset="utf-8"><title>guardkit SSE demo</title>
<form id="f"><input id="p" size="60" value="How do I bake bread?"> <button>Ask</button></form>
<p id="out" style="white-space: pre-wrap"></p><pre id="verdict"></pre>
<script>
document.getElementById("f").onsubmit = (e) => {
  e.preventDefault();
  const out = document.getElementById("out"), verdict = document.getElementById("verdict");
  out.textContent = ""; verdict.textContent = "";
  const es = new EventSource("/chat?prompt=" + encodeURIComponent(document.getElementById("p").value));
  es.onmessage = (m) => { out.textContent += JSON.parse(m.data).text; };
  es.addEventListener("blocked", (m) => { out.textContent += " " + JSON.parse(m.data).message; });
  es.addEventListener("verdict", (m) => { verdict.textContent = JSON.stringify(JSON.parse(m.data), null, 2); es.close(); });
};
</script>
"""


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, guard: Guard, delay: float) -> None:
    """One connection, one request (``Connection: close``)."""
    try:
        try:
            request = await asyncio.wait_for(read_request(reader), READ_TIMEOUT_S)
            if request.path == "/chat":
                prompt, response = chat_params(request)
                answer = response if response is not None else scripted_answer(prompt)
                await stream_chat(writer, guard, prompt, answer, delay)
            elif request.path == "/" and request.method == "GET":
                await send_response(writer, 200, "OK", "text/html; charset=utf-8", INDEX_HTML.encode("utf-8"))
            else:
                raise HTTPError(404, "Not Found", "try GET /chat?prompt=... or POST /chat")
        except HTTPError as error:
            body = json.dumps({"error": error.detail}).encode("utf-8")
            await send_response(writer, error.status, error.reason, "application/json", body)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, UnicodeDecodeError):
            pass  # a client that sent nothing usable: just hang up
    except ConnectionError:
        pass  # the client went away; the guarded stream was closed on the way out
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def serve(guard: Guard, host: str = "127.0.0.1", port: int = 0, *, delay: float = 0.03) -> tuple[asyncio.Server, int]:
    """Start the server (``port=0`` picks a free port) and return it with its bound port.

    Stop it with ``server.close(); await server.wait_closed()``.
    """
    server = await asyncio.start_server(lambda r, w: handle(r, w, guard, delay), host, port)
    bound_port = server.sockets[0].getsockname()[1]
    return server, bound_port


async def amain(guard: Guard, args: argparse.Namespace) -> None:
    server, port = await serve(guard, args.host, args.port, delay=args.delay)
    print(f"guard: {guard!r}", flush=True)
    print(f"listening on http://{args.host}:{port}/  (Ctrl-C to stop)", flush=True)
    stop = asyncio.Event()
    if sys.platform != "win32":
        # explicit handlers: a server started from a background job inherits SIGINT as ignored
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        # Ctrl-C cancels serve_forever; don't let a lingering client connection hold the exit
        server.close()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(server.wait_closed(), timeout=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind; 0 picks a free one (default: %(default)s)")
    parser.add_argument("--model", default=None, help="model bundle directory (default: the shipped guardkit-mini)")
    parser.add_argument("--policy", default="default", help="built-in policy name or YAML file (default: %(default)s)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or tensorrt (default: %(default)s)")
    parser.add_argument("--delay", type=float, default=0.03, help="seconds between the fake LLM's words (default: %(default)s)")
    parser.add_argument("--batching", action="store_true", help="run concurrent streams' steps in shared model calls")
    args = parser.parse_args(argv)
    try:
        guard = Guard(model=args.model, policy=args.policy, device=args.device, batching=args.batching)
    except GuardkitError as exc:  # no such model or policy, a bad policy file, a missing runtime ...
        parser.exit(1, f"{parser.prog}: cannot set up the guard: {exc}\n")
    with guard, contextlib.suppress(KeyboardInterrupt):
        asyncio.run(amain(guard, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
