"""`GET /v1/audio/models` and `GET /v1/audio/voices`: the speech models and their voices, for the speech
settings of chat UIs (Open WebUI fills its TTS model and voice pickers from them, sending no key).

Not OpenAI endpoints: the shapes are the ones Open WebUI reads, `{"models": [{"id", "name"}]}` and
`{"voices": [{"id", "name"}]}`. Models come from the catalogue, voices from translate/audio.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from onemin_relay.api.auth import catalogue_reader, model_visible
from onemin_relay.api.common import relay
from onemin_relay.errors import model_not_found
from onemin_relay.fastjson import JSONResponse
from onemin_relay.translate.audio import SPEECH, model_voices
from onemin_relay.upstream.catalogue import ModelInfo


async def _speech_models(request: Request) -> list[ModelInfo]:
    settings = relay(request).settings
    catalogue_reader(request, settings.models_public)
    models = await relay(request).catalogue.list_active()
    return [info for info in models if SPEECH in info.features and model_visible(info.id)]


async def list_audio_models(request: Request) -> Response:
    models = await _speech_models(request)
    return JSONResponse({"models": [{"id": info.id, "name": info.name} for info in models]})


async def list_voices(request: Request) -> Response:
    """Every listed speech model's known voices, or one model's with `?model=`."""
    models = [info.id for info in await _speech_models(request)]
    wanted = request.query_params.get("model")
    if wanted is not None:
        if wanted not in models:
            raise model_not_found(wanted)
        models = [wanted]
    voices = dict.fromkeys(voice for model in models for voice in model_voices(model))
    return JSONResponse({"voices": [{"id": voice, "name": voice} for voice in voices]})


routes: list[BaseRoute] = [
    Route("/v1/audio/models", list_audio_models, methods=["GET"]),
    Route("/v1/audio/voices", list_voices, methods=["GET"]),
]
