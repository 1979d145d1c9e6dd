"""Decoding 1min.ai's chat stream: SSE events → `StreamEvent`s, tolerant of every quirk seen live.

Byte-level framing (line endings, multi-line `data:`, `:` comments, events split across network chunks
anywhere, including inside a multi-byte UTF-8 character) is done by httpx's incremental text decoder
and `httpx-sse`. This module adds what is specific to 1min.ai (reference §3.6):

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

import json
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from httpx_sse import ServerSentEvent

from onemin_relay.upstream.errors import UpstreamError


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
        value = json.loads(data)
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
    name = sse.event  # httpx-sse reports a missing `event:` line as "message"
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

    def _emit(self, text: str) -> StreamEvent:
        self._parts.append(text)
        self._length += len(text)
        return StreamEvent("content", text)

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
            out.append(self._emit(held))
        if event.kind == "content":
            if self._is_full_repeat(event.text):
                self._held = event.text
            else:
                out.append(self._emit(event.text))
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


async def chat_events(sse_events: AsyncIterable[ServerSentEvent]) -> AsyncIterator[StreamEvent]:
    """Decode a whole stream; stops right after the terminal `done`/`error` without reading further."""
    decoder = ChatEventDecoder()
    async for sse in sse_events:
        for event in decoder.decode(sse):
            yield event
        if decoder.finished:
            return
    for event in decoder.finish():
        yield event
