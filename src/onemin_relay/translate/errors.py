"""Upstream failures → OpenAI errors: the status, `type` and `code` an OpenAI SDK expects for each.

The upstream's own message is kept (clients show it to users); the caller's key never appears, because
`UpstreamError` messages are redacted by the client and this module never adds request data to them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from onemin_relay.errors import OpenAIError
from onemin_relay.upstream.errors import RELAY_OVERLOADED, UpstreamError, is_out_of_credits

_MODEL_CODES = frozenset({"UNSUPPORTED_MODEL", "MODEL_NOT_FOUND", "INVALID_MODEL", "MODEL_DISABLED"})
_TIMEOUT_STATUSES = frozenset({504, 522, 524})


def openai_error_from_upstream(error: UpstreamError) -> OpenAIError:
    """Map any `UpstreamError` to the OpenAI error a client of the relay receives."""
    message = _message(error)
    code = error.code.upper()
    if code == RELAY_OVERLOADED:  # the relay's own limit: nothing was sent to 1min.ai
        return OpenAIError(503, message, code="relay_overloaded", headers=_retry_headers(error))
    if error.status == 401 or code in {"UNAUTHORIZED", "INVALID_API_KEY"}:
        return OpenAIError(
            401,
            f"1min.ai rejected the API key: {message}",
            type="invalid_request_error",
            code="invalid_api_key",
        )
    rate_limited = error.status == 429 or code == "RATE_LIMITED"
    if is_out_of_credits(error):
        return OpenAIError(
            429,
            f"Your 1min.ai credits are exhausted: {message}",
            type="insufficient_quota",
            code="insufficient_quota",
            headers={"x-should-retry": "false"},
        )
    if rate_limited:
        return OpenAIError(
            429,
            f"Rate limited by 1min.ai: {message}",
            type="requests",
            code="rate_limit_exceeded",
            headers=_retry_headers(error),
        )
    if error.status in {404, 410} or code in _MODEL_CODES:
        return OpenAIError(404, message, param="model", code="model_not_found")
    if error.status == 0 or error.status >= 500:
        return _unavailable(error, message)
    if error.status == 200:
        # The call was accepted, then generation failed (FAILED record, SSE error, bad body).
        return OpenAIError(502, f"1min.ai failed to answer: {message}", code="upstream_error")
    if error.status == 403:
        return OpenAIError(403, f"1min.ai refused the request: {message}", code="upstream_forbidden")
    if error.status == 413:
        return OpenAIError(413, message, code="file_too_large")
    if 400 <= error.status < 500:
        return OpenAIError(400, message, code=_snake(code) or "invalid_request")
    return OpenAIError(502, f"1min.ai gave an unexpected answer: {message}", code="upstream_error")


def _unavailable(error: UpstreamError, message: str) -> OpenAIError:
    """No usable answer from upstream: timeouts are 504, an overloaded upstream 503, anything else 502."""
    code = error.code.upper()
    if code == "TIMEOUT" or error.status in _TIMEOUT_STATUSES:
        return OpenAIError(504, f"1min.ai did not answer in time: {message}", code="upstream_timeout")
    if error.status == 503:
        return OpenAIError(
            503,
            f"1min.ai is temporarily unavailable: {message}",
            code="service_unavailable",
            headers=_retry_headers(error),
        )
    return OpenAIError(502, f"1min.ai could not be reached or failed: {message}", code="upstream_error")


def _message(error: UpstreamError) -> str:
    """The upstream message, with the field-level details of validation errors appended."""
    message = error.message.strip() or error.code
    details = _detail_text(error.details)
    if details and details not in message:
        message = f"{message} ({details})"
    return message


def _detail_text(details: Any) -> str:
    """`[{"field": "prompt", "message": "prompt must be a string"}]` → `prompt: prompt must be a string`."""
    if not isinstance(details, list):
        return ""
    parts = []
    for item in details[:5]:
        if isinstance(item, Mapping) and isinstance(item.get("message"), str):
            field = item.get("field")
            parts.append(f"{field}: {item['message']}" if isinstance(field, str) else item["message"])
        elif isinstance(item, str):
            parts.append(item)
    return "; ".join(parts)


def _retry_headers(error: UpstreamError) -> dict[str, str]:
    if error.retry_after is None:
        return {}
    return {"retry-after": str(max(1, math.ceil(error.retry_after)))}


def _snake(code: str) -> str:
    return code.lower() if re.fullmatch(r"[A-Z0-9_]{1,64}", code) else ""
