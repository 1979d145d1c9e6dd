"""The per-request record, request ids, and the one-line-per-request access log.

Every HTTP request gets one `RequestRecord`, reachable anywhere in its task (and in the tasks it starts)
through `current_record()`. Whoever learns a fact fills it in: the middleware (status, durations, time to
first byte), authentication (the caller, as a hash or relay key id — never a key), the routes (model
asked, token usage), the upstream client (time waiting on 1min.ai, credits, upstream failures), the rate
limiter (rejections). When the response is finished the record is handed to every request-end listener:
the access log, the metrics, and whatever else registers (`RelayContext.request_listeners`). The request
layer (`edge.py`) opens, binds and closes the record with the functions at the end of this module.
"""

from __future__ import annotations

import atexit
import logging
import queue
import random
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from logging.handlers import QueueHandler, QueueListener
from typing import Any, TextIO

from onemin_relay.fastjson import dumps

access_log = logging.getLogger("onemin_relay.access")
log = logging.getLogger("onemin_relay")

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_MAX_MODEL_CHARS = 200
_MAX_EXCHANGES = 32
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


@dataclass
class RequestRecord:
    """What one request did. Times are seconds (`time.perf_counter()` based) unless named otherwise.

    Upstream time is kept two ways, because calls can run in parallel (`n` > 1, several downloads):
    `upstream_wall` is how long at least one upstream exchange was open (never more than `duration`);
    `upstream_sum` adds every exchange's own duration (can exceed `duration`).
    """

    request_id: str
    method: str
    path: str
    started: float = field(default_factory=time.perf_counter)
    started_at: float = field(default_factory=time.time)  # the same instant as a Unix timestamp
    traceparent: str | None = None  # the caller's W3C trace context, if it sent one
    route: str | None = None  # the route's path template (`/v1/files/{file_id}`), None when none matched
    status: int = 500
    stream: bool = False  # answered as text/event-stream
    caller: str | None = None  # key hash or relay key id: who to bill; never a key
    model: str | None = None  # as the client asked for it (bounded)
    model_known: bool = False  # the catalogue knows it (safe as a metric label)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    credits: int = 0  # 1min.ai credits of every upstream record seen
    credits_estimated: bool = False  # part of `credits` came from a price list, not from 1min.ai
    prices: Mapping[str, Any] | None = None  # the model's catalogue creditMetadata (media credit estimates)
    upstream_calls: int = 0
    upstream_sum: float = 0.0
    # (status, code) of each failed upstream attempt, in order; status 0: no HTTP answer (connect, timeout)
    upstream_errors: list[tuple[int, str]] = field(default_factory=list)
    # (start, end) of each upstream exchange, the first _MAX_EXCHANGES of them (for trace spans)
    upstream_exchanges: list[tuple[float, float]] = field(default_factory=list)
    rejected_by: str | None = None  # "rate_limit", "budget", …: refused before any upstream call
    first_byte: float | None = None  # seconds after `started` the first body byte (not an SSE comment) left
    duration: float | None = None  # seconds after `started` the response was finished
    _wall: float = 0.0
    _open: int = 0
    _open_since: float = 0.0

    def upstream_wall(self, now: float | None = None) -> float:
        """Seconds during which at least one upstream exchange was open (up to `now` for open ones)."""
        if self._open:
            return self._wall + ((now if now is not None else time.perf_counter()) - self._open_since)
        return self._wall

    @property
    def upstream_error(self) -> str | None:
        """The last upstream failure's code, if any attempt failed."""
        return self.upstream_errors[-1][1] if self.upstream_errors else None

    @contextmanager
    def timing_upstream(self) -> Iterator[None]:
        """Count the enclosed block as one upstream exchange (overlapping blocks add wall time once)."""
        started = time.perf_counter()
        if not self._open:
            self._open_since = started
        self._open += 1
        try:
            yield
        finally:
            ended = time.perf_counter()
            self._open -= 1
            if not self._open:
                self._wall += ended - self._open_since
            self.upstream_calls += 1
            self.upstream_sum += ended - started
            if len(self.upstream_exchanges) < _MAX_EXCHANGES:
                self.upstream_exchanges.append((started, ended))


RequestListener = Callable[[RequestRecord], None]

_record: ContextVar[RequestRecord | None] = ContextVar("request_record", default=None)


def current_record() -> RequestRecord:
    """The record of the request being served; outside a request, a throw-away one (so callers never
    need to check)."""
    record = _record.get()
    if record is None:
        record = RequestRecord("-", "-", "-")
    return record


def current_request_id() -> str:
    record = _record.get()
    return record.request_id if record is not None else "-"


@contextmanager
def timing_upstream() -> Iterator[None]:
    """`with timing_upstream(): …` around one upstream exchange of the current request."""
    with current_record().timing_upstream():
        yield


def note_usage(prompt_tokens: int, completion_tokens: int) -> None:
    """The token usage the client is told about (or would be)."""
    record = current_record()
    record.prompt_tokens, record.completion_tokens = prompt_tokens, completion_tokens


def note_model(model: str) -> None:
    """The model as the client named it."""
    current_record().model = model[:_MAX_MODEL_CHARS]


def note_credits(credits: int | None, *, estimated: bool = False) -> None:
    """Credits one upstream record cost (None: 1min.ai did not say)."""
    if credits is None:
        return
    record = current_record()
    record.credits += credits
    record.credits_estimated = record.credits_estimated or estimated


def note_upstream_error(status: int, code: str) -> None:
    current_record().upstream_errors.append((status, code))


