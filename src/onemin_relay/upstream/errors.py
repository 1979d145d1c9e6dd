"""One typed error for every way 1min.ai can fail (see reference §13), and the code that builds it.

Codes produced by the client (besides the upstream's own, e.g. `UNAUTHORIZED`, `RATE_LIMITED`,
`UNSUPPORTED_MODEL`, `PROMPT_OBJECT_VALIDATION_FAILED`, `EXTERNAL_API_RESPONSE_WITH_ERROR`):

- `HTTP_ERROR`       non-2xx answer without a usable code (Cloudflare 403/522 pages, bare 5xx).
- `FAILED`           HTTP 200 but `aiRecord.status` is FAILED/FAILURE (also a streamed failed `result`).
- `INVALID_RESPONSE` HTTP 200 whose body is not what the endpoint promises (not JSON, no aiRecord,
                     empty `resultObject`, asset without path, a result key pointing off the asset host),
                     or an answer that cannot be read at all (undecodable body, endless redirects).
- `NOT_FOUND`        an async feature's result disappeared while polling (`{"aiRecord": null}`).
- `CONNECT_ERROR`    no connection could be made (status 0).
- `TIMEOUT`          connect/read/pool timeout, or an async feature still PROCESSING at the deadline
                     (status 0).
- `NETWORK_ERROR`    the connection failed after the request was sent, before a response (status 0).
- `STREAM_INTERRUPTED` the connection dropped in the middle of a streamed body (status 0).
- `TOO_LARGE`        a download exceeded the caller's byte limit.
- `DISALLOWED_URL`   a URL outside the configured 1min.ai hosts was asked for (never fetched).
- `INVALID_API_KEY`  the key cannot be sent in an HTTP header at all (status 0, nothing sent).
- `RELAY_OVERLOADED` the relay already runs `UPSTREAM_MAX_IN_FLIGHT` calls (status 503, nothing sent).
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

RELAY_OVERLOADED = "RELAY_OVERLOADED"

# Upstream text is shown to end users: keep it short, and never let a page of HTML through.
_MAX_MESSAGE_CHARS = 500


@dataclass
class UpstreamError(Exception):
    """A failed 1min.ai call, whatever shape the failure came in.

    status: HTTP status from upstream (200 for an SSE `error` event or an `aiRecord.status` of FAILED;
            0 when no response arrived at all: connect error, timeout, dropped connection).
    code: upstream code (`UNAUTHORIZED`, `UNSUPPORTED_MODEL`, `RATE_LIMITED`, …) or a relay-chosen one
          (see the module docstring for the full list).
    retry_after: seconds the upstream asked us to wait (from `Retry-After`), if it said.
    headers: response headers worth passing on to the relay's client (today only `Retry-After`).
    """

    status: int
    code: str
    message: str
    details: Any = None
    retry_after: float | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(f"{self.status} {self.code}: {self.message}")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` value: delta-seconds or an HTTP date; None if unusable."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _text(value: Any) -> str | None:
    """A message from whatever upstream put there: a string, a list of strings, or nothing usable."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, list):
        parts = [item.strip() for item in value if isinstance(item, str) and item.strip()]
        return "; ".join(parts) or None
    return None


# A key is masked wherever at least this much of its start appears: a cut or a quoting upstream may leave
# only a prefix of it in the text.
_MIN_MASKED_PREFIX = 8


def mask_secret(text: str, secret: str) -> str:
    """`text` with the secret, and every run of 8+ of its leading characters, replaced by `***`."""
    if not secret:
        return text
    if len(secret) < _MIN_MASKED_PREFIX:
        return text.replace(secret, "***")
    head = secret[:_MIN_MASKED_PREFIX]
    parts: list[str] = []
    position = 0
    while (start := text.find(head, position)) != -1:
        end = start + _MIN_MASKED_PREFIX
        while end - start < len(secret) and end < len(text) and text[end] == secret[end - start]:
            end += 1
        parts += [text[position:start], "***"]
        position = end
    parts.append(text[position:])
    return "".join(parts)


def short_message(message: str, *, secret: str = "") -> str:
    """One line of at most a few hundred characters: upstream text is shown to end users.

    The secret is masked before the cut, so no prefix of it survives at the end of the line."""
    message = " ".join(mask_secret(message, secret).split())
    return message if len(message) <= _MAX_MESSAGE_CHARS else message[: _MAX_MESSAGE_CHARS - 1] + "…"


