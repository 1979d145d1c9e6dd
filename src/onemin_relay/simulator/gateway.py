"""What every /api/* call goes through before its handler: log, body, API-KEY, rate limit, faults, credit."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from onemin_relay.simulator.errors import Shape, api_error, infrastructure_error, shape_a
from onemin_relay.simulator.faults import FAULTS, Faults, faults_in_body, parse_faults
from onemin_relay.simulator.faults import Scope as FaultScope
from onemin_relay.simulator.state import SimulatorState

FAULT_HEADER = "x-sim-fault"
LOGGED_HEADERS = ("content-type", "content-length", "accept", "user-agent", FAULT_HEADER)
FAULTED_PREFIX = "/api/"
LARGE_BODY = 1024 * 1024


def key_hash(api_key: str) -> str:
    """Same 16-hex-character hash as the relay's `api.auth.key_hash`, so tests can compare the two."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:16]


def sim_state(request: Request) -> SimulatorState:
    state: SimulatorState = request.app.state.sim
    return state


class RequestLogMiddleware:
    """Logs every call except the control API (`/_sim/…`) as received, with the status it got."""

    def __init__(self, app: ASGIApp, state: SimulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sim"):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        api_key = request.headers.get("api-key", "")
        entry: dict[str, Any] = {
            "method": request.method,
            "path": request.url.path,
            "query": dict(request.query_params),
            "key_hash": key_hash(api_key) if api_key else None,
            "headers": {name: request.headers[name] for name in LOGGED_HEADERS if name in request.headers},
            "json": None,
            "body_bytes": 0,
            "multipart": None,
            "status": None,
        }
        self.state.log.append(entry)
        scope.setdefault("state", {})["sim_log"] = entry

        async def send_logging_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            await send(message)

        await self.app(scope, receive, send_logging_status)


def log_entry(request: Request) -> dict[str, Any]:
    entry: dict[str, Any] = request.state.sim_log
    return entry


async def read_capped(request: Request, limit: int, shape: Shape) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise api_error(shape, 413, "PAYLOAD_TOO_LARGE", f"Request body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass
class Call:
    """One authenticated call, with its JSON body (if any) and the faults that apply to it."""

    request: Request
    state: SimulatorState
    key_hash: str
    body: Any
    faults: Faults
    shape: Shape
    body_bytes: int = 0  # size of the JSON body on the wire
    body_read: bool = False  # the whole body has been received (so a hang-up can be noticed)

    @property
    def base_url(self) -> str:
        return self.state.config.public_base_url or str(self.request.base_url).rstrip("/")

    def fault(self, name: str) -> bool:
        return name in self.faults

    def fault_value(self, name: str) -> int:
        value = self.faults.get(name)
        default = FAULTS[name][1]
        return value if value is not None else (default or 0)


async def open_call(
    request: Request, *, shape: Shape, scopes: set[FaultScope], json_body: bool = True
) -> Call:
    """The checks of every /api/* call, in the service's apparent order: body, key, limit, faults, credit."""
    state = sim_state(request)
    config = state.config
    body: Any = None
    body_bytes = 0
    if json_body:
        raw = await read_capped(request, config.max_json_bytes, shape)
        body_bytes = len(raw)
        if raw.strip():
            try:
                # a hostile 32 MiB body takes most of a second to parse: not on the event loop
                body = json.loads(raw) if len(raw) < LARGE_BODY else await asyncio.to_thread(json.loads, raw)
            except (ValueError, RecursionError):
                raise api_error(shape, 400, "INVALID_REQUEST", "Request body is not valid JSON") from None
        state.log.keep_body(log_entry(request), body, body_bytes)

    api_key = request.headers.get("api-key", "").strip()
    allowed = config.api_keys
    if not api_key or (allowed is not None and api_key not in allowed):
        raise shape_a(401, "UNAUTHORIZED", "Invalid or missing API key")
    hashed = key_hash(api_key)
    retry_after = state.limiter.hit(hashed, config.rate_limit_per_minute)
    if retry_after is not None:
        headers = {"Retry-After": str(retry_after)} if config.rate_limit_retry_after else None
        raise shape_a(429, "RATE_LIMITED", "Too many requests", headers=headers)

    faults = collect_faults(request, state, scopes, body, shape)
    call = Call(request, state, hashed, body, faults, shape, body_bytes, body_read=json_body)
    await apply_http_faults(call)
    if call.fault("insufficient-credits") or state.ledger.used(hashed) >= config.credit_limit:
        chosen = config.insufficient_credits_shape
        raise api_error(
            shape if chosen == "endpoint" else chosen,
            config.insufficient_credits_status,
            "INSUFFICIENT_CREDITS",
            "You do not have enough credits to perform this request",
        )
    return call


def collect_faults(
    request: Request, state: SimulatorState, scopes: set[FaultScope], body: Any, shape: Shape
) -> Faults:
    path = request.url.path
    faults: Faults = {}
    if path.startswith(FAULTED_PREFIX):
        for spec in state.config.faults:
            faults.update(parse_faults(spec))
    faults.update(state.faults.take(scopes, path))
    header = request.headers.get(FAULT_HEADER)
    if header:
        try:
            faults.update(parse_faults(header))
        except ValueError as exc:
            raise api_error(shape, 400, "INVALID_REQUEST", f"X-Sim-Fault: {exc}") from None
    faults.update(faults_in_body(body))
    return faults


async def apply_public_faults(request: Request) -> None:
    """Faults on key-less routes (catalogue, CDN): only those armed for their path or sent in X-Sim-Fault."""
    state = sim_state(request)
    faults = collect_faults(request, state, {"http"}, None, "B")
    await apply_http_faults(Call(request, state, "", None, faults, "B"))


async def _wait_noting_hang_up(call: Call, seconds: float) -> None:
    """Sleeps, unless the client hangs up first: then its log entry says `client_disconnected` (what a
    test of the relay's own cancellation looks for) and the call goes on as a real server's would."""
    if not call.body_read:  # listening now would swallow the body the route has yet to read
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await call.request.receive()  # once the body has been read, only a disconnect comes
            log_entry(call.request)["client_disconnected"] = True


async def apply_http_faults(call: Call) -> None:
    if call.fault("slow-first-byte"):
        await _wait_noting_hang_up(call, call.fault_value("slow-first-byte") / 1000)
    for status in (500, 502, 503):
        if call.fault(f"http-{status}"):
            raise infrastructure_error(status)
    if call.fault("cloudflare-522"):
        raise infrastructure_error(522)
    if call.fault("http-429"):
        retry_after = str(call.fault_value("http-429"))
        raise shape_a(429, "RATE_LIMITED", "Too many requests", headers={"Retry-After": retry_after})
