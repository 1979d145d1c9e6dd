"""The Chat with AI API (`POST /api/chat-with-ai`, JSON and SSE) and the Conversation API (§3, §5)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from onemin_relay.simulator.answers import expected_answer, scripted_answer
from onemin_relay.simulator.catalogue import accepts_images, active_model
from onemin_relay.simulator.errors import api_error, shape_a
from onemin_relay.simulator.faults import Scope
from onemin_relay.simulator.gateway import Call, open_call
from onemin_relay.simulator.limits import chat_usage
from onemin_relay.simulator.records import ai_record
from onemin_relay.simulator.state import Conversation, now_iso

CHAT_FEATURE = "UNIFY_CHAT_WITH_AI"
ACCEPTED_TYPES = (CHAT_FEATURE, "CHAT_WITH_IMAGE")  # CHAT_WITH_IMAGE was accepted live on 2026-08-19
TITLE_MAX = 91


class StreamDropped(Exception):
    """Raised inside a response body to make the server abort the connection mid-stream."""


def is_streaming(request: Request) -> bool:
    return request.query_params.get("isStreaming", "").lower() == "true"


@dataclass
class Turn:
    """A validated chat request and the answer it gets."""

    feature: str
    model: dict[str, Any]
    prompt: str
    prompt_object: dict[str, Any]
    conversation: Conversation | None
    history: list[str]
    images: int
    answer: str


def _prompt_error(field: str, message: str) -> Exception:
    return shape_a(
        422,
        "PROMPT_OBJECT_VALIDATION_FAILED",
        "Invalid prompt object",
        [{"field": field, "message": message}],
    )


def _settings(prompt_object: dict[str, Any], name: str) -> dict[str, Any]:
    settings = prompt_object.get("settings")
    section = settings.get(name) if isinstance(settings, dict) else None
    return section if isinstance(section, dict) else {}


def _count(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


def _strings(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _prompt_error(field, f"{field} must be an array of strings")
    return value


def _validated_model(call: Call, body: dict[str, Any]) -> dict[str, Any]:
    model_id = body.get("model")
    if not isinstance(model_id, str) or not model_id:
        raise shape_a(400, "INVALID_REQUEST", "model is required")
    model = active_model(CHAT_FEATURE, model_id)
    if model is None:
        message = f"Model {model_id} is not supported for feature {CHAT_FEATURE}"
        raise api_error(call.state.config.chat_model_error_shape, 400, "UNSUPPORTED_MODEL", message)
    return model


def _attachments(call: Call, prompt_object: dict[str, Any], model: dict[str, Any]) -> tuple[int, int]:
    """How many images and files the model gets: images by asset key or URL, files by fileContent.uuid."""
    attachments = prompt_object.get("attachments")
    attachments = attachments if isinstance(attachments, dict) else {}
    images = _strings(attachments.get("images"), "images")
    files = _strings(attachments.get("files"), "files")
    assets = call.state.assets
    for image in images:
        if assets.resolve(image) is None and not image.startswith(("http://", "https://")):
            raise shape_a(400, "INVALID_REQUEST", f"Image not found: {image[:200]}")
    for file_id in files:
        if assets.by_uuid(file_id) is None:
            raise shape_a(400, "INVALID_REQUEST", f"File not found: {file_id[:200]} (send fileContent.uuid)")
    if images and not accepts_images(model):
        if call.state.config.non_vision_images == "error":
            raise shape_a(400, "INVALID_REQUEST", f"Model {model['modelId']} does not support image input")
        images = []
    return len(images), len(files)


def _history(call: Call, prompt_object: dict[str, Any]) -> tuple[Conversation | None, list[str]]:
    """The conversation named by `conversationId` and its last `historyMessageLimit` messages."""
    conversation_id = prompt_object.get("conversationId")
    if conversation_id is None:
        return None, []
    conversation = call.state.conversations.get(conversation_id) if isinstance(conversation_id, str) else None
    if conversation is None or conversation.owner != call.key_hash:
        raise shape_a(400, "INVALID_REQUEST", "Conversation not found")
    limit = _count(_settings(prompt_object, "historySettings").get("historyMessageLimit"), 10)
    return conversation, conversation.messages[-limit:] if limit else []


def prepare_turn(call: Call) -> Turn:
    """Validate a chat body the way §3.2–§3.7 describe and work out its answer."""
    body = call.body
    if not isinstance(body, dict):
        raise shape_a(400, "INVALID_REQUEST", "Missing required parameters or invalid format")
    feature = body.get("type", None if call.state.config.require_type else CHAT_FEATURE)
    if feature not in ACCEPTED_TYPES:
        raise shape_a(400, "INVALID_REQUEST", f"type must be {CHAT_FEATURE}")
    model = _validated_model(call, body)
    prompt_object = body.get("promptObject")
    if not isinstance(prompt_object, dict):
        raise _prompt_error("promptObject", "promptObject must be an object")
    prompt = prompt_object.get("prompt")
    if not isinstance(prompt, str):
        raise _prompt_error("prompt", "prompt must be a string")
    if not prompt.strip():
        raise _prompt_error("prompt", "prompt should not be empty")
    images, files = _attachments(call, prompt_object, model)
    conversation, history = _history(call, prompt_object)
    web = _settings(prompt_object, "webSearchSettings")
    scripted = call.state.scripted.next(call.key_hash) or scripted_answer(prompt)
    answer = scripted or expected_answer(
        prompt,
        web_search=web.get("webSearch") is True,
        sites=_count(web.get("numOfSite"), 3),
        history=len(history),
        images=images,
        files=files,
    )
    echo = {**prompt_object, "linkContentList": [], "searchContentList": []}
    return Turn(feature, model, prompt, echo, conversation, history, images, answer)


def finish_turn(call: Call, turn: Turn) -> dict[str, Any]:
    """Bill the turn, extend the conversation and return the final aiRecord."""
    config = call.state.config
    failed = call.fault("failed-status")
    usage = chat_usage(
        turn.model, "\n".join([*turn.history, turn.prompt]), turn.answer, turn.images, config.credit_scale
    )
    if failed:
        usage = {**usage, "credit": 0, "inputCredit": 0, "outputCredit": 0, "finishReason": "error"}
    if call.fault("zero-tokens"):
        usage = {**usage, "inputToken": 0, "outputToken": 0, "totalToken": 0}
    if turn.conversation is not None and not failed:
        call.state.remember(turn.conversation, turn.prompt, turn.answer)
    return ai_record(
        call,
        model=turn.model,
        feature=turn.feature,
        prompt_object=turn.prompt_object,
        result_object=[] if failed else [turn.answer],
        status=config.failed_status if failed else "SUCCESS",
        metadata=usage,
        conversation_id=turn.conversation.uuid if turn.conversation else None,
        credits=usage["credit"],
    )


def chunk_text(text: str, size: int) -> list[str]:
    return [text[index : index + size] for index in range(0, len(text), size)] or [""]


class SseWriter:
    """SSE framing with the switchable quirks: CRLF line ends and keep-alive comments."""

    def __init__(self, call: Call) -> None:
        self.newline = "\r\n" if call.fault("crlf") else "\n"
        self.keepalive = call.fault("keepalive")

    def event(self, name: str, data: dict[str, Any]) -> str:
        payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        comment = f": keep-alive{self.newline}{self.newline}" if self.keepalive else ""
        return f"{comment}event: {name}{self.newline}data: {payload}{self.newline}{self.newline}"


async def chat_events(call: Call, turn: Turn) -> AsyncIterator[str]:
    config = call.state.config
    sse = SseWriter(call)
    delay = call.fault_value("delay") / 1000 if call.fault("delay") else 0.0
    if call.fault("failed-status"):
        yield sse.event("result", {"aiRecord": finish_turn(call, turn)})
        yield sse.event("done", {"message": "Stream completed"})
        return
    pieces = chunk_text(turn.answer, config.stream_chunk_chars)
    if config.empty_first_content:
        yield sse.event("content", {"content": ""})
    broken = any(call.fault(name) for name in ("error-mid-stream", "drop-mid-stream", "end-mid-stream"))
    cut = max(1, len(pieces) // 2) if broken else None
    for index, piece in enumerate(pieces):
        if index == cut:
            break
        if delay and index:
            await asyncio.sleep(delay)
        yield sse.event("content", {"content": piece})
    if call.fault("drop-mid-stream"):
        raise StreamDropped("drop-mid-stream fault")
    if call.fault("end-mid-stream"):  # the body ends cleanly: no error, no result, no done
        return
    if call.fault("error-mid-stream"):
        yield sse.event("error", {"error": "Upstream provider returned an error"})
        if config.done_after_error:
            yield sse.event("done", {"message": "Stream completed"})
        return
    if call.fault("duplicate-final"):
        yield sse.event("content", {"content": turn.answer})
    record = finish_turn(call, turn)
    if not config.stream_result_metadata:
        record["metadata"] = None
    yield sse.event("result", {"aiRecord": record})
    yield sse.event("done", {"message": "Stream completed"})


async def encoded(call: Call, texts: AsyncIterator[str]) -> AsyncIterator[bytes]:
    """UTF-8 bytes, in tiny writes that cut characters apart when the `split-bytes` fault is on."""
    size = call.fault_value("split-bytes") if call.fault("split-bytes") else 0
    async for text in texts:
        data = text.encode("utf-8")
        if size <= 0:
            yield data
            continue
        for index in range(0, len(data), size):
            yield data[index : index + size]


def stream_response(call: Call, texts: AsyncIterator[str], media_type: str) -> StreamingResponse:
    # the header is set by hand: Starlette would append "; charset=utf-8" to a text/event-stream media type
    headers = {"Content-Type": media_type, "Cache-Control": "no-cache"}
    return StreamingResponse(encoded(call, texts), headers=headers)


def call_scopes(streaming: bool) -> set[Scope]:
    return {"http", "record", "stream"} if streaming else {"http", "record"}


async def chat_with_ai(request: Request) -> Response:
    streaming = is_streaming(request)
    call = await open_call(request, shape="A", scopes=call_scopes(streaming))
    turn = prepare_turn(call)
    if streaming:
        return stream_response(call, chat_events(call, turn), "text/event-stream")
    return JSONResponse({"aiRecord": finish_turn(call, turn)})


# --- conversations ------------------------------------------------------------------------------------


def _conversation_error(field: str, message: str) -> Exception:
    return shape_a(
        400, "REQUEST_BODY_VALIDATION_FAILED", "Invalid request body", [{"field": field, "message": message}]
    )


async def create_conversation(request: Request) -> Response:
    call = await open_call(request, shape="A", scopes={"http"})
    body = call.body
    if not isinstance(body, dict):
        raise shape_a(400, "INVALID_REQUEST", "Missing required parameters or invalid format")
    kind = body.get("type")
    legacy = call.state.config.legacy_chat and isinstance(kind, str) and kind.startswith("CHAT_WITH_")
    if kind != CHAT_FEATURE and not legacy:
        raise _conversation_error("type", f"type must be {CHAT_FEATURE}")
    title = body.get("title")
    if not isinstance(title, str) or not title.strip():
        raise _conversation_error("title", "title must be a non-empty string")
    if len(title) > TITLE_MAX:
        raise _conversation_error("title", f"title must be shorter than or equal to {TITLE_MAX} characters")
    model_id = body.get("model")
    if not isinstance(model_id, str) or active_model(CHAT_FEATURE, model_id) is None:
        raise _conversation_error("model", "model must be a supported chat model")
    conversation = Conversation(str(uuid.uuid4()), call.key_hash, title, now_iso())
    call.state.add_conversation(conversation)
    return JSONResponse({"conversation": conversation_json(conversation, "ACTIVE")})


def conversation_json(conversation: Conversation, status: str) -> dict[str, Any]:
    return {
        "uuid": conversation.uuid,
        "title": conversation.title,
        "status": status,
        "createdAt": conversation.created_at,
        "metadata": {},
        "conversationFile": [],
    }


async def delete_conversation(request: Request) -> Response:
    call = await open_call(request, shape="A", scopes={"http"}, json_body=False)
    conversation = call.state.conversations.get(request.path_params["uuid"])
    if conversation is None or conversation.owner != call.key_hash:
        raise shape_a(404, "NOT_FOUND", "Conversation not found")
    call.state.drop_conversation(conversation.uuid)
    return JSONResponse({"conversation": conversation_json(conversation, "DELETED")})
