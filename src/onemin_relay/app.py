"""Wires the relay together: settings → upstream client, catalogue, state, limits → routes."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio
import anyio.lowlevel
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from onemin_relay.accounts import admin, dashboard
from onemin_relay.accounts.factory import open_accounts
from onemin_relay.accounts.ledger import UsageLedger
from onemin_relay.accounts.store import AccountStore
from onemin_relay.api import (
    audio,
    audio_catalogue,
    chat,
    completions,
    files,
    images,
    messages,
    models,
    responses,
    unsupported,
)
from onemin_relay.api.auth import Authenticator, CallerMiddleware
from onemin_relay.api.common import relay
from onemin_relay.config import Settings
from onemin_relay.edge import EdgeMiddleware
from onemin_relay.errors import OpenAIError, error_response, service_unavailable
from onemin_relay.fastjson import JSONResponse
from onemin_relay.metrics import RelayMetrics, metrics_endpoint
from onemin_relay.observability import RequestListener, write_access_line
from onemin_relay.ratelimit import RateLimitMiddleware
from onemin_relay.state.base import StateStore, StateUnavailable, answers_ping
from onemin_relay.state.factory import open_state
from onemin_relay.state.retention import run_retention
from onemin_relay.tracing import start_tracing
from onemin_relay.translate.errors import openai_error_from_upstream
from onemin_relay.upstream.breaker import CircuitState
from onemin_relay.upstream.catalogue import ModelCatalogue
from onemin_relay.upstream.client import OneMinClient
from onemin_relay.upstream.errors import UpstreamError
from onemin_relay.upstream.keys import UpstreamKeyPool

log = logging.getLogger("onemin_relay")


@dataclass
class RelayContext:
    """Everything a route needs, built once per process in the lifespan."""

    settings: Settings
    upstream: OneMinClient
    catalogue: ModelCatalogue
    state: StateStore
    # Called with each finished request's record (access log first). Append at start-up; a listener must
    # be quick and must not block: hand slow work (a database write) to a queue.
    request_listeners: list[RequestListener]
    accounts: AccountStore  # relay keys, the usage ledger, spend totals
    ledger: UsageLedger
    authenticator: Authenticator
    metrics: RelayMetrics


async def health(request: Request) -> Response:
    """Liveness, cheap (no I/O): the relay answers; `upstream` is the worst of its circuit breakers, and
    `circuits` lists the endpoints whose circuit is not closed (this process's view)."""
    circuits = relay(request).upstream.circuits
    troubled = {name: state for name, state in circuits.states().items() if state != CircuitState.CLOSED}
    body: dict[str, object] = {"status": "ok", "upstream": _state_name(max(troubled.values(), default=0))}
    if troubled:
        body["circuits"] = {
            name: {"state": _state_name(state), "retry_after": math.ceil(circuits.retry_after(name))}
            for name, state in troubled.items()
        }
    return JSONResponse(body)


async def ready(request: Request) -> Response:
    """Readiness: the state store answers a ping within a second (503 otherwise)."""
    if not await answers_ping(relay(request).state):
        return JSONResponse({"status": "unavailable", "state": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "state": "ok"})


def _state_name(state: int) -> str:
    return CircuitState(state).name.lower().replace("_", "-")


async def _openai_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OpenAIError)
    return error_response(exc, request.url.path)


async def _upstream_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, UpstreamError)
    return error_response(openai_error_from_upstream(exc), request.url.path)


async def _state_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("state backend unavailable: %s", exc)
    error = service_unavailable("The relay's state store is unavailable; please retry shortly.")
    return error_response(error, request.url.path)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"Unknown request URL: {request.method} {request.url.path}."
        error = OpenAIError(404, message, code="unknown_url")
    elif exc.status_code == 405:  # keeps Starlette's `Allow` header
        message = f"Method {request.method} is not allowed for {request.url.path}."
        error = OpenAIError(405, message, code="method_not_allowed", headers=exc.headers)
    else:
        error = OpenAIError(exc.status_code, str(exc.detail), headers=exc.headers)
    return error_response(error, request.url.path)


