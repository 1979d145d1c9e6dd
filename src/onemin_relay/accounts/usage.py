"""The usage ledger's record, the budget periods, and the summaries the admin API and CLI show."""

from __future__ import annotations

import calendar
import csv
import dataclasses
import io
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

GroupBy = Literal["key", "model", "day", "endpoint"]
GROUPS: tuple[GroupBy, ...] = ("key", "model", "day", "endpoint")


@dataclass(frozen=True)
class UsageRecord:
    """One call through the relay, as the ledger keeps it."""

    ts: float  # unix seconds when the request ended
    key: str  # relay key id (`rk_…`), or the short hash of a passthrough 1min.ai key
    endpoint: str  # the route's path, e.g. /v1/chat/completions
    model: str
    status: int
    tokens_in: int
    tokens_out: int
    credits: float  # 1min.ai credits, from upstream's metadata, or the catalogue price when `estimated`
    estimated: bool
    latency_ms: float
    upstream_ms: float
    request_id: str

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> UsageRecord:
        return cls(**json.loads(text))


# One query reads at most this many ledger records (the newest are left out past it).
MAX_QUERY_RECORDS = 200_000


@dataclass(frozen=True)
class UsageQuery:
    since: float = 0.0
    until: float = float("inf")
    key: str | None = None
    model: str | None = None
    limit: int = MAX_QUERY_RECORDS


FIELDS = tuple(field.name for field in dataclasses.fields(UsageRecord))


def day_of(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def month_of(ts: float) -> str:
    return time.strftime("%Y-%m", time.gmtime(ts))


def periods_of(ts: float) -> tuple[str, str]:
    """The budget periods a record counts towards: its UTC day and its UTC month."""
    return day_of(ts), month_of(ts)


@dataclass
class Summary:
    """Totals of a group of records."""

    group: str
    requests: int = 0
    errors: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    credits: float = 0.0
    estimated_credits: float = 0.0
    latency_ms: list[float] = dataclasses.field(default_factory=list)
    upstream_ms: list[float] = dataclasses.field(default_factory=list)

    def add(self, record: UsageRecord) -> None:
        self.requests += 1
        self.errors += record.status >= 400
        self.tokens_in += record.tokens_in
        self.tokens_out += record.tokens_out
        self.credits += record.credits
        if record.estimated:
            self.estimated_credits += record.credits
        self.latency_ms.append(record.latency_ms)
        self.upstream_ms.append(record.upstream_ms)

    def public(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": round(self.errors / self.requests, 4) if self.requests else 0.0,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "credits": round(self.credits, 4),
            "estimated_credits": round(self.estimated_credits, 4),
            "latency_ms_p50": _percentile(self.latency_ms, 0.5),
            "latency_ms_p95": _percentile(self.latency_ms, 0.95),
            "upstream_ms_p50": _percentile(self.upstream_ms, 0.5),
        }


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 1)


def group_value(record: UsageRecord, group_by: GroupBy) -> str:
    if group_by == "day":
        return day_of(record.ts)
    value: str = getattr(record, group_by)
    return value


def summarise(records: Iterable[UsageRecord], group_by: GroupBy | None) -> list[dict[str, Any]]:
    """Totals per group (largest spend first), or one total row when `group_by` is None."""
    groups: dict[str, Summary] = {}
    for record in records:
        name = group_value(record, group_by) if group_by else "total"
        groups.setdefault(name, Summary(name)).add(record)
    ordered = sorted(
        groups.values(), key=lambda s: (s.group,) if group_by == "day" else (-s.credits, s.group)
    )
    return [summary.public() for summary in ordered]


def parse_time(value: str, name: str) -> float:
    """`2026-11-29` (UTC midnight), `2026-11-29T13:00:00` (UTC) or unix seconds."""
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    for pattern in ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"):
        try:
            return calendar.timegm(time.strptime(text.removesuffix("Z"), pattern))
        except ValueError:
            continue
    raise ValueError(
        f"'{name}' must be a date (2026-11-29), a UTC time (2026-11-29T13:00:00) or unix seconds"
    )


def usage_query(params: Mapping[str, str], *, default_days: float = 30) -> tuple[UsageQuery, GroupBy | None]:
    """A ledger query from filters (`since`, `until`, `key`, `model`, `group_by`); ValueError names one."""
    since = time.time() - default_days * 86400
    if params.get("since"):
        since = parse_time(params["since"], "since")
    until = parse_time(params["until"], "until") if params.get("until") else float("inf")
    group_by = next((group for group in GROUPS if group == params.get("group_by")), None)
    if group_by is None and params.get("group_by"):
        raise ValueError(f"'group_by' must be one of: {', '.join(GROUPS)}")
    query = UsageQuery(
        since=since, until=until, key=params.get("key") or None, model=params.get("model") or None
    )
    return query, group_by


def rows_csv(rows: Iterable[dict[str, Any]], columns: Iterable[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({name: _cell(value) for name, value in row.items()})
    return out.getvalue()


def _cell(value: Any) -> Any:
    # A model name is the caller's text: never let a spreadsheet read it as a formula.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
