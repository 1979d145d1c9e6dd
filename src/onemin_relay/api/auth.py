"""Who is calling, and with which 1min.ai key: two separate things.

- `Caller.identity` names the caller in every namespace: files, stored responses, rate-limit buckets,
  the usage ledger. Passthrough: the short hash of the caller's own 1min.ai key. Relay keys: the key's
  id (`rk_…`), never the shared upstream key, so team members never see each other's data.
- `Caller.upstream_key` is the 1min.ai key the request's upstream calls start with: the caller's own
  (passthrough), or one of the relay's (`ONEMIN_API_KEYS`), which fail over to each other.

`CallerMiddleware` resolves the caller once per /v1 request (relay keys need the store) and routes read
it with `caller(request)`, which raises the 401/429/503 the resolution ended in. Answering from the
route rather than the middleware keeps each API dialect's error shape.
"""

from __future__ import annotations

import re
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from onemin_relay.accounts.keys import RELAY_KEY_PREFIX, RelayKey, secret_hash
from onemin_relay.errors import OpenAIError, service_unavailable
from onemin_relay.observability import current_record
from onemin_relay.state.base import StateUnavailable
from onemin_relay.upstream.keys import key_hash

if TYPE_CHECKING:
    from onemin_relay.accounts.ledger import UsageLedger
    from onemin_relay.accounts.store import AccountStore
    from onemin_relay.config import Settings
    from onemin_relay.upstream.keys import UpstreamKeyPool

__all__ = [
    "Caller",
    "CallerMiddleware",
    "caller",
    "catalogue_reader",
    "current_caller",
    "key_hash",
    "require_model_allowed",
]

_MAX_KEY_LENGTH = 512
# What a key can be: one word of visible ASCII. Anything else is refused here, not sent upstream.
_KEY_CHARACTERS = re.compile(r"[\x21-\x7e]+")
# A relay key looked up is trusted this long in this process; a revoke through another relay or the CLI
# takes effect within it (a revoke through this relay's admin API at once).
KEY_CACHE_SECONDS = 2.0
_KEY_CACHE_SIZE = 10_000
_SCOPE_KEY = "onemin_relay.caller"

_current: ContextVar[Caller | None] = ContextVar("onemin_relay_caller", default=None)


@dataclass(frozen=True)
class Caller:
    identity: str
    upstream_key: str
    relay_key: RelayKey | None = None


def caller(request: Request) -> Caller:
    """The resolved caller, or the OpenAI error (401, 429 over budget, 503) that stops the request."""
    resolved = request.scope.get(_SCOPE_KEY)
    if isinstance(resolved, Caller):
        return resolved
    if isinstance(resolved, OpenAIError):
        raise resolved
    raise _missing_key()  # a route outside /v1 asked: nothing was resolved for it


def current_caller() -> Caller | None:
    """The caller of the request being served (None outside a /v1 request)."""
    return _current.get()


def require_model_allowed(model: str) -> None:
    """403 naming the model when the caller's relay key is not allowed it (before anything goes upstream)."""
    who = _current.get()
    if who is not None and who.relay_key is not None and not who.relay_key.allows(model):
        raise OpenAIError(
            403,
            f"Your relay key is not allowed to use the model `{model}`. Ask the relay's operator, or "
            "GET /v1/models for the models it may use.",
            type="invalid_request_error",
            param="model",
            code="model_not_allowed",
        )


def catalogue_reader(request: Request, public: bool) -> None:
    """Let a catalogue read through: anyone's when `public` and no key is sent, else the caller's (a key
    that is sent is always checked: a wrong one is still a 401)."""
    if public and "authorization" not in request.headers and "x-api-key" not in request.headers:
        return  # an empty header is a key sent, and refused
    caller(request)


def model_visible(model: str) -> bool:
    who = _current.get()
    return who is None or who.relay_key is None or who.relay_key.allows(model)


def bearer_token(headers: Headers) -> str:
    """The bearer token (or Anthropic's `x-api-key`), or a 401 OpenAI error; the key is never echoed."""
    header = headers.get("authorization", "")
    if not header and (api_key := headers.get("x-api-key", "").strip()):
        header = f"Bearer {api_key}"
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if not header:
        raise _missing_key()
    if scheme.lower() != "bearer" or not token:
        raise OpenAIError(
            401,
            "Malformed Authorization header: expected 'Bearer <your API key>'.",
            code="invalid_api_key",
        )
    if len(token) > _MAX_KEY_LENGTH or not _KEY_CHARACTERS.fullmatch(token):
        raise OpenAIError(
            401,
            "The relay refused this API key without sending it to 1min.ai: a key is one word of visible "
            f"ASCII characters (no spaces), at most {_MAX_KEY_LENGTH} long.",
            code="invalid_api_key",
        )
    return token


