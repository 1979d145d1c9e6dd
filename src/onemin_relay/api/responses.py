"""OpenAI's Responses API over the chat core: `POST /v1/responses` (whole or streamed), and the stored
responses (`GET`/`DELETE /v1/responses/{id}`, `GET /v1/responses/{id}/input_items`).

Stored responses live in the relay's state store, namespaced by the caller's identity (`api/auth.py`;
another caller's response is a 404), kept as long as files are (FILE_RETENTION). Each keeps its own input
items and output, and the id of the response it continued: `previous_response_id` walks that chain back.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from onemin_relay.api.auth import caller
from onemin_relay.api.common import page_query, read_json, relay
from onemin_relay.api.event_stream import KEEPALIVE, EventStreamResponse, sse_data
from onemin_relay.core.engine import CoreStream, complete, open_stream
from onemin_relay.core.types import KeepAlive, StreamFailure
from onemin_relay.errors import OpenAIError, invalid_request, not_found
from onemin_relay.fastjson import JSONResponse
from onemin_relay.state.base import StateStore, StateUnavailable
from onemin_relay.translate.responses import (
    core_request,
    new_id,
    outcome,
    output_items,
    request_echo,
    response_object,
    stored_input_items,
    stored_items,
)
from onemin_relay.translate.responses_stream import ResponseEvents
from onemin_relay.translate.responses_wire import MAX_ID_LENGTH, InputItem, parse_response_request

log = logging.getLogger("onemin_relay.responses")

RECORD_KIND = "response"
# How far back `previous_response_id` follows a conversation (each hop is one state read).
MAX_CHAIN = 1000
_MAX_LIST_LIMIT = 100
# Stored records longer than this are parsed on a worker thread, so the event loop never stalls on them.
_THREAD_JSON_CHARS = 1 << 20


def _compact_json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


@dataclass(frozen=True)
class _Saver:
    """Keeps a finished response (with the request's input items) for its owner, if `store` allows."""

    state: StateStore
    owner: str
    input_items: list[dict[str, Any]]
    retention: int
    enabled: bool

    async def save(self, response: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"response": response, "input": self.input_items}
        value = await anyio.to_thread.run_sync(_compact_json, record)
        try:
            await self.state.put_record(
                RECORD_KIND, self.owner, response["id"], value, response["created_at"] + self.retention
            )
        except StateUnavailable as exc:  # the answer is given and paid for: the client still gets it
            log.warning("response %s answered but not stored: %s", response["id"], exc)


async def create_response(request: Request) -> Response:
    owner = caller(request).identity
    context = relay(request)
    wire = parse_response_request(await read_json(request))
    history: list[InputItem] = []
    if wire.previous_response_id is not None:
        limit = context.settings.max_request_bytes
        history = await _history(context.state, owner, wire.previous_response_id, limit)
    translated = core_request(wire, history)
    saver = _Saver(
        context.state,
        owner,
        stored_input_items(wire),
        int(context.settings.file_retention),
        wire.store is not False,
    )
    if saver.enabled:
        await context.state.ping()  # a response that cannot be kept is refused before it costs credits
    response_id, created_at, echo = new_id("resp"), int(time.time()), request_echo(wire)
    try:
        if wire.stream:
            stream = await open_stream(request, translated.core)
        else:
            result = await complete(request, translated.core)
    except OpenAIError as exc:
        raise translated.renamed(exc) from None
    if wire.stream:
        events = ResponseEvents(response_id, created_at, echo)
        return EventStreamResponse(_stream_body(stream, events, saver), stream.aclose)
    choice = result.choices[0]
    end = outcome(choice.finish_reason)
    body = response_object(
        response_id,
        created_at,
        echo,
        status=end.status,
        output=output_items(choice),
        usage=result.usage,
        incomplete_reason=end.incomplete_reason,
    )
    await saver.save(body)
    return JSONResponse(body, headers={"x-onemin-credits": str(result.credits)})


async def _stream_body(stream: CoreStream, events: ResponseEvents, saver: _Saver) -> AsyncIterator[bytes]:
    for event in events.start():
        yield sse_data(event, event["type"])
    failed = False
    async for core_event in stream.events():
        if isinstance(core_event, KeepAlive):
            yield KEEPALIVE
            continue
        failed = failed or isinstance(core_event, StreamFailure)
        for event in events.feed(core_event):
            yield sse_data(event, event["type"])
    if not failed:
        for event in events.finish():
            yield sse_data(event, event["type"])
    if events.final is not None:
        await saver.save(events.final)


async def _stored_text(state: StateStore, owner: str, response_id: str) -> str | None:
    if not response_id or len(response_id) > MAX_ID_LENGTH:
        return None
    return await state.get_record(RECORD_KIND, owner, response_id)


async def _parsed(text: str) -> dict[str, Any]:
    """A stored record, parsed off the event loop when it is large (inline images make it so)."""
    if len(text) > _THREAD_JSON_CHARS:
        parsed: dict[str, Any] = await anyio.to_thread.run_sync(json.loads, text)
        return parsed
    loaded: dict[str, Any] = json.loads(text)
    return loaded


async def _stored(state: StateStore, owner: str, response_id: str) -> dict[str, Any] | None:
    text = await _stored_text(state, owner, response_id)
    return None if text is None else await _parsed(text)


async def _find(request: Request) -> tuple[str, dict[str, Any]]:
    """The caller's stored response named in the path, or OpenAI's 404 (also for another caller's)."""
    owner = caller(request).identity
    response_id: str = request.path_params["response_id"]
    stored = await _stored(relay(request).state, owner, response_id)
    if stored is None:
        raise not_found(f"Response with id '{response_id[:MAX_ID_LENGTH]}' not found.", param="response_id")
    return owner, stored


async def _history(state: StateStore, owner: str, response_id: str, max_chars: int) -> list[InputItem]:
    """The conversation up to and including `response_id`: each earlier response's input items and
    output, oldest first. A chain whose oldest responses have expired continues from what is left; one
    larger in all than a request body may be (MAX_REQUEST_BYTES) is refused."""
    chain: list[dict[str, Any]] = []
    next_id: str | None = response_id
    size = 0
    while next_id and len(chain) < MAX_CHAIN:
        text = await _stored_text(state, owner, next_id)
        if text is None:
            break
        size += len(text)
        if size > max_chars:
            raise invalid_request(
                f"The conversation of '{response_id}' is larger than the {max_chars} bytes a request may "
                "carry; start a new conversation, or send the turns that matter as 'input'.",
                param="previous_response_id",
                code="conversation_too_large",
            )
        stored = await _parsed(text)
        chain.append(stored)
        next_id = stored["response"].get("previous_response_id")
    if not chain:
        raise not_found(f"Previous response with id '{response_id}' not found.", param="previous_response_id")
    items: list[dict[str, Any]] = []
    for stored in reversed(chain):
        items += stored["input"] + stored["response"]["output"]
    return stored_items(items)


async def retrieve_response(request: Request) -> Response:
    _, stored = await _find(request)
    if request.query_params.get("stream", "false").lower() != "false":
        raise invalid_request(
            "Replaying a stored response as a stream is not supported by the relay; retrieve it without "
            "'stream'.",
            param="stream",
            code="unsupported_parameter",
        )
    return JSONResponse(stored["response"])


async def cancel_response(request: Request) -> Response:
    """Only background responses can be cancelled, and the relay runs none: OpenAI's 400 for the others."""
    _, stored = await _find(request)
    raise invalid_request(
        f"Response '{stored['response']['id']}' cannot be cancelled: only background responses can, and the "
        "relay answers every response in the foreground.",
        param="response_id",
    )


async def delete_response(request: Request) -> Response:
    owner, stored = await _find(request)
    response_id = stored["response"]["id"]
    await relay(request).state.delete_record(RECORD_KIND, owner, response_id)
    return JSONResponse({"id": response_id, "object": "response", "deleted": True})


async def list_input_items(request: Request) -> Response:
    _, stored = await _find(request)
    limit, order = page_query(request, default_limit=20, max_limit=_MAX_LIST_LIMIT)
    items: list[dict[str, Any]] = stored["input"]
    if order == "desc":
        items = items[::-1]
    after = request.query_params.get("after")
    if after:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    page = items[:limit]
    return JSONResponse(
        {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(items) > len(page),
        }
    )


routes: list[BaseRoute] = [
    Route("/v1/responses", create_response, methods=["POST"]),
    Route("/v1/responses/{response_id}", retrieve_response, methods=["GET"]),
    Route("/v1/responses/{response_id}", delete_response, methods=["DELETE"]),
    Route("/v1/responses/{response_id}/input_items", list_input_items, methods=["GET"]),
    Route("/v1/responses/{response_id}/cancel", cancel_response, methods=["POST"]),
]
