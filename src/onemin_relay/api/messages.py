"""`POST /v1/messages` and `POST /v1/messages/count_tokens`: Anthropic's Messages API over the chat core.

The core does the work; this module maps the wire to it and its answers back. Errors need nothing here:
on these paths the error layer answers every failure in Anthropic's shape (`errors.error_response`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from onemin_relay.api.auth import caller
from onemin_relay.api.common import read_json
from onemin_relay.api.event_stream import EventStreamResponse, sse_data
from onemin_relay.core.engine import CoreStream, complete, count_prompt_tokens, open_stream
from onemin_relay.fastjson import JSONResponse
from onemin_relay.translate.messages import MessageStream, core_request, message_object
from onemin_relay.translate.messages_wire import CountTokensRequest, parse_messages_request


async def create_message(request: Request) -> Response:
    caller(request)  # a missing key is answered before anything is read
    body = parse_messages_request(await read_json(request))
    core = core_request(body)
    if body.stream:
        stream = await open_stream(request, core)
        return EventStreamResponse(_message_events(body.model, stream), stream.aclose)
    result = await complete(request, core)
    return JSONResponse(message_object(result, body.model), headers={"x-onemin-credits": str(result.credits)})


async def _message_events(model: str, stream: CoreStream) -> AsyncIterator[bytes]:
    renderer = MessageStream(model)
    for event in renderer.start():
        yield sse_data(event, event["type"])
    async for core_event in stream.events():
        for event in renderer.feed(core_event):
            yield sse_data(event, event["type"])
        if renderer.finished:
            return
    for event in renderer.finish():
        yield sse_data(event, event["type"])


async def count_message_tokens(request: Request) -> Response:
    caller(request)
    body = parse_messages_request(await read_json(request), CountTokensRequest)
    return JSONResponse({"input_tokens": await count_prompt_tokens(request, core_request(body))})


routes: list[BaseRoute] = [
    Route("/v1/messages", create_message, methods=["POST"]),
    Route("/v1/messages/count_tokens", count_message_tokens, methods=["POST"]),
]
