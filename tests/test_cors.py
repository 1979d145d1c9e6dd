"""The request layer answers CORS as Starlette's `CORSMiddleware` does, configured as the relay does."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import pytest
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from onemin_relay.edge import EdgeMiddleware


async def route(scope: Scope, receive: Receive, send: Send) -> None:
    """A route answering with CORS headers of its own on `/own`, which CORS must take over or merge."""
    own = {"Vary": "Accept", "Access-Control-Allow-Origin": "https://own.example"}
    response = PlainTextResponse("hello", headers=own if scope["path"] == "/own" else None)
    await response(scope, receive, send)


def starlettes(origins: Sequence[str]) -> ASGIApp:
    return CORSMiddleware(
        route,
        allow_origins=origins,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=["*"],
        max_age=600,
    )


PREFLIGHT = {"Access-Control-Request-Method": "POST"}
REQUESTS: list[tuple[str, str, dict[str, str]]] = [
    ("GET", "/plain", {}),
    ("GET", "/plain", {"Origin": "http://a.example"}),
    ("GET", "/plain", {"Origin": "http://elsewhere.example"}),
    ("GET", "/own", {}),
    ("GET", "/own", {"Origin": "http://a.example"}),
    ("GET", "/own", {"Origin": "http://elsewhere.example"}),
    ("OPTIONS", "/plain", {"Origin": "http://a.example"}),  # no requested method: not a preflight
    ("OPTIONS", "/plain", {**PREFLIGHT, "Origin": "http://a.example"}),
    ("OPTIONS", "/plain", {**PREFLIGHT, "Origin": "http://elsewhere.example"}),
    (
        "OPTIONS",
        "/plain",
        {**PREFLIGHT, "Origin": "http://a.example", "Access-Control-Request-Headers": "x-a, b"},
    ),
    ("OPTIONS", "/plain", {"Origin": "http://a.example", "Access-Control-Request-Method": "BREW"}),
    (
        "OPTIONS",
        "/plain",
        {**PREFLIGHT, "Origin": "http://a.example", "Access-Control-Request-Private-Network": "1"},
    ),
]


async def answer(app: ASGIApp, method: str, path: str, headers: dict[str, str]) -> tuple[int, str, list[str]]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://relay.test") as http:
        response = await http.request(method, path, headers=headers)
    ours = {"x-request-id", "server-timing"}
    lines = sorted(f"{name}: {value}" for name, value in response.headers.multi_items() if name not in ours)
    return response.status_code, response.text, lines


@pytest.mark.parametrize(
    "origins",
    [["*"], ["http://a.example"], ["http://a.example", "http://b.example"], ["http://a.example", "*"]],
)
@pytest.mark.parametrize(("method", "path", "headers"), REQUESTS)
async def test_cors_answers_match_starlettes(
    origins: list[str], method: str, path: str, headers: dict[str, str]
) -> None:
    edge = EdgeMiddleware(route, cors_origins=origins, listeners=[])
    assert await answer(edge, method, path, headers) == await answer(
        starlettes(origins), method, path, headers
    )
