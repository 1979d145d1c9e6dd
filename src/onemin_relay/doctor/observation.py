"""What 1min.ai answered to one probe call: status, a few headers, the body and its error shape — key masked.

Everything shown to the user goes through `Masker`, so the key cannot reach the report even if the
service echoed it back in a body or a header.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from onemin_relay.upstream.client import OneMinClient, RawResponse
from onemin_relay.upstream.errors import UpstreamError

Shape = Literal["A", "B", "other", "none"]

BODY_LIMIT = 1024 * 1024  # probe answers are small; anything larger is summarised, not read
_SHOWN_HEADERS = ("content-type", "retry-after", "x-ratelimit-limit", "x-ratelimit-remaining")
_EXCERPT_CHARS = 300


class Masker:
    """Replaces the API key (and any other secret given) wherever it appears in text shown to the user."""

    def __init__(self, *secrets: str) -> None:
        self._secrets = [secret for secret in secrets if secret]

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


@dataclass
class Observation:
    """One answer. `status` 0 means no answer arrived (`error_code` then says why)."""

    status: int
    content_type: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # decoded JSON, or None
    raw: bytes = b""
    error_code: str | None = None  # the code of an error answer (any shape), or of a failed connection

    @property
    def shape(self) -> Shape:
        """The reference's error shape (§13) of the body: A `{success, error{code}}`, B `{errorCode}`."""
        body = self.body
        if not isinstance(body, dict):
            return "none" if not self.raw else "other"
        if body.get("success") is False and isinstance(body.get("error"), dict):
            return "A"
        if "errorCode" in body:
            return "B"
        return "other"

    @property
    def record(self) -> dict[str, Any] | None:
        body = self.body
        record = body.get("aiRecord") if isinstance(body, dict) else None
        return record if isinstance(record, dict) else None

    def describe(self, mask: Masker) -> str:
        """`400 shape B UNSUPPORTED_MODEL (retry-after: 3): {excerpt}` with the key masked."""
        if self.status == 0:
            return f"no answer ({self.error_code or 'connection failed'})"
        parts = [str(self.status)]
        if self.shape in ("A", "B"):
            parts.append(f"shape {self.shape}")
        if self.error_code:
            parts.append(self.error_code)
        shown = {n: v for n, v in self.headers.items() if not (n == "content-type" and "json" in v)}
        headers = ", ".join(f"{name}: {value}" for name, value in shown.items())
        text = " ".join(parts) + (f" ({headers})" if headers else "")
        excerpt = self.excerpt()
        return mask(f"{text}: {excerpt}" if excerpt else text)

    def excerpt(self) -> str:
        if self.body is not None:
            text = json.dumps(self.body, ensure_ascii=False, separators=(",", ":"))
        else:
            text = self.raw[:_EXCERPT_CHARS].decode("utf-8", "replace")
            if self.raw and not self.content_type.startswith(("text/", "application/json")):
                return f"<{len(self.raw)} bytes of {self.content_type or 'unlabelled data'}>"
        text = " ".join(text.split())
        return text if len(text) <= _EXCERPT_CHARS else text[: _EXCERPT_CHARS - 1] + "…"


def _error_code(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    inner = body.get("error")
    code = inner.get("code") if isinstance(inner, dict) else body.get("errorCode")
    return code if isinstance(code, str) else None


def from_response(response: RawResponse, raw: bytes) -> Observation:
    content_type = response.headers.get("content-type", "")
    body: Any = None
    if raw and "json" in content_type.lower():
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
    headers = {name: response.headers[name] for name in _SHOWN_HEADERS if name in response.headers}
    status = response.status
    return Observation(status, content_type, headers, body, raw, _error_code(body) if status >= 400 else None)


async def read_body(response: RawResponse) -> bytes:
    """The body, or its first `BODY_LIMIT` bytes and a little more."""
    raw = b""
    async for chunk in response.chunks:
        raw += chunk
        if len(raw) > BODY_LIMIT:
            break
    return raw


def from_failure(error: UpstreamError) -> Observation:
    """A call that raised: an HTTP error keeps its status and code, a failed connection is status 0."""
    return Observation(error.status, error_code=error.code)


async def observe(
    client: OneMinClient, method: str, path: str, api_key: str | None, **kwargs: Any
) -> Observation:
    """Send one call and read its answer (bounded), whatever its status."""
    try:
        async with client.exchange(method, path, api_key, **kwargs) as response:
            return from_response(response, await read_body(response))
    except UpstreamError as exc:  # no answer, or its body failed part-way
        return from_failure(exc)
