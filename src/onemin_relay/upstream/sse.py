"""Decoding 1min.ai's chat stream: bytes → SSE events → `StreamEvent`s, tolerant of every quirk seen live.

`EventStreamDecoder` frames the bytes by the SSE spec's rules: a line ends with LF, CRLF or a lone CR
(a CRLF split between two network chunks included); the `data:` lines of one event are joined with `\n`;
a blank line ends the event; `:` starts a comment; one space after a field's colon is dropped; a line
without a colon is a field with an empty value; `id` and `retry` are ignored (the relay never
reconnects). It splits bytes, not text: UTF-8 never uses the bytes of CR or LF inside a multi-byte
character, so a chunk boundary anywhere is harmless, and a value is decoded (invalid UTF-8 → U+FFFD)
once its line is whole, whatever charset the response claims. As httpx-sse did before it, an event with
a name but no data is still delivered, an event without a name is a `message`, and an unfinished event at
the end of the body is dropped; a byte-order mark is not stripped (1min.ai sends none).

On top of the framing, what is specific to 1min.ai (reference §3.6):

- event names: `content` (or no `event:` line at all), `result`, `done`, `error`; others are ignored;
- `data: [DONE]` ends the stream whatever the event name;
- `content` data that is a JSON object yields its `content` string; data that is not a JSON object is
  literal text (legacy fallback); empty text is dropped;
- `error` data may be `{"error": "…"}`, `{"error": {"message": …}}`, `{"message": …}` or raw text;
- a `result` whose record status is not SUCCESS is reported as an `error`;
- a body that ends cleanly without `done` is a finished answer (`done` is added) only if it carried a
  `result`; otherwise the answer may have been cut anywhere, and it raises `UpstreamError`
  `STREAM_INTERRUPTED`, as a dropped connection does (clients must tell a cut answer from a whole one);
- the duplicate-full-text quirk (see `ChatEventDecoder`).

The sequence a consumer sees: any number of `content`, at most one `result`, then exactly one `done` or
`error` (or the raised `STREAM_INTERRUPTED`), and nothing after it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import orjson

from onemin_relay.upstream.errors import UpstreamError


class ServerSentEvent(NamedTuple):
    """One framed SSE event (a tuple: it is made for every event of every stream)."""

    event: str  # "message" when the event had no `event:` line
    data: str


class EventStreamDecoder:
    """Incremental SSE framing: `feed(chunk)` → the events that chunk completed, in order."""

    def __init__(self) -> None:
        self._tail = b""  # the unfinished last line
        self._skip_lf = False  # the previous chunk ended with CR: an LF starting this one belongs to it
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[0] == 0x0A:
                chunk = chunk[1:]
        data = self._tail + chunk if self._tail else chunk
        lines = data.splitlines()  # bytes split only at LF, CRLF and CR, as SSE wants
        if data[-1:] in (b"\n", b"\r"):  # every line is whole
            self._tail = b""
            self._skip_lf = data[-1] == 0x0D
        elif lines:
            self._tail = lines.pop()
        events: list[ServerSentEvent] = []
        for line in lines:
            if not line:
                if self._event or self._data:
                    events.append(ServerSentEvent(self._event or "message", "\n".join(self._data)))
                    self._event, self._data = "", []
                continue
            name, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                self._data.append(value.decode("utf-8", "replace"))
            elif name == b"event":
                self._event = value.decode("utf-8", "replace")
            # anything else: a comment (empty name), `id`, `retry` or an unknown field, all ignored
        return events


@dataclass(frozen=True)
class StreamEvent:
    """One event of a chat stream, already decoded."""

    kind: Literal["content", "result", "done", "error"]
    text: str = ""  # the delta for `content`, the message for `error`
    record: dict[str, Any] | None = None  # the aiRecord for `result`


DONE = StreamEvent("done")
_DEFAULT_ERROR = "1min.ai reported an error while generating the answer"


def record_text(record: dict[str, Any]) -> str | None:
    """The answer text of a chat record (`aiRecordDetail.resultObject[0]`), if it has one."""
    detail = record.get("aiRecordDetail")
    result = detail.get("resultObject") if isinstance(detail, dict) else None
    if isinstance(result, str):
        return result
    if isinstance(result, list) and result and isinstance(result[0], str):
        return result[0]
    return None


def _json_object(data: str) -> dict[str, Any] | None:
    try:
        value = orjson.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _error_message(data: str) -> str:
    payload = _json_object(data)
    if payload is None:
        return data.strip() or _DEFAULT_ERROR
    inner = payload.get("error")
    for candidate in (inner.get("message") if isinstance(inner, dict) else inner, payload.get("message")):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return _DEFAULT_ERROR


def classify(sse: ServerSentEvent) -> StreamEvent | None:
    """One SSE event → one StreamEvent (or None for events that carry nothing for the relay)."""
    if sse.data.strip() == "[DONE]":
        return DONE
    name = sse.event  # "message" when the event had no `event:` line
    if name in ("content", "message"):
        payload = _json_object(sse.data)
        if payload is None:
            text = sse.data
        elif isinstance(payload.get("content"), str):
            text = payload["content"]
        elif "error" in payload:
            return StreamEvent("error", _error_message(sse.data))
        else:
            return None
        return StreamEvent("content", text) if text else None
    if name == "result":
        payload = _json_object(sse.data)
        record = payload.get("aiRecord", payload) if payload is not None else None
        if not isinstance(record, dict) or ("aiRecordDetail" not in record and "status" not in record):
            return None
        if record.get("status", "SUCCESS") != "SUCCESS":
            status = record.get("status")
            return StreamEvent("error", f"1min.ai reported the generation as {status}")
        return StreamEvent("result", record=record)
    if name == "done":
        return DONE
    if name == "error":
        return StreamEvent("error", _error_message(sse.data))
    return None


class ChatEventDecoder:
    """Applies `classify` in order and removes the duplicate-full-text final chunk.

    Some models (gpt-5.4 family) send, as their last `content` event, the whole answer again. The rule:
    a chunk that equals the whole non-empty text emitted so far is *held back* until the next event
    shows what it was:
    - more `content` follows → it was a genuine repetition ("ha" + "ha"): emit it, carry on;
    - a `result` follows whose text equals what was emitted plus the chunk → genuine: emit it;
      any other `result` (normally: its text equals what was emitted) → duplicate: drop it;
    - `done`, `error`, or the end of the body follows → duplicate: drop it.
    Only such a chunk is ever delayed, so ordinary streaming keeps its latency.
    """

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self._held: str | None = None
        self._saw_result = False
        self.finished = False

    def _emit(self, event: StreamEvent) -> StreamEvent:
        self._parts.append(event.text)
        self._length += len(event.text)
        return event

    def _is_full_repeat(self, text: str) -> bool:
        return self._length > 0 and len(text) == self._length and text == "".join(self._parts)

    def decode(self, sse: ServerSentEvent) -> list[StreamEvent]:
        event = None if self.finished else classify(sse)
        if event is None:
            return []
        out: list[StreamEvent] = []
        held, self._held = self._held, None
        if held is not None and (
            event.kind == "content"
            or (
                event.kind == "result"
                and event.record is not None
                and record_text(event.record) == "".join(self._parts) + held
            )
        ):
            out.append(self._emit(StreamEvent("content", held)))
        if event.kind == "content":
            if self._is_full_repeat(event.text):
                self._held = event.text
            else:
                out.append(self._emit(event))
        else:
            out.append(event)
            self._saw_result = self._saw_result or event.kind == "result"
            self.finished = event.kind in ("done", "error")
        return out

    def finish(self) -> list[StreamEvent]:
        """The body ended cleanly without `done`. After the `result` record the answer is whole (a held
        chunk is dropped); before it, the body was cut, and that is a failure, not a short answer."""
        if self.finished:
            return []
        self.finished = True
        self._held = None
        if not self._saw_result:
            what = "before finishing the answer" if self._length else "without sending an answer"
            raise UpstreamError(0, "STREAM_INTERRUPTED", f"1min.ai ended the stream {what} (no done event).")
        return [DONE]


async def server_sent_events(chunks: AsyncIterable[bytes]) -> AsyncGenerator[ServerSentEvent, None]:
    """The SSE events of a body, as its chunks arrive."""
    decoder = EventStreamDecoder()
    async for chunk in chunks:
        for sse in decoder.feed(chunk):
            yield sse


async def chat_events(chunks: AsyncIterable[bytes]) -> AsyncIterator[StreamEvent]:
    """Decode a whole stream body; stops right after the terminal `done`/`error` without reading further."""
    framing = EventStreamDecoder()
    decoder = ChatEventDecoder()
    async for chunk in chunks:
        for sse in framing.feed(chunk):
            for event in decoder.decode(sse):
                yield event
            if decoder.finished:
                return
    for event in decoder.finish():
        yield event
