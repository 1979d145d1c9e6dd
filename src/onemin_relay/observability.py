"""Request ids, upstream timing and the one-line-per-request access log."""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from contextvars import ContextVar
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("onemin_relay.access")

_request_id: ContextVar[str] = ContextVar("request_id", default="-")
_upstream_seconds: ContextVar[list[float] | None] = ContextVar("upstream_seconds", default=None)
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def current_request_id() -> str:
    return _request_id.get()


def record_upstream_time(seconds: float) -> None:
    """Add time spent waiting on 1min.ai to the current request's total (shown in the access log)."""
    bucket = _upstream_seconds.get()
    if bucket is not None:
        bucket.append(seconds)


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
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own access log would duplicate ours (and without request ids).
    logging.getLogger("uvicorn.access").disabled = True
    # Client libraries log every request at INFO/DEBUG; the access line already says what matters.
    for noisy in ("httpx", "httpcore", "aiohttp"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


class RequestContextMiddleware:
    """Gives every request an id (echoed as `x-request-id`) and writes its access-log line.

    A pure ASGI middleware: it never buffers a body, so streams pass through as they are produced.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else f"req_{secrets.token_hex(12)}"
        id_token = _request_id.set(request_id)
        upstream: list[float] = []
        timing_token = _upstream_seconds.set(upstream)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            access_log.info(
                "request",
                extra={
                    "fields": {
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                        "upstream_ms": round(sum(upstream) * 1000, 1),
                    }
                },
            )
            _upstream_seconds.reset(timing_token)
            _request_id.reset(id_token)
