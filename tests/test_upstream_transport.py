"""The production upstream transport (httpx on aiohttp) against raw loopback sockets.

What matters is that each socket-level failure surfaces as the httpx error the client's retry rules
assume: connect errors only when nothing was sent, so a billed chat is never sent twice. The retry
table itself is exercised over this transport by `test_upstream_client.py` (its client is the default).
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from onemin_relay.config import Settings
from onemin_relay.upstream.client import OneMinClient, RetryPolicy, StreamEvent
from onemin_relay.upstream.errors import UpstreamError
from onemin_relay.upstream.transport import aiohttp_transport
from tests.harness import upstream_settings

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
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=aiohttp_transport(Settings())) as client:
        yield client


@pytest.fixture
def waits() -> list[float]:
    """The waits between retries, recorded instead of spent."""
    return []


@pytest.fixture
async def make_client(waits: list[float]) -> AsyncIterator[Callable[..., OneMinClient]]:
    made: list[OneMinClient] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    def make(url: str, **overrides: Any) -> OneMinClient:
        client = OneMinClient(
            upstream_settings(url, **overrides), retry=RetryPolicy(max_retries=2, sleep=no_wait)
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


async def test_a_refused_connection_is_a_connect_error(http: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.ConnectError):
        await http.get(f"http://127.0.0.1:{_closed_port()}/")


async def test_the_connect_timeout_bounds_the_connect(http: httpx.AsyncClient, unanswered_port: int) -> None:
    with pytest.raises(httpx.ConnectTimeout):
        await http.get(f"http://127.0.0.1:{unanswered_port}/", timeout=httpx.Timeout(30.0, connect=0.3))


async def test_a_billed_chat_that_could_not_connect_is_retried(
    make_client: Callable[..., OneMinClient], unanswered_port: int, waits: list[float]
) -> None:
    client = make_client(f"http://127.0.0.1:{unanswered_port}", upstream_connect_timeout=0.3)
    with pytest.raises(UpstreamError) as caught:
        await client.chat(KEY, CHAT)
    assert (caught.value.code, caught.value.details) == ("TIMEOUT", {"reason": "ConnectTimeout"})
    assert len(waits) == 2  # three attempts: nothing was sent, so nothing can have run


# --- after the request was sent: never connect errors ------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (close_after_request, httpx.RemoteProtocolError),
        (reset_after_request, httpx.ReadError | httpx.RemoteProtocolError),
        (not_http, httpx.RemoteProtocolError),
        (silence, httpx.ReadTimeout),
    ],
)
async def test_a_failure_after_sending_is_not_a_connect_error(
    http: httpx.AsyncClient, upstream: tuple[RawUpstream, str], answer: Answer, expected: Any
) -> None:
    app, url = upstream
    app.answer = answer
    with pytest.raises(httpx.TransportError) as caught:
        await http.post(url, json=CHAT, timeout=httpx.Timeout(30.0, read=0.3))
    assert isinstance(caught.value, expected)
    assert not isinstance(caught.value, httpx.ConnectError | httpx.ConnectTimeout)
    assert app.requests == 1


@pytest.mark.parametrize("answer", [close_after_request, reset_after_request, not_http, truncated_body])
async def test_a_billed_chat_that_may_have_run_is_sent_once(
    make_client: Callable[..., OneMinClient],
    upstream: tuple[RawUpstream, str],
    answer: Answer,
    waits: list[float],
) -> None:
    app, url = upstream
    app.answer = answer
    with pytest.raises(UpstreamError) as caught:
        await make_client(url).chat(KEY, CHAT)
    assert caught.value.code == "NETWORK_ERROR"
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
    http: httpx.AsyncClient, upstream: tuple[RawUpstream, str]
) -> None:
    app, url = upstream

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(1.0)
        await json_answer(reader, writer)

    app.answer = slow
    response = await http.get(url, timeout=httpx.Timeout(30.0, connect=0.2))
    assert response.json() == {"models": []}


async def test_a_truncated_body_is_a_read_error(
    http: httpx.AsyncClient, upstream: tuple[RawUpstream, str]
) -> None:
    app, url = upstream
    app.answer = truncated_body
    with pytest.raises(httpx.ReadError):
        await http.get(url)


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


async def test_upstream_connections_are_capped_by_the_setting(
    make_client: Callable[..., OneMinClient], upstream: tuple[RawUpstream, str]
) -> None:
    app, url = upstream
    two_waiting = asyncio.Event()
    waiting = 0

    async def answer_once_two_wait(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal waiting
        waiting += 1
        if waiting == 2:
            two_waiting.set()
        await two_waiting.wait()
        await json_answer(reader, writer)

    app.answer = answer_once_two_wait
    client = make_client(url, upstream_max_connections=2)
    results = await asyncio.wait_for(
        asyncio.gather(*(client.models("IMAGE_GENERATOR") for _ in range(6))), 10
    )
    assert results == [[]] * 6
    assert len(app.peers) == 2  # six calls, two connections: the others waited for a free one
