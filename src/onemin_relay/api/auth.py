"""The caller's 1min.ai key, taken from `Authorization: Bearer …`, and the hash that stands for it."""

from __future__ import annotations

import hashlib
import re

from starlette.requests import Request

from onemin_relay.errors import OpenAIError
from onemin_relay.observability import current_record

_MAX_KEY_LENGTH = 512
# What a 1min.ai key can be: one word of visible ASCII. Anything else is refused here, not sent upstream.
_KEY_CHARACTERS = re.compile(r"[\x21-\x7e]+")


def key_hash(api_key: str) -> str:
    """A short, stable, non-reversible name for a key: safe for logs, state namespaces and limits."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:16]


def caller_key(request: Request) -> str:
    """Return the bearer token or raise a 401 OpenAI error; the key itself is never echoed."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if not header:
        raise OpenAIError(
            401,
            "You didn't provide an API key. You need to provide your 1min.ai API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            code="invalid_api_key",
        )
    if scheme.lower() != "bearer" or not token:
        raise OpenAIError(
            401,
            "Malformed Authorization header: expected 'Bearer <your 1min.ai API key>'.",
            code="invalid_api_key",
        )
    if len(token) > _MAX_KEY_LENGTH or not _KEY_CHARACTERS.fullmatch(token):
        raise OpenAIError(
            401,
            "The relay refused this API key without sending it to 1min.ai: a 1min.ai API key is one word of "
            f"visible ASCII characters (no spaces), at most {_MAX_KEY_LENGTH} long.",
            code="invalid_api_key",
        )
    current_record().caller = key_hash(token)
    return token
