"""Relay a stored 1min.ai asset to the client as it arrives from the CDN, never buffered whole."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from onemin_relay.upstream.client import OneMinClient


async def stream_asset(upstream: OneMinClient, location: str, media_type: str) -> StreamingResponse:
    """A streaming response of the asset at `location` (key or URL).

    The download is opened before the response starts, so a CDN failure is still an OpenAI error; it is
    closed when the body has been sent, or when the client went away before that."""
    stack = contextlib.AsyncExitStack()
    _, chunks = await stack.enter_async_context(upstream.stream_download(location))
    return StreamingResponse(
        _relay(chunks, stack), media_type=media_type, background=BackgroundTask(stack.aclose)
    )


async def _relay(chunks: AsyncIterator[bytes], stack: contextlib.AsyncExitStack) -> AsyncIterator[bytes]:
    try:
        async for chunk in chunks:
            yield chunk
    finally:
        await stack.aclose()
