"""Streaming `POST /v1/chat/completions` end to end: chunks, usage, faults mid-stream, keep-alives,
disconnects and many streams at once."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.types import Receive, Scope, Send

from onemin_relay.api.chat_stream import chat_chunks
from onemin_relay.api.event_stream import sse_data
from onemin_relay.core.types import ChoiceDone, CoreEvent, TextDelta
from onemin_relay.serving import BackgroundServer
from onemin_relay.simulator.answers import expected_answer
from onemin_relay.simulator.limits import estimate_tokens
from onemin_relay.translate.chat_completions import chunk_object
from onemin_relay.translate.chat_wire import parse_chat_request
from onemin_relay.translate.tokens import count_tokens
from tests.harness import KEY_A, SimulatorHandle
from tests.openapi_schema import assert_matches_schema


def user(content: str) -> list[Any]:
    return [{"role": "user", "content": content}]


def raw_stream(relay_url: str, body: dict[str, Any]) -> tuple[list[Any], list[str]]:
    """The SSE stream as sent: (data payloads in order, `[DONE]` as a string; comment lines)."""
    events: list[Any] = []
    comments: list[str] = []
    with httpx.stream(
        "POST",
        f"{relay_url}/v1/chat/completions",
        json={**body, "stream": True},
        headers={"Authorization": f"Bearer {KEY_A}"},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith(":"):
                comments.append(line)
            elif line.startswith("data: "):
                data = line.removeprefix("data: ")
                events.append(data if data == "[DONE]" else json.loads(data))
    return events, comments


def text_of(chunks: list[Any], index: int = 0) -> str:
    return "".join(
        choice["delta"].get("content") or ""
        for chunk in chunks
        if isinstance(chunk, dict)
        for choice in chunk["choices"]
        if choice["index"] == index
    )


def test_stream_chunks_are_openai_chunks(relay_url: str) -> None:
    events, _ = raw_stream(relay_url, {"model": "gpt-4o-mini", "messages": user("Stream — «ça» 流")})
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    for chunk in chunks:
        assert_matches_schema("CreateChatCompletionStreamResponse", chunk)
        assert "usage" not in chunk
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all("role" not in c["choices"][0]["delta"] for c in chunks[1:])
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert len({c["id"] for c in chunks}) == 1
    assert text_of(chunks) == expected_answer("Stream — «ça» 流")
    assert len(chunks) > 3  # passed on as upstream sends it, not as one buffered piece


def test_include_usage_adds_a_final_usage_chunk(relay_url: str) -> None:
    body = {"model": "gpt-4o-mini", "messages": user("usage"), "stream_options": {"include_usage": True}}
    events, _ = raw_stream(relay_url, body)
    chunks = events[:-1]
    for chunk in chunks:
        assert_matches_schema("CreateChatCompletionStreamResponse", chunk)
    assert all(chunk["usage"] is None for chunk in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {
        "prompt_tokens": estimate_tokens("usage"),
        "completion_tokens": estimate_tokens(expected_answer("usage")),
        "total_tokens": estimate_tokens("usage") + estimate_tokens(expected_answer("usage")),
    }


def test_usage_falls_back_to_tiktoken_when_upstream_reports_zero(client: openai.OpenAI) -> None:
    prompt = "zero [[sim:zero-tokens]]"
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=user(prompt), stream=True, stream_options={"include_usage": True}
    )
    usage = [chunk.usage for chunk in stream if chunk.usage is not None]
    assert [(u.prompt_tokens, u.completion_tokens) for u in usage] == [
        (count_tokens(prompt), count_tokens(expected_answer(prompt)))
    ]


@pytest.mark.parametrize(
    "magic", ["[[sim:split-bytes=1]]", "[[sim:split-bytes=3]]", "[[sim:crlf]]", "[[sim:duplicate-final]]"]
)
def test_text_arrives_intact_whatever_the_framing(client: openai.OpenAI, magic: str) -> None:
    prompt = f"Multi-byte « 你好 » 🤖 {magic}"
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=user(prompt), stream=True)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream) == expected_answer(prompt)


def test_stop_and_token_limits_apply_to_streams(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=user("cut"), stream=True, stop=["simulée"]
    )
    chunks = list(stream)
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks)
        == expected_answer("cut").split("simulée")[0]
    )
    assert chunks[-1].choices[0].finish_reason == "stop"

    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=user("cut"), stream=True, max_tokens=4
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert expected_answer("cut").startswith(text)
    assert 0 < count_tokens(text) <= 4
    assert chunks[-1].choices[0].finish_reason == "length"


def test_n_streams_are_interleaved_by_index(relay_url: str, sim: SimulatorHandle) -> None:
    events, _ = raw_stream(relay_url, {"model": "gpt-4o-mini", "messages": user("two"), "n": 2})
    chunks = events[:-1]
    for index in (0, 1):
        mine = [c for c in chunks if c["choices"][0]["index"] == index]
        assert mine[0]["choices"][0]["delta"]["role"] == "assistant"
        assert mine[-1]["choices"][0]["finish_reason"] == "stop"
        assert text_of(chunks, index) == expected_answer("two")
    assert len([r for r in sim.requests() if r["path"] == "/api/chat-with-ai"]) == 2


def test_web_search_in_a_stream(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    stream = client.chat.completions.create(model="gpt-4o-mini:online", messages=user("news"), stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream) == expected_answer(
        "news", web_search=True
    )
    [call] = [r for r in sim.requests() if r["path"] == "/api/chat-with-ai"]
    assert call["query"] == {"isStreaming": "true"}


# --- failures ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "magic", ["[[sim:error-mid-stream]]", "[[sim:drop-mid-stream]]", "[[sim:end-mid-stream]]"]
)
def test_a_failure_mid_stream_is_an_error_event_the_sdk_raises(client: openai.OpenAI, magic: str) -> None:
    prompt = f"long enough to be cut {magic} [[sim:length=200]]"
    received: list[str] = []

    def read_all() -> None:
        for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=user(prompt), stream=True):
            received.append(chunk.choices[0].delta.content or "")

    with pytest.raises(openai.APIError):
        read_all()
    assert "".join(received)
    assert expected_answer(prompt).startswith("".join(received))


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("error-mid-stream", "Upstream provider returned an error"),
        ("end-mid-stream", "ended the stream before finishing the answer"),  # a cut answer is not whole
    ],
)
def test_the_mid_stream_error_event_is_openai_shaped(relay_url: str, fault: str, message: str) -> None:
    body = {"model": "gpt-4o-mini", "messages": user(f"x [[sim:{fault}]] [[sim:length=200]]")}
    events, _ = raw_stream(relay_url, body)
    assert "[DONE]" not in events
    error = events[-1]["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert message in error["message"]
    assert error["type"] == "server_error"


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("http-429=3", openai.RateLimitError),
        ("insufficient-credits", openai.RateLimitError),
        ("http-503", openai.InternalServerError),
        ("failed-status", openai.InternalServerError),
    ],
)
def test_failures_before_the_stream_are_http_errors(
    client: openai.OpenAI, sim: SimulatorHandle, fault: str, error: type[openai.APIStatusError]
) -> None:
    sim.set_fault(fault)
    with pytest.raises(error):
        client.chat.completions.create(model="gpt-4o-mini", messages=user("x"), stream=True)


def test_keepalives_flow_while_upstream_is_slow_to_start(
    start_relay: Callable[..., BackgroundServer], sim: SimulatorHandle
) -> None:
    relay = start_relay(stream_keepalive_seconds=0.05)
    prompt = "slow [[sim:slow-first-byte=1500]]"
    events, comments = raw_stream(relay.url, {"model": "gpt-4o-mini", "messages": user(prompt)})
    assert comments  # `: keep-alive` lines arrived while waiting
    assert all(comment.startswith(": keep-alive") for comment in comments)
    assert text_of(events[:-1]) == expected_answer(prompt)


# --- concurrency and cancellation ---------------------------------------------------------------------


async def test_fifty_concurrent_streams(aclient: openai.AsyncOpenAI) -> None:
    async def one(number: int) -> str:
        stream = await aclient.chat.completions.create(
            model="gpt-4o-mini", messages=user(f"stream number {number} [[sim:delay=5]]"), stream=True
        )
        return "".join([chunk.choices[0].delta.content or "" async for chunk in stream])

    answers = await asyncio.gather(*(one(number) for number in range(50)))
    assert answers == [expected_answer(f"stream number {number} [[sim:delay=5]]") for number in range(50)]


async def is_a_chat_call(scope: Scope, receive: Receive, send: Send) -> bool:
    """For the stand-in upstreams below: answer lifespan and other paths; True for a chat call to answer."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return False
    while (await receive()).get("more_body"):
        pass  # the request body
    if scope["path"] != "/api/chat-with-ai":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return False
    return True


