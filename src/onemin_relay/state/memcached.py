"""memcached backend, as the original 1min-relay offered: shared between relays, but a cache.

memcached may evict any item under memory pressure and loses everything on restart, so files kept
here can vanish before their retention time; records carry that retention time as their TTL, so
memcached itself removes expired files. It cannot list keys, so each owner has an index item
(file id → created_at, expires_at) updated with check-and-set, safe against concurrent relays.
An index item is limited to memcached's item size (1 MiB by default: about 15,000 files per owner).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import time
import weakref
from collections.abc import Callable, Sequence

import memcachio
from memcachio.errors import MemcachedError, NoAvailableNodes

from onemin_relay.config import parse_memcached_url
from onemin_relay.state.base import (
    FileRecord,
    Order,
    StateStore,
    StateUnavailable,
    page_of_files,
    unavailable_on,
)

_PREFIX = "onemin-relay:"
_UNAVAILABLE = (ConnectionError, OSError, TimeoutError, MemcachedError, NoAvailableNodes)
_CAS_ATTEMPTS = 50
# memcached reads an expiry above 30 days as an absolute unix time rather than a number of seconds.
_LONGEST_RELATIVE_EXPIRY = 30 * 24 * 3600

IndexEntries = dict[str, list[int]]  # file id → [created_at, expires_at]


def _record_key(owner: str, file_id: str) -> str:
    # File ids come from callers: hashing keeps keys within memcached's rules (≤ 250 bytes, no spaces).
    return f"{_PREFIX}file:{owner}:{hashlib.sha256(file_id.encode()).hexdigest()[:32]}"


def _generic_key(kind: str, owner: str, record_id: str) -> str:
    return f"{_PREFIX}record:{kind}:{owner}:{hashlib.sha256(record_id.encode()).hexdigest()[:32]}"


def _index_key(owner: str) -> str:
    return f"{_PREFIX}files:{owner}"


def _expiry(expires_at: float, now: float) -> int:
    seconds = max(1, math.ceil(expires_at - now))
    return seconds if seconds <= _LONGEST_RELATIVE_EXPIRY else math.ceil(expires_at)


class MemcachedStateStore(StateStore):
    def __init__(self, url: str) -> None:
        servers = parse_memcached_url(url)
        location: memcachio.MemcachedEndpoint = servers[0] if len(servers) == 1 else servers
        # The pool connects lazily and replaces broken connections, so the store recovers by itself
        # when the server comes back; the timeouts turn a dead server into a prompt 503.
        self._client: memcachio.Client[bytes] = memcachio.Client(
            location, decode_responses=False, max_connections=8, connect_timeout=2, read_timeout=5
        )
        # Locks live only while someone holds or waits for them.
        self._index_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def put_file(self, record: FileRecord) -> None:
        now = time.time()
        with unavailable_on(_UNAVAILABLE, "memcached"):
            await self._client.set(
                _record_key(record.owner, record.id),
                record.to_json().encode(),
                expiry=_expiry(record.expires_at, now),
            )

            def add(entries: IndexEntries) -> None:
                entries[record.id] = [record.created_at, record.expires_at]

            await self._update_index(record.owner, add)

    async def get_file(self, owner: str, file_id: str) -> FileRecord | None:
        key = _record_key(owner, file_id)
        with unavailable_on(_UNAVAILABLE, "memcached"):
            found = await self._client.get(key)
        item = found.get(key.encode())
        if item is None:
            return None
        record = FileRecord.from_json(item.value)
        return record if record.id == file_id and record.expires_at > time.time() else None

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
            keys = [_record_key(owner, file_id) for file_id in ids]
            found = await self._client.get(*keys)
            items = [found.get(key.encode()) for key in keys]
            return [FileRecord.from_json(item.value) if item else None for item in items]

        key = _index_key(owner)
        with unavailable_on(_UNAVAILABLE, "memcached"):
            item = (await self._client.get(key)).get(key.encode())
            entries: IndexEntries = json.loads(item.value) if item else {}
            ordered = sorted(entries, key=lambda file_id: (entries[file_id][0], file_id))
            if order == "desc":
                ordered.reverse()
            return await page_of_files(
                ordered, load, now=time.time(), purpose=purpose, limit=limit, after=after
            )

    async def delete_file(self, owner: str, file_id: str) -> bool:
        with unavailable_on(_UNAVAILABLE, "memcached"):
            await self._update_index(owner, lambda entries: entries.pop(file_id, None))
            return bool(await self._client.delete(_record_key(owner, file_id)))

    async def delete_expired_files(self, now: float) -> int:
        """memcached drops each record at its expiry (its TTL) by itself, and index entries of
        expired files are pruned whenever the index is rewritten; nothing is left to sweep."""
        return 0

    async def put_record(self, kind: str, owner: str, record_id: str, value: str, expires_at: int) -> None:
        # The id is kept beside the value (two ids hashing alike must not read each other's record), and
        # the expiry too (memcached's own is rounded up to a whole second, at least one).
        item = json.dumps([record_id, expires_at, value], separators=(",", ":")).encode()
        with unavailable_on(_UNAVAILABLE, "memcached"):
            await self._client.set(
                _generic_key(kind, owner, record_id), item, expiry=_expiry(expires_at, time.time())
            )

    async def get_record(self, kind: str, owner: str, record_id: str) -> str | None:
        key = _generic_key(kind, owner, record_id)
        with unavailable_on(_UNAVAILABLE, "memcached"):
            item = (await self._client.get(key)).get(key.encode())
        if item is None:
            return None
        stored_id, expires_at, value = json.loads(item.value)
        return str(value) if stored_id == record_id and expires_at > time.time() else None

    async def delete_record(self, kind: str, owner: str, record_id: str) -> bool:
        with unavailable_on(_UNAVAILABLE, "memcached"):
            return bool(await self._client.delete(_generic_key(kind, owner, record_id)))

    async def delete_expired_records(self, now: float) -> int:
        """memcached drops each record at its expiry (its TTL) by itself."""
        return 0

    async def ping(self) -> None:
        with unavailable_on(_UNAVAILABLE, "memcached"):
            await self._client.version()

    async def aclose(self) -> None:
        self._client.connection_pool.close()

    async def _update_index(self, owner: str, change: Callable[[IndexEntries], object]) -> None:
        """Read-modify-write of the owner's index with check-and-set: a concurrent writer (another
        relay) makes our write fail, and we retry on its fresh value. Writers in this process take
        turns per owner, so check-and-set only has to settle races between relays."""
        key = _index_key(owner)
        lock = self._index_locks.setdefault(owner, asyncio.Lock())
        async with lock:
            for attempt in range(_CAS_ATTEMPTS):
                if attempt:
                    await asyncio.sleep(random.uniform(0, 0.002 * attempt))  # de-synchronise the racers
                item = (await self._client.gets(key)).get(key.encode())
                entries: IndexEntries = json.loads(item.value) if item else {}
                change(entries)
                now = time.time()
                entries = {file_id: times for file_id, times in entries.items() if times[1] > now}
                value = json.dumps(entries, separators=(",", ":")).encode()
                expiry = _expiry(max((times[1] for times in entries.values()), default=now), now)
                if item is None:
                    stored = await self._client.add(key, value, expiry=expiry)
                else:
                    assert item.cas is not None  # `gets` always returns the CAS token
                    stored = await self._client.cas(key, value, item.cas, expiry=expiry)
                if stored:
                    return
        raise StateUnavailable(f"memcached: the file index kept changing under us ({_CAS_ATTEMPTS} attempts)")
