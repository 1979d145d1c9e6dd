"""Small helpers every route module uses: the relay context, bounded JSON bodies, validation errors."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request

from onemin_relay.errors import OpenAIError, invalid_request, too_large, validation_failed

if TYPE_CHECKING:
    from onemin_relay.app import RelayContext

ModelT = TypeVar("ModelT", bound=BaseModel)

_UNPARSABLE = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
    "your HTTP library correctly. The OpenAI API expects a JSON payload.)"
)
# A lone surrogate can only arrive as a `\\uD800`-style escape (raw surrogate bytes are not UTF-8).
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_PARAM_CHARS = 200  # a param named in an error is client text: keep it short
_DIGITS_LIMIT = 4300  # Python's int conversion limit (sys.get_int_max_str_digits)


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
    return parse_json_object(bytes(body))


def parse_json_object(body: bytes) -> dict[str, Any]:
    """A JSON object of text the upstream can be sent: 400s name the first value that is not."""
    try:
        data = json.loads(body, parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # nested too deep to parse
        raise invalid_request(_UNPARSABLE) from None
    except ValueError:  # an integer longer than Python converts, or NaN/Infinity
        raise _unconvertible_number(body) from None
    if not isinstance(data, dict):
        raise invalid_request("The request body must be a JSON object.")
    if _ESCAPED_SURROGATE.search(body):  # rare: only then is every string looked at
        where = _first_path(data, lambda value: isinstance(value, str) and bool(_SURROGATE.search(value)))
        if where is not None:
            raise invalid_request(
                f"Invalid value for '{where}': the text holds an unpaired UTF-16 surrogate (\\uD800–"
                "\\uDFFF), which is not a character.",
                param=where,
                code="invalid_value",
            )
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(name)


class _Unconvertible:
    """Stands in for a number Python will not convert, so its place in the body can be named."""


def _unconvertible_number(body: bytes) -> OpenAIError:
    def mark(text: str) -> Any:
        return _Unconvertible() if len(text.lstrip("-")) > _DIGITS_LIMIT else int(text)

    try:
        data = json.loads(body, parse_int=mark, parse_constant=lambda _: _Unconvertible())
    except ValueError:
        return invalid_request(_UNPARSABLE)
    where = _first_path(data, lambda value: isinstance(value, _Unconvertible))
    return invalid_request(
        f"Invalid value for '{where}': numbers must be finite, and integers at most "
        f"{_DIGITS_LIMIT} digits long.",
        param=where,
        code="invalid_value",
    )


def _first_path(data: Any, matches: Callable[[Any], bool]) -> str | None:
    """The first value (depth first) that `matches`, as `messages.0.content` (keys count as values too)."""
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        value, path = stack.pop()
        if matches(value):
            return path[:_MAX_PARAM_CHARS] or None
        if isinstance(value, dict):
            for key, item in reversed(value.items()):
                if matches(key):
                    return f"{path}.{key!r}".lstrip(".")[:_MAX_PARAM_CHARS]
                stack.append((item, f"{path}.{key}".lstrip(".")))
        elif isinstance(value, list):
            stack.extend(
                (item, f"{path}.{index}".lstrip(".")) for index, item in reversed(list(enumerate(value)))
            )
    return None


def validate(model: type[ModelT], data: object) -> ModelT:
    """Validate `data` against a wire model, answering the first problem as a 400 naming its param."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_failed(exc) from None


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
