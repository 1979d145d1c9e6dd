"""Fault switches: their names, the `name[=value],…` syntax, magic words in prompts, one-shot faults.

A fault can be switched on per process (`SimulatorConfig.faults`), for the next N calls (`POST /_sim/faults`),
per request with the `X-Sim-Fault` header, or by a magic word such as `[[sim:error-mid-stream]]` anywhere in
a string of the request's `promptObject` (the relay forwards prompts, not headers: end-to-end tests use it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Scope = Literal["http", "stream", "record"]

# name → (where it acts, default value or None when it takes no value)
FAULTS: dict[str, tuple[Scope, int | None]] = {
    # before any body is written, on every /api/* call
    "http-500": ("http", None),
    "http-502": ("http", None),
    "http-503": ("http", None),
    "http-429": ("http", 1),  # value: Retry-After seconds
    "cloudflare-522": ("http", None),
    "slow-first-byte": ("http", 1000),  # value: milliseconds before the response starts
    "insufficient-credits": ("http", None),
    # chat streams
    "delay": ("stream", 50),  # value: milliseconds between content events
    "duplicate-final": ("stream", None),
    "error-mid-stream": ("stream", None),
    "drop-mid-stream": ("stream", None),
    "end-mid-stream": ("stream", None),
    "crlf": ("stream", None),
    "split-bytes": ("stream", 1),  # value: bytes per write
    "keepalive": ("stream", None),  # `: keep-alive` comment lines between events
    # the aiRecord of chat and feature calls
    "failed-status": ("record", None),
    "zero-tokens": ("record", None),
}

Faults = dict[str, int | None]

# no bracket inside: each opening is scanned only up to the next bracket (linear, and an unclosed `[[sim:`
# cannot swallow the magic word after it)
MAGIC_WORD = re.compile(r"\[\[sim:([^\[\]]*)\]\]")


def parse_faults(spec: str) -> Faults:
    """`"delay=20,crlf"` → `{"delay": 20, "crlf": None}`; ValueError names an unknown fault or bad value."""
    faults: Faults = {}
    for item in spec.split(","):
        name, has_value, raw = item.strip().partition("=")
        name = name.strip().lower()
        if not name:
            continue
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(FAULTS))}")
        default = FAULTS[name][1]
        if not has_value:
            faults[name] = default
            continue
        if default is None:
            raise ValueError(f"fault {name!r} takes no value")
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"fault {name!r} needs an integer value") from None
        if not 0 <= value <= 600_000:
            raise ValueError(f"fault {name!r} value out of range")
        faults[name] = value
    return faults


def magic_faults(text: str) -> Faults:
    """Faults named by `[[sim:…]]` magic words in `text`; other names are ignored (it is user text, and
    `length=N` belongs to the answer, see answers.py)."""
    faults: Faults = {}
    for match in MAGIC_WORD.finditer(text):
        for item in match.group(1).split(","):
            try:
                faults.update(parse_faults(item))
            except ValueError:
                continue
    return faults


def strings_in(value: Any, *, limit: int = 10_000) -> Iterable[str]:
    """Every string inside a JSON value (bounded, so a hostile body cannot make this loop forever)."""
    stack = [value]
    seen = 0
    while stack and seen < limit:
        item = stack.pop()
        seen += 1
        if isinstance(item, str):
            yield item
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def faults_in_body(body: Any) -> Faults:
    """Magic-word faults found in any text of the request's promptObject."""
    faults: Faults = {}
    if isinstance(body, Mapping):
        for text in strings_in(body.get("promptObject")):
            if "[[sim:" in text:
                faults.update(magic_faults(text))
    return faults


@dataclass
class _Pending:
    name: str
    value: int | None
    remaining: int
    path: str


class FaultBook:
    """Faults armed for the next N calls that they apply to (`POST /_sim/faults`)."""

    def __init__(self) -> None:
        self._pending: list[_Pending] = []

    def arm(self, spec: str, times: int, path: str = "/api/") -> None:
        """Arm each fault of `spec` for the next `times` calls whose path starts with `path`."""
        for name, value in parse_faults(spec).items():
            self._pending.append(_Pending(name, value, times, path))

    def clear(self) -> None:
        self._pending.clear()

    def take(self, scopes: set[Scope], path: str) -> Faults:
        """Use one shot of every armed fault that acts on a call of these scopes at this path."""
        taken: Faults = {}
        for pending in self._pending:
            if (
                FAULTS[pending.name][0] in scopes
                and path.startswith(pending.path)
                and pending.name not in taken
            ):
                taken[pending.name] = pending.value
                pending.remaining -= 1
        self._pending = [p for p in self._pending if p.remaining > 0]
        return taken

    def snapshot(self) -> list[dict[str, Any]]:
        return [
            {"fault": p.name, "value": p.value, "remaining": p.remaining, "path": p.path}
            for p in self._pending
        ]
