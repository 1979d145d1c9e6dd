"""Relay keys and the usage ledger in the embedded SQLite file (its own connection and tables)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import aiosqlite

from onemin_relay.accounts.keys import RelayKey
from onemin_relay.accounts.store import AccountStore
from onemin_relay.accounts.usage import FIELDS, UsageQuery, UsageRecord, month_of, periods_of
from onemin_relay.state.base import StateUnavailable, unavailable_on

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
_UNAVAILABLE = (sqlite3.DatabaseError, ValueError)
_WHERE = "SQLite accounts"


class SQLiteAccountStore(AccountStore):
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection
        self._write = asyncio.Lock()  # one transaction at a time on this connection

    @classmethod
    async def open(cls, path: Path) -> SQLiteAccountStore:
        try:
            await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
            connection = await aiosqlite.connect(path, isolation_level=None)  # transactions are explicit
        except (OSError, sqlite3.Error) as exc:
            raise StateUnavailable(f"cannot open the SQLite accounts file {path}: {exc}") from exc
        try:
            await connection.execute("PRAGMA journal_mode=WAL")
            await connection.execute("PRAGMA busy_timeout=5000")
            await connection.execute("PRAGMA synchronous=NORMAL")
            await connection.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            await connection.close()
            raise StateUnavailable(f"cannot prepare the SQLite accounts tables in {path}: {exc}") from exc
        return cls(connection)

    async def put_key(self, key: RelayKey) -> None:
        with unavailable_on(_UNAVAILABLE, _WHERE):
            async with self._write:
                await self._db.execute(
                    "INSERT OR REPLACE INTO relay_keys (id, secret_hash, created_at, data) "
                    "VALUES (?, ?, ?, ?)",
                    (key.id, key.secret_hash, key.created_at, key.to_json()),
                )

    async def key_by_id(self, key_id: str) -> RelayKey | None:
        return await self._one_key("SELECT data FROM relay_keys WHERE id = ?", key_id)

    async def key_by_secret_hash(self, digest: str) -> RelayKey | None:
        return await self._one_key("SELECT data FROM relay_keys WHERE secret_hash = ?", digest)

    async def _one_key(self, query: str, value: str) -> RelayKey | None:
        with unavailable_on(_UNAVAILABLE, _WHERE):
            async with self._db.execute(query, (value,)) as cursor:
                row = await cursor.fetchone()
        return RelayKey.from_json(row[0]) if row else None

    async def list_keys(self) -> list[RelayKey]:
        with unavailable_on(_UNAVAILABLE, _WHERE):
            async with self._db.execute("SELECT data FROM relay_keys ORDER BY created_at, id") as cursor:
                rows = await cursor.fetchall()
        return [RelayKey.from_json(row[0]) for row in rows]

    async def add_usage(self, records: Sequence[UsageRecord]) -> None:
        totals: dict[tuple[str, str], float] = {}
        for record in records:
            for period in periods_of(record.ts):
                totals[record.key, period] = totals.get((record.key, period), 0.0) + record.credits
        with unavailable_on(_UNAVAILABLE, _WHERE):
            async with self._write:
                await self._db.execute("BEGIN IMMEDIATE")
                try:
                    await self._db.executemany(
                        f"INSERT INTO usage_ledger ({_COLUMNS}) VALUES ({_PLACEHOLDERS})",  # noqa: S608
                        [_row(record) for record in records],
                    )
                    await self._db.executemany(
                        "INSERT INTO usage_totals (key, period, credits) VALUES (?, ?, ?) "
                        "ON CONFLICT (key, period) DO UPDATE SET credits = credits + excluded.credits",
                        [(key, period, credits) for (key, period), credits in totals.items()],
                    )
                except BaseException:
                    await self._db.execute("ROLLBACK")
                    raise
                await self._db.execute("COMMIT")

    async def spent(self, key: str, periods: Sequence[str]) -> list[float]:
        marks = ", ".join("?" * len(periods))
        with unavailable_on(_UNAVAILABLE, _WHERE):
            async with self._db.execute(
                f"SELECT period, credits FROM usage_totals WHERE key = ? AND period IN ({marks})",  # noqa: S608
                (key, *periods),
            ) as cursor:
                found = {period: credits for period, credits in await cursor.fetchall()}
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
        with unavailable_on(_UNAVAILABLE, _WHERE):
            async with self._db.execute(
                f"SELECT {_COLUMNS} FROM usage_ledger WHERE {' AND '.join(where)} "  # noqa: S608
                "ORDER BY ts LIMIT ?",
                params,
            ) as cursor:
                rows = await cursor.fetchall()
        return [_record(row) for row in rows]

    async def delete_usage_before(self, ts: float) -> int:
        with unavailable_on(_UNAVAILABLE, _WHERE):
            async with self._write:
                cursor = await self._db.execute("DELETE FROM usage_ledger WHERE ts < ?", (ts,))
                # Totals of periods that ended before the cutoff's month: no budget reads them again.
                await self._db.execute("DELETE FROM usage_totals WHERE period < ?", (month_of(ts),))
        return cursor.rowcount

    async def aclose(self) -> None:
        await self._db.close()


def _record(row: Sequence[object]) -> UsageRecord:
    fields = dict(zip(FIELDS, row, strict=True))
    fields["estimated"] = bool(fields["estimated"])  # stored as 0/1
    return UsageRecord(**fields)  # type: ignore[arg-type]


def _row(record: UsageRecord) -> tuple[object, ...]:
    return tuple(getattr(record, name) for name in FIELDS)
