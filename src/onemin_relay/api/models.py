"""`GET /v1/models` and `GET /v1/models/{id}`: the live 1min.ai catalogue in OpenAI's shapes.

Besides OpenAI's four fields each model carries what a chat UI needs to pick models, in the names
OpenRouter's list made common: `name`, `features`, `architecture`, `context_length`, `pricing`.
`?feature=chat` (or MODELS_LIST) narrows the list. PUBLIC_MODELS decides whether a request without a key
may read them (docs/open-webui.md).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from onemin_relay.api.auth import catalogue_reader, model_visible
from onemin_relay.api.common import relay
from onemin_relay.errors import invalid_request, model_not_found
from onemin_relay.fastjson import JSONResponse
from onemin_relay.upstream.catalogue import ModelInfo
from onemin_relay.upstream.features import FEATURE_NAMES, SERVED_FEATURES, features_named


def model_object(info: ModelInfo) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": info.id,
        "object": "model",
        "created": info.created,
        "owned_by": info.provider,
    }
    if info.deprecation_date:
        body["shutdown_date"] = info.deprecation_date[:10]
    body |= {
        "name": info.name,
        "features": [FEATURE_NAMES[feature] for feature in SERVED_FEATURES if feature in info.features],
        "architecture": {
            "input_modalities": sorted(modality.lower() for modality in info.input_modalities),
            "output_modalities": sorted(modality.lower() for modality in info.output_modalities),
        },
        "context_length": info.context_length,
        "max_output_tokens": info.max_output_tokens,
        "pricing": {"unit": "1min.ai credits", **info.credit_prices},
    }
    return body


def _listed_features(request: Request) -> frozenset[str] | None:
    """`?feature=` (repeated or comma-separated) wins over MODELS_LIST; None lists every feature."""
    asked = [name for value in request.query_params.getlist("feature") for name in value.split(",")]
    if not any(name.strip() for name in asked):
        return relay(request).settings.listed_features
    try:
        return features_named(name for name in asked if name.strip())
    except ValueError as exc:
        raise invalid_request(f"Invalid 'feature': {exc}.", param="feature", code="invalid_value") from None


async def list_models(request: Request) -> Response:
    catalogue_reader(request, relay(request).settings.models_public)
    wanted = _listed_features(request)
    models = await relay(request).catalogue.list_active()
    data = [
        model_object(info)
        for info in models
        if model_visible(info.id) and (wanted is None or info.features & wanted)
    ]
    return JSONResponse({"object": "list", "data": data})


async def retrieve_model(request: Request) -> Response:
    catalogue_reader(request, relay(request).settings.models_public)
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
