"""Where relay keys, the usage ledger and the running spend totals live: the interface.

Kept apart from `state.StateStore` (files): one more connection to the same SQLite file or Redis server,
with its own tables and key prefix.
"""

from __future__ import annotations

import dataclasses
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence

from onemin_relay.accounts.keys import RelayKey
from onemin_relay.accounts.usage import UsageQuery, UsageRecord


class AccountStore(ABC):
    @abstractmethod
    async def put_key(self, key: RelayKey) -> None:
        """Create or replace a key (by id)."""

    @abstractmethod
    async def key_by_id(self, key_id: str) -> RelayKey | None: ...

    @abstractmethod
    async def key_by_secret_hash(self, digest: str) -> RelayKey | None: ...

    @abstractmethod
    async def list_keys(self) -> list[RelayKey]:
        """Every key, oldest first."""

    @abstractmethod
    async def add_usage(self, records: Sequence[UsageRecord]) -> None:
        """Append records and add their credits to the running totals, as one unit."""

    @abstractmethod
    async def spent(self, key: str, periods: Sequence[str]) -> list[float]:
        """Credits `key` has spent in each period (`2026-11-29` or `2026-11`), from the running totals."""

    @abstractmethod
    async def usage(self, query: UsageQuery) -> list[UsageRecord]:
        """Ledger records matching the query, oldest first."""

    @abstractmethod
    async def delete_usage_before(self, ts: float) -> int:
        """Retention: drop records older than `ts`; return how many went."""

    @abstractmethod
    async def aclose(self) -> None: ...


async def revoke_key(store: AccountStore, key_id: str) -> RelayKey | None:
    """Revoke a key (kept, for the ledger's sake, but refused from now on); None if there is none."""
    key = await store.key_by_id(key_id)
    if key is None:
        return None
    if key.revoked_at is None:
        key = dataclasses.replace(key, revoked_at=int(time.time()))
        await store.put_key(key)
    return key
