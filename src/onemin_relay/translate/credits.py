"""What a media call costs in 1min.ai credits, from the catalogue's `creditMetadata` (reference §14).

1min.ai reports credits inline only for chat; for images and audio the price list is all there is.
The simulator bills with this same reading of the reference, so the relay's ledger and its stand-in agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def price(credit_metadata: Mapping[str, Any], name: str) -> float:
    value = credit_metadata.get(name)
    return float(value) if isinstance(value, int | float) else 0.0


def feature_credits(
    prices: Mapping[str, Any], prompt_object: Mapping[str, Any], count: int, scale: float = 1.0
) -> int:
    """Credits of a media call: a flat `ALL` price per result, Midjourney's price per job by `mode`, or a
    price by quality and size with the provider's defaults (Leonardo's tables go on to the number of
    images, pricing the whole job)."""
    if "ALL" in prices:
        return round(price(prices, "ALL") * max(1, count) * scale)
    mode = prompt_object.get("mode", "fast")
    if isinstance(mode, str) and isinstance(prices.get(mode), int | float):
        return round(price(prices, mode) * scale)  # one Midjourney job renders four images
    quality = prompt_object.get("quality")
    if not isinstance(quality, str) or quality not in prices:
        quality = next((name for name in ("medium", "standard") if name in prices), "")
    table = prices.get(quality)
    table = table if isinstance(table, Mapping) else prices
    size = prompt_object.get("size", "1024x1024")
    cost = table.get(size) if isinstance(size, str) else None
    if isinstance(cost, Mapping):
        return round(price(cost, str(count)) * scale)
    return round((float(cost) if isinstance(cost, int | float) else 0.0) * max(1, count) * scale)
