"""`GET /v1/models` and `GET /v1/models/{id}`: the live 1min.ai catalogue in OpenAI's shapes."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from onemin_relay.api.auth import caller, model_visible
from onemin_relay.api.common import relay
from onemin_relay.errors import model_not_found
from onemin_relay.upstream.catalogue import ModelInfo


def model_object(info: ModelInfo) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": info.id,
        "object": "model",
        "created": info.created,
        "owned_by": info.provider,
    }
    if info.deprecation_date:
        body["shutdown_date"] = info.deprecation_date[:10]
    return body


async def list_models(request: Request) -> Response:
    caller(request)
    models = [info for info in await relay(request).catalogue.list_active() if model_visible(info.id)]
    return JSONResponse({"object": "list", "data": [model_object(info) for info in models]})


async def retrieve_model(request: Request) -> Response:
    caller(request)
    model_id: str = request.path_params["model_id"]
    info = await relay(request).catalogue.find(model_id)
    if info is None or not model_visible(model_id):
        raise model_not_found(model_id)
    return JSONResponse(model_object(info))


routes: list[BaseRoute] = [
    Route("/v1/models", list_models, methods=["GET"]),
    # Ids hold `/`, `:` and `.` (`meta/llama-4-scout-instruct`, `…-v1:0`): take the rest of the path.
    Route("/v1/models/{model_id:path}", retrieve_model, methods=["GET"]),
]