class EndlessUpstream:
    """A chat-with-ai stand-in (plain ASGI) that streams forever and records when its client goes away."""

    def __init__(self) -> None:
        self.streaming = threading.Event()
        self.client_left = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not await is_a_chat_call(scope, receive, send):
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        self.streaming.set()

        async def pump() -> None:
            while True:
                event = b'event: content\ndata: {"content": "more "}\n\n'
                await send({"type": "http.response.body", "body": event, "more_body": True})
                await asyncio.sleep(0.02)

        pumping = asyncio.create_task(pump())
        try:
            while (await receive())["type"] != "http.disconnect":
                pass
            self.client_left.set()
        finally:
            pumping.cancel()


@pytest.fixture
def endless() -> Iterator[tuple[EndlessUpstream, BackgroundServer]]:
    upstream = EndlessUpstream()
    with BackgroundServer(upstream) as server:
        yield upstream, server


def test_a_client_that_disconnects_cancels_the_upstream_request(
    start_relay: Callable[..., BackgroundServer], endless: tuple[EndlessUpstream, BackgroundServer]
) -> None:
    upstream, server = endless
    relay = start_relay(onemin_api_url=server.url)  # the catalogue falls back to the packaged snapshot
    with openai.OpenAI(base_url=f"{relay.url}/v1", api_key=KEY_A, max_retries=0) as sdk:
        stream = sdk.chat.completions.create(model="gpt-4o-mini", messages=user("go on forever"), stream=True)
        for chunk in stream:
            if chunk.choices[0].delta.content:
                break
        assert upstream.streaming.is_set()
        assert not upstream.client_left.is_set()
        stream.close()
    assert upstream.client_left.wait(timeout=20)


