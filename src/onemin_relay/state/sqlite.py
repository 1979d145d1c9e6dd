"""The embedded default: one SQLite file (WAL mode) in the data directory; no server to run.

Fits one relay process, or several on one machine sharing the file (use Redis to share state between
machines). Several processes on one file must never wedge, so:

- the connection is in autocommit mode and no statement outlives its call: every cursor is read to the
  end and closed before the next `await`, so no read transaction pins an old WAL snapshot and each read
  sees every write committed before it, by any process;
- a write is `BEGIN IMMEDIATE` … `COMMIT` (the write lock is taken up front, where the busy timeout
  applies, instead of upgrading a read lock, which fails at once), rolled back on any failure, one at a
  time per process;
- a database still busy after the busy timeout is retried a few times with jittered backoff before the
  caller gets StateUnavailable (503).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from onemin_relay.state.base import FileRecord, Order, StateStore, StateUnavailable, unavailable_on

# Queries interpolate only these constant fragments; every value is bound as a parameter.
_COLUMNS = ", ".join(field.name for field in dataclasses.fields(FileRecord))
_PLACEHOLDERS = ", ".join("?" * len(dataclasses.fields(FileRecord)))

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id TEXT NOT NULL,
    owner TEXT NOT NULL,
    filename TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    purpose TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    asset_path TEXT NOT NULL,
    asset_uuid TEXT NOT NULL,
    mime_type TEXT NOT NULL,
    PRIMARY KEY (owner, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS files_by_owner_age ON files (owner, created_at, id);
CREATE INDEX IF NOT EXISTS files_by_expiry ON files (expires_at);
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    owner TEXT NOT NULL,
    id TEXT NOT NULL,
    value TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (kind, owner, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_by_expiry ON records (expires_at);
"""

# "The database cannot be used right now": locked too long, disk full, I/O error, connection closed.
_UNAVAILABLE = (sqlite3.DatabaseError, ValueError)
_BUSY_TIMEOUT_MS = 2000  # how long SQLite itself waits for another process's lock
_BUSY_RETRIES = 2  # then this many more tries, after a jittered pause
_BUSY_BACKOFF = 0.05  # seconds; doubled each retry


def _busy(exc: sqlite3.Error) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and any(
        word in str(exc).lower() for word in ("locked", "busy")
    )


T = TypeVar("T")


class SQLiteStateStore(StateStore):
    def __init__(self, connection: aiosqlite.Connection, path: Path) -> None:
        self._db = connection
        self.path = path
        self._writing = asyncio.Lock()  # one write transaction at a time on the shared connection

    @classmethod
    async def open(cls, path: Path) -> SQLiteStateStore:
        """Open (creating the directory and the file if needed) and prepare the schema."""
        return cls(await connect(path, _SCHEMA), path)

    async def put_file(self, record: FileRecord) -> None:
        await self._write(
            f"INSERT OR REPLACE INTO files ({_COLUMNS}) VALUES ({_PLACEHOLDERS})",  # noqa: S608
            dataclasses.astuple(record),
        )

    async def get_file(self, owner: str, file_id: str) -> FileRecord | None:
        rows = await self._read(
            f"SELECT {_COLUMNS} FROM files WHERE owner = ? AND id = ? AND expires_at > ?",  # noqa: S608
            (owner, file_id, time.time()),
        )
        return FileRecord(*rows[0]) if rows else None

    async def list_files(
        self,
        owner: str,
        *,
        purpose: str | None = None,
        limit: int = 10000,
        after: str | None = None,
        order: Order = "desc",
    ) -> tuple[list[FileRecord], bool]:
        direction, beyond = ("ASC", ">") if order == "asc" else ("DESC", "<")
        where = ["owner = ?", "expires_at > ?"]
        params: list[object] = [owner, time.time()]
        if purpose is not None:
            where.append("purpose = ?")
            params.append(purpose)
        if after is not None:
            where.append(
                f"(created_at, id) {beyond} (SELECT created_at, id FROM files WHERE owner = ? AND id = ?)"  # noqa: S608
            )
            params += [owner, after]
        params.append(limit + 1)
        # one statement: the page and its cursor file come from one snapshot
        rows = await self._read(
            f"SELECT {_COLUMNS} FROM files WHERE {' AND '.join(where)} "  # noqa: S608
            f"ORDER BY created_at {direction}, id {direction} LIMIT ?",
            params,
        )
        return [FileRecord(*row) for row in rows[:limit]], len(rows) > limit

    async def delete_file(self, owner: str, file_id: str) -> bool:
        return await self._write("DELETE FROM files WHERE owner = ? AND id = ?", (owner, file_id)) > 0

    async def delete_expired_files(self, now: float) -> int:
        return await self._write("DELETE FROM files WHERE expires_at <= ?", (now,))

    async def put_record(self, kind: str, owner: str, record_id: str, value: str, expires_at: int) -> None:
        await self._write(
            "INSERT OR REPLACE INTO records (kind, owner, id, value, expires_at) VALUES (?, ?, ?, ?, ?)",
            (kind, owner, record_id, value, expires_at),
        )

    async def get_record(self, kind: str, owner: str, record_id: str) -> str | None:
        rows = await self._read(
            "SELECT value FROM records WHERE kind = ? AND owner = ? AND id = ? AND expires_at > ?",
            (kind, owner, record_id, time.time()),
        )
        return str(rows[0][0]) if rows else None

    async def delete_record(self, kind: str, owner: str, record_id: str) -> bool:
        sql = "DELETE FROM records WHERE kind = ? AND owner = ? AND id = ?"
        return await self._write(sql, (kind, owner, record_id)) > 0

    async def delete_expired_records(self, now: float) -> int:
        return await self._write("DELETE FROM records WHERE expires_at <= ?", (now,))

    async def ping(self) -> None:
        await self._read("SELECT 1", ())

    async def _read(self, sql: str, params: Sequence[Any]) -> list[Any]:
        return await read_all(self._db, sql, params)

    async def _write(self, sql: str, params: Sequence[Any]) -> int:
        """Run one changing statement in its own `BEGIN IMMEDIATE` transaction; rows changed."""

        async def statement() -> int:
            async with self._db.execute(sql, params) as cursor:
                return cursor.rowcount

        return await in_write_transaction(self._db, self._writing, statement)

    async def aclose(self) -> None:
        await self._db.close()


