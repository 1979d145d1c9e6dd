"""aiohttp under `OneMinClient`: the session it sends through, and what each aiohttp failure means.

The client's retry rules (table in `upstream/client.py`) rest on one distinction: a failure while getting
a connection means nothing reached 1min.ai, so even a billed chat may be sent again; anything later means
the chat may have run, so it must not be. aiohttp's exceptions say which by their class:

| aiohttp exception                                           | UpstreamError        | sent? |
|-------------------------------------------------------------|----------------------|-------|
| `ConnectionTimeoutError` (DNS, TCP and TLS connect)          | 0 TIMEOUT            | no    |
| `ClientConnectorError` (refused, DNS, TLS, certificate)      | 0 CONNECT_ERROR      | no    |
| `SocketTimeoutError` (no byte for the read timeout)          | 0 TIMEOUT            | maybe |
| `ClientPayloadError` from an undecodable `Content-Encoding`  | 200 INVALID_RESPONSE | yes   |
| any other `ClientError`: closed or reset after sending, a    | 0 NETWORK_ERROR      | maybe |
| truncated body, an answer that is not HTTP                   |                      |       |

Once a stream's body has begun, a timeout is 0 TIMEOUT and a lost connection 0 STREAM_INTERRUPTED. Messages
never repeat aiohttp's text (it names URLs); `details.reason` names the exception class.

Timeouts: `connect` (DNS + TCP + TLS, also per address) is `upstream_connect_timeout`; `sock_read` (between
bytes, started once the request is sent) is the call's read timeout. aiohttp has no write timeout: an upload
to a peer that stops reading without closing waits until the relay's own caller goes away.
"""

from __future__ import annotations

import functools
import os
import ssl

import aiohttp
import certifi
from aiohttp.http_exceptions import ContentEncodingError

from onemin_relay import USER_AGENT
from onemin_relay.upstream.errors import UpstreamError

__all__ = [
    "client_timeout",
    "nothing_sent",
    "open_session",
    "request_error",
    "ssl_context",
    "stream_error",
    "unreadable",
]

_KEEPALIVE_SECONDS = 5.0  # a short idle life keeps "the server closed it as we sent" rare


def open_session() -> aiohttp.ClientSession:
    """One pooled session, made inside the running event loop. No cap on connections: the client caps the
    calls in flight itself (`UPSTREAM_MAX_IN_FLIGHT`), and answers 503 at once instead of queueing."""
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=_KEEPALIVE_SECONDS, ssl=ssl_context())
    return aiohttp.ClientSession(
        connector=connector,
        headers={"User-Agent": USER_AGENT},
        cookie_jar=aiohttp.DummyCookieJar(),  # no state carried from one caller's call to another's
        # No trust_env: it would read ~/.netrc and the proxy variables in a worker thread on every call.
    )


@functools.cache  # loading the CA bundle takes milliseconds: once per process
def ssl_context() -> ssl.SSLContext:
    """certifi's CA bundle (as httpx used), unless SSL_CERT_FILE or SSL_CERT_DIR names another."""
    if cafile := os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=cafile)
    if capath := os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=capath)
    return ssl.create_default_context(cafile=certifi.where())


def client_timeout(*, connect: float, read: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, connect=connect, sock_connect=connect, sock_read=read)


def nothing_sent(exc: aiohttp.ClientError) -> bool:
    """The failure happened while getting a connection: no byte of the request reached 1min.ai."""
    return isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError)


def unreadable(exc: aiohttp.ClientError) -> bool:
    """An answer arrived but its body cannot be decoded: sending again would get the same."""
    return isinstance(exc, aiohttp.ClientPayloadError) and isinstance(exc.__cause__, ContentEncodingError)


def request_error(exc: aiohttp.ClientError) -> UpstreamError:
    """A failure before or while reading a whole answer."""
    reason = {"reason": type(exc).__name__}
    if unreadable(exc):
        return UpstreamError(200, "INVALID_RESPONSE", "1min.ai's answer could not be read.", reason)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return UpstreamError(0, "TIMEOUT", "Connecting to 1min.ai timed out.", reason)
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return UpstreamError(0, "TIMEOUT", "1min.ai did not answer in time.", reason)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamError(0, "CONNECT_ERROR", "Could not connect to 1min.ai.", reason)
    return UpstreamError(0, "NETWORK_ERROR", "The connection to 1min.ai failed before it answered.", reason)


def stream_error(exc: aiohttp.ClientError) -> UpstreamError:
    """A failure once a streamed body has begun."""
    if unreadable(exc):
        return request_error(exc)
    reason = {"reason": type(exc).__name__}
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return UpstreamError(0, "TIMEOUT", "1min.ai stopped sending data mid-stream.", reason)
    return UpstreamError(0, "STREAM_INTERRUPTED", "The connection to 1min.ai dropped mid-stream.", reason)