class JsonFormatter(logging.Formatter):
    """One JSON object per line, so logs can be shipped and queried without parsing prose."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if (request_id := current_request_id()) != "-":  # what the relay logs while serving a request
            entry["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return dumps(entry).decode("utf-8")


def configure_logging(level: str) -> None:
    """JSON lines on stderr. A line is formatted where it is logged (cheap with orjson; the request id is
    read there) and queued; a thread writes it (`QueueHandler` → `QueueListener`), so the event loop never
    waits on a slow stderr. At exit the thread writes what is queued and stops."""
    global _writer
    lines: queue.SimpleQueue[str] = queue.SimpleQueue()
    handler = _QueuedLine(lines)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    if _writer is not None:  # configured again: the previous writer finishes its lines first
        _writer.stop()
    _writer = _LineWriter(lines, sys.stderr)
    _writer.start()
    # uvicorn's own access log would duplicate ours (and without request ids).
    logging.getLogger("uvicorn.access").disabled = True
    # Client libraries log every request at INFO/DEBUG; the access line already says what matters.
    for noisy in ("httpx", "httpcore", "aiohttp"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


class _QueuedLine(QueueHandler):
    """Queues a record's formatted line, and only that: not a copy of the record, as `QueueHandler` does
    for listeners that format."""

    def prepare(self, record: logging.LogRecord) -> str:
        return self.format(record)


class _LineWriter(QueueListener):
    """Writes the queued lines to `stream`, from its own thread."""

    def __init__(self, lines: queue.SimpleQueue[str], stream: TextIO) -> None:
        super().__init__(lines)
        self._stream = stream

    def handle(self, record: Any) -> None:  # a line, as `_QueuedLine` queued it
        self._stream.write(f"{record}\n")
        self._stream.flush()


_writer: _LineWriter | None = None


@atexit.register
def _stop_writing() -> None:
    if _writer is not None:
        _writer.stop()


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def write_access_line(record: RequestRecord) -> None:
    """The access log's line for a finished request (a request-end listener)."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    fields: dict[str, Any] = {
        "request_id": record.request_id,
        "method": record.method,
        "path": record.path,
        "status": record.status,
        "duration_ms": _ms(record.duration),
        "upstream_wait_ms": _ms(record.upstream_wall()),
        "upstream_sum_ms": _ms(record.upstream_sum),
        "upstream_calls": record.upstream_calls,
    }
    if record.first_byte is not None:
        fields["first_byte_ms"] = _ms(record.first_byte)
    if record.stream:
        fields["stream"] = True
    if record.model is not None:
        fields["model"] = record.model
    if record.credits:
        fields["credits"] = record.credits
    if record.upstream_errors:
        fields["upstream_error"] = record.upstream_error
    if record.rejected_by is not None:
        fields["rejected_by"] = record.rejected_by
    # What `access_log.info("request", extra=…)` does, less its search of the stack for the caller's line.
    access_log.handle(
        access_log.makeRecord(
            access_log.name, logging.INFO, "", 0, "request", (), None, None, {"fields": fields}
        )
    )


def _is_sse_comment(body: bytes) -> bool:
    return all(line.startswith(b":") for line in body.split(b"\n") if line)


def open_record(method: str, path: str, request_id: bytes | None, traceparent: bytes | None) -> RequestRecord:
    """A new request's record: the caller's `x-request-id` when it is sane (else a fresh id), and its W3C
    trace context when it sent a valid one."""
    incoming = request_id.decode("latin-1") if request_id else ""
    record = RequestRecord(
        incoming if _SAFE_REQUEST_ID.match(incoming) else f"req_{random.getrandbits(96):024x}", method, path
    )
    if traceparent and _TRACEPARENT.match(context := traceparent.decode("latin-1")):
        record.traceparent = context
    return record


def bind_record(record: RequestRecord) -> Token[RequestRecord | None]:
    """Make `record` the current one for this task and the tasks it starts (`current_record()`)."""
    return _record.set(record)


def unbind_record(token: Token[RequestRecord | None]) -> None:
    _record.reset(token)


# The response headers the record writes; a route's own are replaced.
RECORD_HEADERS = frozenset({b"x-request-id", b"server-timing"})


def record_headers(record: RequestRecord) -> tuple[tuple[bytes, bytes], tuple[bytes, bytes]]:
    """`x-request-id` and `Server-Timing` (as of now), for the response's headers."""
    return (
        (b"x-request-id", record.request_id.encode("latin-1")),
        (b"server-timing", server_timing(record, time.perf_counter())),
    )


def note_body(record: RequestRecord, body: bytes) -> None:
    """A body part left: the first one that is not an SSE comment (a keep-alive) is the first byte."""
    if body and not (record.stream and _is_sse_comment(body)):
        record.first_byte = time.perf_counter() - record.started


def close_record(record: RequestRecord, route: object) -> None:
    """The response is finished (or abandoned): its duration, and the route template that served it."""
    record.duration = time.perf_counter() - record.started
    record.route = getattr(route, "path", None)


def server_timing(record: RequestRecord, now: float) -> bytes:
    """`Server-Timing` as of `now`: time waiting on 1min.ai (so far, for a stream) and the relay's own."""
    upstream = record.upstream_wall(now)
    relay = max(0.0, now - record.started - upstream)
    return f'upstream;dur={upstream * 1000:.1f};desc="1min.ai", relay;dur={relay * 1000:.1f}'.encode()


def notify(listeners: Sequence[RequestListener], record: RequestRecord) -> None:
    """Hand `record` to each listener; one that raises is logged and does not affect the others."""
    for listener in listeners:
        try:
            listener(record)
        except Exception:  # a sink's failure must not break the answer
            log.exception("request listener %r failed", listener)