class _RelayStarlette(Starlette):
    """Starlette without its outer `ServerErrorMiddleware` and inner `ExceptionMiddleware`: the relay's
    `EdgeMiddleware` answers every exception itself, inside the layer that adds the request id and CORS
    headers (each of Starlette's two added a wrapper every response message passed through)."""

    def build_middleware_stack(self) -> ASGIApp:
        app: ASGIApp = self.router
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return app


def create_app(settings: Settings) -> Starlette:
    """Build the relay."""
    metrics = RelayMetrics()
    request_listeners: list[RequestListener] = [write_access_line, metrics.observe]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # anyio imports its asyncio backend on first use (30-40 ms): Starlette's streaming responses and
        # worker threads need it, so it is loaded now rather than by the first stream.
        await anyio.lowlevel.checkpoint()
        upstream_keys = UpstreamKeyPool(settings.onemin_api_keys)
        upstream = OneMinClient(settings, keys=upstream_keys)
        catalogue = ModelCatalogue(upstream, settings)
        state = await open_state(settings)
        accounts = await open_accounts(settings)
        ledger = UsageLedger(
            accounts, retention=settings.usage_retention, sweep_interval=settings.retention_sweep_interval
        )
        app.state.relay = RelayContext(
            settings=settings,
            upstream=upstream,
            catalogue=catalogue,
            state=state,
            request_listeners=request_listeners,
            accounts=accounts,
            ledger=ledger,
            authenticator=Authenticator(settings, accounts, ledger, upstream_keys),
            metrics=metrics,
        )
        ledger.start()
        request_listeners.append(ledger.on_request_end)
        tracing = start_tracing(settings.otel_exporter_otlp_endpoint)
        if tracing is not None:
            request_listeners.append(tracing.record_spans)
        retention = asyncio.create_task(run_retention(state, settings), name="file-retention")
        # The model catalogue is fetched in the background, so the relay serves at once and the first
        # requests find it cached. (The tokeniser is not loaded here: see `translate/tokens.py`.)
        warm_up = asyncio.create_task(catalogue.warm(), name="catalogue-warm-up")
        # What start-up built lives as long as the process: out of the collector's sight, a full collection
        # walks only what requests made (each one took ~50 ms of the event loop with them).
        gc.freeze()
        try:
            yield
        finally:
            for task in (warm_up, retention):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            request_listeners.remove(ledger.on_request_end)  # a restarted app must not record twice
            await ledger.aclose()  # after the server stopped taking requests: writes every record
            await accounts.aclose()
            await state.aclose()
            await upstream.aclose()
            metrics.close()
            if tracing is not None:
                request_listeners.remove(tracing.record_spans)
                await anyio.to_thread.run_sync(tracing.shutdown)

    routes: list[BaseRoute] = [
        Route("/health", health, methods=["GET"]),
        Route("/health/ready", ready, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        *models.routes,
        *chat.routes,
        *completions.routes,
        *messages.routes,
        *responses.routes,
        *images.routes,
        *audio.routes,
        *audio_catalogue.routes,
        *files.routes,
        *admin.routes,
        *unsupported.routes,
        *dashboard.routes,
    ]
    middleware = [
        # Outermost, and in place of Starlette's own error and exception middlewares (`_RelayStarlette`):
        # the request's record and id, CORS, body draining, hang-ups, and the answer to every exception.
        Middleware(
            EdgeMiddleware,
            cors_origins=settings.cors_allow_origins,
            listeners=request_listeners,
            on_response_start=[metrics.response_started],
            handlers={
                OpenAIError: _openai_error,
                UpstreamError: _upstream_error,
                StateUnavailable: _state_unavailable,
                HTTPException: _http_error,
            },
        ),
        Middleware(CallerMiddleware),  # before the rate limits, which count per caller identity
        Middleware(RateLimitMiddleware, settings=settings),
    ]
    return _RelayStarlette(routes=routes, middleware=middleware, lifespan=lifespan)