class SilentUpstream:
    """A chat-with-ai stand-in (plain ASGI) that takes the call and never starts its answer (a model slow
    to start), and records when its client goes away."""

    def __init__(self) -> None:
        self.called = threading.Event()
        self.client_left = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not await is_a_chat_call(scope, receive, send):
            return
        self.called.set()
        while (await receive())["type"] != "http.disconnect":
            pass
        self.client_left.set()


@pytest.fixture
def silent() -> Iterator[tuple[SilentUpstream, BackgroundServer]]:
    upstream = SilentUpstream()
    with BackgroundServer(upstream) as server:
        yield upstream, server


def open_raw_stream(relay_url: str) -> socket.socket:
    """A streamed chat request sent on a bare socket, so the test decides when the client goes away."""
    body = json.dumps({"model": "gpt-4o-mini", "messages": user("take your time"), "stream": True})
    address = urlsplit(relay_url)
    client = socket.create_connection((address.hostname, address.port))
    client.sendall(
        (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: {address.netloc}\r\n"
            f"Authorization: Bearer {KEY_A}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}"
        ).encode()
    )
    return client


def test_a_client_gone_before_the_first_keepalive_frees_the_upstream_call(
    start_relay: Callable[..., BackgroundServer], silent: tuple[SilentUpstream, BackgroundServer]
) -> None:
    upstream, server = silent
    # No keep-alive would be written for an hour: only listening for the hang-up can notice it.
    relay = start_relay(onemin_api_url=server.url, stream_keepalive_seconds=3600)
    with open_raw_stream(relay.url):
        assert upstream.called.wait(timeout=20)
    assert upstream.client_left.wait(timeout=20)  # a bound far below the hour, not a measurement


def test_a_client_gone_after_the_first_keepalive_frees_the_upstream_call_before_the_next(
    start_relay: Callable[..., BackgroundServer], silent: tuple[SilentUpstream, BackgroundServer]
) -> None:
    upstream, server = silent
    keepalive = 4.0
    relay = start_relay(onemin_api_url=server.url, stream_keepalive_seconds=keepalive)
    with open_raw_stream(relay.url) as client:
        received = b""
        while b": keep-alive" not in received:  # the response has started, with the first keep-alive
            chunk = client.recv(65536)
            assert chunk, "the relay closed the stream"
            received += chunk
        assert received.startswith(b"HTTP/1.1 200")
        assert not upstream.client_left.is_set()
    # Noticed when the client went away, not when the next keep-alive would have failed to be written.
    assert upstream.client_left.wait(timeout=keepalive - 1)


