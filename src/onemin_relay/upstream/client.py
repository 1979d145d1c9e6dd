"""The pooled async 1min.ai client: the only code that sends anything to 1min.ai.

Retry rules (`OneMinClient._with_retries`): at most `upstream_max_retries` extra attempts, waiting
`Retry-After` when upstream gave one (seconds or HTTP date) and full-jitter exponential backoff
otherwise. A `Retry-After` above `RetryPolicy.max_retry_after` is not waited out: the 429 goes straight
back to the caller (with its `retry_after`).

Unbilled calls: GET /models, GET /api/results, asset upload, asset download.
Billed calls: chat (JSON and stream) and features — upstream may charge for anything it started.

| failure                                                 | unbilled call | billed call                  |
|---------------------------------------------------------|---------------|------------------------------|
| connect error, connect or pool-wait timeout (not sent)  | retried       | retried                      |
| HTTP 429 (rejected before processing)                   | retried       | retried                      |
| HTTP 5xx (incl. Cloudflare 52x)                         | retried       | not retried: it may have run |
| read timeout, connection lost or closed after sending   | retried       | not retried: it may have run |
| any other 4xx, disallowed URL, undecodable answer       | not retried   | not retried                  |
| failure after a stream's body began                     | never retried: the caller already has part of it |
| circuit open (`upstream/breaker.py`; nothing sent)      | not retried: 503 + Retry-After to the caller     |
| `UPSTREAM_MAX_IN_FLIGHT` calls already running          | not sent: 503 RELAY_OVERLOADED + Retry-After     |

`upstream/http.py` says which row each aiohttp failure falls into.

Key failover (AUTH_MODE keys/both, `upstream/keys.py`): when a key of the relay's own pool is refused
as out of credits (402 / INSUFFICIENT_CREDITS) or rate limited (429), the next pool key takes the
call at once. Both are refusals before processing, so a billed call is never run twice; every other
failure keeps the rows above. A caller's own key (passthrough) never fails over.

Timeouts: connect `upstream_connect_timeout`; read `upstream_timeout` (chat, results, models, assets)
or `upstream_media_timeout` (features); a stream has no overall limit once its headers arrived, only
`upstream_timeout` between bytes. Only the configured API host, asset host and the S3 forms of the
asset bucket (where `temporaryUrl`s point) are ever contacted: every request is checked before it is
sent, and downloads follow redirects by hand (at most `_MAX_REDIRECTS`), checking each hop.

Calls in flight (`upstream_max_in_flight`): a call holds a slot from its first attempt until its answer
is read (a stream: until it is closed); a call beyond the cap fails at once with 503 `RELAY_OVERLOADED`
and `Retry-After`, before anything is sent. The connection pool itself has no cap, so nothing ever waits
silently for a connection.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from typing import IO, Any, TypeVar
from urllib.parse import quote, unquote

import aiohttp
import orjson
from yarl import URL

from onemin_relay.config import Settings
from onemin_relay.fastjson import dumps
from onemin_relay.observability import current_record, note_credits, note_upstream_error, timing_upstream
from onemin_relay.translate.credits import feature_credits
from onemin_relay.translate.tokens import upstream_credits
from onemin_relay.upstream.breaker import CIRCUIT_OPEN, Circuits
from onemin_relay.upstream.errors import (
    RELAY_OVERLOADED,
    UpstreamError,
    error_from_payload,
    error_from_response,
    failed_record_error,
    invalid_response,
    redact,
    short_message,
)
from onemin_relay.upstream.http import (
    client_timeout,
    nothing_sent,
    open_session,
    request_error,
    stream_error,
    unreadable,
)
from onemin_relay.upstream.keys import Balance, UpstreamKeyPool, balance_of, failover_reason, key_hash
from onemin_relay.upstream.sse import DONE, StreamEvent, chat_events, record_text

__all__ = ["Asset", "OneMinClient", "RawResponse", "RetryPolicy", "StreamEvent"]

log = logging.getLogger("onemin_relay.upstream")

T = TypeVar("T")

_JSON_BODY_LIMIT = 32 * 1024 * 1024  # the model catalogue is the largest JSON answer (~100 kB)
_ERROR_BODY_LIMIT = 64 * 1024
_UPLOAD_CHUNK = 256 * 1024
_DRAIN_SECONDS = 0.5  # how long a finished stream may take to end its body before we just close it
_MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_OVERLOAD_RETRY_AFTER = 1
_SENDABLE_KEY = re.compile(r"^[\x21-\x7e]{1,512}$")
_SAFE_RESULT_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*$")
_HAS_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# Characters left as they are when a storage key becomes a URL path; everything else is escaped.
_KEY_SAFE_CHARS = "/~!$&'()*+,;=:@"
# Characters left as they are in an absolute URL (existing %-escapes included): it is sent as given, so a
# signed URL keeps its exact bytes; only what cannot appear in a URL at all (spaces, non-ASCII) is escaped.
_URL_SAFE_CHARS = "!#$%&'()*+,/:;=?@[]~"
_JSON = {"Accept": "application/json", "Content-Type": "application/json"}
_SSE = {"Accept": "text/event-stream", "Content-Type": "application/json"}
_ANY = {"Accept": "*/*"}


@dataclass(frozen=True)
class Asset:
    """What the Asset API returned for one upload."""

    path: str  # fileContent.path (= asset.key): for attachments.images, imageUrl, audioUrl, maskUrl
    uuid: str  # fileContent.uuid: for attachments.files
    name: str
    size: int
    mime_type: str


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait between attempts, and between polls of an async feature's result.

    `sleep` is where every wait happens, so tests can record the waits instead of spending them.
    """

    max_retries: int = 2
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 30.0
    poll_interval: float = 1.0
    max_poll_interval: float = 10.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def backoff(self, retry: int) -> float:
        """Full jitter: spreads the retries of many callers that failed together."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**retry))


def _may_retry(failure: Exception, *, billed: bool) -> bool:
    if isinstance(failure, UpstreamError):
        if failure.code == CIRCUIT_OPEN:
            return False  # the circuit says when to try again: Retry-After goes to the caller
        return failure.status == 429 or (not billed and failure.status >= 500)
    assert isinstance(failure, aiohttp.ClientError)
    return nothing_sent(failure) or (not billed and not unreadable(failure))


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The body, or None as soon as it grows past `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await response.content.readany():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_prefix(response: aiohttp.ClientResponse, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit and (chunk := await response.content.readany()):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)[:limit]


def _decode_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except ValueError:
        raise invalid_response("1min.ai answered with a body that is not JSON.") from None


def _media_type(headers: Mapping[str, str]) -> str:
    value = headers.get("Content-Type", "").partition(";")[0].strip().lower()
    return value if _MEDIA_TYPE.match(value) else "application/octet-stream"


def _record_of(body: Any) -> dict[str, Any] | None:
    """`aiRecord` of a 200 answer; None for `{"aiRecord": null}`; an error-shaped 200 raises."""
    if isinstance(body, dict) and "aiRecord" in body:
        record = body["aiRecord"]
        if record is None or isinstance(record, dict):
            return record
    raise error_from_payload(200, body) or invalid_response("1min.ai answered without an aiRecord.")


def _required_record(body: Any, what: str) -> dict[str, Any]:
    """`aiRecord` of a 200 answer to a billed call, where `{"aiRecord": null}` makes no sense."""
    record = _record_of(body)
    if record is None:
        raise invalid_response(f"1min.ai answered the {what} with an empty aiRecord.")
    return record


@contextmanager
def _masking(api_key: str) -> Iterator[None]:
    """Whatever UpstreamError leaves the block carries neither the key nor an 8+ character prefix of it
    (error bodies are masked before they are cut; this also covers error-shaped 200 answers)."""
    try:
        yield
    except UpstreamError as exc:
        raise redact(exc, api_key) from exc.__cause__


def _check_succeeded(record: dict[str, Any]) -> dict[str, Any]:
    if record.get("status", "SUCCESS") != "SUCCESS":
        raise failed_record_error(record)
    return record


def _note_credits(record: dict[str, Any]) -> None:
    metadata = record.get("metadata")
    note_credits(upstream_credits(metadata if isinstance(metadata, dict) else None))


def _note_feature_credits(record: dict[str, Any], payload: dict[str, Any]) -> None:
    """A media record's credits: 1min.ai reports none inline, so the catalogue price, marked estimated."""
    metadata = record.get("metadata")
    credits = upstream_credits(metadata if isinstance(metadata, dict) else None)
    if credits is not None or record.get("status", "SUCCESS") != "SUCCESS":
        note_credits(credits)
        return
    detail = record.get("aiRecordDetail")
    results = detail.get("resultObject") if isinstance(detail, dict) else None
    prompt_object = payload.get("promptObject")
    estimate = feature_credits(
        current_record().prices or {},
        prompt_object if isinstance(prompt_object, dict) else {},
        len(results) if isinstance(results, list) else 1,
    )
    note_credits(estimate, estimated=True)


