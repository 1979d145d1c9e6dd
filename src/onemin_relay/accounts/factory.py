"""Picks the account store beside the configured state backend."""

from __future__ import annotations

import logging

from onemin_relay.accounts.sqlite import SQLiteAccountStore
from onemin_relay.accounts.store import AccountStore
from onemin_relay.config import Settings
from onemin_relay.state.factory import SQLITE_FILENAME, sqlite_path

log = logging.getLogger("onemin_relay.accounts")


async def open_accounts(settings: Settings) -> AccountStore:
    """Redis is shared between relays; otherwise the embedded SQLite file. memcached is a cache that
    may evict anything, which keys and a ledger must not: with it they go to the SQLite file too.
    redis-py is imported only when it is the backend (see `open_state`)."""
    url = settings.state_url
    if url.startswith(("redis://", "rediss://")):
        from onemin_relay.accounts.redis import RedisAccountStore

        return RedisAccountStore(url)
    if url.startswith("memcached://"):
        log.warning(
            "STATE_URL is memcached, a cache: relay keys and the usage ledger are kept in DATA_DIR's "
            "SQLite file on this machine instead (not shared with other relays; use Redis for that)"
        )
        return await SQLiteAccountStore.open(settings.data_dir / SQLITE_FILENAME)
    return await SQLiteAccountStore.open(sqlite_path(settings))
