"""Relay keys and the usage ledger in the embedded SQLite file (its own connection and tables)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import aiosqlite

from onemin_relay.accounts.keys import RelayKey
from onemin_relay.accounts.store import AccountStore
from onemin_relay.accounts.usage import FIELDS, UsageQuery, UsageRecord, month_of, periods_of
from onemin_relay.state.sqlite import connect, in_write_transaction, read_all

_SCHEMA = """
CREATE TABLE IF NOT EXISTS relay_keys (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS usage_ledger (
    ts REAL NOT NULL,
    key TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    model TEXT NOT NULL,
    status INTEGER NOT NULL,
    tokens_in INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    credits REAL NOT NULL,
    estimated INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    upstream_ms REAL NOT NULL,
    request_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_ledger_by_time ON usage_ledger (ts);
CREATE INDEX IF NOT EXISTS usage_ledger_by_key ON usage_ledger (key, ts);
CREATE TABLE IF NOT EXISTS usage_totals (
    key TEXT NOT NULL,
    period TEXT NOT NULL,
    credits REAL NOT NULL,
    PRIMARY KEY (key, period)
) WITHOUT ROWID;
"""

# Queries interpolate only these constant fragments; every value is bound as a parameter.
_COLUMNS = ", ".join(FIELDS)
_PLACEHOLDERS = ", ".join("?" * len(FIELDS))


class SQLiteAccountStore(AccountStore):
    """Same discipline as `state/sqlite.py`: autocommit, every cursor closed before the next await,
    writes in `BEGIN IMMEDIATE` transactions, retried while another process holds the file."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection
        self._writing = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> SQLiteAccountStore:
        return cls(await connect(path, _SCHEMA))

    async def put_key(self, key: RelayKey) -> None:
        async def statements() -> None:
            await self._db.execute(
                "INSERT OR REPLACE INTO relay_keys (id, secret_hash, created_at, data) VALUES (?, ?, ?, ?)",
                (key.id, key.secret_hash, key.created_at, key.to_json()),
            )

        await in_write_transaction(self._db, self._writing, statements)

    async def key_by_id(self, key_id: str) -> RelayKey | None:
        rows = await read_all(self._db, "SELECT data FROM relay_keys WHERE id = ?", (key_id,))
        return RelayKey.from_json(rows[0][0]) if rows else None

    async def key_by_secret_hash(self, digest: str) -> RelayKey | None:
        rows = await read_all(self._db, "SELECT data FROM relay_keys WHERE secret_hash = ?", (digest,))
        return RelayKey.from_json(rows[0][0]) if rows else None

    async def list_keys(self) -> list[RelayKey]:
        rows = await read_all(self._db, "SELECT data FROM relay_keys ORDER BY created_at, id", ())
        return [RelayKey.from_json(row[0]) for row in rows]

    async def add_usage(self, records: Sequence[UsageRecord]) -> None:
        totals: dict[tuple[str, str], float] = {}
        for record in records:
            for period in periods_of(record.ts):
                totals[record.key, period] = totals.get((record.key, period), 0.0) + record.credits

        async def statements() -> None:
            await self._db.executemany(
                f"INSERT INTO usage_ledger ({_COLUMNS}) VALUES ({_PLACEHOLDERS})",  # noqa: S608
                [_row(record) for record in records],
            )
            await self._db.executemany(
                "INSERT INTO usage_totals (key, period, credits) VALUES (?, ?, ?) "
                "ON CONFLICT (key, period) DO UPDATE SET credits = credits + excluded.credits",
                [(key, period, credits) for (key, period), credits in totals.items()],
            )

        await in_write_transaction(self._db, self._writing, statements)

    async def spent(self, key: str, periods: Sequence[str]) -> list[float]:
        marks = ", ".join("?" * len(periods))
        rows = await read_all(
            self._db,
            f"SELECT period, credits FROM usage_totals WHERE key = ? AND period IN ({marks})",  # noqa: S608
            (key, *periods),
        )
        found = {period: credits for period, credits in rows}
        return [float(found.get(period, 0.0)) for period in periods]

    async def usage(self, query: UsageQuery) -> list[UsageRecord]:
        where = ["ts >= ?", "ts < ?"]
        params: list[object] = [query.since, min(query.until, 1e12)]
        if query.key is not None:
            where.append("key = ?")
            params.append(query.key)
        if query.model is not None:
            where.append("model = ?")
            params.append(query.model)
        params.append(query.limit)
        rows = await read_all(
            self._db,
            f"SELECT {_COLUMNS} FROM usage_ledger WHERE {' AND '.join(where)} ORDER BY ts LIMIT ?",  # noqa: S608
            params,
        )
        return [_record(row) for row in rows]

    async def delete_usage_before(self, ts: float) -> int:
        async def statements() -> int:
            async with self._db.execute("DELETE FROM usage_ledger WHERE ts < ?", (ts,)) as cursor:
                removed = cursor.rowcount
            # Totals of periods that ended before the cutoff's month: no budget reads them again.
            await self._db.execute("DELETE FROM usage_totals WHERE period < ?", (month_of(ts),))
            return removed

        return await in_write_transaction(self._db, self._writing, statements)

    async def aclose(self) -> None:
        await self._db.close()


def _record(row: Sequence[object]) -> UsageRecord:
    fields = dict(zip(FIELDS, row, strict=True))
    fields["estimated"] = bool(fields["estimated"])  # stored as 0/1
    return UsageRecord(**fields)  # type: ignore[arg-type]


def _row(record: UsageRecord) -> tuple[object, ...]:
    return tuple(getattr(record, name) for name in FIELDS)