def test_an_error_after_the_answer_was_cut_does_not_spoil_it(client: openai.OpenAI) -> None:
    # The stop sequence comes early and upstream would fail later: the cut answer and its usage stand.
    prompt = "cut early [[sim:error-mid-stream]] [[sim:length=300]]"
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=user(prompt),
        stream=True,
        stop=["simulée"],
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected_answer(prompt).split("simulée")[0]
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.completion_tokens == count_tokens(text)


@pytest.mark.parametrize("include_usage", [False, True])
def test_a_stream_cut_by_max_tokens_ends_at_once_and_closes_the_upstream_request(
    start_relay: Callable[..., BackgroundServer],
    endless: tuple[EndlessUpstream, BackgroundServer],
    include_usage: bool,
) -> None:
    upstream, server = endless
    relay = start_relay(onemin_api_url=server.url)
    with openai.OpenAI(base_url=f"{relay.url}/v1", api_key=KEY_A, max_retries=0) as sdk:
        chunks = list(
            sdk.chat.completions.create(
                model="gpt-4o-mini",
                messages=user("go on forever"),
                stream=True,
                max_tokens=3,
                stream_options={"include_usage": include_usage},
            )
        )
    answer = [c for c in chunks if c.choices]
    assert "".join(c.choices[0].delta.content or "" for c in answer) == "more more more"
    assert answer[-1].choices[0].finish_reason == "length"
    if include_usage:
        usage = chunks[-1].usage
        assert usage is not None
        assert usage.completion_tokens == count_tokens("more more more")
    assert upstream.client_left.wait(timeout=20)


RECORD_ONLY_ANSWER = "Only in the record — «ça» 流"


class RecordOnlyUpstream:
    """A chat-with-ai stand-in (plain ASGI) whose stream carries the answer only in its final record."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not await is_a_chat_call(scope, receive, send):
            return
        record = {
            "uuid": "rec-1",
            "status": "SUCCESS",
            "metadata": {"inputToken": 0, "outputToken": 0},
            "aiRecordDetail": {"resultObject": [RECORD_ONLY_ANSWER]},
        }
        body = f"event: result\ndata: {json.dumps({'aiRecord': record})}\n\nevent: done\ndata: [DONE]\n\n"
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body.encode()})


def test_an_answer_sent_only_in_the_final_record_is_streamed(
    start_relay: Callable[..., BackgroundServer],
) -> None:
    with BackgroundServer(RecordOnlyUpstream()) as upstream:
        relay = start_relay(onemin_api_url=upstream.url)
        events, _ = raw_stream(
            relay.url,
            {"model": "gpt-4o-mini", "messages": user("x"), "stream_options": {"include_usage": True}},
        )
    chunks = events[:-1]
    assert text_of(chunks) == RECORD_ONLY_ANSWER
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["completion_tokens"] == count_tokens(RECORD_ONLY_ANSWER)


class ScriptedStream:
    """A core stream that yields the given events (what `chat_chunks` reads)."""

    def __init__(self, events: list[CoreEvent]) -> None:
        self._events = events

    async def events(self) -> AsyncIterator[CoreEvent]:
        for event in self._events:
            yield event


@given(
    texts=st.lists(st.text(), max_size=4),
    model=st.text(min_size=1, max_size=20),
    include_usage=st.booleans(),
)
async def test_a_text_chunk_has_the_bytes_of_its_whole_rendering(
    texts: list[str], model: str, include_usage: bool
) -> None:
    """Text deltas are spliced into a chunk rendered once per choice: byte for byte the chunk in full."""
    stream_options = {"include_usage": True} if include_usage else None
    chat = parse_chat_request(
        {"model": model, "messages": user("hi"), "stream": True, "stream_options": stream_options}
    )
    events: list[CoreEvent] = [
        TextDelta(1, ""),
        *(TextDelta(1, text) for text in texts),
        ChoiceDone(1, "stop"),
    ]
    sent = [chunk async for chunk in chat_chunks(chat, ScriptedStream(events))]  # type: ignore[arg-type]
    first = json.loads(sent[0].removeprefix(b"data: "))
    deltas = [{"content": text} for text in texts if text]
    assert sent[1:-2] == [
        sse_data(chunk_object(first["id"], first["created"], model, 1, delta, include_usage=include_usage))
        for delta in deltas
    ]
