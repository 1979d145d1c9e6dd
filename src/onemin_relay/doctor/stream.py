"""One streamed chat as the wire carried it: every SSE event in order, including any after an `error`
(the relay's decoder stops there, but §18.2 asks what follows), read with the relay's own SSE parser."""

from __future__ import annotations

import json
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from onemin_relay.doctor.observation import Masker, Observation, from_failure, from_response, read_body
from onemin_relay.upstream.client import OneMinClient
from onemin_relay.upstream.errors import UpstreamError
from onemin_relay.upstream.sse import (
    ChatEventDecoder,
    ServerSentEvent,
    StreamEvent,
    classify,
    server_sent_events,
)

MAX_EVENTS = 10_000


@dataclass
class StreamedChat:
    answer: Observation  # status and headers; the body too when it was not an event stream
    events: list[ServerSentEvent] = field(default_factory=list)
    interrupted: str | None = None  # why the body ended early, if it did

    @property
    def is_sse(self) -> bool:
        return self.answer.status == 200 and self.answer.content_type.startswith("text/event-stream")

    def decoded(self) -> list[StreamEvent]:
        """What the relay makes of the events (duplicate final chunk dropped, nothing after the end)."""
        decoder = ChatEventDecoder()
        out = [event for sse in self.events for event in decoder.decode(sse)]
        return out + decoder.finish()

    def kinds(self) -> list[str]:
        """The wire's event kinds, one per event (the event's own name for one the relay skips)."""
        return [event.kind if (event := classify(sse)) else sse.event for sse in self.events]

    def describe(self, mask: Masker) -> str:
        """`200 text/event-stream: content×5, result, done`, or the answer when it was not a stream."""
        if not self.is_sse:
            return self.answer.describe(mask)
        kinds: list[str] = []
        for kind in self.kinds():
            name, _, count = kinds[-1].partition("×") if kinds else ("", "", "")
            if name == kind:
                kinds[-1] = f"{kind}×{int(count or 1) + 1}"
            else:
                kinds.append(kind)
        tail = f", then the connection failed ({self.interrupted})" if self.interrupted else ""
        return f"200 {self.answer.content_type}: {', '.join(kinds) or 'no events'}{tail}"

    def first_content(self) -> str | None:
        """The text of the first `content` event as sent, empty text included (None: there was none)."""
        for sse in self.events:
            if sse.event in ("content", "message"):
                try:
                    data: Any = json.loads(sse.data)
                except ValueError:
                    return sse.data
                return (
                    data.get("content")
                    if isinstance(data, dict) and isinstance(data.get("content"), str)
                    else None
                )
        return None


async def stream_chat(
    client: OneMinClient, api_key: str, payload: dict[str, Any], *, cut_after_content: bool = False
) -> StreamedChat:
    """POST /api/chat-with-ai?isStreaming=true; with `cut_after_content` the client hangs up after the
    first non-empty `content` event, as a user closing the chat would."""
    try:
        async with client.exchange(
            "POST",
            "/api/chat-with-ai",
            api_key,
            params={"isStreaming": "true"},
            json=payload,
            headers={"Accept": "text/event-stream"},
        ) as response:
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                return StreamedChat(from_response(response, await read_body(response)))
            streamed = StreamedChat(from_response(response, b""))
            try:
                async with aclosing(server_sent_events(response.chunks)) as events:
                    async for sse in events:
                        streamed.events.append(sse)
                        event = classify(sse)
                        if len(streamed.events) >= MAX_EVENTS or (
                            cut_after_content and event is not None and event.kind == "content"
                        ):
                            break
            except UpstreamError as exc:
                streamed.interrupted = exc.code
            return streamed
    except UpstreamError as exc:
        return StreamedChat(from_failure(exc))
