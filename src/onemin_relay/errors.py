"""OpenAI-style errors: the only error shape a client of the relay ever sees."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from starlette.responses import JSONResponse

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