def error_from_payload(status: int, payload: Any, *, secret: str = "") -> UpstreamError | None:
    """Read the upstream's own error out of a decoded JSON body, or None if it holds none.

    Shape A `{"success": false, "error": {"code", "message", "details"?}}` (chat),
    shape B `{"errorCode", "message", "details"?}` (features), and the looser forms seen in the
    wild: `{"error": "text"}`, `{"message": "text"}` and NestJS' `{"statusCode", "message": [..]}`.
    """
    if not isinstance(payload, Mapping):
        return None
    inner = payload.get("error")
    if isinstance(inner, Mapping):
        code = inner.get("code")
        message = _text(inner.get("message"))
        details = inner.get("details")
    else:
        code = payload.get("errorCode", payload.get("code"))
        # NestJS puts the detail in `message` and only the status text in `error` ("Bad Request").
        message = _text(payload.get("message")) or _text(inner)
        details = payload.get("details")
    if not isinstance(code, str) or not code.strip():
        if message is None:
            return None
        code = "HTTP_ERROR"
    error = UpstreamError(
        status, code.strip(), short_message(message or code, secret=secret), details=details
    )
    return redact(error, secret)


def error_from_response(
    status: int, headers: Mapping[str, str], body: bytes, *, secret: str = ""
) -> UpstreamError:
    """Normalise a non-2xx answer (JSON in any known shape, HTML from Cloudflare, or anything else);
    `secret` (the caller's key) is masked out of whatever text upstream sent."""
    content_type = headers.get("content-type", "").lower()
    try:
        error = error_from_payload(status, json.loads(body), secret=secret)
    except ValueError:
        error = None
    if error is None:
        error = UpstreamError(status, "HTTP_ERROR", _describe_non_json(status, content_type, body, secret))
    retry_after = parse_retry_after(headers.get("retry-after"))
    if retry_after is not None:
        error.retry_after = retry_after
        error.headers["Retry-After"] = str(max(1, round(retry_after)))
    return error


def _describe_non_json(status: int, content_type: str, body: bytes, secret: str) -> str:
    message = f"1min.ai answered HTTP {status}"
    if b"cloudflare" in body[:4096].lower():
        return message + " from its Cloudflare front (the service is unreachable or refused the call)"
    if content_type.startswith("text/plain"):
        # more than is shown, so that a key near the cut is still seen whole and masked
        text = body[: 4 * _MAX_MESSAGE_CHARS].decode("utf-8", "replace").strip()
        if text and "<" not in text:
            return short_message(f"{message}: {text}", secret=secret)
    return message


def failed_record_error(record: Mapping[str, Any]) -> UpstreamError:
    """The error for a 200 whose aiRecord says the generation failed."""
    status = record.get("status")
    return UpstreamError(
        200,
        "FAILED",
        f"1min.ai reported the generation as {status}" if isinstance(status, str) else "generation failed",
        details={"uuid": record.get("uuid"), "status": status},
    )


_CREDIT_CODES = frozenset(
    {"INSUFFICIENT_CREDITS", "INSUFFICIENT_CREDIT", "CREDIT_LIMIT_EXCEEDED", "QUOTA_EXCEEDED"}
)
_CREDIT_WORDS = re.compile(
    r"insufficient credit|not enough credit|credit limit|out of credit|quota", re.IGNORECASE
)


def is_out_of_credits(error: UpstreamError) -> bool:
    """1min.ai refused the call because the key's credits are spent (a refusal: nothing ran)."""
    if error.status == 402 or error.code.upper() in _CREDIT_CODES:
        return True
    # The wording only decides when nothing else does: a rate limit may well speak of a "quota".
    rate_limited = error.status == 429 or error.code.upper() == "RATE_LIMITED"
    return not rate_limited and _CREDIT_WORDS.search(error.message) is not None


def invalid_response(message: str, status: int = 200) -> UpstreamError:
    return UpstreamError(status, "INVALID_RESPONSE", message)


def redact(error: UpstreamError, secret: str) -> UpstreamError:
    """Blank out the caller's key (or a prefix of it) should upstream ever echo it in a message or details."""
    if not secret:
        return error
    masked = mask_secret(error.message, secret)
    if masked != error.message:
        error.message = masked
        error.args = (f"{error.status} {error.code}: {error.message}",)
    details = json.dumps(error.details, default=str)
    if mask_secret(details, secret) != details:
        error.details = None
    return error
