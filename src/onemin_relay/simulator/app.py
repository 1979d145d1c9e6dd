"""`create_simulator_app`: a local stand-in for api.1min.ai (and its asset CDN) — see ../shared reference."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from onemin_relay.simulator import control
from onemin_relay.simulator.catalogue import models_for
from onemin_relay.simulator.chat import chat_with_ai, create_conversation, delete_conversation
from onemin_relay.simulator.config import SimulatorConfig
from onemin_relay.simulator.errors import SimError
from onemin_relay.simulator.features import features, get_result
from onemin_relay.simulator.gateway import RequestLogMiddleware, apply_public_faults
from onemin_relay.simulator.state import SimulatorState
from onemin_relay.simulator.uploads import cdn, signed, upload_asset


async def list_models(request: Request) -> Response:
    """`GET /models?feature=…`: public (no key); without a feature the list is empty."""
    await apply_public_faults(request)
    models = models_for(request.query_params.get("feature", ""))
    return JSONResponse({"models": models, "total": len(models)})


async def _sim_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SimError)
    return exc.response


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown routes answer like the NestJS service behind api.1min.ai."""
    assert isinstance(exc, HTTPException)
    reason = {404: "Not Found", 405: "Method Not Allowed"}.get(exc.status_code, "Error")
    message = f"Cannot {request.method} {request.url.path}" if exc.status_code == 404 else str(exc.detail)
    return JSONResponse({"statusCode": exc.status_code, "message": message, "error": reason}, exc.status_code)


def create_simulator_app(config: SimulatorConfig | None = None) -> Starlette:
    """The current 1min.ai API as a Starlette app, with fault switches and a `/_sim/` control API."""
    state = SimulatorState(config or SimulatorConfig())
    routes = [
        Route("/api/chat-with-ai", chat_with_ai, methods=["POST"]),
        Route("/api/conversations", create_conversation, methods=["POST"]),
        Route("/api/conversations/{uuid}", delete_conversation, methods=["DELETE"]),
        Route("/api/assets", upload_asset, methods=["POST"]),
        Route("/api/features", features, methods=["POST"]),
        Route("/api/results/{uuid}", get_result, methods=["GET"]),
        Route("/models", list_models, methods=["GET"]),
        Route("/cdn/{key:path}", cdn, methods=["GET", "HEAD"]),
        Route("/s3/asset.1min.ai/{key:path}", signed, methods=["GET", "HEAD"]),
        *control.routes,
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(RequestLogMiddleware, state=state)],
        exception_handlers={SimError: _sim_error, HTTPException: _http_error},
    )
    app.state.sim = state
    return app