def _noted(error: UpstreamError) -> UpstreamError:
    """A mid-stream failure, counted in the request's record."""
    note_upstream_error(error.status, error.code)
    return error


def _form_quote(value: str) -> str:
    """A multipart parameter value, escaped the way browsers do."""
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


class _AssetBody:
    """A one-part multipart body (`asset`) streamed from bytes or a seekable binary file.

    Files are read in a worker thread, chunk by chunk, so a large upload neither blocks the event loop
    nor is copied into memory; each attempt rewinds to where the file was when the upload began.
    """

    def __init__(self, filename: str, content: bytes | IO[bytes], content_type: str) -> None:
        self.boundary = secrets.token_hex(16)
        media_type = content_type.partition(";")[0].strip()
        media_type = media_type if _MEDIA_TYPE.match(media_type) else "application/octet-stream"
        self._head = (
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="asset"; filename="{_form_quote(filename)}"\r\n'
            f"Content-Type: {media_type}\r\n\r\n"
        ).encode()
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        self._content = content
        if isinstance(content, bytes):
            self._start, self.size = 0, len(content)
        else:  # seek/tell only move a file offset: no I/O worth a thread
            self._start = content.tell()
            self.size = content.seek(0, 2) - self._start
            content.seek(self._start)
        self.length = len(self._head) + self.size + len(self._tail)

    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": f"multipart/form-data; boundary={self.boundary}",
            "Content-Length": str(self.length),
        }

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self._head
        content = self._content
        if isinstance(content, bytes):
            yield content
        else:
            await asyncio.to_thread(content.seek, self._start)
            while chunk := await asyncio.to_thread(content.read, _UPLOAD_CHUNK):
                yield chunk
        yield self._tail


