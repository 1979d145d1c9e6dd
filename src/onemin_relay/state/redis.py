"""Redis backend: every relay pointed at the same Redis shares files (and rate-limit counts).

Layout (all keys under `onemin-relay:`):
  file:{owner}:{id}  the record as JSON, expiring at its retention time
  files:{owner}      sorted set of the owner's file ids, scored by created_at
  expiry             sorted set of "{owner}:{id}", scored by expires_at, for the retention sweep
  record:{kind}:{owner}:{id}  a record (e.g. a stored response), expiring by itself at its expires_at
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from onemin_relay.state.base import FileRecord, Order, StateStore, page_of_files, unavailable_on

_PREFIX = "onemin-relay:"
_EXPIRY = f"{_PREFIX}expiry"
_SWEEP_BATCH = 500
_UNAVAILABLE = (RedisError, OSError)


def _record_key(owner: str, file_id: str) -> str:
    return f"{_PREFIX}file:{owner}:{file_id}"


def _index_key(owner: str) -> str:
    return f"{_PREFIX}files:{owner}"


def _generic_key(kind: str, owner: str, record_id: str) -> str:
    return f"{_PREFIX}record:{kind}:{owner}:{record_id}"


class RedisStateStore(StateStore):
    def __init__(self, url: str) -> None:
        # Connections are made lazily from a pool, so an unreachable server only fails the calls
        # made while it is down; the pool reconnects once it is back.
        self._redis: aioredis.Redis = aioredis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=2,
            socket_timeout=5,
            health_check_interval=30,
        )

    async def put_file(self, record: FileRecord) -> None:
        with unavailable_on(_UNAVAILABLE, "Redis"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(_record_key(record.owner, record.id), record.to_json(), exat=record.expires_at)
                pipe.zadd(_index_key(record.owner), {record.id: record.created_at})
                pipe.zadd(_EXPIRY, {f"{record.owner}:{record.id}": record.expires_at})
                await pipe.execute()

    async def get_file(self, owner: str, file_id: str) -> FileRecord | None:
        with unavailable_on(_UNAVAILABLE, "Redis"):
            text = await self._redis.get(_record_key(owner, file_id))
        if text is None:
            return None
        record = FileRecord.from_json(text)
        return record if record.expires_at > time.time() else None

    async def list_files(
        self,
        owner: str,
        *,
        purpose: str | None = None,
        limit: int = 10000,
        after: str | None = None,
        order: Order = "desc",
    ) -> tuple[list[FileRecord], bool]:
        async def load(ids: Sequence[str]) -> list[FileRecord | None]:
            texts = await self._redis.mget([_record_key(owner, file_id) for file_id in ids])
            return [FileRecord.from_json(text) if text else None for text in texts]

        with unavailable_on(_UNAVAILABLE, "Redis"):
            # Equal scores come back in id order (reversed for desc): the (created_at, id) order.
            ids: list[str] = cast(
                list[str], await self._redis.zrange(_index_key(owner), 0, -1, desc=order == "desc")
            )
            return await page_of_files(ids, load, now=time.time(), purpose=purpose, limit=limit, after=after)

    async def delete_file(self, owner: str, file_id: str) -> bool:
        with unavailable_on(_UNAVAILABLE, "Redis"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(_record_key(owner, file_id))
                pipe.zrem(_index_key(owner), file_id)
                pipe.zrem(_EXPIRY, f"{owner}:{file_id}")
                deleted, _, _ = await pipe.execute()
        return bool(deleted)

    async def delete_expired_files(self, now: float) -> int:
        removed = 0
        with unavailable_on(_UNAVAILABLE, "Redis"):
            while entries := await self._due_for_removal(now):
                # Several relays may sweep at once: only the one whose ZREM succeeds counts the file.
                async with self._redis.pipeline(transaction=False) as pipe:
                    for entry in entries:
                        pipe.zrem(_EXPIRY, entry)
                    claimed = [entry for entry, won in zip(entries, await pipe.execute(), strict=True) if won]
                async with self._redis.pipeline(transaction=False) as pipe:
                    for entry in claimed:
                        owner, _, file_id = entry.partition(":")
                        pipe.delete(_record_key(owner, file_id))
                        pipe.zrem(_index_key(owner), file_id)
                    await pipe.execute()
                removed += len(claimed)
        return removed

    async def _due_for_removal(self, now: float) -> list[str]:
        due = await self._redis.zrangebyscore(_EXPIRY, "-inf", now, start=0, num=_SWEEP_BATCH)
        return cast(list[str], due)

    async def put_record(self, kind: str, owner: str, record_id: str, value: str, expires_at: int) -> None:
        with unavailable_on(_UNAVAILABLE, "Redis"):
            await self._redis.set(_generic_key(kind, owner, record_id), value, exat=expires_at)

    async def get_record(self, kind: str, owner: str, record_id: str) -> str | None:
        with unavailable_on(_UNAVAILABLE, "Redis"):
            value = await self._redis.get(_generic_key(kind, owner, record_id))
        return cast(str | None, value)

    async def delete_record(self, kind: str, owner: str, record_id: str) -> bool:
        with unavailable_on(_UNAVAILABLE, "Redis"):
            return bool(await self._redis.delete(_generic_key(kind, owner, record_id)))

    async def delete_expired_records(self, now: float) -> int:
        """Redis expires each record at its expires_at by itself."""
        return 0

    async def ping(self) -> None:
        with unavailable_on(_UNAVAILABLE, "Redis"):
            await self._redis.ping()

    async def aclose(self) -> None:
        await self._redis.aclose()
