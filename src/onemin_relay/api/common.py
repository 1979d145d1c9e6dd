"""Small helpers every route module uses: the relay context, bounded JSON bodies, list paging."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal, cast

from starlette.requests import ClientDisconnect, Request

from onemin_relay.api.json_body import SLICED_PARSE_BYTES, parse_json_object, parse_json_object_sliced
from onemin_relay.errors import invalid_request, too_large

if TYPE_CHECKING:
    from onemin_relay.app import RelayContext


def relay(request: Request) -> RelayContext:
    context: RelayContext = request.app.state.relay
    return context


async def read_json(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, read with a size cap; 413/400 OpenAI errors otherwise."""
    limit = relay(request).settings.max_request_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise too_large(f"Request body exceeds the {limit} byte limit.")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise too_large(f"Request body exceeds the {limit} byte limit.")
    except ClientDisconnect:
        raise invalid_request("The client closed the connection before sending the whole body.") from None
    if len(body) > SLICED_PARSE_BYTES:
        return await parse_json_object_sliced(bytes(body))
    return parse_json_object(bytes(body))


def page_query(request: Request, *, default_limit: int, max_limit: int) -> tuple[int, Literal["asc", "desc"]]:
    """A list request's `limit` and `order` (newest first by default), or a 400 naming the bad one."""
    query = request.query_params
    limit_text = query.get("limit", str(default_limit))
    # ASCII digits only: str.isdigit() also takes '¹', which int() does not
    if not re.fullmatch(r"[0-9]{1,6}", limit_text) or not 1 <= int(limit_text) <= max_limit:
        raise invalid_request(
            f"Invalid value for 'limit': it must be an integer between 1 and {max_limit}.",
            param="limit",
            code="invalid_value",
        )
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise invalid_request(
            "Invalid value for 'order': supported values are 'asc' and 'desc'.",
            param="order",
            code="invalid_value",
        )
    return int(limit_text), cast(Literal["asc", "desc"], order)
