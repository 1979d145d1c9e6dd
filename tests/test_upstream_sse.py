"""The chat stream as the relay sees it, whatever the network does to 1min.ai's SSE bytes.

Most tests hand raw body chunks, split exactly as given, to `chat_events` (what `OneMinClient.chat_stream`
runs on each chunk as it arrives), so line splitting, UTF-8 decoding and 1min.ai's event rules are
exercised together; the rest send the bytes from a loopback server through `OneMinClient.chat_stream`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from onemin_relay.upstream.client import OneMinClient, StreamEvent
from onemin_relay.upstream.errors import UpstreamError
from onemin_relay.upstream.sse import EventStreamDecoder, ServerSentEvent, chat_events
from tests.harness import upstream_settings

FULL_TEXT = "Grüße, 日本語 🙂 and\nline one\nline two"
RECORD = {
    "uuid": "9b0c0000-0000-4000-8000-000000000001",
    "status": "SUCCESS",
    "aiRecordDetail": {"promptObject": {"prompt": "hi"}, "resultObject": [FULL_TEXT]},
    "metadata": {"credit": 56, "inputToken": 300, "outputToken": 18},
}

# Everything a tolerant parser must survive at once: a comment, CRLF, LF and lone-CR line endings,
# an event without `event:`, multi-line raw data, an unknown event, 2-, 3- and 4-byte UTF-8, and the
# duplicate-full-text final chunk some models send.
TRANSCRIPT = (
    ": keep-alive\r\n\r\n"
    'event: content\r\ndata: {"content":""}\r\n\r\n'
    'event: content\r\ndata: {"content":"Grüße, "}\r\n\r\n'
    'data: {"content":"日本語 "}\n\n'
    'event: content\rdata: {"content":"🙂 and"}\r\r'
    "event: content\ndata:\ndata: line one\ndata: line two\n\n"
    "event: ping\ndata: {}\n\n"
    f"event: content\ndata: {json.dumps({'content': FULL_TEXT})}\n\n"
    f"event: result\ndata: {json.dumps({'aiRecord': RECORD}, ensure_ascii=False)}\n\n"
    'event: done\ndata: {"message":"Stream completed"}\n\n'
).encode()

EXPECTED = [
    StreamEvent("content", "Grüße, "),
    StreamEvent("content", "日本語 "),
    StreamEvent("content", "🙂 and"),
    StreamEvent("content", "\nline one\nline two"),
    StreamEvent("result", record=RECORD),
    StreamEvent("done"),
]


async def events_of(chunks: Sequence[bytes]) -> list[StreamEvent]:
    """What the client makes of a stream body that arrives in exactly these chunks."""

    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    return [event async for event in chat_events(body())]


async def served(chunks: Sequence[bytes], content_type: str = "text/event-stream") -> list[StreamEvent]:
    """The events `OneMinClient.chat_stream` yields for a loopback 1min.ai that writes these chunks (one
    chunked-encoding chunk each, the body ended after the last)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the body (Content-Length) is left unread
        head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
        writer.write(head.encode())
        for chunk in chunks:
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = OneMinClient(upstream_settings(f"http://127.0.0.1:{port}"))
    try:
        async with server, client.chat_stream("key", {"model": "m"}) as events:
            return [event async for event in events]
    finally:
        await client.aclose()


def sse(*events: tuple[str | None, Any]) -> bytes:
    """Frame events: (name or None, data as a JSON-able object or a raw string)."""
    out = []
    for name, data in events:
        head = f"event: {name}\n" if name else ""
        body = data if isinstance(data, str) else json.dumps(data)
        out.append(f"{head}data: {body}\n\n")
    return "".join(out).encode()


async def test_the_whole_transcript_decodes_to_the_answer() -> None:
    assert await events_of([TRANSCRIPT]) == EXPECTED
    text = "".join(event.text for event in EXPECTED if event.kind == "content")
    assert text == "Grüße, 日本語 🙂 and\nline one\nline two" == FULL_TEXT


async def test_the_transcript_from_the_network_in_small_pieces_decodes_to_the_answer() -> None:
    assert await served([TRANSCRIPT[i : i + 7] for i in range(0, len(TRANSCRIPT), 7)]) == EXPECTED


