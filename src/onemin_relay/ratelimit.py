"""Per-key (and optionally per-IP) rate limits. STUB: pass-through until the state helper writes it."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from onemin_relay.config import Settings


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
