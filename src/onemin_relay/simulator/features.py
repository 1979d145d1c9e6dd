"""The AI Feature API (`POST /api/features`), async records and `GET /api/results/{uuid}` (§4, §7)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from onemin_relay.simulator import audio, images
from onemin_relay.simulator.answers import expected_answer
from onemin_relay.simulator.catalogue import active_model
from onemin_relay.simulator.chat import (
    CHAT_FEATURE,
    StreamDropped,
    call_scopes,
    chunk_text,
    is_streaming,
    stream_response,
)
from onemin_relay.simulator.errors import shape_b
from onemin_relay.simulator.gateway import Call, open_call
from onemin_relay.simulator.records import ai_record
from onemin_relay.simulator.state import PendingResult
from onemin_relay.translate.credits import feature_credits

Handler = Callable[[Call, dict[str, Any], dict[str, Any]], Awaitable[list[str]]]


async def code(call: Call, model: dict[str, Any], prompt_object: dict[str, Any]) -> list[str]:
    return [expected_answer(images.required_text(prompt_object, "prompt"))]


HANDLERS: dict[str, Handler] = {
    "IMAGE_GENERATOR": images.generate,
    "IMAGE_VARIATOR": images.variate,
    "IMAGE_EDITOR": images.edit,
    "IMAGE_INPAINTER": images.inpaint,
    "TEXT_TO_SPEECH": audio.speak,
    "SPEECH_TO_TEXT": audio.transcribe,
    "AUDIO_TRANSLATOR": audio.translate,
    "CODE_GENERATOR": code,
}


# features whose resultObject holds storage keys; the record then carries a signed URL for the first one
FILE_FEATURES = frozenset(
    {"IMAGE_GENERATOR", "IMAGE_VARIATOR", "IMAGE_EDITOR", "IMAGE_INPAINTER", "TEXT_TO_SPEECH"}
)


def unsupported_type(feature: object) -> Exception:
    return shape_b(400, "UNKNOWN_ERROR", f"Unsupported feature type: {feature}")


async def features(request: Request) -> Response:
    streaming = is_streaming(request)
    call = await open_call(request, shape="B", scopes=call_scopes(streaming))
    body = call.body
    if not isinstance(body, dict):
        raise shape_b(400, "INVALID_REQUEST", "Missing required parameters or invalid format")
    feature = body.get("type")
    if isinstance(feature, str) and feature.startswith("CHAT_WITH_"):
        if not call.state.config.legacy_chat:
            raise unsupported_type(feature)
        return legacy_chat(call, feature, streaming)
    if not isinstance(feature, str) or feature not in HANDLERS:
        raise unsupported_type(feature)
    model = active_model(feature, body.get("model"))
    if model is None:
        raise shape_b(
            400, "UNSUPPORTED_MODEL", f"Model {body.get('model')} is not supported for feature {feature}"
        )
    prompt_object = body.get("promptObject")
    if not isinstance(prompt_object, dict):
        raise images.validation_error("promptObject", "promptObject must be an object")

    result_object = await HANDLERS[feature](call, model, prompt_object)
    credits = feature_credits(
        model.get("creditMetadata", {}), prompt_object, len(result_object), call.state.config.credit_scale
    )
    record = feature_record(call, model, feature, prompt_object, result_object, {}, credits)
    failed = call.fault("failed-status")
    if feature in FILE_FEATURES and not failed:
        record["temporaryUrl"] = call.state.assets.signed_url(call.base_url, result_object[0])
    if body.get("async") is True:
        return JSONResponse({"aiRecord": submit_async(call, record, failed)})
    speech = call.state.assets.get(result_object[0]) if feature == "TEXT_TO_SPEECH" else None
    if call.state.config.tts_binary and speech is not None and not failed:
        return Response(speech.data, media_type=speech.content_type)  # §18.13: what the docs page claims
    return JSONResponse({"aiRecord": record})


def feature_record(
    call: Call,
    model: dict[str, Any],
    feature: str,
    prompt_object: dict[str, Any],
    result_object: list[str],
    metadata: dict[str, Any] | None,
    credits: int,
) -> dict[str, Any]:
    """The aiRecord of a /api/features call; under the `failed-status` fault it is empty and costs nothing."""
    failed = call.fault("failed-status")
    conversation_id = call.body.get("conversationId")
    return ai_record(
        call,
        model=model,
        feature=feature,
        prompt_object=prompt_object,
        result_object=[] if failed else result_object,
        status=call.state.config.failed_status if failed else "SUCCESS",
        metadata=metadata,
        conversation_id=conversation_id if isinstance(conversation_id, str) else None,
        credits=0 if failed else credits,
    )


def processing(record: dict[str, Any]) -> dict[str, Any]:
    pending = {key: value for key, value in record.items() if key != "temporaryUrl"}
    detail = {**record["aiRecordDetail"], "resultObject": []}
    return {**pending, "status": "PROCESSING", "aiRecordDetail": detail}


def submit_async(call: Call, record: dict[str, Any], failed: bool) -> dict[str, Any]:
    final = {**record, "status": call.state.config.result_failed_status} if failed else record
    pending = PendingResult(call.key_hash, final, call.state.config.async_polls, call.body_bytes)
    call.state.add_result(record["uuid"], pending)
    return processing(record)


async def get_result(request: Request) -> Response:
    call = await open_call(request, shape="B", scopes={"http"}, json_body=False)
    pending = call.state.results.get(request.path_params["uuid"])
    if pending is None or pending.owner != call.key_hash:
        return JSONResponse({"aiRecord": None})
    if pending.polls_left > 0:
        pending.polls_left -= 1
        return JSONResponse({"aiRecord": processing(pending.record)})
    return JSONResponse({"aiRecord": pending.record})


# --- legacy chat (config.legacy_chat): CHAT_WITH_* through /api/features, raw-text streaming ----------------


def legacy_chat(call: Call, feature: str, streaming: bool) -> Response:
    body = call.body
    assert isinstance(body, dict)
    model = active_model(CHAT_FEATURE, body.get("model"))
    if model is None:
        raise shape_b(
            400, "UNSUPPORTED_MODEL", f"Model {body.get('model')} is not supported for feature {feature}"
        )
    prompt_object = body.get("promptObject")
    prompt = prompt_object.get("prompt") if isinstance(prompt_object, dict) else None
    if not isinstance(prompt_object, dict) or not isinstance(prompt, str):
        raise images.validation_error("prompt", "prompt must be a string")
    image_list = prompt_object.get("imageList")
    sites = prompt_object.get("numOfSite")
    answer = expected_answer(
        prompt,
        web_search=prompt_object.get("webSearch") is True,
        sites=sites if isinstance(sites, int) else 3,
        images=len(image_list) if isinstance(image_list, list) else 0,
    )
    if streaming:
        return stream_response(call, raw_text(call, answer), "text/plain; charset=utf-8")
    return JSONResponse({"aiRecord": feature_record(call, model, feature, prompt_object, [answer], None, 0)})


async def raw_text(call: Call, answer: str) -> AsyncIterator[str]:
    """The legacy stream: just the answer text in chunks, no framing, no end marker."""
    pieces = chunk_text(answer, call.state.config.stream_chunk_chars)
    delay = call.fault_value("delay") / 1000 if call.fault("delay") else 0.0
    for index, piece in enumerate(pieces):
        if call.fault("drop-mid-stream") and index == max(1, len(pieces) // 2):
            raise StreamDropped("drop-mid-stream fault")
        if delay and index:
            await asyncio.sleep(delay)
        yield piece