@dataclass(frozen=True)
class RawResponse:
    """An answer as received (`OneMinClient.exchange`): status, headers, and the body as it arrives.

    Iterating `chunks` raises UpstreamError (TIMEOUT, STREAM_INTERRUPTED, INVALID_RESPONSE) if the body
    fails part-way."""

    status: int
    headers: Mapping[str, str]  # case-insensitive
    chunks: AsyncIterator[bytes]


class OneMinClient:
    """Every 1min.ai call the relay makes, over one pooled `aiohttp.ClientSession` (`upstream/http.py`).

    `retry` replaces the retry pacing; `keys` is the relay's own key pool, whose keys fail over to each
    other (`upstream/keys.py`).
    """

    def __init__(
        self, settings: Settings, *, retry: RetryPolicy | None = None, keys: UpstreamKeyPool | None = None
    ) -> None:
        self._settings = settings
        self._keys = keys or UpstreamKeyPool(())
        self._balances: dict[str, Balance] = {}  # key hash → the credit its last record showed
        self._retry = retry or RetryPolicy(max_retries=settings.upstream_max_retries)
        self.circuits = Circuits(settings.upstream_breaker_failures, settings.upstream_breaker_cooldown)
        api, assets = URL(settings.onemin_api_url), URL(settings.onemin_asset_url)
        # Settings accepts only http(s)://host… URLs
        assert api.host is not None
        assert assets.host is not None
        self._origins = {(api.scheme, api.host, api.port), (assets.scheme, assets.host, assets.port)}
        self._api_origin = (api.scheme, api.host, api.port)
        self._api_base = settings.onemin_api_url.rstrip("/")
        self._asset_base = settings.onemin_asset_url.rstrip("/")
        bucket = re.escape(assets.host)
        self._bucket_host = re.compile(rf"^{bucket}\.s3([.-][a-z0-9-]+)?\.amazonaws\.com$")
        self._bucket_path_prefix = f"/{assets.host}/"
        self._chat_url = self._api_url("/api/chat-with-ai")
        self._chat_stream_url = self._chat_url.with_query(isStreaming="true")
        self._features_url = self._api_url("/api/features")
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self._session: aiohttp.ClientSession | None = None  # made on first use, inside the running loop
        self._in_flight = 0

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    def balances(self) -> list[Balance]:
        """The credit of each of the relay's own keys as 1min.ai last reported it (for the dashboard)."""
        return sorted(self._balances.values(), key=lambda balance: -balance.seen_at)

    def _note_balance(self, key: str, record: dict[str, Any]) -> None:
        # Only the relay's own keys: a passthrough caller's balance is theirs, not the operator's.
        if key in self._keys and (balance := balance_of(key, record)) is not None:
            self._balances[balance.key_hash] = balance

    # --- calls ----------------------------------------------------------------------------------

    async def chat(self, api_key: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST /api/chat-with-ai → the aiRecord; FAILED status or no answer text → UpstreamError."""
        record, _ = await self._post_billed(
            self._chat_url, api_key, payload, read_timeout=self._settings.upstream_timeout, what="chat"
        )
        _note_credits(record)
        _check_succeeded(record)
        if record_text(record) is None:
            raise invalid_response("1min.ai answered the chat without any text (empty resultObject).")
        return record

    def chat_stream(
        self, api_key: str, payload: dict[str, Any]
    ) -> AbstractAsyncContextManager[AsyncIterator[StreamEvent]]:
        """Stream a chat answer: `async with client.chat_stream(key, payload) as events: async for …`.

        Entering sends the request and raises UpstreamError for anything that fails before the stream
        (HTTP errors in any shape, 429 after retries). The iterator yields `content`*, at most one
        `result`, then exactly one `done` or `error` (see `upstream/sse.py`), or raises UpstreamError
        `STREAM_INTERRUPTED`/`TIMEOUT` if the connection fails mid-stream (or the body ends before `done` and
        without a `result`: a cut answer never passes for a whole one). Leaving the block closes the
        upstream connection, which is how a client that went away cancels the generation.
        """
        return self._chat_stream(api_key, payload)

    @asynccontextmanager
    async def _chat_stream(
        self, api_key: str, payload: dict[str, Any]
    ) -> AsyncIterator[AsyncIterator[StreamEvent]]:
        body = dumps(payload)
        read_timeout = self._settings.upstream_timeout

        # The whole exchange is upstream time: until its end 1min.ai is what the caller waits on.
        with self._call_slot(), _masking(api_key), timing_upstream():
            response, used = await self._with_retries(
                "POST /api/chat-with-ai?isStreaming=true",
                lambda key: self._open(
                    "POST", self._chat_stream_url, key, read_timeout=read_timeout, headers=_SSE, data=body
                ),
                billed=True,
                api_key=api_key,
            )
            try:
                if _media_type(response.headers) == "text/event-stream":
                    stream = _SseStream(response, used or api_key, self._note_balance)
                    try:
                        yield stream.events
                        await stream.drain()  # only on a normal exit: a failure or a cancel just closes
                    finally:
                        await stream.events.aclose()
                else:
                    events = await _json_stream_events(response)
                    try:
                        yield events
                    finally:
                        await events.aclose()
            finally:
                response.release()  # pools the connection only if the body was read to its end

    async def feature(self, api_key: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST /api/features → the finished aiRecord.

        A record still PROCESSING (what `"async": true` answers) is polled with `get_result`, backing
        off, until it is SUCCESS or failed, or `upstream_media_timeout` after the call began (TIMEOUT).
        A failed record raises FAILED; a successful one is returned as is, whatever its resultObject.
        """
        deadline = time.monotonic() + self._settings.upstream_media_timeout
        record, api_key = await self._post_billed(
            self._features_url,
            api_key,
            payload,
            read_timeout=self._settings.upstream_media_timeout,
            what="feature call",
        )
        interval = self._retry.poll_interval
        while record.get("status") == "PROCESSING":
            uuid = record.get("uuid")
            if not isinstance(uuid, str):
                raise invalid_response("1min.ai reported PROCESSING without a record id to poll.")
            if time.monotonic() + interval > deadline:
                raise UpstreamError(0, "TIMEOUT", "1min.ai was still processing the request at the deadline.")
            await self._retry.sleep(interval)
            interval = min(interval * 2, self._retry.max_poll_interval)
            polled = await self.get_result(api_key, uuid)
            if polled is None:
                raise UpstreamError(200, "NOT_FOUND", "1min.ai no longer knows the record it was processing.")
            record = polled
        _note_feature_credits(record, payload)
        return _check_succeeded(record)

    async def get_result(self, api_key: str, uuid: str) -> dict[str, Any] | None:
        """GET /api/results/{uuid} → the aiRecord, or None for an unknown (or impossible) id."""
        if not _SAFE_RESULT_ID.match(uuid):
            return None
        with _masking(api_key):
            body, _ = await self._json_call(
                "GET",
                self._api_url(f"/api/results/{uuid}"),
                api_key,
                billed=False,
                read_timeout=self._settings.upstream_timeout,
            )
            return _record_of(body)

    async def upload_asset(
        self, api_key: str, filename: str, content: bytes | IO[bytes], content_type: str
    ) -> Asset:
        """POST /api/assets (one multipart part `asset`; `filename` must carry the right extension).

        `content` is bytes or a seekable binary file (e.g. an `UploadFile.file`).
        """
        upload = _AssetBody(filename, content, content_type)
        body, _ = await self._json_call(
            "POST",
            self._api_url("/api/assets"),
            api_key,
            billed=False,
            read_timeout=self._settings.upstream_timeout,
            headers=upload.headers(),
            data=upload.chunks,
        )
        file = body.get("fileContent") if isinstance(body, dict) else None
        if not isinstance(file, dict):
            raise error_from_payload(200, body, secret=api_key) or invalid_response(
                "1min.ai's asset answer lacks fileContent."
            )
        stored = body.get("asset") if isinstance(body.get("asset"), dict) else {}
        path, uuid = file.get("path") or stored.get("key"), file.get("uuid")
        if not isinstance(path, str) or not path or not isinstance(uuid, str) or not uuid:
            raise invalid_response("1min.ai's asset answer lacks the stored path or file id.")
        name, size, mime_type = file.get("name"), stored.get("size"), stored.get("mimetype")
        return Asset(
            path=path,
            uuid=uuid,
            name=name if isinstance(name, str) and name else path.rsplit("/", 1)[-1],
            size=size if isinstance(size, int) else upload.size,
            mime_type=mime_type if isinstance(mime_type, str) and mime_type else content_type,
        )

    async def models(self, feature: str) -> list[dict[str, Any]]:
        """GET /models?feature=… (public, no key) → the catalogue entries."""
        body, _ = await self._json_call(
            "GET",
            self._api_url("/models").with_query(feature=feature),
            None,
            billed=False,
            read_timeout=self._settings.upstream_timeout,
        )
        entries = body.get("models") if isinstance(body, dict) else None
        if not isinstance(entries, list):
            raise invalid_response("1min.ai's model catalogue answer has no models list.")
        return [entry for entry in entries if isinstance(entry, dict)]

    def exchange(
        self,
        method: str,
        path: str,
        api_key: str | None,
        *,
        read_timeout: float | None = None,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AbstractAsyncContextManager[RawResponse]:
        """One call as sent, answered as received: no retries, no status check, the body left unread.

        For `1min-relay doctor`, which reports what 1min.ai said rather than the relay's reading of it.
        The key, destination and in-flight rules still apply; a failure before the answer raises
        UpstreamError.
        """
        url = self._api_url(path)
        if params:
            url = url.with_query(params)
        sent = {**({} if json is None else _JSON), **(headers or {})}
        body = None if json is None else dumps(json)
        timeout = self._settings.upstream_timeout if read_timeout is None else read_timeout
        return self._exchange(method, url, api_key, timeout, sent, body)

    @asynccontextmanager
    async def _exchange(
        self,
        method: str,
        url: URL,
        api_key: str | None,
        read_timeout: float,
        headers: dict[str, str],
        body: bytes | None,
    ) -> AsyncIterator[RawResponse]:
        with self._call_slot():
            try:
                response = await self._send(method, url, api_key, read_timeout, headers, body)
            except aiohttp.ClientError as exc:
                raise request_error(exc) from None
            chunks = _body_chunks(response)
            try:
                yield RawResponse(response.status, response.headers, chunks)
            finally:
                await chunks.aclose()
                response.release()

    # --- assets on the CDN ----------------------------------------------------------------------

    def asset_url(self, key: str) -> str:
        """The public URL of a stored key (`images/…`, `/images/…`) or an already absolute asset URL.

        Raises UpstreamError DISALLOWED_URL for anything that would leave the configured hosts: another
        host, a non-http scheme, `..` segments, control characters or backslashes.
        """
        return str(self._resolve(key))

    async def download(self, key_or_url: str, *, max_bytes: int) -> tuple[bytes, str]:
        """Fetch an asset into memory → (bytes, media type); TOO_LARGE past `max_bytes`."""
        url = self._resolve(key_or_url)

        async def attempt(_: str | None) -> tuple[bytes, str]:
            response = await self._open_download(url)
            try:
                declared = response.headers.get("Content-Length", "")
                body = (
                    None
                    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes
                    else await _read_capped(response, max_bytes)
                )
            finally:
                response.release()
            if body is None:
                raise UpstreamError(
                    response.status, "TOO_LARGE", f"The asset is larger than {max_bytes} bytes."
                )
            return body, _media_type(response.headers)

        with self._call_slot(), timing_upstream():
            return (await self._with_retries(f"GET {url.host}", attempt, billed=False, api_key=None))[0]

    def stream_download(
        self, key_or_url: str
    ) -> AbstractAsyncContextManager[tuple[str, AsyncIterator[bytes]]]:
        """Relay an asset without buffering: `async with … as (media_type, chunks)`.

        Failures before the body (HTTP errors, connect errors) are retried and raised on entry; a
        failure while reading raises STREAM_INTERRUPTED/TIMEOUT from the iterator.
        """
        return self._stream_download(key_or_url)

    @asynccontextmanager
    async def _stream_download(self, key_or_url: str) -> AsyncIterator[tuple[str, AsyncIterator[bytes]]]:
        url = self._resolve(key_or_url)
        # Until the body is relayed: a slow client holds the exchange open too.
        with self._call_slot(), timing_upstream():
            response, _ = await self._with_retries(
                f"GET {url.host}", lambda _: self._open_download(url), billed=False, api_key=None
            )
            try:
                chunks = _body_chunks(response)
                try:
                    yield _media_type(response.headers), chunks
                finally:
                    await chunks.aclose()
            finally:
                response.release()

    # --- plumbing -------------------------------------------------------------------------------

    def _api_url(self, path: str) -> URL:
        return URL(self._api_base + path)

    @contextmanager
    def _call_slot(self) -> Iterator[None]:
        """Hold one of the `upstream_max_in_flight` slots for a call, or refuse it before anything is sent."""
        if self._in_flight >= self._settings.upstream_max_in_flight:
            raise UpstreamError(
                503,
                RELAY_OVERLOADED,
                "The relay is already running as many 1min.ai calls as it is configured for.",
                retry_after=_OVERLOAD_RETRY_AFTER,
                headers={"Retry-After": str(_OVERLOAD_RETRY_AFTER)},
            )
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1

    async def _send(
        self,
        method: str,
        url: URL,
        api_key: str | None,
        read_timeout: float,
        headers: Mapping[str, str],
        data: Any = None,
    ) -> aiohttp.ClientResponse:
        """Send one request to an allowed destination; raises aiohttp's exceptions as they come."""
        if not self._allowed(url):
            raise _disallowed(url.host or "")
        if api_key is not None:
            if not _SENDABLE_KEY.match(api_key):
                # aiohttp would name the bad header value in its exception: refuse before it sees the key.
                raise UpstreamError(
                    0, "INVALID_API_KEY", "The API key contains characters that cannot be sent."
                )
            headers = {**headers, "API-KEY": api_key}
        if self._session is None:
            self._session = open_session()
        if (timeouts := self._timeouts.get(read_timeout)) is None:
            timeouts = self._timeouts[read_timeout] = client_timeout(
                connect=self._settings.upstream_connect_timeout, read=read_timeout
            )
        return await self._session.request(
            method, url, headers=headers, data=data, timeout=timeouts, allow_redirects=False
        )

    async def _open(
        self,
        method: str,
        url: URL,
        api_key: str | None,
        *,
        read_timeout: float,
        headers: Mapping[str, str] = _JSON,
        data: bytes | Callable[[], AsyncIterator[bytes]] | None = None,
        follow_redirects: bool = False,
    ) -> aiohttp.ClientResponse:
        """One attempt: send, and turn a non-2xx answer into its UpstreamError (body read, bounded).

        The endpoint's circuit breaker may refuse the attempt before anything is sent (CIRCUIT_OPEN).
        With `follow_redirects` (a GET), each redirect is checked like any other destination, and
        followed at most `_MAX_REDIRECTS` times."""
        for _ in range(_MAX_REDIRECTS + 1):
            with self.circuits.attempt(self._circuit_of(url)) as verdict:
                try:
                    response = await self._send(
                        method, url, api_key, read_timeout, headers, data() if callable(data) else data
                    )
                except aiohttp.ClientError:
                    verdict.failed()
                    raise
                if response.status >= 500:
                    verdict.failed()
                else:
                    verdict.succeeded()
            location = response.headers.get("Location")
            if not (follow_redirects and response.status in _REDIRECTS and location is not None):
                break
            response.release()
            url = self._redirect_target(url, location)
        else:
            raise UpstreamError(
                200, "INVALID_RESPONSE", f"1min.ai redirected more than {_MAX_REDIRECTS} times in a row."
            )
        if 200 <= response.status < 300:
            return response
        try:
            body = await _read_prefix(response, _ERROR_BODY_LIMIT)
        except aiohttp.ClientError:
            body = b""
        finally:
            response.release()
        raise error_from_response(response.status, response.headers, body, secret=api_key or "")

    async def _open_download(self, url: URL) -> aiohttp.ClientResponse:
        read_timeout = self._settings.upstream_timeout
        return await self._open(
            "GET", url, None, read_timeout=read_timeout, headers=_ANY, follow_redirects=True
        )

    def _circuit_of(self, url: URL) -> str:
        """Which circuit an attempt belongs to: one per 1min.ai endpoint (`api.1min.ai/api/chat-with-ai`,
        `api.1min.ai/models`), so a failing catalogue does not stop chats; one per asset host."""
        host = url.host or ""
        if (url.scheme, host, url.port) != self._api_origin:
            return host
        segments = url.path.split("/")
        return host + "/".join(segments[:3] if segments[1:2] == ["api"] else segments[:2])

    async def _json_call(
        self,
        method: str,
        url: URL,
        api_key: str | None,
        *,
        billed: bool,
        read_timeout: float,
        headers: Mapping[str, str] = _JSON,
        data: bytes | Callable[[], AsyncIterator[bytes]] | None = None,
    ) -> tuple[Any, str | None]:
        """→ (decoded body, the key that got it: `api_key` or, after a failover, another pool key)."""

        async def attempt(key: str | None) -> Any:
            response = await self._open(
                method, url, key, read_timeout=read_timeout, headers=headers, data=data
            )
            try:
                body = await _read_capped(response, _JSON_BODY_LIMIT)
            finally:
                response.release()
            if body is None:
                raise invalid_response("1min.ai's answer is implausibly large.")
            return _decode_json(body)

        with self._call_slot(), timing_upstream():
            return await self._with_retries(f"{method} {url.path}", attempt, billed=billed, api_key=api_key)

    async def _post_billed(
        self, url: URL, api_key: str, payload: dict[str, Any], *, read_timeout: float, what: str
    ) -> tuple[dict[str, Any], str]:
        """POST a billed call (chat, feature) → (its aiRecord, not yet checked for success; the key used)."""
        with _masking(api_key):
            body, used = await self._json_call(
                "POST", url, api_key, billed=True, read_timeout=read_timeout, data=dumps(payload)
            )
        used = used or api_key
        with _masking(used):
            record = _required_record(body, what)
        self._note_balance(used, record)
        return record, used

    async def _with_retries(
        self, what: str, attempt: Callable[[str | None], Awaitable[T]], *, billed: bool, api_key: str | None
    ) -> tuple[T, str | None]:
        """Run `attempt(key)` until it succeeds or a failure is not safe to retry (see the module
        docstring) → (its result, the key it used). A refusal of a pool key (out of credits, rate
        limited) moves at once to the pool's next key, without counting as a retry."""
        retry = 0
        key, tried = api_key, {api_key}
        while True:
            failure: Exception
            try:
                return await attempt(key), key
            except UpstreamError as exc:
                failure = error = exc
            except aiohttp.ClientError as exc:
                failure, error = exc, request_error(exc)
            note_upstream_error(error.status, error.code)
            if key is not None and (other := self._keys.failover(key, error, tried)) is not None:
                log.warning(
                    "1min.ai %s: key %s %s; key %s takes the call",
                    what,
                    key_hash(key),
                    failover_reason(error),
                    key_hash(other),
                )
                key = other
                tried.add(key)
                continue
            delay = None
            if retry < self._retry.max_retries and _may_retry(failure, billed=billed):
                delay = error.retry_after if error.retry_after is not None else self._retry.backoff(retry)
            if delay is None or delay > self._retry.max_retry_after:
                if key is not None and key != api_key:  # the caller's `_masking` knows only its own key
                    error = redact(error, key)
                raise error from (None if error is failure else failure)
            retry += 1
            log.warning(
                "1min.ai %s failed (%s %s); retry %d of %d in %.2fs",
                what,
                error.status,
                error.code,
                retry,
                self._retry.max_retries,
                delay,
            )
            await self._retry.sleep(delay)

    # --- where we may go --------------------------------------------------------------------------

    def _allowed(self, url: URL) -> bool:
        if ".." in url.path.split("/") or url.user is not None or url.password is not None:
            return False
        if (url.scheme, url.host, url.port) in self._origins:
            return True
        if url.scheme != "https" or url.port != 443 or url.host is None:
            return False
        # Pre-signed `temporaryUrl`s: virtual-hosted or path-style S3 URLs of the asset bucket.
        if self._bucket_host.match(url.host):
            return True
        path_style = re.match(r"^s3([.-][a-z0-9-]+)?\.amazonaws\.com$", url.host)
        return path_style is not None and url.path.startswith(self._bucket_path_prefix)

    def _resolve(self, key_or_url: str) -> URL:
        value = key_or_url.strip()
        if not value or "\\" in value or any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
            raise _disallowed("")
        if _HAS_SCHEME.match(value) or value.startswith("//"):
            url = _parse_url(value)
            if url is None:
                raise _disallowed("")
            if not self._allowed(url):
                raise _disallowed(url.host or "")
            return url
        key = value.lstrip("/")
        if any(unquote(segment) in (".", "..") for segment in key.split("/")):  # decoded: be safe twice
            raise _disallowed("")
        return URL(f"{self._asset_base}/{quote(key, safe=_KEY_SAFE_CHARS)}", encoded=True)

    def _redirect_target(self, url: URL, location: str) -> URL:
        """Where a redirect points, resolved against the URL that answered it; only an allowed place."""
        target = _parse_url(location)
        if target is None:
            raise _disallowed("")
        if not target.is_absolute():
            target = url.join(target)
        if not self._allowed(target):
            raise _disallowed(target.host or "")
        return target


def _parse_url(value: str) -> URL | None:
    """`value` as a URL sent byte for byte as given (characters no URL may hold escaped), or None."""
    try:
        return URL(quote(value, safe=_URL_SAFE_CHARS), encoded=True)
    except ValueError:
        return None


def _disallowed(host: str) -> UpstreamError:
    where = f" ({host})" if host else ""
    return UpstreamError(0, "DISALLOWED_URL", f"Refusing an asset location outside the 1min.ai hosts{where}.")


async def _body_chunks(response: aiohttp.ClientResponse) -> AsyncGenerator[bytes, None]:
    try:
        while chunk := await response.content.readany():
            yield chunk
    except aiohttp.ClientError as exc:
        raise _noted(stream_error(exc)) from exc


class _SseStream:
    """One upstream SSE body: its decoded events, and a clean end that keeps the connection pooled."""

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        api_key: str,
        note_balance: Callable[[str, dict[str, Any]], None],
    ) -> None:
        self._content = response.content
        self._api_key = api_key
        self._note_balance = note_balance
        self._finished = False
        self.events = self._events()

    async def _events(self) -> AsyncGenerator[StreamEvent, None]:
        try:
            # Each chunk as it arrives (aiohttp's `iter_any`), so events are never held back.
            async for event in chat_events(self._content.iter_any()):
                if event.kind == "error":  # upstream text, shown to the end user: short, and never the key
                    event = StreamEvent("error", short_message(event.text, secret=self._api_key))
                    note_upstream_error(200, "STREAM_ERROR")
                elif event.kind == "result" and event.record is not None:
                    _note_credits(event.record)
                    self._note_balance(self._api_key, event.record)
                self._finished = event.kind in ("done", "error")
                yield event
        except aiohttp.ClientError as exc:
            raise _noted(stream_error(exc)) from exc

    async def drain(self) -> None:
        """After a finished answer, read the few bytes that end the body (bounded in time).

        aiohttp pools a connection only once its response was read to the end; otherwise it closes it,
        and the next chat would pay a new TCP + TLS handshake. An unfinished answer is never drained:
        closing it is what cancels the generation upstream.
        """
        if not self._finished:
            return
        with suppress(TimeoutError, aiohttp.ClientError):
            async with asyncio.timeout(_DRAIN_SECONDS):
                while await self._content.readany():
                    pass


async def _json_stream_events(response: aiohttp.ClientResponse) -> AsyncGenerator[StreamEvent, None]:
    """A JSON answer to a streaming request: an error (raised), or a whole record replayed as events."""
    media_type = _media_type(response.headers)
    if media_type != "application/json":
        raise invalid_response(f"1min.ai answered the stream with {media_type} instead of text/event-stream.")
    try:
        body = await _read_capped(response, _JSON_BODY_LIMIT)
    except aiohttp.ClientError as exc:
        raise _noted(stream_error(exc)) from exc
    record = _required_record(_decode_json(body or b""), "stream")
    _note_credits(record)
    _check_succeeded(record)
    text = record_text(record)
    return _replay(
        [*([StreamEvent("content", text)] if text else []), StreamEvent("result", record=record), DONE]
    )


async def _replay(events: list[StreamEvent]) -> AsyncGenerator[StreamEvent, None]:
    for event in events:
        yield event
