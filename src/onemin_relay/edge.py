"""The request layer: the one pure-ASGI layer every HTTP request passes through first and last.

It does, in one `receive` wrapper and one `send` wrapper instead of a middleware each (every response
message used to pass through six wrappers), what every request needs:

- the request's record and id (`observability`): `x-request-id` and `Server-Timing` on the answer, the
  response-start and request-end listeners (access log, metrics, ledger, tracing);
- CORS (`cors`): Starlette's answer to a preflight; its headers on every other answer, worked out once;
- body draining (`body_drain`): an answer that starts before the body was read first drains the rest;
- hang-ups (`hang_up`): a client gone before its answer is complete cancels the route (its line says 499
  if the answer had not started);
- errors: an exception is answered through the same `send`, so it carries the request id and CORS
  headers — a known one (`OpenAIError`, …) by its handler, anything else as a logged 500, re-raised so
  the server sees it too.

Preflights get the record and the drain but no CORS response headers of their own beyond Starlette's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from onemin_relay import body_drain, cors, hang_up
from onemin_relay.errors import OpenAIError, error_response
from onemin_relay.hang_up import HangUpWatch
from onemin_relay.observability import (
    RECORD_HEADERS,
    RequestListener,
    RequestRecord,
    bind_record,
    close_record,
    note_body,
    notify,
    open_record,
    record_headers,
    unbind_record,
    write_access_line,
)

log = logging.getLogger("onemin_relay")

ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]

_NO_CORS: tuple[frozenset[bytes], cors.RawHeaders] = (frozenset(), ())


class EdgeMiddleware:
    """See the module docstring. The listener lists are kept by reference: whoever holds them may add
    listeners later (at start-up); by default the access log is the only one. `handlers` answer known
    exceptions (looked up along the exception's MRO)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        cors_origins: Sequence[str] = ("*",),
        listeners: Sequence[RequestListener] | None = None,
        on_response_start: Sequence[RequestListener] = (),
        handlers: Mapping[type[Exception], ErrorHandler] | None = None,
    ) -> None:
        self.app = app
        self.cors = cors.CorsPolicy(cors_origins)
        # `is None`, not `or`: an empty list passed in may be filled later and must stay the same object.
        self.listeners = [write_access_line] if listeners is None else listeners
        self.on_response_start = on_response_start
        self.handlers = handlers or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(reversed(scope["headers"]))  # the first of repeated headers, as Starlette reads them
        record = open_record(
            scope["method"], scope["path"], headers.get(b"x-request-id"), headers.get(b"traceparent")
        )
        token = bind_record(record)
        origin = headers.get(b"origin")
        preflight = self.cors.preflight(scope, origin)
        exchange = _Exchange(
            record,
            hang_up.watch(scope, record),
            receive,
            send,
            _NO_CORS if preflight is not None else self.cors.simple_headers(origin),
            vary=preflight is None,
            unread=body_drain.body_expected(headers.get(b"expect")),
            on_response_start=self.on_response_start,
        )
        try:
            if preflight is not None:
                await preflight(scope, exchange.receive, exchange.send)
            else:
                await self._serve(scope, exchange)
        finally:
            exchange.watch.close()
            close_record(record, scope.get("route"))
            notify(self.listeners, record)
            unbind_record(token)

    async def _serve(self, scope: Scope, exchange: _Exchange) -> None:
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except asyncio.CancelledError:
            if not exchange.watch.hung_up:
                raise
            exchange.watch.uncancel()  # the cancellation was the watch's: the request ends here, quietly
        except Exception as exc:
            exchange.watch.close()  # a hang-up no longer cancels anything: the route is over
            started = exchange.watch.response_started
            handler = None if started else _handler_for(self.handlers, exc)
            if handler is None:
                request = Request(scope)
                log.exception("unhandled error on %s %s", request.method, request.url.path)
                if not started:
                    error = OpenAIError(500, "The relay hit an internal error; it has been logged.")
                    await error_response(error, request.url.path)(scope, exchange.receive, exchange.send)
                raise
            response = await handler(Request(scope), exc)
            await response(scope, exchange.receive, exchange.send)
            exc.__traceback__ = None  # an exception instance may be raised again (a stored refusal)


def _handler_for(handlers: Mapping[type[Exception], ErrorHandler], exc: Exception) -> ErrorHandler | None:
    for kind in type(exc).__mro__:
        if kind in handlers:
            return handlers[kind]
    return None


class _Exchange:
    """One request's state and its wrapped `receive` / `send`."""

    __slots__ = (
        "_added",
        "_on_response_start",
        "_receive",
        "_record",
        "_replaced",
        "_send",
        "_unread",
        "_vary",
        "watch",
    )

    def __init__(
        self,
        record: RequestRecord,
        watch: HangUpWatch,
        receive: Receive,
        send: Send,
        cors_headers: tuple[frozenset[bytes], cors.RawHeaders],
        *,
        vary: bool,
        unread: bool,
        on_response_start: Sequence[RequestListener],
    ) -> None:
        self._record = record
        self._receive = receive
        self._send = send
        self._replaced, self._added = cors_headers
        self._vary = vary
        self._unread = unread  # body_drain: until the last body message (or a disconnect) has been seen
        self._on_response_start = on_response_start
        self.watch = watch

    async def receive(self) -> Message:
        message = await self._receive()
        if body_drain.ends_body(message):
            self._unread = False
            if message["type"] == "http.request":
                self.watch.body_read(self._receive)
        return message

    async def send(self, message: Message) -> None:
        kind = message["type"]
        record = self._record
        if kind == "http.response.body":
            if record.first_byte is None:
                note_body(record, message.get("body", b""))
            if not message.get("more_body", False):
                self.watch.response_complete = True
        elif kind == "http.response.start":
            self.watch.response_started = True
            message = self._start(message)
            notify(self._on_response_start, record)
            if self._unread:
                await body_drain.drain(self._receive)
                self._unread = False
        await self._send(message)

    def _start(self, message: Message) -> Message:
        """The response's headers, with the record's and CORS's in place of any the route set."""
        record = self._record
        record.status = message["status"]
        replaced = self._replaced
        headers: list[tuple[bytes, bytes]] = []
        vary: list[bytes] = []
        for name, value in message.get("headers", ()):
            lowered = name.lower()
            if lowered in RECORD_HEADERS or lowered in replaced:
                continue
            if lowered == cors.VARY and self._vary:
                vary.append(value)
                continue
            if lowered == b"content-type" and value.startswith(b"text/event-stream"):
                record.stream = True
            headers.append((name, value))
        headers += self._added
        if self._vary:
            headers.append(cors.vary(vary))
        headers += record_headers(record)
        return {**message, "headers": headers}
