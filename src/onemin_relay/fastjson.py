"""The JSON the relay writes (answers, SSE events, log lines): orjson, several times faster than `json`.

The bytes are compact UTF-8 with non-ASCII characters as they are, as `json.dumps(value, ensure_ascii=False,
separators=(",", ":"))` writes them (floats may be spelled differently: `1e16`, not `1e+16`). What orjson
refuses (an integer beyond 64 bits, a string holding a lone surrogate, a type it does not know) goes to
the standard library, which writes it or raises as before. Reading request bodies is `api/json_body.py`'s.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.responses import JSONResponse as _StarletteJSONResponse

_OPTIONS = orjson.OPT_NON_STR_KEYS  # `{1: …}` is written as `{"1": …}`, as `json` writes it


def dumps(value: Any) -> bytes:
    """`value` as compact UTF-8 JSON."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError is one
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class JSONResponse(_StarletteJSONResponse):
    """Starlette's JSON answer, rendered by `dumps`: every JSON answer of the relay is one of these."""

    def render(self, content: Any) -> bytes:
        return dumps(content)
