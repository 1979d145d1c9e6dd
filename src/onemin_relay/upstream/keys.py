"""The relay's own 1min.ai keys (AUTH_MODE keys/both): which one a call uses, and failing over.

Calls use the first key in the configured order that is not resting. A key that 1min.ai answers
out-of-credits or rate-limited rests for a while and the call moves on to the next key; both answers
mean the call was refused before anything ran, so nothing is billed twice (the client only fails over
on them). Keys are referred to by their short hash in logs, never by value.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from onemin_relay.upstream.errors import UpstreamError, is_out_of_credits

RATE_LIMIT_REST = 60.0  # seconds, unless 1min.ai said how long (Retry-After)
OUT_OF_CREDITS_REST = 600.0  # a team admin may raise the limit: try the key again after this


def key_hash(key: str) -> str:
    """A short, stable, non-reversible name for a key: safe for logs, state namespaces and limits."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def failover_reason(error: UpstreamError) -> str | None:
    """Why another key may take a call that failed with `error`, or None if none may."""
    if is_out_of_credits(error):
        return "out of credits"
    if error.status == 429 or error.code.upper() == "RATE_LIMITED":
        return "rate limited"
    return None


@dataclass(frozen=True)
class Balance:
    """A key's credit as the last aiRecord's `teamUser` showed it (usage lags one request, §2.1)."""

    key_hash: str
    credit_limit: float
    used_credit: float
    seen_at: float

    def public(self) -> dict[str, Any]:
        return {
            "key_hash": self.key_hash,
            "credit_limit": self.credit_limit,
            "used_credit": self.used_credit,
            "remaining": max(0.0, self.credit_limit - self.used_credit),
            "seen_at": int(self.seen_at),
        }


def balance_of(key: str, record: Mapping[str, Any]) -> Balance | None:
    team_user = record.get("teamUser")
    if not isinstance(team_user, Mapping):
        return None
    limit, used = team_user.get("creditLimit"), team_user.get("usedCredit")
    if not isinstance(limit, int | float) or not isinstance(used, int | float):
        return None
    return Balance(key_hash(key), float(limit), float(used), time.time())


class UpstreamKeyPool:
    def __init__(self, keys: Sequence[str]) -> None:
        self._keys = tuple(keys)
        self._resting_until: dict[str, float] = {}

    def __bool__(self) -> bool:
        return bool(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def pick(self) -> str:
        """The first key not resting; if all rest, the one that wakes first."""
        now = time.monotonic()
        for key in self._keys:
            if self._resting_until.get(key, 0.0) <= now:
                return key
        return min(self._keys, key=lambda key: self._resting_until.get(key, 0.0))

    def failover(self, key: str, error: UpstreamError, tried: set[str | None]) -> str | None:
        """After `key` failed with `error`: rest it and return the next untried key, or None."""
        reason = failover_reason(error)
        if reason is None or key not in self._keys:
            return None
        rest = OUT_OF_CREDITS_REST if reason == "out of credits" else (error.retry_after or RATE_LIMIT_REST)
        self._resting_until[key] = time.monotonic() + rest
        untried = [candidate for candidate in self._keys if candidate not in tried]
        awake = [
            candidate for candidate in untried if self._resting_until.get(candidate, 0.0) <= time.monotonic()
        ]
        candidates = awake or untried
        return candidates[0] if candidates else None

    def hashes(self) -> list[str]:
        return [key_hash(key) for key in self._keys]
