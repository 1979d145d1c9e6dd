"""The 400s for a parameter value, or a whole parameter, that a model cannot take."""

from __future__ import annotations

from collections.abc import Sequence

from onemin_relay.errors import OpenAIError, invalid_request


def unsupported_value(param: str, value: object, model: str, allowed: Sequence[str]) -> OpenAIError:
    shown = ", ".join(f"'{item}'" for item in allowed)
    return invalid_request(
        f"Invalid value for '{param}': {value!r} is not supported by model `{model}`. "
        f"Supported values are: {shown}.",
        param=param,
        code="invalid_value",
    )


def unsupported_parameter(param: str, model: str) -> OpenAIError:
    return invalid_request(
        f"The '{param}' parameter is not supported by model `{model}`.",
        param=param,
        code="unsupported_parameter",
    )
