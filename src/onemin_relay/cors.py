"""CORS for browsers calling the relay: Starlette's `CORSMiddleware` rules, the per-answer work done once.

The relay allows every method and header and exposes every response header to the origins in
`CORS_ALLOW_ORIGINS` (`*` by default). Preflights are rare and answered by Starlette's own code. Every other
answer gets the same few headers, which Starlette's middleware recomputes per response through
`MutableHeaders`; here they are worked out once per configuration (and per origin, when origins are listed)
and spliced into the response's header list by the request layer (`edge.py`), which rewrites that list
anyway. `tests/test_cors.py` holds the two to the same answers.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

RawHeaders = tuple[tuple[bytes, bytes], ...]

_ALLOW_ORIGIN = b"access-control-allow-origin"
_EXPOSE = b"access-control-expose-headers"
VARY = b"vary"


async def _never_called(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("the CORS rules are asked, never run as middleware")


class CorsPolicy:
    """What CORS adds to one answer. `simple_headers(origin)` says which of the response's own headers
    it replaces and what it appends; `Vary` always gains `Origin` (`vary()` merges it)."""

    def __init__(self, allow_origins: Sequence[str]) -> None:
        self._rules = CORSMiddleware(
            _never_called,
            allow_origins=allow_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["*"],
            max_age=600,
        )
        self._allow_all = "*" in allow_origins
        if self._allow_all:
            with_origin: RawHeaders = ((_ALLOW_ORIGIN, b"*"), (_EXPOSE, b"*"))
            self._replaced_with_origin = frozenset({_ALLOW_ORIGIN, _EXPOSE})
        else:  # the origin is echoed when listed; otherwise only the expose header is set
            with_origin = ((_EXPOSE, b"*"),)
            self._replaced_with_origin = frozenset({_EXPOSE})
        self._with_origin = with_origin

    def preflight(self, scope: Scope, origin: bytes | None) -> Response | None:
        """The answer to a CORS preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`), or
        None for any other request."""
        if origin is None or scope["method"] != "OPTIONS":
            return None
        headers = Headers(scope=scope)
        if "access-control-request-method" not in headers:
            return None
        return self._rules.preflight_response(request_headers=headers)

    def simple_headers(self, origin: bytes | None) -> tuple[frozenset[bytes], RawHeaders]:
        """For an answer to a request from `origin` (None: no `Origin` header): the response header names
        CORS takes over, and the headers it adds in their place (`Vary` aside)."""
        if origin is None:
            return frozenset(), ()
        if self._allow_all or not self._rules.is_allowed_origin(origin.decode("latin-1")):
            return self._replaced_with_origin, self._with_origin
        return frozenset({_ALLOW_ORIGIN, _EXPOSE}), (*self._with_origin, (_ALLOW_ORIGIN, origin))


def vary(values: list[bytes]) -> tuple[bytes, bytes]:
    """The `Vary` header an answer leaves with: its own values, then `Origin` (as Starlette joins them)."""
    return VARY, b", ".join([*values, b"Origin"])
