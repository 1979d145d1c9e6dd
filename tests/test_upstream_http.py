"""OneMinClient's aiohttp plumbing (`upstream/http.py`) against raw loopback sockets.

What matters is that each socket-level failure lands in the right row of the retry table: "not sent"
only when nothing was sent, so a billed chat is never sent twice. The rest of the table is exercised by
`test_upstream_client.py`. Also here: events reach the caller as they arrive, and how many calls may run
at once (`UPSTREAM_MAX_IN_FLIGHT`, with no cap on the connection pool below it).
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from onemin_relay.serving import BackgroundServer
from onemin_relay.upstream.breaker import CircuitState
from onemin_relay.upstream.client import OneMinClient, RetryPolicy, StreamEvent
from onemin_relay.upstream.errors import UpstreamError
from tests.harness import KEY_A, SimulatorHandle, upstream_settings

KEY = "sk-test-transport-key-0001"
CHAT = {"type": "UNIFY_CHAT_WITH_AI", "model": "gpt-4o-mini", "promptObject": {"prompt": "hi"}}

Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawUpstream:
    """A loopback server that reads each request and answers with `answer`, byte for byte."""

    def __init__(self) -> None:
        self.answer: Answer = close_after_request
        self.requests = 0
        self.peers: set[int] = set()  # client ports: one per TCP connection

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.peers.add(writer.get_extra_info("peername")[1])
        try:
            while await read_request(reader):
                self.requests += 1
                await self.answer(reader, writer)
                if writer.is_closing():
                    return
        except ConnectionError:
            pass
        finally:
            writer.close()


async def read_request(reader: asyncio.StreamReader) -> bool:
    """Read one request (head and Content-Length body); False when the client closed instead."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return False
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            await reader.readexactly(int(value))
    return True


async def close_after_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def reset_after_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close → RST
    writer.close()


async def not_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    await writer.drain()
    writer.close()


async def silence(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # until the client gives up


async def truncated_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"ai')
    await writer.drain()
    writer.close()


async def json_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    body = json.dumps({"models": []}).encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    writer.write(head.encode() + body)
    await writer.drain()


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[RawUpstream, str]]:
    app = RawUpstream()
    server = await asyncio.start_server(app.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield app, f"http://127.0.0.1:{port}"


@pytest.fixture
def waits() -> list[float]:
    """The waits between retries, recorded instead of spent."""
    return []


@pytest.fixture
async def make_client(waits: list[float]) -> AsyncIterator[Callable[..., OneMinClient]]:
    made: list[OneMinClient] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    def make(url: str, max_retries: int = 2, **overrides: Any) -> OneMinClient:
        client = OneMinClient(
            upstream_settings(url, **overrides), retry=RetryPolicy(max_retries=max_retries, sleep=no_wait)
        )
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A port whose listen queue is full: a connect attempt hangs until its timeout."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = [socket.socket() for _ in range(3)]
    for filler in fillers:
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))  # takes the queue's places; never accepted
    yield port
    for sock in [*fillers, server]:
        sock.close()


# --- before the request is sent: connect errors -----------------------------------------------------


async def test_a_billed_chat_that_was_refused_a_connection_is_retried(
    make_client: Callable[..., OneMinClient], waits: list[float]
) -> None:
    with pytest.raises(UpstreamError) as caught:
        await make_client(f"http://127.0.0.1:{_closed_port()}").chat(KEY, CHAT)
    assert (caught.value.status, caught.value.code) == (0, "CONNECT_ERROR")
    assert len(waits) == 2  # three attempts: nothing was sent, so nothing can have run


async def test_a_billed_chat_that_could_not_connect_in_time_is_retried(
    make_client: Callable[..., OneMinClient], unanswered_port: int, waits: list[float]
) -> None:
    client = make_client(f"http://127.0.0.1:{unanswered_port}", upstream_connect_timeout=0.3)
    with pytest.raises(UpstreamError) as caught:
        await client.chat(KEY, CHAT)
    assert (caught.value.code, caught.value.details) == ("TIMEOUT", {"reason": "ConnectionTimeoutError"})
    assert caught.value.message == "Connecting to 1min.ai timed out."
    assert len(waits) == 2


# --- after the request was sent: never "not sent" ----------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (close_after_request, "NETWORK_ERROR"),
        (reset_after_request, "NETWORK_ERROR"),
        (not_http, "NETWORK_ERROR"),
        (truncated_body, "NETWORK_ERROR"),
        (silence, "TIMEOUT"),
    ],
)
async def test_a_billed_chat_that_may_have_run_is_sent_once(
    make_client: Callable[..., OneMinClient],
    upstream: tuple[RawUpstream, str],
    answer: Answer,
    code: str,
    waits: list[float],
) -> None:
    app, url = upstream
    app.answer = answer
    with pytest.raises(UpstreamError) as caught:
        await make_client(url, upstream_timeout=0.3).chat(KEY, CHAT)
    assert (caught.value.status, caught.value.code) == (0, code)
    assert app.requests == 1
    assert waits == []