async def test_a_split_at_any_byte_changes_nothing() -> None:
    for cut in range(1, len(TRANSCRIPT)):
        got = await events_of([TRANSCRIPT[:cut], TRANSCRIPT[cut:]])
        assert got == EXPECTED, f"split at byte {cut}: {TRANSCRIPT[cut - 10 : cut + 10]!r}"


async def test_one_byte_at_a_time_changes_nothing() -> None:
    assert await events_of([TRANSCRIPT[i : i + 1] for i in range(len(TRANSCRIPT))]) == EXPECTED


async def test_many_random_splits_change_nothing() -> None:
    rng = random.Random(1234)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(TRANSCRIPT)), rng.randint(2, 12)))
        bounds = [0, *cuts, len(TRANSCRIPT)]
        chunks = [TRANSCRIPT[a:b] for a, b in itertools.pairwise(bounds)]
        assert await events_of(chunks) == EXPECTED, f"cuts {cuts}"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"error": "Upstream provider returned an error"}, "Upstream provider returned an error"),
        ({"error": {"message": "provider overloaded", "code": "X"}}, "provider overloaded"),
        ({"message": "context too long"}, "context too long"),
        ("plain words, not JSON", "plain words, not JSON"),
        ({}, "1min.ai reported an error while generating the answer"),
    ],
)
async def test_every_error_payload_shape_gives_its_message(data: Any, message: str) -> None:
    got = await events_of([sse(("content", {"content": "Partial ans"}), ("error", data))])
    assert got == [StreamEvent("content", "Partial ans"), StreamEvent("error", message)]


async def test_nothing_after_done_or_error_is_delivered() -> None:
    after_done = sse(("content", {"content": "a"}), (None, "[DONE]"), ("content", {"content": "late"}))
    assert await events_of([after_done]) == [StreamEvent("content", "a"), StreamEvent("done")]
    after_error = sse(("error", {"error": "boom"}), ("done", {}), ("content", {"content": "late"}))
    assert await events_of([after_error]) == [StreamEvent("error", "boom")]


async def test_done_marker_works_under_any_event_name() -> None:
    assert await events_of([sse(("content", "[DONE]"))]) == [StreamEvent("done")]


async def test_a_body_that_ends_after_the_result_without_done_is_a_finished_answer() -> None:
    got = await events_of([sse(("content", {"content": "all of it"}), ("result", {"aiRecord": RECORD}))])
    assert got == [
        StreamEvent("content", "all of it"),
        StreamEvent("result", record=RECORD),
        StreamEvent("done"),
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b": only a comment\n\n",
        sse(("content", {"content": ""})),
        sse(("content", {"content": "the first half of"})),
    ],
)
async def test_a_body_that_ends_without_done_or_result_is_interrupted(body: bytes) -> None:
    """A clean end of the body before `done` is a cut answer, never a complete-looking short one."""
    with pytest.raises(UpstreamError) as caught:
        await events_of([body])
    assert (caught.value.status, caught.value.code) == (0, "STREAM_INTERRUPTED")


async def test_an_explicit_done_without_text_is_an_empty_answer() -> None:
    assert await events_of([sse(("done", {}))]) == [StreamEvent("done")]


async def test_a_failed_result_record_is_an_error() -> None:
    failed = {"status": "FAILED", "aiRecordDetail": {"resultObject": []}}
    got = await events_of(
        [sse(("content", {"content": "x"}), ("result", {"aiRecord": failed}), ("done", {}))]
    )
    assert got == [
        StreamEvent("content", "x"),
        StreamEvent("error", "1min.ai reported the generation as FAILED"),
    ]


async def test_content_objects_without_text_and_unknown_events_are_skipped() -> None:
    got = await events_of(
        [sse(("content", {"content": None}), ("heartbeat", "{}"), ("content", {"delta": "?"}), ("done", {}))]
    )
    assert got == [StreamEvent("done")]


# --- the duplicate-full-text quirk ---------------------------------------------------------------


def _texts(events: list[StreamEvent]) -> str:
    return "".join(event.text for event in events if event.kind == "content")


async def test_duplicate_full_text_before_done_is_dropped() -> None:
    stream = sse(
        ("content", {"content": "Hello"}),
        ("content", {"content": " world"}),
        ("content", {"content": "Hello world"}),
        ("done", {}),
    )
    assert _texts(await events_of([stream])) == "Hello world"


