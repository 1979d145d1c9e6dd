"""Per-key (and optionally per-IP) rate limits on /v1, counted with the `limits` library.

Counts live in the configured state backend (Redis or memcached), so every relay sharing it shares
one count; with the embedded default they live in this process's memory. Over a limit the caller
gets OpenAI's 429 `rate_limit_exceeded` (Anthropic's `rate_limit_error` on its routes); every limited
/v1 response carries OpenAI's `x-ratelimit-*-requests` headers. If the counting store is down the relay
lets requests through.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from limits import RateLimitItem, parse
from limits.aio.storage import MemcachedStorage, MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.errors import StorageError
from limits.util import WindowStats
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from onemin_relay.api.auth import Caller, key_hash, resolved_caller
from onemin_relay.config import Settings, parse_memcached_url
from onemin_relay.errors import OpenAIError, error_response
from onemin_relay.observability import current_record

if TYPE_CHECKING:
    import redis.asyncio as aioredis

log = logging.getLogger("onemin_relay.ratelimit")

_NAMESPACE = "onemin-relay"
# After the counting store fails, requests skip limiting for this long instead of each paying
# the connection timeout; the next request after it tries the store again.
_FAILURE_BACKOFF = 2.0
_STORAGE_ERRORS = (StorageError, ConnectionError, TimeoutError, OSError)


@dataclass(frozen=True)
class Rule:
    name: str  # also part of the storage key: "key", "ip" or "upstream"
    item: RateLimitItem
    by: Literal["key", "ip", "upstream"]  # caller identity, client address, or the 1min.ai key used
    posts_only: bool  # the upstream guard counts only requests that reach 1min.ai
    subject: str  # for the 429 message

    def counts(self, method: str) -> bool:
        return method == "POST" or not self.posts_only


def configured_rules(settings: Settings) -> list[Rule]:
    rules = []
    if settings.rate_limit:
        rules.append(Rule("key", parse(settings.rate_limit), "key", False, "your API key"))
    if settings.upstream_rate_guard:
        subject = "requests forwarded to 1min.ai with your API key"
        rules.append(Rule("upstream", parse(settings.upstream_rate_guard_limit), "upstream", True, subject))
    if settings.rate_limit_per_ip:
        rules.append(Rule("ip", parse(settings.rate_limit_per_ip), "ip", False, "your IP address"))
    return rules


_STRATEGIES: dict[str, type[RateLimiter]] = {
    "moving-window": MovingWindowRateLimiter,
    "fixed-window": FixedWindowRateLimiter,
    "sliding-window-counter": SlidingWindowCounterRateLimiter,
}


def limits_storage(settings: Settings) -> tuple[Storage, aioredis.ConnectionPool | None]:
    """The `limits` storage matching the state backend (shared for Redis/memcached, else memory), and
    the Redis connection pool to close at shutdown, if any."""
    url = settings.state_url
    if url.startswith(("redis://", "rediss://")):
        import redis.asyncio as aioredis  # only when configured (see `state.factory.open_state`)

        pool = aioredis.ConnectionPool.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        # `connection_pool` is a documented RedisStorage option; limits annotates options more narrowly.
        options: dict[str, Any] = {"connection_pool": pool}
        return RedisStorage(f"async+{url}", implementation="redispy", wrap_exceptions=True, **options), pool
    if url.startswith("memcached://"):
        servers = ",".join(f"{host}:{port}" for host, port in parse_memcached_url(url))
        memcached = MemcachedStorage(
            f"async+memcached://{servers}", wrap_exceptions=True, connect_timeout=1, read_timeout=1
        )
        return memcached, None
    return MemoryStorage(), None


def make_limiter(settings: Settings, storage: Storage) -> RateLimiter:
    strategy = settings.rate_limit_strategy
    if strategy == "moving-window" and not hasattr(storage, "acquire_entry"):
        # memcached cannot keep a moving window; the sliding-window counter is its closest match.
        log.warning("moving-window rate limits are not possible on memcached: using sliding-window-counter")
        strategy = "sliding-window-counter"
    return _STRATEGIES[strategy](storage)


def openai_duration(seconds: float) -> str:
    """OpenAI's reset format: `120ms`, `1s`, `8.64s`, `6m0s`, `1h2m3s`."""
    if seconds < 1:
        return f"{max(1, math.ceil(seconds * 1000))}ms"
    if (rounded := math.ceil(seconds * 100) / 100) < 60:
        return f"{rounded:g}s"
    whole = math.ceil(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes}m{secs}s" if hours else f"{minutes}m{secs}s"