async def test_an_unbilled_call_that_lost_its_connection_is_retried(
    make_client: Callable[..., OneMinClient], upstream: tuple[RawUpstream, str]
) -> None:
    app, url = upstream
    answers = iter([close_after_request, json_answer])

    async def first_fails(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await next(answers)(reader, writer)

    app.answer = first_fails
    assert await make_client(url).models("IMAGE_GENERATOR") == []
    assert app.requests == 2


async def test_the_connect_timeout_does_not_limit_the_wait_for_an_answer(
    make_client: Callable[..., OneMinClient], upstream: tuple[RawUpstream, str]
) -> None:
    app, url = upstream

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(1.0)
        await json_answer(reader, writer)

    app.answer = slow
    assert await make_client(url, max_retries=0, upstream_connect_timeout=0.2).models("IMAGE_GENERATOR") == []


# --- bodies and the pool -----------------------------------------------------------------------------


async def test_stream_events_arrive_as_upstream_sends_them(
    make_client: Callable[..., OneMinClient], upstream: tuple[RawUpstream, str]
) -> None:
    app, url = upstream
    first_seen = asyncio.Event()

    async def stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def chunk(name: str, data: Any) -> bytes:
            event = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
            return f"{len(event):x}\r\n".encode() + event + b"\r\n"

        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        writer.write(head + chunk("content", {"content": "first"}))
        await writer.drain()
        await first_seen.wait()  # the rest only once the client has the first event
        writer.write(chunk("content", {"content": "second"}) + chunk("done", {}) + b"0\r\n\r\n")
        await writer.drain()

    app.answer = stream
    got: list[StreamEvent] = []

    async def read() -> None:
        async with make_client(url).chat_stream(KEY, CHAT) as events:
            async for event in events:
                got.append(event)
                first_seen.set()

    await asyncio.wait_for(read(), 10)  # a buffering transport would wait here forever
    assert got == [StreamEvent("content", "first"), StreamEvent("content", "second"), StreamEvent("done")]


async def test_streams_beyond_the_old_pool_size_all_run_at_once(
    make_client: Callable[..., OneMinClient], upstream: tuple[RawUpstream, str]
) -> None:
    """The pool has no cap: the 250th stream is not held back until another ends (it was 200)."""
    app, url = upstream
    streams = 250
    all_arrived = asyncio.Event()

    async def answer_once_all_arrived(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if app.requests == streams:
            all_arrived.set()
        await all_arrived.wait()
        event = b'event: content\ndata: {"content":"hi"}\n\nevent: done\ndata: {}\n\n'
        head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\n\r\n"
        writer.write(head.format(len(event)).encode() + event)
        await writer.drain()

    app.answer = answer_once_all_arrived
    client = make_client(url)

    async def stream() -> list[StreamEvent]:
        async with client.chat_stream(KEY, CHAT) as events:
            return [event async for event in events]

    # a bound, not a measurement: with any cap below 250 every stream waits here forever
    got = await asyncio.wait_for(asyncio.gather(*(stream() for _ in range(streams))), 60)
    assert got == [[StreamEvent("content", "hi"), StreamEvent("done")]] * streams
    assert len(app.peers) == streams


async def test_a_call_beyond_the_in_flight_cap_is_refused_at_once_and_sends_nothing(
    make_client: Callable[..., OneMinClient], upstream: tuple[RawUpstream, str]
) -> None:
    app, url = upstream

    async def endless_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        event = b'event: content\ndata: {"content":"first"}\n\n'
        writer.write(head + f"{len(event):x}\r\n".encode() + event + b"\r\n")
        await writer.drain()
        await reader.read()  # until the client goes away

    app.answer = endless_stream
    client = make_client(url, upstream_max_in_flight=1, upstream_breaker_failures=1)
    async with client.chat_stream(KEY, CHAT) as events:
        assert await anext(events) == StreamEvent("content", "first")
        # The open stream holds the only slot: the next call is refused before anything is sent.
        with pytest.raises(UpstreamError) as caught:
            await client.models("IMAGE_GENERATOR")
        refused = caught.value
        assert (refused.status, refused.code, refused.retry_after) == (503, "RELAY_OVERLOADED", 1)
        assert refused.headers == {"Retry-After": "1"}
        assert app.requests == 1
    # The relay's own limit says nothing of 1min.ai: no circuit opened (one failure would open one here).
    assert set(client.circuits.states().values()) == {CircuitState.CLOSED}
    app.answer = json_answer
    assert await client.models("IMAGE_GENERATOR") == []  # the stream ended: its slot is free again


CHAT_BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def test_the_relay_answers_503_relay_overloaded_when_its_calls_are_all_in_flight(
    start_relay: Callable[..., BackgroundServer], sim: SimulatorHandle
) -> None:
    url = start_relay(upstream_max_in_flight=1).url
    headers = {"Authorization": f"Bearer {KEY_A}"}
    assert httpx.post(f"{url}/v1/chat/completions", json=CHAT_BODY, headers=headers).status_code == 200
    sim.reset()
    slow = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "[[sim:slow-first-byte=60000]]"}],
    }
    body = json.dumps(slow).encode()
    address = urlsplit(url)
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {address.netloc}\r\nAuthorization: Bearer {KEY_A}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection((address.hostname, address.port)) as waiting:
        waiting.sendall(request)
        wait_until(lambda: len(chats(sim)) == 1, "the slow chat never reached upstream")
        refused = httpx.post(f"{url}/v1/chat/completions", json=CHAT_BODY, headers=headers)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        error = refused.json()["error"]
        assert (error["type"], error["code"]) == ("server_error", "relay_overloaded")
        assert len(chats(sim)) == 1  # nothing was sent for it
    # The waiting client hung up: its call is cancelled and its slot freed.
    wait_until(
        lambda: httpx.post(f"{url}/v1/chat/completions", json=CHAT_BODY, headers=headers).status_code == 200,
        "the slot was never freed",
    )
    assert httpx.get(f"{url}/health").json() == {"status": "ok", "upstream": "closed"}


def chats(sim: SimulatorHandle) -> list[dict[str, Any]]:
    return [call for call in sim.requests() if call["path"] == "/api/chat-with-ai"]


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20  # a bound, not a measurement: it only keeps a failure from hanging
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
