"""OpenAI endpoints 1min.ai has no feature for: a clear 404 saying so, instead of an unknown URL.

A 404 (not a 5xx) so that SDKs do not retry what can never work; under `/v1/messages` it takes
Anthropic's shape. Each path also answers below it (`/v1/batches/{id}/cancel`), for every method.
Realtime's WebSocket is closed with the same reason.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from onemin_relay.errors import OpenAIError

# OpenAI path → what 1min.ai lacks, for the message.
UNSUPPORTED: dict[str, str] = {
    "/v1/embeddings": "embeddings",
    "/v1/moderations": "moderation",
    "/v1/batches": "batch processing",
    "/v1/messages/batches": "batch processing",  # Anthropic's Message Batches (errors in its shape)
    "/v1/realtime": "realtime (WebSocket/WebRTC) sessions",
    "/v1/assistants": "assistants",
    "/v1/threads": "assistant threads and runs",
    "/v1/vector_stores": "vector stores",
    "/v1/fine_tuning": "fine-tuning",
    "/v1/uploads": "multi-part uploads",
    "/v1/evals": "evals",
}
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_POLICY_VIOLATION = 1008


def _message(method: str, path: str, prefix: str) -> str:
    return (
        f"1min.ai has no {UNSUPPORTED[prefix]}, so this relay cannot serve {method} {path[:200]}. "
        "The README's support table lists what it can serve."
    )


def _prefix(path: str) -> str:
    return next(prefix for prefix in UNSUPPORTED if path == prefix or path.startswith(f"{prefix}/"))


async def unsupported(request: Request) -> Response:
    path = request.url.path
    raise OpenAIError(404, _message(request.method, path, _prefix(path)), code="unsupported_endpoint")


async def unsupported_socket(websocket: WebSocket) -> None:
    path = websocket.url.path
    # WebSocket close reasons are limited to 123 bytes: the short form.
    await websocket.close(_POLICY_VIOLATION, reason=f"1min.ai has no {UNSUPPORTED[_prefix(path)]}"[:123])


routes: list[BaseRoute] = [
    route
    for prefix in UNSUPPORTED
    for route in (
        Route(prefix, unsupported, methods=_METHODS),
        Route(f"{prefix}/{{rest:path}}", unsupported, methods=_METHODS),
    )
] + [WebSocketRoute("/v1/realtime", unsupported_socket)]
