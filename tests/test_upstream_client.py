"""OneMinClient against a scripted 1min.ai on a real loopback socket: calls, error shapes, retry rules.

`Upstream` answers each request with the next scripted `Reply` (the last one repeats) and records what
it received, so a test can say both what the caller got and how many times 1min.ai was called.
Waits between retries go through `RetryPolicy.sleep`, recorded instead of spent.
"""

from __future__ import annotations

import asyncio
import email.utils
import io
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from onemin_relay import USER_AGENT
from onemin_relay.config import Settings
from onemin_relay.edge import EdgeMiddleware
from onemin_relay.serving import BackgroundServer
from onemin_relay.upstream.client import Asset, OneMinClient, RetryPolicy, StreamEvent
from onemin_relay.upstream.errors import UpstreamError
from tests.harness import upstream_settings

KEY = "sk-test-upstream-key-0001"
RECORD = {
    "uuid": "120a0000-0000-4000-8000-000000000001",
    "status": "SUCCESS",
    "model": "gpt-4o-mini",
    "aiRecordDetail": {"promptObject": {"prompt": "hi"}, "resultObject": ["Hello!"]},
}
CHAT = {"type": "UNIFY_CHAT_WITH_AI", "model": "gpt-4o-mini", "promptObject": {"prompt": "hi"}}


@dataclass
class Reply:
    status: int = 200
    body: Any = b""  # bytes, str, or a JSON-able object
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # before the response starts
    chunks: list[bytes] | None = None  # streamed body parts, sent in order
    stall: float = 0.0  # pause after the chunks, before the rest of the body
    then_drop: bool = False  # after the chunks, break the connection instead of ending the body
    endless: bool = False  # after the chunks, keep sending until the client goes away


@dataclass
class Received:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    peer: tuple[str, int]  # the client's address: the same one again means a reused connection


