"""The state stores (embedded SQLite, Redis, memcached) against real servers: the same behaviour on each."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

import memcachio
import pytest
import redis.asyncio as aioredis

from onemin_relay.config import Settings
from onemin_relay.state.base import FileRecord, StateStore, StateUnavailable
from onemin_relay.state.factory import open_state
from onemin_relay.state.memcached import MemcachedStateStore, _record_key
from onemin_relay.state.redis import RedisStateStore
from onemin_relay.state.retention import run_retention
from onemin_relay.state.sqlite import SQLiteStateStore
from tests.servers import ServerProcess, free_port

BACKENDS = ["sqlite", "redis", "memcached"]
OpenStore = Callable[[], Awaitable[StateStore]]


def settings_for(state_url: str, data_dir: Path, **overrides: Any) -> Settings:
    return Settings(_env_file=None, state_url=state_url, data_dir=data_dir, **overrides)


def new_owner() -> str:
    return uuid.uuid4().hex[:16]


def record(
    owner: str,
    file_id: str | None = None,
    *,
    created_at: int = 1_700_000_000,
    purpose: str = "assistants",
    expires_at: int | None = None,
) -> FileRecord:
    return FileRecord(
        id=file_id or f"file-{uuid.uuid4().hex[:24]}",
        owner=owner,
        filename="notes.txt",
        bytes=1234,
        purpose=purpose,
        created_at=created_at,
        expires_at=expires_at if expires_at is not None else int(time.time()) + 3600,
        asset_path="user-files/notes.txt",
        asset_uuid=str(uuid.uuid4()),
        mime_type="text/plain",
    )


@pytest.fixture(params=BACKENDS)
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OpenStore]:
    """Opens stores on one backing storage (one file, one server), as separate relays would."""
    url = ""
    if request.param != "sqlite":
        server: ServerProcess = request.getfixturevalue(f"{request.param}_server")
        url = server.url
    settings = settings_for(url, tmp_path / "data")
    opened: list[StateStore] = []

    async def open_one() -> StateStore:
        store = await open_state(settings)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        await store.aclose()


async def test_a_stored_file_can_be_read_back_and_deleted_once(open_store: OpenStore) -> None:
    store = await open_store()
    owner = new_owner()
    file = record(owner)
    await store.put_file(file)

    assert await store.get_file(owner, file.id) == file
    assert await store.delete_file(owner, file.id) is True
    assert await store.get_file(owner, file.id) is None
    assert await store.delete_file(owner, file.id) is False
    assert await store.list_files(owner) == ([], False)


async def test_owners_never_see_each_others_files(open_store: OpenStore) -> None:
    store = await open_store()
    alice, bob = new_owner(), new_owner()
    file = record(alice)
    await store.put_file(file)

    assert await store.get_file(bob, file.id) is None
    assert await store.list_files(bob) == ([], False)
    assert await store.delete_file(bob, file.id) is False
    assert await store.get_file(alice, file.id) == file


async def test_listing_orders_pages_and_filters(open_store: OpenStore) -> None:
    store = await open_store()
    owner = new_owner()
    # Two files share a timestamp: the id breaks the tie.
    files = [
        record(owner, "file-a", created_at=100),
        record(owner, "file-b", created_at=200, purpose="vision"),
        record(owner, "file-c", created_at=200),
        record(owner, "file-d", created_at=300),
    ]
    for file in reversed(files):
        await store.put_file(file)

    def ids(page: tuple[list[FileRecord], bool]) -> tuple[list[str], bool]:
        return [file.id for file in page[0]], page[1]

    assert ids(await store.list_files(owner)) == (["file-d", "file-c", "file-b", "file-a"], False)
    assert ids(await store.list_files(owner, order="asc")) == (
        ["file-a", "file-b", "file-c", "file-d"],
        False,
    )
    assert ids(await store.list_files(owner, limit=2)) == (["file-d", "file-c"], True)
    assert ids(await store.list_files(owner, limit=2, after="file-c")) == (["file-b", "file-a"], False)
    assert ids(await store.list_files(owner, order="asc", limit=1, after="file-b")) == (["file-c"], True)
    assert ids(await store.list_files(owner, purpose="vision")) == (["file-b"], False)
    assert ids(await store.list_files(owner, purpose="assistants", limit=2, after="file-d")) == (
        ["file-c", "file-a"],
        False,
    )
    assert ids(await store.list_files(owner, after="file-unknown")) == ([], False)


async def test_expired_files_are_hidden(open_store: OpenStore) -> None:
    store = await open_store()
    owner = new_owner()
    now = time.time()
    expired = record(owner, expires_at=int(now) - 10)
    live = record(owner, expires_at=int(now) + 3600)
    await store.put_file(expired)
    await store.put_file(live)

    assert await store.get_file(owner, expired.id) is None
    assert await store.list_files(owner) == ([live], False)


async def test_records_are_kept_per_kind_and_owner_until_deleted(open_store: OpenStore) -> None:
    store = await open_store()
    alice, bob = new_owner(), new_owner()
    later = int(time.time()) + 3600
    await store.put_record("response", alice, "resp_1", '{"turn": 1}', later)
    await store.put_record("response", alice, "resp_1", '{"turn": 2}', later)  # replaced

    assert await store.get_record("response", alice, "resp_1") == '{"turn": 2}'
    assert await store.get_record("response", bob, "resp_1") is None
    assert await store.get_record("other", alice, "resp_1") is None
    assert await store.delete_record("response", bob, "resp_1") is False
    assert await store.delete_record("response", alice, "resp_1") is True
    assert await store.get_record("response", alice, "resp_1") is None
    assert await store.delete_record("response", alice, "resp_1") is False


async def test_expired_records_are_hidden_then_swept(open_store: OpenStore) -> None:
    store = await open_store()
    owner = new_owner()
    now = time.time()
    await store.put_record("response", owner, "resp_old", "{}", int(now) - 10)
    await store.put_record("response", owner, "resp_new", "{}", int(now) + 3600)

    assert await store.get_record("response", owner, "resp_old") is None
    await store.delete_expired_records(now)
    assert await store.get_record("response", owner, "resp_new") == "{}"


async def test_sqlite_sweep_removes_expired_records(tmp_path: Path) -> None:
    store = await open_state(settings_for("", tmp_path))
    try:
        now = time.time()
        await store.put_record("response", new_owner(), "resp_1", "{}", int(now) + 60)
        assert await store.delete_expired_records(now) == 0
        assert await store.delete_expired_records(now + 61) == 1
    finally:
        await store.aclose()


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_sweeps_remove_expired_files_and_count_each_once(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # A Redis of its own: the sweep is global, other tests' expired files must not count here.
    url = request.getfixturevalue("own_redis").url if backend == "redis" else ""
    settings = settings_for(url, tmp_path)
    one, two = await open_state(settings), await open_state(settings)
    try:
        owner = new_owner()
        now = time.time()
        live = record(owner, expires_at=int(now) + 3600)
        await one.put_file(record(owner, expires_at=int(now) - 5))
        await one.put_file(live)
        # Two relays sweeping at once: the expired file is counted by one of them only.
        assert sum(await asyncio.gather(one.delete_expired_files(now), two.delete_expired_files(now))) == 1
        assert await one.list_files(owner) == ([live], False)

        # A sweep "an hour and a bit later" removes the other file for good.
        assert await two.delete_expired_files(now + 3700) == 1
        assert await one.get_file(owner, live.id) is None
        assert await one.list_files(owner) == ([], False)
    finally:
        await one.aclose()
        await two.aclose()


async def test_memcached_drops_a_record_at_its_retention_time(memcached_server: ServerProcess) -> None:
    store = MemcachedStateStore(memcached_server.url)
    raw = memcachio.Client(("127.0.0.1", memcached_server.port), decode_responses=False)
    try:
        owner = new_owner()
        file = record(owner, expires_at=int(time.time()) + 1)
        await store.put_file(file)
        key = _record_key(owner, file.id)
        assert await raw.get(key) != {}  # the record is there until its expiry…
        await asyncio.sleep(2.1)
        assert await raw.get(key) == {}  # …and memcached itself has dropped it afterwards
    finally:
        raw.connection_pool.close()
        await store.aclose()


async def test_files_survive_a_restart(open_store: OpenStore) -> None:
    before = await open_store()
    owner = new_owner()
    file = record(owner)
    await before.put_file(file)
    await before.aclose()

    after = await open_store()
    assert await after.get_file(owner, file.id) == file
    assert await after.list_files(owner) == ([file], False)


async def test_two_relays_on_one_store_share_files(open_store: OpenStore) -> None:
    one, two = await open_store(), await open_store()
    owner = new_owner()
    file = record(owner)
    await one.put_file(file)

    assert await two.get_file(owner, file.id) == file
    assert await two.list_files(owner) == ([file], False)
    assert await two.delete_file(owner, file.id) is True
    assert await one.get_file(owner, file.id) is None
    assert await one.list_files(owner) == ([], False)


async def test_concurrent_uploads_from_two_relays_are_all_listed(open_store: OpenStore) -> None:
    one, two = await open_store(), await open_store()
    owner = new_owner()
    files = [record(owner, created_at=1000 + n) for n in range(40)]
    await asyncio.gather(*((one if n % 2 else two).put_file(file) for n, file in enumerate(files)))

    listed, has_more = await one.list_files(owner, order="asc")
    assert [file.id for file in listed] == [file.id for file in files]
    assert has_more is False


@pytest.mark.parametrize("kind", ["redis", "memcached"])
async def test_an_outage_gives_state_unavailable_then_recovers(
    kind: str, request: pytest.FixtureRequest
) -> None:
    server: ServerProcess = request.getfixturevalue(f"own_{kind}")
    store = RedisStateStore(server.url) if kind == "redis" else MemcachedStateStore(server.url)
    try:
        owner = new_owner()
        await store.put_file(record(owner))

        server.stop()
        with pytest.raises(StateUnavailable):
            await store.list_files(owner)
        with pytest.raises(StateUnavailable):
            await store.put_file(record(owner))
        with pytest.raises(StateUnavailable):
            await store.ping()

        server.start()  # same port, empty: these servers keep nothing on disk
        file = record(owner)
        await store.put_file(file)
        assert await store.get_file(owner, file.id) == file
    finally:
        await store.aclose()


@pytest.mark.parametrize("scheme", ["redis", "memcached"])
async def test_start_up_with_an_unreachable_server_does_not_fail(
    scheme: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(f"{scheme}://127.0.0.1:{free_port()}", tmp_path)
    with caplog.at_level(logging.WARNING, logger="onemin_relay.state"):
        store = await open_state(settings)
    try:
        assert "503" in caplog.text
        with pytest.raises(StateUnavailable):
            await store.get_file(new_owner(), "file-x")
    finally:
        await store.aclose()


async def test_the_original_memcached_settings_still_work(memcached_server: ServerProcess) -> None:
    settings = Settings(_env_file=None, memcached_host="127.0.0.1", memcached_port=memcached_server.port)
    store = await open_state(settings)
    try:
        assert isinstance(store, MemcachedStateStore)
        file = record(new_owner())
        await store.put_file(file)
        assert await store.get_file(file.owner, file.id) == file
    finally:
        await store.aclose()


async def test_sqlite_creates_its_directory_and_uses_wal(tmp_path: Path) -> None:
    data_dir = tmp_path / "not" / "yet" / "there"
    store = await open_state(settings_for("", data_dir))
    try:
        assert isinstance(store, SQLiteStateStore)
        await store.put_file(record(new_owner()))
        with sqlite3.connect(store.path) as db:
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert store.path.parent == data_dir
    finally:
        await store.aclose()


async def test_sqlite_url_chooses_the_file(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere" / "state.db"
    store = await open_state(settings_for(f"sqlite:///{path}", tmp_path / "unused"))
    try:
        assert isinstance(store, SQLiteStateStore)
        assert store.path == path
        assert path.exists()
        assert not (tmp_path / "unused").exists()
    finally:
        await store.aclose()


async def test_retention_keeps_sweeping_through_an_outage(own_redis: ServerProcess, tmp_path: Path) -> None:
    settings = settings_for(own_redis.url, tmp_path, retention_sweep_interval=0.05)
    store = await open_state(settings)
    raw = aioredis.from_url(own_redis.url, socket_connect_timeout=2, socket_timeout=5)
    own_redis.stop()
    sweeper = asyncio.create_task(run_retention(store, settings))
    try:
        await asyncio.sleep(0.3)  # several sweeps fail while Redis is down
        assert not sweeper.done()
        own_redis.start()
        await store.put_file(record(new_owner(), expires_at=int(time.time()) - 1))
        async with asyncio.timeout(10):  # the sweeper, still running, clears the expired file
            while await raw.zcard("onemin-relay:expiry"):  # noqa: ASYNC110 (polling another process)
                await asyncio.sleep(0.05)
    finally:
        sweeper.cancel()
        await asyncio.gather(sweeper, return_exceptions=True)
        await store.aclose()
        await raw.aclose()


class LosesCancellations(SQLiteStateStore):
    """A store whose sweep swallows a cancellation, as Python 3.11's asyncio.wait_for (used by redis-py
    for its socket timeouts) does when the task is cancelled just as the awaited call finishes."""

    sweeping: ClassVar[asyncio.Event] = asyncio.Event()

    async def delete_expired_files(self, now: float) -> int:
        removed = await super().delete_expired_files(now)
        self.sweeping.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)  # where the cancellation lands
        return removed


async def test_retention_stops_when_cancelled_even_if_the_backend_swallowed_the_cancellation(
    tmp_path: Path,
) -> None:
    store = await LosesCancellations.open(tmp_path / "state.sqlite3")
    sweeper = asyncio.create_task(run_retention(store, settings_for("", tmp_path)))
    try:
        await LosesCancellations.sweeping.wait()
        sweeper.cancel()
        async with asyncio.timeout(10):  # on Python 3.11 the sweep loop used to go on forever
            await asyncio.gather(sweeper, return_exceptions=True)
        assert sweeper.cancelled()
    finally:
        sweeper.cancel()
        await store.aclose()
