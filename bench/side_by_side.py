"""The relay next to the upstream it calls, in one run: what the relay adds over calling 1min.ai directly.

Starts `bench/fast_upstream.py` twice (instant answers; streams of 20 chunks 50 ms apart) and a relay
(`1min-relay serve`, its own process) in front of each, then sends the same load to the fast upstream and to
the relay with one aiohttp client (cheaper than httpx, so the load generator hides less):

- non-streaming chat at concurrency 1 and 32: requests per second, p50 and p99;
- N concurrent streams: wall time and first-chunk p50/p99.

It prints each figure and then the relay/direct ratios. Everything shares this machine's cores, so the
absolute numbers are indicative; the ratios from one run are what compare. Usage:
`.venv/bin/python bench/side_by_side.py [--calls 2000] [--streams 60,1000] [--workers 1]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx

HERE = Path(__file__).resolve().parent
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
UPSTREAM_BODY = {"type": "UNIFY_CHAT_WITH_AI", "model": "gpt-4o-mini", "promptObject": {"prompt": "hi"}}
HEADERS = {"Authorization": "Bearer bench-key", "API-KEY": "bench-key"}


@dataclass
class Figures:
    rps: float
    p50_ms: float
    p99_ms: float

    def __str__(self) -> str:
        return f"{self.rps:8.0f} RPS  p50 {self.p50_ms:6.2f} ms  p99 {self.p99_ms:6.2f} ms"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_up(url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(httpx.TransportError):
            httpx.get(url)
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"not up: {url}")
        time.sleep(0.05)


@contextlib.contextmanager
def process(command: list[str], ready_url: str, env: dict[str, str] | None = None) -> Iterator[None]:
    child = subprocess.Popen(command, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL)
    try:
        wait_until_up(ready_url)
        yield
    finally:
        child.terminate()
        child.wait(timeout=20)


@contextlib.contextmanager
def upstream_and_relay(chunk_delay_ms: int, workers: int, data: Path) -> Iterator[tuple[str, str]]:
    """(upstream URL, relay URL)."""
    up_port, relay_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{up_port}"
    fake = [sys.executable, str(HERE / "fast_upstream.py"), "--port", str(up_port)]
    relay_env = {
        "ONEMIN_API_URL": upstream,
        "ONEMIN_ASSET_URL": upstream,
        "DATA_DIR": str(data / str(relay_port)),
        "LOG_LEVEL": "WARNING",
        "UPSTREAM_MAX_CONNECTIONS": "2000",
    }
    serve = [sys.executable, "-m", "onemin_relay.cli", "serve", "--port", str(relay_port)]
    serve += ["--workers", str(workers)]
    relay = f"http://127.0.0.1:{relay_port}"
    with (
        process([*fake, "--chunk-delay-ms", str(chunk_delay_ms)], f"{upstream}/models"),
        process(serve, f"{relay}/health", relay_env),
    ):
        yield upstream, relay


async def requests(url: str, body: object, calls: int, concurrency: int) -> Figures:
    latencies: list[float] = []
    remaining = calls

    async def one_client(session: aiohttp.ClientSession) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            async with session.post(url, json=body, headers=HEADERS) as response:
                await response.read()
                assert response.status == 200, response.status
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(one_client(session) for _ in range(min(concurrency, 50))))  # warm-up
        latencies.clear()
        remaining = calls
        started = time.perf_counter()
        await asyncio.gather(*(one_client(session) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return summary(latencies, calls / wall)


async def streams(url: str, body: object, count: int) -> tuple[float, Figures]:
    """Wall time of `count` concurrent streams, and their time to the first data."""
    first: list[float] = []

    async def one_stream(session: aiohttp.ClientSession) -> None:
        started = time.perf_counter()
        async with session.post(url, json=body, headers=HEADERS) as response:
            assert response.status == 200, response.status
            seen = False
            async for _ in response.content.iter_any():
                if not seen:
                    first.append(time.perf_counter() - started)
                    seen = True

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=120)
    ) as session:
        await one_stream(session)  # warm-up
        first.clear()
        started = time.perf_counter()
        await asyncio.gather(*(one_stream(session) for _ in range(count)))
        wall = time.perf_counter() - started
    return wall, summary(first, count / wall)


def summary(seconds: list[float], rps: float) -> Figures:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return Figures(rps, statistics.median(ordered) * 1000, p99 * 1000)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000, help="non-streaming requests per figure")
    parser.add_argument("--streams", default="60,1000", help="concurrent stream counts, comma-separated")
    parser.add_argument("--workers", type=int, default=1, help="the relay's `serve --workers`")
    args = parser.parse_args()
    ratios: list[str] = []
    with tempfile.TemporaryDirectory() as data:
        with upstream_and_relay(0, args.workers, Path(data)) as (upstream, relay):
            for concurrency in (1, 32):
                direct = await requests(f"{upstream}/api/features", UPSTREAM_BODY, args.calls, concurrency)
                ours = await requests(f"{relay}/v1/chat/completions", BODY, args.calls, concurrency)
                print(f"non-stream c={concurrency:<4} direct {direct}")
                print(f"non-stream c={concurrency:<4} relay  {ours}")
                ratios.append(
                    f"c={concurrency}: throughput relay/direct {ours.rps / direct.rps:.2f}, "
                    f"added p50 {ours.p50_ms - direct.p50_ms:+.2f} ms, "
                    f"p99 {ours.p99_ms - direct.p99_ms:+.2f} ms"
                )
        with upstream_and_relay(50, args.workers, Path(data)) as (upstream, relay):
            stream_body = {**BODY, "stream": True}
            stream_url = f"{upstream}/api/features?isStreaming=true"
            for count in (int(n) for n in args.streams.split(",")):
                direct_wall, direct = await streams(stream_url, UPSTREAM_BODY, count)
                relay_wall, ours = await streams(f"{relay}/v1/chat/completions", stream_body, count)
                for name, wall, first in (("direct", direct_wall, direct), ("relay ", relay_wall, ours)):
                    print(
                        f"{count:>5} streams  {name} {wall:5.2f} s wall, "
                        f"first chunk p50 {first.p50_ms:7.1f} ms p99 {first.p99_ms:7.1f} ms"
                    )
                ratios.append(f"{count} streams: wall relay/direct {relay_wall / direct_wall:.2f}")
    print("--- relay/direct ---")
    print("\n".join(ratios))


if __name__ == "__main__":
    asyncio.run(main())