class Upstream:
    """A scriptable stand-in for 1min.ai (raw ASGI, so nothing hides what goes over the wire)."""

    def __init__(self) -> None:
        self.replies: list[Reply] = [Reply()]
        self.received: list[Received] = []
        self.client_left = threading.Event()

    def script(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.received = []
        self.client_left.clear()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.received.append(
            Received(
                scope["method"],
                scope["path"],
                scope["query_string"].decode(),
                {k.decode().lower(): v.decode() for k, v in scope["headers"]},
                body,
                tuple(scope["client"]),
            )
        )
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        await asyncio.sleep(reply.delay)
        payload = reply.body
        if not isinstance(payload, bytes | str):
            payload = json.dumps(payload)
            reply.headers.setdefault("content-type", "application/json")
        data = payload.encode() if isinstance(payload, str) else payload
        headers = [(k.lower().encode(), v.encode()) for k, v in reply.headers.items()]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        for chunk in reply.chunks or []:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await asyncio.sleep(0.01)
        await asyncio.sleep(reply.stall)
        if reply.then_drop:
            raise RuntimeError("scripted connection drop")
        if reply.endless:
            await self._until_client_leaves(receive, send)
            return
        await send({"type": "http.response.body", "body": data})

    async def _until_client_leaves(self, receive: Receive, send: Send) -> None:
        async def watch() -> None:
            message: Message = await receive()
            while message["type"] != "http.disconnect":
                message = await receive()
            self.client_left.set()

        watcher = asyncio.create_task(watch())
        deadline = time.monotonic() + 10
        while not self.client_left.is_set() and time.monotonic() < deadline:
            await send({"type": "http.response.body", "body": b": still here\n\n", "more_body": True})
            await asyncio.sleep(0.02)
        watcher.cancel()


@pytest.fixture(scope="module")
def upstream_server() -> Iterator[tuple[Upstream, str]]:
    app = Upstream()
    with BackgroundServer(app) as server:
        yield app, server.url


@pytest.fixture
def upstream(upstream_server: tuple[Upstream, str]) -> Upstream:
    app, _ = upstream_server
    app.script(Reply())
    return app


class Waits:
    """Stands in for asyncio.sleep in RetryPolicy: records each wait instead of spending it."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest.fixture
async def make_client(upstream_server: tuple[Upstream, str], waits: Waits) -> AsyncIterator[Any]:
    made: list[OneMinClient] = []

    def make(url: str | None = None, max_retries: int = 2, **overrides: Any) -> OneMinClient:
        policy = RetryPolicy(max_retries=max_retries, poll_interval=0.01, sleep=waits)
        client = OneMinClient(upstream_settings(url or upstream_server[1], **overrides), retry=policy)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


@pytest.fixture
def client(make_client: Any) -> OneMinClient:
    result: OneMinClient = make_client()
    return result


async def failure(call: Any) -> UpstreamError:
    with pytest.raises(UpstreamError) as caught:
        await call
    return caught.value


# --- chat -------------------------------------------------------------------------------------------


async def test_chat_posts_the_payload_with_key_and_user_agent(
    client: OneMinClient, upstream: Upstream
) -> None:
    upstream.script(Reply(body={"aiRecord": RECORD}))
    assert await client.chat(KEY, CHAT) == RECORD
    [sent] = upstream.received
    assert (sent.method, sent.path) == ("POST", "/api/chat-with-ai")
    assert sent.headers["api-key"] == KEY
    assert sent.headers["user-agent"] == USER_AGENT
    assert "authorization" not in sent.headers
    assert json.loads(sent.body) == CHAT


@pytest.mark.parametrize("status", ["FAILED", "FAILURE"])
async def test_chat_with_a_failed_record_raises(
    client: OneMinClient, upstream: Upstream, status: str
) -> None:
    upstream.script(Reply(body={"aiRecord": {**RECORD, "status": status}}))
    error = await failure(client.chat(KEY, CHAT))
    assert (error.status, error.code) == (200, "FAILED")


@pytest.mark.parametrize("result", [[], None])
async def test_chat_without_answer_text_raises(client: OneMinClient, upstream: Upstream, result: Any) -> None:
    record = {**RECORD, "aiRecordDetail": {"resultObject": result}}
    upstream.script(Reply(body={"aiRecord": record}))
    assert (await failure(client.chat(KEY, CHAT))).code == "INVALID_RESPONSE"


async def test_chat_with_a_null_record_or_a_non_json_body_raises(
    client: OneMinClient, upstream: Upstream
) -> None:
    upstream.script(
        Reply(body={"aiRecord": None}), Reply(body="not json", headers={"content-type": "text/plain"})
    )
    assert (await failure(client.chat(KEY, CHAT))).code == "INVALID_RESPONSE"
    assert (await failure(client.chat(KEY, CHAT))).code == "INVALID_RESPONSE"


# --- error shapes -------------------------------------------------------------------------------------


async def test_shape_a_error_keeps_code_message_details(client: OneMinClient, upstream: Upstream) -> None:
    details = [{"field": "prompt", "message": "prompt must be a string"}]
    body = {
        "success": False,
        "error": {
            "code": "PROMPT_OBJECT_VALIDATION_FAILED",
            "message": "Invalid prompt object",
            "details": details,
        },
    }
    upstream.script(Reply(422, body))
    error = await failure(client.chat(KEY, CHAT))
    assert (error.status, error.code, error.message, error.details) == (
        422,
        "PROMPT_OBJECT_VALIDATION_FAILED",
        "Invalid prompt object",
        details,
    )


async def test_shape_b_error_keeps_code_message_details(client: OneMinClient, upstream: Upstream) -> None:
    body = {"errorCode": "UNSUPPORTED_MODEL", "message": "Model x is not supported", "details": "why"}
    upstream.script(Reply(400, body))
    error = await failure(client.feature(KEY, {"type": "IMAGE_GENERATOR", "model": "x"}))
    assert (error.status, error.code, error.message, error.details) == (
        400,
        "UNSUPPORTED_MODEL",
        "Model x is not supported",
        "why",
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"statusCode": 400, "message": ["model must be a string"], "error": "Bad Request"},
            "model must be a string",
        ),
        ({"statusCode": 404, "message": "Cannot POST /api/x", "error": "Not Found"}, "Cannot POST /api/x"),
        ({"error": "Too many tokens"}, "Too many tokens"),
    ],
)
async def test_loose_error_bodies_keep_their_most_specific_message(
    client: OneMinClient, upstream: Upstream, body: dict[str, Any], message: str
) -> None:
    upstream.script(Reply(400, body))
    error = await failure(client.chat(KEY, CHAT))
    assert (error.status, error.code, error.message) == (400, "HTTP_ERROR", message)


@pytest.mark.parametrize("status", [403, 522])
async def test_cloudflare_html_is_summarised_not_dumped(
    client: OneMinClient, upstream: Upstream, status: int
) -> None:
    page = "<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head>" + "x" * 5000
    upstream.script(Reply(status, page, {"content-type": "text/html"}))
    error = await failure(client.chat(KEY, CHAT))
    assert (error.status, error.code) == (status, "HTTP_ERROR")
    assert "<" not in error.message
    assert len(error.message) < 200


async def test_an_echoed_key_never_reaches_the_error(client: OneMinClient, upstream: Upstream) -> None:
    upstream.script(
        Reply(401, {"success": False, "error": {"code": "UNAUTHORIZED", "message": f"bad key {KEY}"}})
    )
    error = await failure(client.chat(KEY, CHAT))
    assert error.code == "UNAUTHORIZED"
    assert KEY not in str(error)
    assert KEY not in error.message


@pytest.mark.parametrize("cut", [0, 3, 9, 14])
async def test_a_key_echoed_at_the_cut_leaves_no_prefix_in_the_error(
    client: OneMinClient, upstream: Upstream, cut: int
) -> None:
    """An echoed key near the 500-character cut (or a quoted prefix of it) is masked before the cut."""
    for before in (480, 492, 497):
        message = "x" * before + f" key={KEY[: len(KEY) - cut]} rest"
        upstream.script(Reply(401, {"success": False, "error": {"code": "UNAUTHORIZED", "message": message}}))
        error = await failure(client.chat(KEY, CHAT))
        assert KEY[:8] not in error.message
        upstream.script(Reply(502, f"upstream said {message}", {"content-type": "text/plain"}))
        assert KEY[:8] not in (await failure(client.chat(KEY, CHAT))).message


async def test_a_key_prefix_in_a_streamed_error_is_masked(client: OneMinClient, upstream: Upstream) -> None:
    chunks = [_sse("error", {"error": "y" * 490 + f" {KEY[:12]}"})]
    upstream.script(Reply(headers=SSE_HEADERS, chunks=chunks))
    got: list[StreamEvent] = []
    await read_stream(client, got)
    assert KEY[:8] not in got[0].text


async def test_an_unsendable_key_is_refused_without_echo(client: OneMinClient, upstream: Upstream) -> None:
    bad_key = "sk-abc\r\nX-Injected: 1"
    error = await failure(client.chat(bad_key, CHAT))
    assert error.code == "INVALID_API_KEY"
    assert "sk-abc" not in str(error)
    assert upstream.received == []


async def test_a_body_that_cannot_be_decoded_is_an_upstream_error(
    client: OneMinClient, upstream: Upstream
) -> None:
    garbled = {"content-type": "application/json", "content-encoding": "gzip"}
    upstream.script(Reply(body=b"not gzip at all", headers=garbled))
    error = await failure(client.chat(KEY, CHAT))
    assert (error.code, len(upstream.received)) == ("INVALID_RESPONSE", 1)
    upstream.script(
        Reply(503, b"not gzip either", {"content-type": "text/plain", "content-encoding": "gzip"})
    )
    assert (await failure(client.chat(KEY, CHAT))).status == 503  # the status survives a garbled body
    upstream.script(Reply(headers={**SSE_HEADERS, "content-encoding": "gzip"}, chunks=[b"not gzip"]))
    with pytest.raises(UpstreamError):
        await read_stream(client, [])


async def test_endless_redirects_are_an_upstream_error(
    client: OneMinClient, upstream: Upstream, upstream_server: tuple[Upstream, str]
) -> None:
    upstream.script(Reply(302, headers={"location": f"{upstream_server[1]}/cdn/again.png"}))
    assert (await failure(client.download("images/a.png", max_bytes=10))).code == "INVALID_RESPONSE"


# --- retry rules ------------------------------------------------------------------------------------


def _rate_limited(retry_after: str | None = None) -> Reply:
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    return Reply(
        429, {"success": False, "error": {"code": "RATE_LIMITED", "message": "Too many requests"}}, headers
    )


async def test_429_is_retried_after_the_seconds_upstream_asked(
    client: OneMinClient, upstream: Upstream, waits: Waits
) -> None:
    upstream.script(_rate_limited("2"), Reply(body={"aiRecord": RECORD}))
    assert await client.chat(KEY, CHAT) == RECORD
    assert len(upstream.received) == 2
    assert waits.seconds == [2.0]


async def test_429_retry_after_as_http_date_is_honoured(
    client: OneMinClient, upstream: Upstream, waits: Waits
) -> None:
    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    upstream.script(_rate_limited(when), Reply(body={"aiRecord": RECORD}))
    assert await client.chat(KEY, CHAT) == RECORD
    [waited] = waits.seconds
    assert 10 < waited <= 20


async def test_429_asking_for_too_long_a_wait_is_returned_not_waited(
    client: OneMinClient, upstream: Upstream, waits: Waits
) -> None:
    upstream.script(_rate_limited("120"))
    error = await failure(client.chat(KEY, CHAT))
    assert (error.status, error.code, error.retry_after) == (429, "RATE_LIMITED", 120.0)
    assert error.headers == {"Retry-After": "120"}
    assert len(upstream.received) == 1
    assert waits.seconds == []


async def test_429_retries_stop_after_the_configured_number(
    make_client: Any, upstream: Upstream, waits: Waits
) -> None:
    upstream.script(_rate_limited())
    error = await failure(make_client(max_retries=3).chat(KEY, CHAT))
    assert error.status == 429
    assert len(upstream.received) == 4
    assert len(waits.seconds) == 3
    assert all(0 <= wait <= 8 for wait in waits.seconds)


async def test_no_retries_when_configured_to_zero(make_client: Any, upstream: Upstream) -> None:
    upstream.script(_rate_limited("1"))
    await failure(make_client(max_retries=0).chat(KEY, CHAT))
    assert len(upstream.received) == 1


async def test_5xx_on_a_billed_call_is_not_retried(client: OneMinClient, upstream: Upstream) -> None:
    upstream.script(
        Reply(502, "Bad Gateway", {"content-type": "text/plain"}), Reply(body={"aiRecord": RECORD})
    )
    error = await failure(client.chat(KEY, CHAT))
    assert (error.status, error.code, error.message) == (
        502,
        "HTTP_ERROR",
        "1min.ai answered HTTP 502: Bad Gateway",
    )
    assert len(upstream.received) == 1
    upstream.script(Reply(503))
    assert (await failure(client.feature(KEY, {"type": "IMAGE_GENERATOR"}))).status == 503
    assert len(upstream.received) == 1


async def test_5xx_on_unbilled_calls_is_retried(client: OneMinClient, upstream: Upstream) -> None:
    upstream.script(Reply(503), Reply(body={"models": [{"modelId": "gpt-4o-mini"}], "total": 1}))
    assert await client.models("UNIFY_CHAT_WITH_AI") == [{"modelId": "gpt-4o-mini"}]
    assert len(upstream.received) == 2
    upstream.script(Reply(500), Reply(body={"aiRecord": RECORD}))
    assert await client.get_result(KEY, str(RECORD["uuid"])) == RECORD
    assert len(upstream.received) == 2


async def test_a_retried_upload_sends_the_whole_file_again(client: OneMinClient, upstream: Upstream) -> None:
    stored = {
        "asset": {"key": "images/2026_photo.png", "size": 6, "mimetype": "image/png"},
        "fileContent": {"uuid": "26f30dfd", "path": "images/2026_photo.png", "name": "2026_photo.png"},
    }
    upstream.script(Reply(502), Reply(body=stored))
    file = io.BytesIO(b"prefix" + b"\x89PNG\x00\xff")
    file.seek(6)  # upload from where the caller's file position is
    asset = await client.upload_asset(KEY, "photo.png", file, "image/png")
    assert asset == Asset("images/2026_photo.png", "26f30dfd", "2026_photo.png", 6, "image/png")
    assert len(upstream.received) == 2
    assert upstream.received[0].body == upstream.received[1].body
    assert b"\x89PNG\x00\xff\r\n--" in upstream.received[1].body


async def test_read_timeout_on_a_billed_call_is_not_retried(make_client: Any, upstream: Upstream) -> None:
    upstream.script(Reply(body={"aiRecord": RECORD}, delay=1.0))
    error = await failure(make_client(upstream_timeout=0.2).chat(KEY, CHAT))
    assert (error.status, error.code) == (0, "TIMEOUT")
    assert len(upstream.received) == 1


async def test_read_timeout_on_an_unbilled_call_is_retried(make_client: Any, upstream: Upstream) -> None:
    upstream.script(Reply(body={"models": []}, delay=1.0), Reply(body={"models": []}))
    assert await make_client(upstream_timeout=0.2).models("IMAGE_GENERATOR") == []
    assert len(upstream.received) == 2


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def test_connect_errors_are_retried_even_for_billed_calls(make_client: Any, waits: Waits) -> None:
    error = await failure(make_client(url=_closed_port_url()).chat(KEY, CHAT))
    assert (error.status, error.code) == (0, "CONNECT_ERROR")
    assert len(waits.seconds) == 2  # three attempts


# --- streaming ---------------------------------------------------------------------------------------

SSE_HEADERS = {"content-type": "text/event-stream"}


async def read_stream(client: OneMinClient, got: list[StreamEvent]) -> None:
    """Collect events into `got` (so a test still sees them when the stream then fails)."""
    async with client.chat_stream(KEY, CHAT) as events:
        async for event in events:
            got.append(event)


def _sse(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


async def test_stream_sends_the_streaming_request_and_yields_events(
    client: OneMinClient, upstream: Upstream
) -> None:
    chunks = [_sse("content", {"content": "Hel"}), _sse("content", {"content": "lo!"})]
    chunks += [_sse("result", {"aiRecord": RECORD}), _sse("done", {"message": "Stream completed"})]
    upstream.script(Reply(headers=SSE_HEADERS, chunks=chunks))
    async with client.chat_stream(KEY, CHAT) as events:
        got = [event async for event in events]
    assert got == [
        StreamEvent("content", "Hel"),
        StreamEvent("content", "lo!"),
        StreamEvent("result", record=RECORD),
        StreamEvent("done"),
    ]
    [sent] = upstream.received
    assert (sent.path, sent.query) == ("/api/chat-with-ai", "isStreaming=true")
    assert sent.headers["accept"] == "text/event-stream"
    assert sent.headers["api-key"] == KEY
    assert json.loads(sent.body) == CHAT


async def test_stream_error_event_text_is_short_and_never_the_key(
    client: OneMinClient, upstream: Upstream
) -> None:
    chunks = [_sse("error", {"error": f"provider rejected key {KEY}: " + "x" * 5000})]
    upstream.script(Reply(headers=SSE_HEADERS, chunks=chunks))
    got: list[StreamEvent] = []
    await read_stream(client, got)
    [event] = got
    assert event.kind == "error"
    assert event.text.startswith("provider rejected key ***: xxx")
    assert len(event.text) <= 500


async def read_until_done(client: OneMinClient) -> list[StreamEvent]:
    """The way the chat route reads: stop at the terminal event without asking for more."""
    got: list[StreamEvent] = []
    async with client.chat_stream(KEY, CHAT) as events:
        async for event in events:
            got.append(event)
            if event.kind in {"done", "error"}:
                break
    return got


@pytest.mark.parametrize("stop_at_done", [False, True])
async def test_a_finished_stream_leaves_its_connection_for_the_next_call(
    client: OneMinClient, upstream: Upstream, stop_at_done: bool
) -> None:
    upstream.script(Reply(headers=SSE_HEADERS, chunks=[_sse("content", {"content": "a"}), _sse("done", {})]))
    for _ in range(2):
        got: list[StreamEvent] = []
        if stop_at_done:
            got = await read_until_done(client)
        else:
            await read_stream(client, got)
        assert got == [StreamEvent("content", "a"), StreamEvent("done")]
    first, second = upstream.received
    assert first.peer == second.peer


async def test_stream_pre_stream_json_error_raises_on_entry(client: OneMinClient, upstream: Upstream) -> None:
    upstream.script(
        Reply(401, {"success": False, "error": {"code": "UNAUTHORIZED", "message": "Invalid key"}})
    )
    with pytest.raises(UpstreamError) as caught:
        async with client.chat_stream(KEY, CHAT):
            pytest.fail("the stream must not open")
    assert (caught.value.status, caught.value.code) == (401, "UNAUTHORIZED")


async def test_stream_429_before_any_bytes_is_retried(
    client: OneMinClient, upstream: Upstream, waits: Waits
) -> None:
    upstream.script(_rate_limited("1"), Reply(headers=SSE_HEADERS, chunks=[_sse("done", {})]))
    async with client.chat_stream(KEY, CHAT) as events:
        assert [event async for event in events] == [StreamEvent("done")]
    assert len(upstream.received) == 2
    assert waits.seconds == [1.0]


async def test_stream_5xx_is_not_retried(client: OneMinClient, upstream: Upstream) -> None:
    upstream.script(Reply(500), Reply(headers=SSE_HEADERS, chunks=[_sse("done", {})]))
    with pytest.raises(UpstreamError):
        async with client.chat_stream(KEY, CHAT):
            pytest.fail("the stream must not open")
    assert len(upstream.received) == 1


async def test_stream_dropped_mid_body_raises_interrupted_and_is_not_retried(
    client: OneMinClient, upstream: Upstream
) -> None:
    upstream.script(
        Reply(headers=SSE_HEADERS, chunks=[_sse("content", {"content": "Partial"})], then_drop=True)
    )
    got: list[StreamEvent] = []
    with pytest.raises(UpstreamError) as caught:
        await read_stream(client, got)
    assert got == [StreamEvent("content", "Partial")]
    assert (caught.value.status, caught.value.code) == (0, "STREAM_INTERRUPTED")
    assert len(upstream.received) == 1


async def test_stream_silent_for_too_long_times_out(make_client: Any, upstream: Upstream) -> None:
    stalled = Reply(headers=SSE_HEADERS, chunks=[_sse("content", {"content": "a"})], stall=2.0)
    upstream.script(stalled)
    got: list[StreamEvent] = []
    with pytest.raises(UpstreamError) as caught:
        await read_stream(make_client(upstream_timeout=0.3), got)
    assert got == [StreamEvent("content", "a")]
    assert (caught.value.status, caught.value.code) == (0, "TIMEOUT")
    assert len(upstream.received) == 1


async def test_leaving_the_stream_early_closes_the_upstream_connection(
    client: OneMinClient, upstream: Upstream
) -> None:
    upstream.script(Reply(headers=SSE_HEADERS, chunks=[_sse("content", {"content": "first"})], endless=True))
    async with client.chat_stream(KEY, CHAT) as events:
        async for event in events:
            assert event == StreamEvent("content", "first")
            break
    assert await asyncio.to_thread(upstream.client_left.wait, 10)


# --- features and results ----------------------------------------------------------------------------

IMAGE_RECORD = {
    "uuid": "6a2f0c1e-4b7d-4c2a-9e1f-0d3c5b7a9e11",
    "type": "IMAGE_GENERATOR",
    "status": "SUCCESS",
    "aiRecordDetail": {"resultObject": ["images/2026_08_17_06_31_44_448_201553.png"]},
}


async def test_feature_posts_and_returns_the_record(client: OneMinClient, upstream: Upstream) -> None:
    upstream.script(Reply(body={"aiRecord": IMAGE_RECORD}))
    payload = {"type": "IMAGE_GENERATOR", "model": "m", "promptObject": {"prompt": "apple"}}
    assert await client.feature(KEY, payload) == IMAGE_RECORD
    [sent] = upstream.received
    assert (sent.method, sent.path, json.loads(sent.body)) == ("POST", "/api/features", payload)


async def test_async_feature_is_polled_until_done(
    client: OneMinClient, upstream: Upstream, waits: Waits
) -> None:
    processing = {**IMAGE_RECORD, "status": "PROCESSING", "aiRecordDetail": {"resultObject": []}}
    upstream.script(
        Reply(body={"aiRecord": processing}),
        Reply(body={"aiRecord": processing}),
        Reply(body={"aiRecord": IMAGE_RECORD}),
    )
    assert await client.feature(KEY, {"type": "IMAGE_GENERATOR", "async": True}) == IMAGE_RECORD
    paths = [(sent.method, sent.path) for sent in upstream.received]
    uuid = IMAGE_RECORD["uuid"]
    assert paths == [
        ("POST", "/api/features"),
        ("GET", f"/api/results/{uuid}"),
        ("GET", f"/api/results/{uuid}"),
    ]
    assert waits.seconds == [0.01, 0.02]  # backing off between polls


async def test_async_feature_that_fails_while_polled_raises(client: OneMinClient, upstream: Upstream) -> None:
    processing = {**IMAGE_RECORD, "status": "PROCESSING"}
    upstream.script(
        Reply(body={"aiRecord": processing}), Reply(body={"aiRecord": {**IMAGE_RECORD, "status": "FAILURE"}})
    )
    assert (await failure(client.feature(KEY, {"async": True}))).code == "FAILED"


async def test_async_feature_still_processing_at_the_deadline_times_out(
    make_client: Any, upstream: Upstream
) -> None:
    upstream.script(Reply(body={"aiRecord": {**IMAGE_RECORD, "status": "PROCESSING"}}))
    error = await failure(make_client(upstream_media_timeout=0.2).feature(KEY, {"async": True}))
    assert (error.status, error.code) == (0, "TIMEOUT")


async def test_get_result_of_an_unknown_id_is_none(client: OneMinClient, upstream: Upstream) -> None:
    upstream.script(Reply(body={"aiRecord": None}))
    assert await client.get_result(KEY, "00000000-0000-4000-8000-000000000000") is None
    assert await client.get_result(KEY, "../../models") is None
    assert len(upstream.received) == 1


# --- models, uploads ---------------------------------------------------------------------------------


async def test_models_is_asked_without_a_key(client: OneMinClient, upstream: Upstream) -> None:
    upstream.script(Reply(body={"models": [{"modelId": "a"}, "junk"], "total": 2}))
    assert await client.models("IMAGE_GENERATOR") == [{"modelId": "a"}]
    [sent] = upstream.received
    assert (sent.method, sent.path, sent.query) == ("GET", "/models", "feature=IMAGE_GENERATOR")
    assert "api-key" not in sent.headers


async def test_upload_sends_one_asset_part_with_the_filename(
    client: OneMinClient, upstream: Upstream
) -> None:
    stored = {
        "asset": {"key": "audios/2026_a b.mp3", "size": 4, "mimetype": "audio/mpeg"},
        "fileContent": {"uuid": "f-1", "path": "audios/2026_a b.mp3", "name": "2026_a b.mp3"},
    }
    upstream.script(Reply(body=stored))
    asset = await client.upload_asset(KEY, 'a "b".mp3', b"\x00ID3", "audio/mpeg")
    assert asset == Asset("audios/2026_a b.mp3", "f-1", "2026_a b.mp3", 4, "audio/mpeg")
    [sent] = upstream.received
    assert sent.path == "/api/assets"
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert int(sent.headers["content-length"]) == len(sent.body)
    assert (
        b'name="asset"; filename="a %22b%22.mp3"\r\nContent-Type: audio/mpeg\r\n\r\n\x00ID3\r\n' in sent.body
    )


@pytest.mark.parametrize(
    ("content_type", "sent_type"),
    [("text/plain; charset=utf-8", "text/plain"), ("text/plain\r\nX-Evil: 1", "application/octet-stream")],
)
async def test_upload_part_type_is_a_bare_media_type(
    client: OneMinClient, upstream: Upstream, content_type: str, sent_type: str
) -> None:
    upstream.script(Reply(body={"fileContent": {"uuid": "f-2", "path": "documents/a.txt"}}))
    asset = await client.upload_asset(KEY, "a.txt", b"hello", content_type)
    assert (asset.path, asset.uuid, asset.name, asset.size) == ("documents/a.txt", "f-2", "a.txt", 5)
    [sent] = upstream.received
    assert f"Content-Type: {sent_type}\r\n\r\nhello".encode() in sent.body
    assert b"X-Evil" not in sent.body


async def test_upload_error_shape_is_kept(client: OneMinClient, upstream: Upstream) -> None:
    upstream.script(
        Reply(400, {"errorCode": "UNSUPPORTED_FILE_TYPE", "message": "file type isn't supported"})
    )
    error = await failure(client.upload_asset(KEY, "notes.md", b"# hi", "text/markdown"))
    assert (error.status, error.code) == (400, "UNSUPPORTED_FILE_TYPE")


# --- assets on the CDN -------------------------------------------------------------------------------


def test_asset_url_accepts_keys_and_absolute_asset_urls(
    client: OneMinClient, upstream_server: tuple[Upstream, str]
) -> None:
    base = upstream_server[1]
    assert client.asset_url("images/2026_a.png") == f"{base}/cdn/images/2026_a.png"
    assert client.asset_url("/images/2026_a.png") == f"{base}/cdn/images/2026_a.png"
    assert client.asset_url("images/my photo #1?.png") == f"{base}/cdn/images/my%20photo%20%231%3F.png"
    assert client.asset_url(f"{base}/cdn/images/x.png") == f"{base}/cdn/images/x.png"


def test_asset_url_of_the_real_service_allows_its_signed_s3_urls() -> None:
    client = OneMinClient(
        Settings(onemin_api_url="https://api.1min.ai", onemin_asset_url="https://asset.1min.ai")
    )
    signed = "https://s3.us-east-1.amazonaws.com/asset.1min.ai/images/a.png?X-Amz-Signature=abc"
    assert client.asset_url(signed) == signed
    hosted = "https://asset.1min.ai.s3.us-east-1.amazonaws.com/images/a.png"
    assert client.asset_url(hosted) == hosted
    assert client.asset_url("images/a.png") == "https://asset.1min.ai/images/a.png"
    for hostile in [
        "https://s3.us-east-1.amazonaws.com/other-bucket/a.png",
        "https://evil.example/asset.1min.ai/a.png",
        "https://asset.1min.ai@evil.example/a.png",
        "http://asset.1min.ai.s3.amazonaws.com/a.png",
        "https://asset.1min.ai.evil.example/a.png",
    ]:
        with pytest.raises(UpstreamError) as caught:
            client.asset_url(hostile)
        assert caught.value.code == "DISALLOWED_URL"


@pytest.mark.parametrize(
    "hostile",
    [
        "../secrets",
        "images/../../etc/passwd",
        "images/%2e%2e/x",
        "http://127.0.0.1:1/x",
        "file:///etc/passwd",
        "//evil.example/x",
        "images\\..\\x",
        "images/a\r\nb.png",
        "",
    ],
)
def test_asset_url_refuses_anything_that_escapes(client: OneMinClient, hostile: str) -> None:
    with pytest.raises(UpstreamError) as caught:
        client.asset_url(hostile)
    assert caught.value.code == "DISALLOWED_URL"


async def test_download_returns_bytes_and_media_type(client: OneMinClient, upstream: Upstream) -> None:
    upstream.script(Reply(body=b"\x89PNG-bytes", headers={"content-type": "image/png"}))
    assert await client.download("images/a.png", max_bytes=100) == (b"\x89PNG-bytes", "image/png")
    [sent] = upstream.received
    assert sent.path == "/cdn/images/a.png"


async def test_download_larger_than_the_limit_raises(client: OneMinClient, upstream: Upstream) -> None:
    upstream.script(Reply(body=b"x" * 1000, headers={"content-type": "image/png"}))
    assert (await failure(client.download("images/a.png", max_bytes=999))).code == "TOO_LARGE"
    upstream.script(Reply(headers={"content-type": "image/png"}, chunks=[b"x" * 600, b"x" * 600]))
    assert (await failure(client.download("images/a.png", max_bytes=1000))).code == "TOO_LARGE"


async def test_download_follows_redirects_only_within_the_asset_hosts(
    client: OneMinClient, upstream: Upstream, upstream_server: tuple[Upstream, str]
) -> None:
    base = upstream_server[1]
    upstream.script(Reply(302, headers={"location": f"{base}/cdn/moved.png"}), Reply(body=b"img"))
    assert (await client.download("images/a.png", max_bytes=10))[0] == b"img"
    assert [sent.path for sent in upstream.received] == ["/cdn/images/a.png", "/cdn/moved.png"]
    upstream.script(Reply(302, headers={"location": "http://169.254.169.254/latest/meta-data"}))
    assert (await failure(client.download("images/a.png", max_bytes=10))).code == "DISALLOWED_URL"
    assert len(upstream.received) == 1


async def test_download_is_retried_on_5xx(client: OneMinClient, upstream: Upstream) -> None:
    upstream.script(Reply(503), Reply(body=b"img", headers={"content-type": "image/webp"}))
    assert await client.download("images/a.webp", max_bytes=10) == (b"img", "image/webp")
    assert len(upstream.received) == 2


async def read_download(client: OneMinClient, key: str) -> tuple[str, bytes]:
    async with client.stream_download(key) as (media_type, chunks):
        return media_type, b"".join([chunk async for chunk in chunks])


async def test_stream_download_relays_chunks(client: OneMinClient, upstream: Upstream) -> None:
    upstream.script(Reply(headers={"content-type": "audio/mpeg"}, chunks=[b"abc", b"def"], body=b"ghi"))
    assert await read_download(client, "audios/a.mp3") == ("audio/mpeg", b"abcdefghi")


async def test_stream_download_interrupted_raises(client: OneMinClient, upstream: Upstream) -> None:
    upstream.script(Reply(headers={"content-type": "audio/mpeg"}, chunks=[b"abc"], then_drop=True))
    with pytest.raises(UpstreamError) as caught:
        await read_download(client, "audios/a.mp3")
    assert caught.value.code == "STREAM_INTERRUPTED"


async def test_cancelling_the_reader_closes_the_upstream_connection(
    client: OneMinClient, upstream: Upstream
) -> None:
    upstream.script(Reply(headers=SSE_HEADERS, chunks=[_sse("content", {"content": "first"})], endless=True))
    first_event = asyncio.Event()

    async def read_forever() -> None:
        async with client.chat_stream(KEY, CHAT) as events:
            async for _ in events:
                first_event.set()

    reader = asyncio.create_task(read_forever())
    await asyncio.wait_for(first_event.wait(), 10)
    reader.cancel()  # what the relay's request task sees when its own client disconnects
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert await asyncio.to_thread(upstream.client_left.wait, 10)


# --- observability ----------------------------------------------------------------------------------


async def test_time_waiting_on_upstream_reaches_the_access_log(
    client: OneMinClient, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.script(Reply(body={"aiRecord": RECORD}, delay=0.05))

    async def relay(scope: Scope, receive: Receive, send: Send) -> None:
        await client.chat(KEY, CHAT)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    transport = httpx.ASGITransport(app=EdgeMiddleware(relay))
    with caplog.at_level(logging.INFO, logger="onemin_relay.access"):
        async with httpx.AsyncClient(transport=transport, base_url="http://relay") as http:
            assert (await http.get("/")).status_code == 200
    [line] = [record for record in caplog.records if record.name == "onemin_relay.access"]
    assert line.fields["upstream_wait_ms"] > 0  # type: ignore[attr-defined]
