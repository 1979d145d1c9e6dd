"""The production transport under `OneMinClient`: httpx's API on aiohttp's connection pool.

httpcore's pool slows down sharply under concurrency; aiohttp's does not (see docs/http-client.md), so
the client sends through `httpx_aiohttp.AiohttpTransport`. That transport's own exception mapping turns
every `aiohttp.ClientConnectionError` — a server disconnect after the request went out included — into
`httpx.ConnectTimeout`, which the client's retry rules read as "nothing reached 1min.ai" and retry even
for billed calls. `_SafeTransport` maps again, from the original aiohttp exception, by when it can
happen: only failures while getting a connection become connect errors; anything later becomes a read
or protocol error, so a chat that may have run is never run twice.

Timeouts come from each request's httpx `timeout` extension, as AiohttpTransport maps them: `connect`
→ aiohttp `sock_connect` (TCP + TLS), `read` → `sock_read` (between bytes, started once the request
body is sent), `pool` → aiohttp `connect` (pool wait, DNS and connect together). `write` is not
honoured: aiohttp has no write timeout, so an upload to a peer that stops reading (without closing)
waits until the relay's own caller goes away.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from onemin_relay.config import Settings

__all__ = ["aiohttp_transport"]

_KEEPALIVE_SECONDS = 5.0  # httpx's default: a short idle life keeps "server closed it as we sent" rare


def aiohttp_transport(settings: Settings) -> httpx.AsyncBaseTransport:
    """The transport `OneMinClient` uses unless it is given another one."""

    ssl_context = httpx.create_ssl_context()  # the CA bundle httpx would use (certifi, SSL_CERT_FILE)

    def session() -> aiohttp.ClientSession:  # called on first use, inside the running event loop
        connector = aiohttp.TCPConnector(
            limit=settings.upstream_max_connections,
            keepalive_timeout=_KEEPALIVE_SECONDS,
            ssl=ssl_context,
        )
        # No trust_env: it would read ~/.netrc and the proxy variables in a worker thread on every call.
        return aiohttp.ClientSession(connector=connector)

    return _SafeTransport(AiohttpTransport(verify=ssl_context, client=session))


@contextmanager
def _sent_or_not() -> Iterator[None]:
    """Re-raise an aiohttp failure as what it means to the retry rules: was the request possibly sent?"""
    try:
        yield
    except (httpx.TransportError, aiohttp.ClientError) as exc:
        cause = exc.__cause__ if isinstance(exc, httpx.TransportError) else exc
        if not isinstance(cause, aiohttp.ClientError):
            raise  # httpx's own errors already mean what they say
        raise _httpx_error(cause) from cause


def _httpx_error(cause: aiohttp.ClientError) -> httpx.TransportError:
    message = str(cause)
    if isinstance(cause, aiohttp.ConnectionTimeoutError):  # waiting for a pooled or a new connection
        return httpx.ConnectTimeout(message)
    if isinstance(cause, aiohttp.ClientConnectorError):  # refused, DNS, TLS: before any byte was sent
        return httpx.ConnectError(message)
    if isinstance(cause, aiohttp.ServerTimeoutError):  # sock_read
        return httpx.ReadTimeout(message)
    if isinstance(cause, aiohttp.ServerDisconnectedError):  # closed without answering, as httpcore says
        return httpx.RemoteProtocolError(message)
    if isinstance(cause, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError):
        # Reset, broken pipe, truncated body: the request had a connection, so it may have been sent.
        return httpx.ReadError(message)
    # An answer that is not HTTP.
    return httpx.RemoteProtocolError(message)


class _SafeTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: AiohttpTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with _sent_or_not():
            response = await self._inner.handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _SafeStream(response.stream)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class _SafeStream(httpx.AsyncByteStream):
    """The response body as aiohttp reads it: chunk by chunk as it arrives. Closing it before its end
    closes the connection (aiohttp pools only fully read responses), which is how a client that went
    away cancels the generation upstream."""

    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _sent_or_not():
            async for chunk in self._inner:
                yield chunk

    async def aclose(self) -> None:
        with _sent_or_not():
            await self._inner.aclose()
