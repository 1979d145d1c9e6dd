"""A thousand concurrent streams through `1min-relay serve`, with its default settings, all complete.

The relay runs as its own process in front of the project's fast stand-in for 1min.ai
(`bench/fast_upstream.py`, its own process too), on loopback. This is about correctness (every stream gets
its whole answer, however the relay queues them for upstream connections), not speed: the bounds are
generous and only keep a failure from hanging.
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import httpx
import pytest

from tests.harness import KEY_A, serve_process
from tests.servers import free_port, stop_process

STREAMS = 1000
FAST_UPSTREAM = Path(__file__).resolve().parents[1] / "bench" / "fast_upstream.py"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}


@pytest.fixture
def enough_file_descriptors() -> Iterator[None]:
    """Each stream holds a socket in this process, and two in the relay (which inherits the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4 * STREAMS + 1024
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"RLIMIT_NOFILE's hard limit ({hard}) is below the {wanted} descriptors needed")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def fast_upstream() -> Iterator[str]:
    """Streams of 5 chunks 20 ms apart."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(FAST_UPSTREAM), "--port", str(port), "--chunks", "5", "--chunk-delay-ms", "20"]
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/models")
                break
            except httpx.TransportError:
                assert process.poll() is None, "the fast upstream exited"
                assert time.monotonic() < deadline, "the fast upstream did not start"
                time.sleep(0.05)
        yield url
    finally:
        stop_process(process)


async def one_stream(session: aiohttp.ClientSession, url: str) -> tuple[int, str, list[str]]:
    """(status, the streamed text, the finish reasons then "[DONE]") of one streamed chat."""
    text: list[str] = []
    ends: list[str] = []
    headers = {"Authorization": f"Bearer {KEY_A}"}
    async with session.post(f"{url}/v1/chat/completions", json=BODY, headers=headers) as response:
        async for line in response.content:
            if not line.startswith(b"data: "):
                continue
            data = line.decode().removeprefix("data: ").strip()
            if data == "[DONE]":
                ends.append(data)
                continue
            for choice in json.loads(data)["choices"]:
                text.append(choice["delta"].get("content") or "")
                if choice["finish_reason"]:
                    ends.append(choice["finish_reason"])
        return response.status, "".join(text), ends


async def test_a_thousand_concurrent_streams_all_complete(
    enough_file_descriptors: None, fast_upstream: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "UPSTREAM_MAX_IN_FLIGHT",
        "UPSTREAM_TIMEOUT",
        "STREAM_KEEPALIVE_SECONDS",
        "WEB_CONCURRENCY",
    ):
        monkeypatch.delenv(name, raising=False)  # the relay's defaults
    env = {"ONEMIN_API_URL": fast_upstream, "ONEMIN_ASSET_URL": fast_upstream, "DATA_DIR": str(tmp_path)}
    with serve_process({**env, "LOG_LEVEL": "WARNING"}) as relay:
        timeout = aiohttp.ClientTimeout(total=120)  # a bound: the whole run takes seconds
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
            status, answer, ends = await one_stream(session, relay)
            assert (status, ends) == (200, ["stop", "[DONE]"])
            assert answer
            results = await asyncio.gather(*(one_stream(session, relay) for _ in range(STREAMS)))
    assert [result for result in results if result != (200, answer, ["stop", "[DONE]"])] == []
