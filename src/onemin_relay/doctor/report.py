"""The doctor's findings: one `Item` per probe, the simulator settings that would match, the verdict.

Exit status: 0 when nothing the relay relies on has changed (differences the relay survives are reported,
but do not fail the run), 1 when something it relies on has (an item marked `breaking`).
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from onemin_relay.simulator.config import SimulatorConfig

Result = Literal["match", "differs", "unknown"]
SYMBOLS: dict[Result, str] = {"match": "✓", "differs": "✗", "unknown": "?"}


@dataclass
class Item:
    """One comparison between what 1min.ai did and what the simulator assumes.

    `switch`: the SimulatorConfig fields this item tests; `suggestion`: the values of those fields that
    would reproduce what was observed (only when `result` is `differs` and a switch can express it).
    `breaking`: the relay relies on this, and it changed.
    """

    id: str
    title: str
    result: Result
    expected: str
    observed: str
    switch: tuple[str, ...] = ()
    suggestion: dict[str, Any] = field(default_factory=dict)
    breaking: bool = False
    note: str = ""

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.result]


@dataclass
class Report:
    service: str
    key_hash: str
    spent_credits: bool
    items: list[Item] = field(default_factory=list)
    catalogue_changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def relay_affected(self) -> bool:
        return any(item.breaking for item in self.items)

    @property
    def exit_code(self) -> int:
        return 1 if self.relay_affected else 0

    def suggested_config(self) -> dict[str, Any]:
        """The `/_sim/config` body (SimulatorConfig fields) that would make every ✗ with a switch a ✓."""
        changes: dict[str, Any] = {}
        for item in self.items:
            if item.result == "differs":
                changes.update(item.suggestion)
        SimulatorConfig().updated(changes)  # the suggestion must be a valid configuration
        return changes

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "key_sha256": self.key_hash,
            "spent_credits": self.spent_credits,
            "items": [{**asdict(item), "symbol": item.symbol} for item in self.items],
            "suggested_config": self.suggested_config(),
            "catalogue_changes": self.catalogue_changes,
            "notes": self.notes,
            "relay_affected": self.relay_affected,
            "exit_code": self.exit_code,
        }


def _python_value(value: Any) -> str:
    return repr(value) if not isinstance(value, str) else json.dumps(value)


def render_table(report: Report) -> str:
    """The readable report: one line per item (details under ✗ and ?), then suggestions and catalogue."""
    width = max((len(item.title) for item in report.items), default=0)
    lines = [
        f"1min-relay doctor — {report.service} (key sha256:{report.key_hash})",
        "",
    ]
    for item in report.items:
        summary = _short(item.observed) if item.result == "match" else ""
        lines.append(f"{item.symbol}  {item.title.ljust(width)}  {summary}".rstrip())
        if item.result != "match":
            lines.append(f"     expected: {item.expected}")
            lines.append(f"     observed: {item.observed}")
        if item.note:
            lines.append(f"     note: {item.note}")
    counts = {result: sum(item.result == result for item in report.items) for result in SYMBOLS}
    lines += ["", f"{counts['match']} ✓  {counts['differs']} ✗  {counts['unknown']} ?"]
    lines += [textwrap.fill(note, width=110, subsequent_indent="  ") for note in report.notes]
    suggestion = report.suggested_config()
    lines.append("")
    if suggestion:
        arguments = ", ".join(f"{name}={_python_value(value)}" for name, value in suggestion.items())
        lines += [
            "Simulator settings that match this service:",
            f"  SimulatorConfig({arguments})",
            f"  POST /_sim/config {json.dumps(suggestion)}",
        ]
    else:
        lines.append("The simulator's default settings match everything observed.")
    lines.append("")
    lines += render_catalogue_changes(report.catalogue_changes)
    lines.append("")
    if report.relay_affected:
        broken = ", ".join(item.title for item in report.items if item.breaking)
        lines.append(
            f"Something the relay relies on has changed: {broken}. Please report it (docs/doctor.md)."
        )
    else:
        lines.append("Nothing the relay relies on has changed.")
    return "\n".join(lines) + "\n"


def _short(text: str, limit: int = 70) -> str:
    """A ✓ row's observation without the body it quotes."""
    text = text.split(": {", 1)[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_catalogue_changes(changes: dict[str, dict[str, Any]]) -> list[str]:
    if not changes:
        return ["The live catalogue matches the shipped snapshot."]
    lines = ["Catalogue changes against the shipped snapshot (`make refresh-catalogue` updates it):"]
    for feature, change in changes.items():
        lines.append(f"  {feature}:")
        for kind in ("added", "removed", "disabled", "enabled"):
            if change.get(kind):
                lines.append(f"    {kind}: {', '.join(change[kind])}")
        for price in change.get("prices", []):
            lines.append(
                f"    price of {price['model']}: {json.dumps(price['before'])} → {json.dumps(price['after'])}"
            )
        for deprecation in change.get("deprecations", []):
            lines.append(f"    {deprecation['model']} deprecated on {deprecation['date']}")
    return lines
