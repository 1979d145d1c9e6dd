"""Stored 1min.ai assets fetched from the CDN: relayed as they arrive, or read whole (bounded)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from onemin_relay.errors import OpenAIError
from onemin_relay.upstream.client import OneMinClient
from onemin_relay.upstream.errors import UpstreamError


async def stream_asset(upstream: OneMinClient, location: str, media_type: str) -> StreamingResponse:
    """A streaming response of the asset at `location` (key or URL).

    The download is opened before the response starts, so a CDN failure is still an OpenAI error; it is
    closed when the body has been sent, or when the client went away before that."""
    stack = contextlib.AsyncExitStack()
    with _missing_asset_is_upstream_failure():
        _, chunks = await stack.enter_async_context(upstream.stream_download(location))
    return StreamingResponse(
        _relay(chunks, stack), media_type=media_type, background=BackgroundTask(stack.aclose)
    )


async def download_asset(upstream: OneMinClient, location: str, *, max_bytes: int) -> bytes:
    """The bytes of the asset at `location` (key or URL); past `max_bytes` is an upstream failure."""
    with _missing_asset_is_upstream_failure():
        content, _ = await upstream.download(location, max_bytes=max_bytes)
    return content


@contextlib.contextmanager
def _missing_asset_is_upstream_failure() -> Iterator[None]:
    """A CDN 404 is 1min.ai losing a file it stored, not the `model_not_found` a 404 means on its API."""
    try:
        yield
    except UpstreamError as exc:
        if exc.status not in (404, 410):
            raise
        raise OpenAIError(
            502, f"1min.ai no longer serves a file it stored (HTTP {exc.status}).", code="upstream_error"
        ) from None


async def _relay(chunks: AsyncIterator[bytes], stack: contextlib.AsyncExitStack) -> AsyncIterator[bytes]:
    try:
        async for chunk in chunks:
            yield chunk
    finally:
        await stack.aclose()
