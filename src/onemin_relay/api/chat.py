"""`POST /v1/chat/completions`: the chat-completions dialect over the chat core (JSON, or SSE when
streaming). The core does the work; this module maps the wire to it and its answers back."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from onemin_relay.api.auth import caller
from onemin_relay.api.chat_stream import chat_chunks
from onemin_relay.api.common import read_json
from onemin_relay.api.event_stream import EventStreamResponse
from onemin_relay.core.engine import complete, open_stream
from onemin_relay.fastjson import JSONResponse
from onemin_relay.translate.chat_completions import completion_object, core_request, new_completion_id
from onemin_relay.translate.chat_wire import parse_chat_request


async def create_chat_completion(request: Request) -> Response:
    caller(request)  # a missing key is answered before anything is read
    chat = parse_chat_request(await read_json(request))
    core = core_request(chat)
    if chat.stream:
        stream = await open_stream(request, core, want_usage=chat.include_usage)
        return EventStreamResponse(chat_chunks(chat, stream), stream.aclose)
    result = await complete(request, core)
    body = completion_object(
        new_completion_id(result.record_id),
        int(time.time()),
        chat.model,
        result.choices,
        result.usage,
        legacy_functions=chat.uses_legacy_functions,
    )
    return JSONResponse(body, headers={"x-onemin-credits": str(result.credits)})


routes: list[BaseRoute] = [Route("/v1/chat/completions", create_chat_completion, methods=["POST"])]
