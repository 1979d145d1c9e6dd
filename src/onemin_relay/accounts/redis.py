"""Relay keys and the usage ledger in Redis, shared by every relay pointed at it.

Layout (all keys under `onemin-relay:`):
  relay-key:{id}             the key as JSON
  relay-key-hash:{sha256}    → its id, to find a key from the secret a caller sends
  relay-keys                 sorted set of key ids, scored by created_at
  usage                      sorted set of ledger records (JSON), scored by time
  usage-totals:{key}         hash: period (`2026-11-29`, `2026-11`) → credits spent
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from onemin_relay.accounts.keys import RelayKey
from onemin_relay.accounts.store import AccountStore
from onemin_relay.accounts.usage import UsageQuery, UsageRecord, month_of, periods_of
from onemin_relay.state.base import unavailable_on

_PREFIX = "onemin-relay:"
_KEYS = f"{_PREFIX}relay-keys"
_USAGE = f"{_PREFIX}usage"
_UNAVAILABLE = (RedisError, OSError)
_PAGE = 5000


def _key_item(key_id: str) -> str:
    return f"{_PREFIX}relay-key:{key_id}"


def _hash_item(digest: str) -> str:
    return f"{_PREFIX}relay-key-hash:{digest}"


def _totals_item(key: str) -> str:
    return f"{_PREFIX}usage-totals:{key}"


class RedisAccountStore(AccountStore):
    def __init__(self, url: str) -> None:
        self._redis: aioredis.Redis = aioredis.from_url(
            url, decode_responses=True, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
        )

    async def put_key(self, key: RelayKey) -> None:
        with unavailable_on(_UNAVAILABLE, "Redis"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(_key_item(key.id), key.to_json())
                pipe.set(_hash_item(key.secret_hash), key.id)
                pipe.zadd(_KEYS, {key.id: key.created_at})
                await pipe.execute()

    async def key_by_id(self, key_id: str) -> RelayKey | None:
        with unavailable_on(_UNAVAILABLE, "Redis"):
            text = await self._redis.get(_key_item(key_id))
        return RelayKey.from_json(text) if text else None

    async def key_by_secret_hash(self, digest: str) -> RelayKey | None:
        with unavailable_on(_UNAVAILABLE, "Redis"):
            key_id = cast(str | None, await self._redis.get(_hash_item(digest)))
            text = await self._redis.get(_key_item(key_id)) if key_id else None
        return RelayKey.from_json(text) if text else None

    async def list_keys(self) -> list[RelayKey]:
        with unavailable_on(_UNAVAILABLE, "Redis"):
            ids = cast(list[str], await self._redis.zrange(_KEYS, 0, -1))
            texts = await self._redis.mget([_key_item(key_id) for key_id in ids]) if ids else []
        return [RelayKey.from_json(text) for text in texts if text]

    async def add_usage(self, records: Sequence[UsageRecord]) -> None:
        with unavailable_on(_UNAVAILABLE, "Redis"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zadd(_USAGE, {record.to_json(): record.ts for record in records})
                for record in records:
                    for period in periods_of(record.ts):
                        pipe.hincrbyfloat(_totals_item(record.key), period, record.credits)
                await pipe.execute()

    async def spent(self, key: str, periods: Sequence[str]) -> list[float]:
        with unavailable_on(_UNAVAILABLE, "Redis"):
            values = await self._redis.hmget(_totals_item(key), list(periods))
        return [float(value) if value else 0.0 for value in values]

    async def usage(self, query: UsageQuery) -> list[UsageRecord]:
        found: list[UsageRecord] = []
        start = 0
        until = "+inf" if query.until == float("inf") else f"({query.until}"
        with unavailable_on(_UNAVAILABLE, "Redis"):
            while len(found) < query.limit:
                texts = cast(
                    list[str],
                    await self._redis.zrangebyscore(_USAGE, query.since, until, start=start, num=_PAGE),
                )
                for text in texts:
                    record = UsageRecord.from_json(text)
                    if (query.key is None or record.key == query.key) and (
                        query.model is None or record.model == query.model
                    ):
                        found.append(record)
                if len(texts) < _PAGE:
                    break
                start += _PAGE
        return found[: query.limit]

    async def delete_usage_before(self, ts: float) -> int:
        with unavailable_on(_UNAVAILABLE, "Redis"):
            removed = int(await self._redis.zremrangebyscore(_USAGE, "-inf", f"({ts}"))
            cutoff = month_of(ts)
            async for item in self._redis.scan_iter(match=f"{_PREFIX}usage-totals:*", count=500):
                periods = cast(list[str], await self._redis.hkeys(item))
                stale = [period for period in periods if period < cutoff]
                if stale:
                    await self._redis.hdel(item, *stale)
        return removed

    async def aclose(self) -> None:
        await self._redis.aclose()
