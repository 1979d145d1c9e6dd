"""Several relay processes on one SQLite DATA_DIR, as `state/sqlite.py` promises: under concurrent uploads,
lists and deletes through different processes no write is lost, none is refused, and each process sees
the others' writes at once."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

COMMAND = [sys.executable, "-m", "onemin_relay.cli"]
KEY = "sk-test-shared-sqlite-0001"
AUTH = {"Authorization": f"Bearer {KEY}"}
RELAYS = 2
WRITERS_PER_RELAY = 5
UPLOADS_PER_WRITER = 12
READERS_PER_RELAY = 3


def start(args: list[str], env: dict[str, str], stack: ExitStack) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [*COMMAND, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **env},
    )
    stack.callback(stop, child)
    return child


def stop(child: subprocess.Popen[str]) -> None:
    child.terminate()
    child.wait(timeout=20)
    if child.stdout is not None:
        child.stdout.close()


def ready(child: subprocess.Popen[str], probe: str) -> str:
    """The base URL the process announced, once `probe` answers there."""
    assert child.stdout is not None
    match = re.search(r"(http://127\.0\.0\.1:\d+)", child.stdout.readline())
    assert match, "the process announced no address"
    url = match.group(1)
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{url}{probe}")
            return url
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the process did not start"
            time.sleep(0.05)


@pytest.fixture
def relays(tmp_path: Path) -> Iterator[list[str]]:
    with ExitStack() as stack:
        simulator = ready(start(["simulate", "--port", "0"], {"LOG_LEVEL": "WARNING"}, stack), "/_sim/config")
        env = {
            "DATA_DIR": str(tmp_path),
            "ONEMIN_API_URL": simulator,
            "ONEMIN_ASSET_URL": f"{simulator}/cdn",
            "UPSTREAM_MAX_RETRIES": "0",
            "LOG_LEVEL": "WARNING",
        }
        children = [start(["serve", "--port", "0"], env, stack) for _ in range(RELAYS)]  # start together
        yield [ready(child, "/health") for child in children]


async def listed(http: httpx.AsyncClient, relay: str) -> set[str]:
    response = await http.get(f"{relay}/v1/files", headers=AUTH)
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["data"]}


async def writer(http: httpx.AsyncClient, relays: list[str], index: int, kept: set[str]) -> None:
    """Upload through one relay, then read it back at once through the next; delete every third."""
    mine, other = relays[index % len(relays)], relays[(index + 1) % len(relays)]
    for number in range(UPLOADS_PER_WRITER):
        files = {"file": (f"w{index}-{number}.txt", b"hello", "text/plain")}
        response = await http.post(
            f"{mine}/v1/files", headers=AUTH, files=files, data={"purpose": "user_data"}
        )
        assert response.status_code == 200, response.text
        file_id = response.json()["id"]
        seen = await http.get(f"{other}/v1/files/{file_id}", headers=AUTH)
        assert seen.status_code == 200, seen.text  # another process sees the write at once
        assert file_id in await listed(http, other)
        if number % 3 == 0:
            deleted = await http.delete(f"{other}/v1/files/{file_id}", headers=AUTH)
            assert deleted.status_code == 200, deleted.text
            assert (await http.get(f"{mine}/v1/files/{file_id}", headers=AUTH)).status_code == 404
        else:
            kept.add(file_id)


async def test_relays_sharing_one_file_lose_no_write_and_see_each_others_at_once(relays: list[str]) -> None:
    kept: set[str] = set()
    limits = httpx.Limits(max_connections=RELAYS * WRITERS_PER_RELAY * 2)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        await asyncio.gather(
            *(writer(http, relays, index, kept) for index in range(RELAYS * WRITERS_PER_RELAY))
        )
        views = [await listed(http, relay) for relay in relays]
    assert len(kept) == RELAYS * WRITERS_PER_RELAY * (UPLOADS_PER_WRITER - UPLOADS_PER_WRITER // 3)
    assert all(view == kept for view in views)
