"""Per-key rate limit and credit accounting (§14: 180 requests/minute; credits from catalogue prices)."""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from onemin_relay.translate.credits import price

WINDOW_SECONDS = 60.0


class RateLimiter:
    """A sliding one-minute window per key; keys idle for a whole window are forgotten."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()  # least recently hit key first

    @property
    def tracked_keys(self) -> int:
        return len(self._hits)

    def hit(self, key_hash: str, per_minute: int) -> int | None:
        """Count one request; return the Retry-After seconds when the key is over its limit."""
        if per_minute <= 0:
            return None
        now = self._clock()
        while self._hits:
            oldest = next(iter(self._hits.values()))
            if oldest and now - oldest[-1] < WINDOW_SECONDS:
                break
            self._hits.popitem(last=False)
        hits = self._hits.setdefault(key_hash, deque())
        self._hits.move_to_end(key_hash)
        while hits and now - hits[0] >= WINDOW_SECONDS:
            hits.popleft()
        if len(hits) >= per_minute:
            return max(1, math.ceil(WINDOW_SECONDS - (now - hits[0])))
        hits.append(now)
        return None

    def clear(self) -> None:
        self._hits.clear()


class CreditLedger:
    """Credits used per key; records show usage *before* the current call (it lags one request, §2.1).

    Bounded: past `max_keys` keys, the least recently billed key's usage is forgotten."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._used: OrderedDict[str, int] = OrderedDict()
        self._max_keys = max_keys

    def used(self, key_hash: str) -> int:
        return self._used.get(key_hash, 0)

    def bill(self, key_hash: str, credits: int) -> int:
        """Add `credits`; return the usage before them (what `teamUser.usedCredit` shows)."""
        before = self.used(key_hash)
        self._used[key_hash] = before + max(0, credits)
        self._used.move_to_end(key_hash)
        while len(self._used) > self._max_keys:
            self._used.popitem(last=False)
        return before

    def clear(self) -> None:
        self._used.clear()


def estimate_tokens(text: str) -> int:
    """About four characters per token, at least one for any text."""
    return (len(text) + 3) // 4 if text else 0


def chat_usage(
    entry: dict[str, Any], input_text: str, output_text: str, images: int, scale: float
) -> dict[str, Any]:
    """The chat `metadata` object: tokens × catalogue price (§14 hypothesis), images at LOW_IMAGE each."""
    prices = entry.get("creditMetadata", {})
    input_tokens = estimate_tokens(input_text)
    output_tokens = estimate_tokens(output_text)
    input_credit = round(
        (input_tokens * price(prices, "INPUT") + images * price(prices, "LOW_IMAGE")) * scale
    )
    output_credit = round(output_tokens * price(prices, "OUTPUT") * scale)
    return {
        "credit": input_credit + output_credit,
        "inputCredit": input_credit,
        "outputCredit": output_credit,
        "inputToken": input_tokens,
        "outputToken": output_tokens,
        "totalToken": input_tokens + output_tokens,
        "finishReason": "stop",
    }
