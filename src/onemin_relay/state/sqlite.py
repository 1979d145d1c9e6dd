"""The embedded default: one SQLite file (WAL mode) in the data directory; no server to run.

Fits one relay process (or several on one machine sharing the file); use Redis to share state
between machines."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import time
from pathlib import Path

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


class SQLiteStateStore(StateStore):
    def __init__(self, connection: aiosqlite.Connection, path: Path) -> None:
        self._db = connection
        self.path = path

    @classmethod
    async def open(cls, path: Path) -> SQLiteStateStore:
        """Open (creating the directory and the file if needed) and prepare the schema."""
        try:
            await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
            connection = await aiosqlite.connect(path)
        except (OSError, sqlite3.Error) as exc:
            raise StateUnavailable(f"cannot open the SQLite state file {path}: {exc}") from exc
        try:
            # WAL lets readers proceed while a write is in progress; the busy timeout rides out
            # short locks taken by another process sharing the file.
            await connection.execute("PRAGMA journal_mode=WAL")
            await connection.execute("PRAGMA busy_timeout=5000")
            await connection.execute("PRAGMA synchronous=NORMAL")
            await connection.executescript(_SCHEMA)
            await connection.commit()
        except sqlite3.Error as exc:
            await connection.close()
            raise StateUnavailable(f"cannot prepare the SQLite state file {path}: {exc}") from exc
        return cls(connection, path)

    async def put_file(self, record: FileRecord) -> None:
        with unavailable_on(_UNAVAILABLE, "SQLite state"):
            await self._db.execute(
                f"INSERT OR REPLACE INTO files ({_COLUMNS}) VALUES ({_PLACEHOLDERS})",  # noqa: S608
                dataclasses.astuple(record),
            )
            await self._db.commit()

    async def get_file(self, owner: str, file_id: str) -> FileRecord | None:
        with unavailable_on(_UNAVAILABLE, "SQLite state"):
            async with self._db.execute(
                f"SELECT {_COLUMNS} FROM files WHERE owner = ? AND id = ? AND expires_at > ?",  # noqa: S608
                (owner, file_id, time.time()),
            ) as cursor:
                row = await cursor.fetchone()
        return FileRecord(*row) if row else None

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
        with unavailable_on(_UNAVAILABLE, "SQLite state"):
            if after is not None:
                async with self._db.execute(
                    "SELECT created_at FROM files WHERE owner = ? AND id = ?", (owner, after)
                ) as cursor:
                    cursor_row = await cursor.fetchone()
                if cursor_row is None:
                    return [], False
                where.append(f"(created_at, id) {beyond} (?, ?)")
                params += [cursor_row[0], after]
            params.append(limit + 1)
            async with self._db.execute(
                f"SELECT {_COLUMNS} FROM files WHERE {' AND '.join(where)} "  # noqa: S608
                f"ORDER BY created_at {direction}, id {direction} LIMIT ?",
                params,
            ) as cursor:
                rows = list(await cursor.fetchall())
        return [FileRecord(*row) for row in rows[:limit]], len(rows) > limit

    async def delete_file(self, owner: str, file_id: str) -> bool:
        with unavailable_on(_UNAVAILABLE, "SQLite state"):
            cursor = await self._db.execute("DELETE FROM files WHERE owner = ? AND id = ?", (owner, file_id))
            await self._db.commit()
        return cursor.rowcount > 0

    async def delete_expired_files(self, now: float) -> int:
        with unavailable_on(_UNAVAILABLE, "SQLite state"):
            cursor = await self._db.execute("DELETE FROM files WHERE expires_at <= ?", (now,))
            await self._db.commit()
        return cursor.rowcount

    async def put_record(self, kind: str, owner: str, record_id: str, value: str, expires_at: int) -> None:
        with unavailable_on(_UNAVAILABLE, "SQLite state"):
            await self._db.execute(
                "INSERT OR REPLACE INTO records (kind, owner, id, value, expires_at) VALUES (?, ?, ?, ?, ?)",
                (kind, owner, record_id, value, expires_at),
            )
            await self._db.commit()

    async def get_record(self, kind: str, owner: str, record_id: str) -> str | None:
        with unavailable_on(_UNAVAILABLE, "SQLite state"):
            async with self._db.execute(
                "SELECT value FROM records WHERE kind = ? AND owner = ? AND id = ? AND expires_at > ?",
                (kind, owner, record_id, time.time()),
            ) as cursor:
                row = await cursor.fetchone()
        return str(row[0]) if row else None

    async def delete_record(self, kind: str, owner: str, record_id: str) -> bool:
        with unavailable_on(_UNAVAILABLE, "SQLite state"):
            cursor = await self._db.execute(
                "DELETE FROM records WHERE kind = ? AND owner = ? AND id = ?", (kind, owner, record_id)
            )
            await self._db.commit()
        return cursor.rowcount > 0

    async def delete_expired_records(self, now: float) -> int:
        with unavailable_on(_UNAVAILABLE, "SQLite state"):
            cursor = await self._db.execute("DELETE FROM records WHERE expires_at <= ?", (now,))
            await self._db.commit()
        return cursor.rowcount

    async def ping(self) -> None:
        with unavailable_on(_UNAVAILABLE, "SQLite state"):
            await self._db.execute("SELECT 1")

    async def aclose(self) -> None:
        await self._db.close()