@dataclass(frozen=True)
class Verdict:
    rule: Rule
    stats: WindowStats
    allowed: bool

    def headers(self) -> dict[str, str]:
        reset_in = max(0.0, self.stats.reset_time - time.time())
        headers = {
            "x-ratelimit-limit-requests": str(self.rule.item.amount),
            "x-ratelimit-remaining-requests": str(max(0, self.stats.remaining)),
            "x-ratelimit-reset-requests": openai_duration(reset_in),
        }
        if not self.allowed:
            headers["retry-after"] = str(max(1, math.ceil(reset_in)))
        return headers

    def error(self) -> OpenAIError:
        reset_in = max(0.0, self.stats.reset_time - time.time())
        message = (
            f"Rate limit reached for {self.rule.subject}: limit {self.rule.item!r}. "
            f"Please try again in {openai_duration(reset_in)}."
        )
        return OpenAIError(429, message, type="requests", code="rate_limit_exceeded", headers=self.headers())


class RateLimitMiddleware:
    """Pure ASGI middleware: counts each /v1 request (not CORS preflights) against the rules."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.rules = configured_rules(settings)
        self._limiter: RateLimiter | None = None  # made on first use, inside the serving event loop
        self._redis_pool: aioredis.ConnectionPool | None = None
        self._skip_until = 0.0
        self._failing = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._closing_at_shutdown(send))
            return
        limits_something = self.rules or self.settings.auth_mode != "passthrough"  # relay keys' own limits
        if not limits_something or not self._is_limited(scope) or time.monotonic() < self._skip_until:
            await self.app(scope, receive, send)
            return
        try:
            verdict = await self._judge(scope)
        except _STORAGE_ERRORS as exc:
            self._skip_until = time.monotonic() + _FAILURE_BACKOFF
            if not self._failing:
                self._failing = True
                log.warning("rate-limit store unavailable, letting requests through: %s", exc)
            await self.app(scope, receive, send)
            return
        if self._failing:
            self._failing = False
            log.info("rate-limit store reachable again; limits apply")
        if verdict is None:
            await self.app(scope, receive, send)
        elif not verdict.allowed:
            current_record().rejected_by = "rate_limit"
            await error_response(verdict.error(), scope["path"])(scope, receive, send)
        else:
            await self.app(scope, receive, _with_headers(send, verdict.headers()))

    @staticmethod
    def _is_limited(scope: Scope) -> bool:
        path: str = scope.get("path", "")
        return (
            scope["type"] == "http"
            and scope["method"] != "OPTIONS"
            and (path == "/v1" or path.startswith("/v1/"))
        )

    def _limiter_in_loop(self) -> RateLimiter:
        if self._limiter is None:
            storage, self._redis_pool = limits_storage(self.settings)
            self._limiter = make_limiter(self.settings, storage)
        return self._limiter

    def _closing_at_shutdown(self, send: Send) -> Send:
        async def send_after_closing(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete" and self._redis_pool is not None:
                await self._redis_pool.aclose()
            await send(message)

        return send_after_closing

    async def _judge(self, scope: Scope) -> Verdict | None:
        """Count the request against every rule that applies; return the refusal, or else the
        tightest limit (fewest requests left), whose numbers go into the response headers."""
        limiter = self._limiter_in_loop()
        request = Request(scope)
        who = resolved_caller(scope)
        identities = {
            "key": who.identity if who else None,
            "upstream": key_hash(who.upstream_key) if who else None,
            "ip": request.client.host if request.client else "unknown",
        }
        tightest: Verdict | None = None
        for rule in [*self.rules, *_relay_key_rules(who)]:
            identity = identities[rule.by]
            if identity is None:
                continue  # no usable key: the route answers 401
            allowed = True
            if rule.counts(request.method):
                allowed = await limiter.hit(rule.item, _NAMESPACE, rule.name, identity)
            stats = await limiter.get_window_stats(rule.item, _NAMESPACE, rule.name, identity)
            verdict = Verdict(rule, stats, allowed)
            if not allowed:
                return verdict
            if tightest is None or stats.remaining < tightest.stats.remaining:
                tightest = verdict
        return tightest


def _relay_key_rules(who: Caller | None) -> list[Rule]:
    """A relay key's own limit, counted under its id beside RATE_LIMIT's."""
    if who is None or who.relay_key is None or not who.relay_key.rate_limit:
        return []
    return [Rule("relay-key", _parsed(who.relay_key.rate_limit), "key", False, "your relay key")]


@functools.lru_cache(maxsize=1024)
def _parsed(limit: str) -> RateLimitItem:
    return parse(limit)


def _with_headers(send: Send, headers: dict[str, str]) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            response_headers = MutableHeaders(scope=message)
            for name, value in headers.items():
                response_headers[name] = value
        await send(message)

    return send_with_headers
