"""Picks the state backend from the settings: STATE_URL's scheme, or the embedded SQLite default."""

from __future__ import annotations

import logging
from pathlib import Path

from onemin_relay.config import Settings
from onemin_relay.state.base import StateStore, StateUnavailable
from onemin_relay.state.sqlite import SQLiteStateStore

log = logging.getLogger("onemin_relay.state")

SQLITE_FILENAME = "relay.sqlite3"


def sqlite_path(settings: Settings) -> Path:
    """`sqlite:///relative/file.db` or `sqlite:////absolute/file.db`; by default DATA_DIR/relay.sqlite3."""
    if settings.state_url.startswith("sqlite://"):
        return Path(settings.state_url.removeprefix("sqlite://").removeprefix("/"))
    return settings.data_dir / SQLITE_FILENAME


async def open_state(settings: Settings) -> StateStore:
    """Open the configured store. A shared server that is down at start-up is not fatal: the relay
    starts, state features answer 503, and the store connects once the server is reachable. An
    embedded file that cannot be opened is a configuration error and raises StateUnavailable.

    A shared backend's client library is imported here, when it is the one configured: redis-py (with the
    OpenTelemetry SDK it imports) and memcachio cost start-up time and memory a relay on SQLite never uses."""
    url = settings.state_url
    store: StateStore
    if url.startswith(("redis://", "rediss://")):
        from onemin_relay.state.redis import RedisStateStore

        store = RedisStateStore(url)
    elif url.startswith("memcached://"):
        from onemin_relay.state.memcached import MemcachedStateStore

        store = MemcachedStateStore(url)
    else:
        return await SQLiteStateStore.open(sqlite_path(settings))
    try:
        await store.ping()
    except StateUnavailable as exc:
        log.warning("%s; file features answer 503 until it is reachable", exc)
    return store
