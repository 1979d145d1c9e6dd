"""`/dashboard`: the operators' page, shipped in the package (no CDN: it works offline).

The page itself holds no data; its script reads the admin API with the admin token. With ADMIN_TOKEN
unset the page is 404 like the API. Served with a strict Content-Security-Policy (own files only).
"""

from __future__ import annotations

import functools
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from onemin_relay.api.common import relay
from onemin_relay.errors import OpenAIError

_FILES = {
    "index.html": "text/html; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


@functools.cache
def _asset(name: str) -> bytes:
    """A shipped file (a few kB, read once)."""
    return resources.files("onemin_relay.data").joinpath("dashboard").joinpath(name).read_bytes()


async def page(request: Request) -> Response:
    name = request.path_params.get("name", "index.html")
    if not relay(request).settings.admin_token or name not in _FILES:
        raise OpenAIError(
            404, f"Unknown request URL: {request.method} {request.url.path}.", code="unknown_url"
        )
    return Response(_asset(name), media_type=_FILES[name], headers=_HEADERS)


routes: list[BaseRoute] = [
    Route("/dashboard", page, methods=["GET"]),
    Route("/dashboard/{name}", page, methods=["GET"]),
]