async def connect(path: Path, schema: str) -> aiosqlite.Connection:
    """Open the file (creating it and its directory if needed) in autocommit mode and prepare `schema`."""
    try:
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        connection = await aiosqlite.connect(path, isolation_level=None)  # autocommit: see above
    except (OSError, sqlite3.Error) as exc:
        raise StateUnavailable(f"cannot open the SQLite state file {path}: {exc}") from exc

    async def prepare() -> None:
        # WAL lets readers proceed while a write is in progress; the busy timeout rides out
        # short locks taken by another process sharing (or creating) the file.
        await connection.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        await connection.execute("PRAGMA journal_mode=WAL")
        await connection.execute("PRAGMA synchronous=NORMAL")
        await connection.executescript(schema)

    try:
        await _retrying(prepare)
    except StateUnavailable as exc:
        await connection.close()
        raise StateUnavailable(f"cannot prepare the SQLite state file {path}: {exc.__cause__}") from exc
    return connection


async def read_all(db: aiosqlite.Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    """All rows of one statement, run and read to the end in one call on the connection's thread.

    Not `execute` then `fetchall`: between those two awaits another coroutine's statement can run on the
    same connection, and reads overlapping that way keep one read transaction open, pinning a WAL
    snapshot that misses what other processes commit meanwhile."""

    async def attempt() -> list[Any]:
        return list(await db.execute_fetchall(sql, params))

    return await _retrying(attempt)


async def in_write_transaction(
    db: aiosqlite.Connection, writing: asyncio.Lock, statements: Callable[[], Awaitable[T]]
) -> T:
    """Run `statements` in one `BEGIN IMMEDIATE` … `COMMIT` (rolled back on any failure), one write
    transaction at a time per `writing` lock, retried while the file is busy."""

    async def attempt() -> T:
        try:
            # Inside the `try`: a cancellation landing just after BEGIN ran on the connection's thread
            # must still roll it back (a ROLLBACK with no transaction open is a harmless error).
            await db.execute("BEGIN IMMEDIATE")
            result = await statements()
            await db.execute("COMMIT")
        except BaseException:  # cancelled too: never leave the connection inside a transaction
            with contextlib.suppress(sqlite3.Error, ValueError):
                await db.execute("ROLLBACK")
            raise
        return result

    async with writing:
        return await _retrying(attempt)


async def _retrying(attempt: Callable[[], Awaitable[T]]) -> T:
    """Run `attempt`, again after a jittered pause while the file is busy; StateUnavailable at the end."""
    with unavailable_on(_UNAVAILABLE, "SQLite state"):
        for retry in range(_BUSY_RETRIES):
            try:
                return await attempt()
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
            await _pause(retry)
        return await attempt()
    raise AssertionError("unreachable")  # unavailable_on re-raises


async def _pause(retry: int) -> None:
    await asyncio.sleep(_BUSY_BACKOFF * 2**retry * random.uniform(0.5, 1.5))
