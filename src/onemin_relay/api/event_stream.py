"""`text/event-stream` responses, whatever the dialect: a body of SSE bytes and a closer that releases
the upstream calls behind it, run however the response ends (complete, client gone, error).

A client that goes away mid-stream is noticed by the request layer's hang-up watch (`hang_up.py`), which
cancels the request; the stream then needs no disconnect listener of its own (Starlette's costs a task
group and a task per stream). Without a watch (a body not read, an app without the request layer) it
falls back to Starlette's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from onemin_relay.fastjson import dumps
from onemin_relay.hang_up import watching

KEEPALIVE = b": keep-alive\n\n"


def sse_data(data: Mapping[str, Any], event: str | None = None) -> bytes:
    """One SSE event carrying `data` as compact JSON (with an `event:` line when named)."""
    line = b"data: " + dumps(data) + b"\n\n"
    return f"event: {event}\n".encode() + line if event else line


class EventStreamResponse(StreamingResponse):
    """Streams `body`; always awaits `close` when the response ends, however it ends."""

    def __init__(self, body: AsyncIterator[bytes], close: Callable[[], Awaitable[None]]) -> None:
        self._body = body
        self._close = close
        super().__init__(
            body,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if watching(scope):
                await self.stream_response(send)
            else:
                await super().__call__(scope, receive, send)
        finally:
            aclose = getattr(self._body, "aclose", None)
            if aclose is not None:
                await aclose()
            await self._close()
