"""The relay's errors: raised as `OpenAIError`, answered in OpenAI's shape, or in Anthropic's on its routes.

Every failure (route, upstream, auth, body size, rate limit, unknown URL, internal) is an `OpenAIError` by the
time it is answered, and `error_response` picks the wire shape from the request path, so an Anthropic client
on `/v1/messages` never sees an OpenAI body and no route has to translate errors itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from onemin_relay.fastjson import JSONResponse
from onemin_relay.observability import current_request_id

# OpenAI's `error.type` for each HTTP status the relay answers with.
_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "invalid_request_error",  # what OpenAI answers for a missing or wrong key
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "server_error",
    503: "server_error",
    504: "server_error",
}


class OpenAIError(Exception):
    """An error answered to the client as `{"error": {"message", "type", "param", "code"}}`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or _TYPE_BY_STATUS.get(
            status, "server_error" if status >= 500 else "invalid_request_error"
        )
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


# Anthropic's (status, `error.type`) for each status the relay answers with. Anthropic uses only a few
# statuses: other 5xx become its 500 `api_error`, and an unavailable upstream its 529 `overloaded_error`,
# which its SDKs retry. Exhausted credits (OpenAI: 429 `insufficient_quota`) are its 402 `billing_error`.
_ANTHROPIC_BY_STATUS = {
    400: (400, "invalid_request_error"),
    401: (401, "authentication_error"),
    402: (402, "billing_error"),
    403: (403, "permission_error"),
    404: (404, "not_found_error"),
    413: (413, "request_too_large"),
    429: (429, "rate_limit_error"),
    500: (500, "api_error"),
    502: (500, "api_error"),
    503: (529, "overloaded_error"),
    504: (504, "timeout_error"),
}
ANTHROPIC_PATH = "/v1/messages"


def speaks_anthropic(path: str) -> bool:
    """Whether a request path belongs to Anthropic's Messages API (its errors take Anthropic's shape)."""
    return path == ANTHROPIC_PATH or path.startswith(ANTHROPIC_PATH + "/")


def anthropic_error(error: OpenAIError) -> tuple[int, dict[str, Any]]:
    """The status and `{"type": "error", "error": {"type", "message"}, "request_id"}` body Anthropic's
    SDKs expect for `error`."""
    status = 402 if error.type == "insufficient_quota" else error.status
    fallback = (500, "api_error") if status >= 500 else (status, "invalid_request_error")
    status, kind = _ANTHROPIC_BY_STATUS.get(status, fallback)
    body = {
        "type": "error",
        "error": {"type": kind, "message": error.message},
        "request_id": current_request_id(),
    }
    return status, body


def error_response(error: OpenAIError, path: str) -> JSONResponse:
    """`error` answered in the shape of the API that `path` belongs to."""
    if not speaks_anthropic(path):
        return error.response()
    status, body = anthropic_error(error)
    return JSONResponse(body, status_code=status, headers=error.headers)


def invalid_request(message: str, *, param: str | None = None, code: str | None = None) -> OpenAIError:
    return OpenAIError(400, message, param=param, code=code)


def validation_failed(exc: ValidationError) -> OpenAIError:
    """The first problem pydantic found, as a 400 naming its param (`messages.0.role`).

    Tagged-union members show up in pydantic's locations as `<tag>` parts; they mean nothing to a client.
    """
    first = exc.errors(include_url=False)[0]
    param = ".".join(str(part) for part in first["loc"] if not str(part).startswith("<")) or None
    if first["type"] == "missing":
        return invalid_request(
            f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
        )
    expected = _EXPECTED_TYPES.get(first["type"])
    if expected is not None and param:
        got = _json_type(first["input"])
        return invalid_request(
            f"Invalid type for '{param}': expected {expected}, but got {got} instead.",
            param=param,
            code="invalid_type",
        )
    where = f" at '{param}'" if param else ""
    return invalid_request(f"Invalid value{where}: {first['msg']}.", param=param, code="invalid_value")


# pydantic's type errors in OpenAI's words (its 400 for `"max_tokens": "10"` says what it expected).
_EXPECTED_TYPES = {
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "string_type": "a string",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
}


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


ModelT = TypeVar("ModelT", bound=BaseModel)


def validate(model: type[ModelT], data: object) -> ModelT:
    """Validate `data` against a wire model, answering the first problem as a 400 naming its param."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_failed(exc) from None


def model_not_found(model: str) -> OpenAIError:
    return OpenAIError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )


def not_found(message: str, *, param: str | None = None) -> OpenAIError:
    return OpenAIError(404, message, param=param)


def too_large(message: str, *, param: str | None = None) -> OpenAIError:
    return OpenAIError(413, message, param=param, code="file_too_large")


def service_unavailable(message: str) -> OpenAIError:
    return OpenAIError(503, message, code="service_unavailable")