async def test_duplicate_full_text_at_end_of_body_is_no_proof_of_a_whole_answer() -> None:
    stream = sse(("content", {"content": "Hello"}), ("content", {"content": " world"}))
    stream += sse(("content", {"content": "Hello world"}))
    with pytest.raises(UpstreamError, match="STREAM_INTERRUPTED"):
        await events_of([stream])


async def test_duplicate_full_text_before_a_result_with_that_text_is_dropped() -> None:
    record = {"status": "SUCCESS", "aiRecordDetail": {"resultObject": ["Hello world"]}}
    stream = sse(
        ("content", {"content": "Hello"}),
        ("content", {"content": " world"}),
        ("content", {"content": "Hello world"}),
        ("result", {"aiRecord": record}),
        ("done", {}),
    )
    got = await events_of([stream])
    assert _texts(got) == "Hello world"
    assert [event.kind for event in got] == ["content", "content", "result", "done"]


async def test_a_genuine_repetition_followed_by_more_text_is_kept() -> None:
    stream = sse(
        ("content", {"content": "ha"}),
        ("content", {"content": "ha"}),
        ("content", {"content": "!"}),
        ("done", {}),
    )
    assert _texts(await events_of([stream])) == "haha!"


async def test_a_genuine_final_repetition_confirmed_by_the_result_is_kept() -> None:
    record = {"status": "SUCCESS", "aiRecordDetail": {"resultObject": ["haha"]}}
    stream = sse(
        ("content", {"content": "ha"}), ("content", {"content": "ha"}), ("result", {"aiRecord": record})
    )
    assert _texts(await events_of([stream])) == "haha"


# --- bodies that are not SSE ---------------------------------------------------------------------


async def test_a_json_record_instead_of_a_stream_is_replayed_as_events() -> None:
    body = json.dumps({"aiRecord": RECORD}).encode()
    got = await served([body], content_type="application/json")
    assert got == [
        StreamEvent("content", FULL_TEXT),
        StreamEvent("result", record=RECORD),
        StreamEvent("done"),
    ]


async def test_a_json_error_with_status_200_raises_on_entry() -> None:
    body = json.dumps({"success": False, "error": {"code": "RATE_LIMITED", "message": "slow down"}}).encode()
    with pytest.raises(UpstreamError) as caught:
        await served([body], content_type="application/json")
    assert (caught.value.code, caught.value.message) == ("RATE_LIMITED", "slow down")


async def test_an_unexpected_content_type_is_an_invalid_response() -> None:
    with pytest.raises(UpstreamError) as caught:
        await served([b"<html>hi</html>"], content_type="text/html")
    assert caught.value.code == "INVALID_RESPONSE"


# --- the SSE framing itself ---------------------------------------------------------------------


def framed(*chunks: bytes) -> list[ServerSentEvent]:
    decoder = EventStreamDecoder()
    return [event for chunk in chunks for event in decoder.feed(chunk)]


@pytest.mark.parametrize(
    ("chunks", "events"),
    [
        # a CRLF split between two chunks is one line end, not an empty line that ends the event early
        ((b"event: result\r", b"\ndata: x\r\n\r\n"), [("result", "x")]),
        ((b"data: a\r", b"\r"), [("message", "a")]),  # CR CR: a line end, then the blank line
        ((b"data: a\r\r\n", b"\n"), [("message", "a")]),  # CR, CRLF, then LF: one event
        ((b"event: done\n\n",), [("done", "")]),  # a name without data still counts
        ((b"data\ndata:two\ndata:  three\n\n",), [("message", "\ntwo\n three")]),  # no colon; one space
        ((b": comment\nid: 7\nretry: 10\nfoo: bar\n\n",), []),  # nothing but ignored fields
        ((b"data: caf\xc3", b"\xa9 \xff\n\n"), [("message", "café \ufffd")]),  # split UTF-8; invalid byte
        ((b"data: cut off at the end\n",), []),  # an event without its blank line is not delivered
        ((b"data: a\n\nevent: x\n\ndata: b\n\n",), [("message", "a"), ("x", ""), ("message", "b")]),
    ],
)
def test_framing_follows_the_sse_rules(chunks: tuple[bytes, ...], events: list[tuple[str, str]]) -> None:
    assert framed(*chunks) == [ServerSentEvent(*event) for event in events]