def _missing_key() -> OpenAIError:
    return OpenAIError(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header "
        "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or in an x-api-key header.",
        code="invalid_api_key",
    )


def _refused(message: str) -> OpenAIError:
    return OpenAIError(401, message, code="invalid_api_key")


class Authenticator:
    """Turns a request's credentials into a Caller, per AUTH_MODE."""

    def __init__(
        self, settings: Settings, store: AccountStore, ledger: UsageLedger, pool: UpstreamKeyPool
    ) -> None:
        self.mode = settings.auth_mode
        self._store = store
        self._ledger = ledger
        self._pool = pool
        self._cache: dict[str, tuple[RelayKey | None, float]] = {}

    async def resolve(self, headers: Headers, method: str) -> Caller:
        token = bearer_token(headers)
        is_relay_key = token.startswith(RELAY_KEY_PREFIX)
        if self.mode == "passthrough" or (self.mode == "both" and not is_relay_key):
            return Caller(key_hash(token), token)
        if not is_relay_key:
            raise _refused("This relay accepts only relay keys (sk-relay-…); ask its operator for one.")
        key = await self._lookup(secret_hash(token))
        if key is None:
            raise _refused("Incorrect API key provided: no such relay key.")
        state = key.state()
        if state != "active":
            raise _refused(f"This relay key ({key.name}) has been {state}.")
        if method == "POST" and (key.daily_budget is not None or key.monthly_budget is not None):
            await self._check_budget(key)
        return Caller(key.id, self._pool.pick(), key)

    def forget(self, key: RelayKey) -> None:
        """Drop a changed key from the cache (a revoke applies at once on this relay)."""
        self._cache.pop(key.secret_hash, None)

    async def _lookup(self, digest: str) -> RelayKey | None:
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        key = await self._store.key_by_secret_hash(digest)
        if len(self._cache) >= _KEY_CACHE_SIZE:
            self._cache.clear()
        self._cache[digest] = (key, now + KEY_CACHE_SECONDS)
        return key

    async def _check_budget(self, key: RelayKey) -> None:
        day, month = await self._ledger.spent(key.id)
        for period, budget, spent in (
            ("daily", key.daily_budget, day),
            ("monthly", key.monthly_budget, month),
        ):
            if budget is not None and spent >= budget:
                resets = "at 00:00 UTC" if period == "daily" else "on the 1st of next month (UTC)"
                raise OpenAIError(
                    429,
                    f"Your relay key's {period} budget of {budget:g} credits is spent ({spent:g} used); "
                    f"it resets {resets}.",
                    type="insufficient_quota",
                    code="insufficient_quota",
                    headers={"x-should-retry": "false"},
                )


class CallerMiddleware:
    """Resolves the caller of each /v1 request into the scope (and `current_caller()`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or scope["method"] == "OPTIONS" or not path.startswith("/v1"):
            await self.app(scope, receive, send)
            return
        authenticator: Authenticator = scope["app"].state.relay.authenticator
        resolved: Caller | OpenAIError
        try:
            resolved = await authenticator.resolve(Headers(scope=scope), scope["method"])
        except OpenAIError as exc:
            resolved = exc
            if exc.code == "insufficient_quota":
                current_record().rejected_by = "budget"
        except StateUnavailable:
            resolved = service_unavailable("The relay's key store is unavailable; please retry shortly.")
        if isinstance(resolved, Caller):
            current_record().caller = resolved.identity  # who to bill: never a key
        scope[_SCOPE_KEY] = resolved
        token = _current.set(resolved if isinstance(resolved, Caller) else None)
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(token)


def resolved_caller(scope: Scope) -> Caller | None:
    """The caller `CallerMiddleware` resolved for this request, if it resolved one; without that
    middleware (an app of other parts), the passthrough reading of the bearer token."""
    if _SCOPE_KEY in scope:
        resolved = scope[_SCOPE_KEY]
        return resolved if isinstance(resolved, Caller) else None
    try:
        token = bearer_token(Headers(scope=scope))
    except OpenAIError:
        return None
    return Caller(key_hash(token), token)
