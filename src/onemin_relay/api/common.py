"""Small helpers every route module uses: the relay context, bounded JSON bodies, validation errors."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request

from onemin_relay.errors import invalid_request, too_large, validation_failed

if TYPE_CHECKING:
    from onemin_relay.app import RelayContext

ModelT = TypeVar("ModelT", bound=BaseModel)


def relay(request: Request) -> RelayContext:
    context: RelayContext = request.app.state.relay
    return context


async def read_json(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, read with a size cap; 413/400 OpenAI errors otherwise."""
    limit = relay(request).settings.max_request_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(f"Request body exceeds the {limit} byte limit.")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise too_large(f"Request body exceeds the {limit} byte limit.")
    except ClientDisconnect:
        raise invalid_request("The client closed the connection before sending the whole body.") from None
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # nested too deep to parse
        raise invalid_request(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
            "your HTTP library correctly. The OpenAI API expects a JSON payload.)"
        ) from None
    if not isinstance(data, dict):
        raise invalid_request("The request body must be a JSON object.")
    return data


def validate(model: type[ModelT], data: object) -> ModelT:
    """Validate `data` against a wire model, answering the first problem as a 400 naming its param."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_failed(exc) from None
