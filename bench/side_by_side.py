"""The relay next to the upstream it calls, in one run: what the relay adds over calling 1min.ai directly.

Starts `bench/fast_upstream.py` twice (instant answers; streams of 20 chunks 50 ms apart) and, for each
`--workers` count, a relay (`1min-relay serve`, its own process, default settings) in front of each, then
sends the same load to the fast upstream and to the relay with one aiohttp client (cheaper than httpx, so
the load generator hides less). Measured, per relay:

- cold start: from starting the process to its first `200` on `/health`, and RSS then;
- the first requests after start: a chat and a stream sent together the moment `/health` answers;
- RSS once idle after start, after a warm-up (300 chats), after every non-streaming run, and after the
  first request that needs a token count (`/v1/messages/count_tokens`: the tokeniser loads for it; its
  latency is printed too);
- non-streaming chat at concurrency 1 and 32: requests per second, p50 and p99;
- N concurrent streams: wall time, first-chunk p50/p99, and the relay's peak RSS meanwhile.

It prints each figure, a Markdown table (direct, then one column per worker count) and the relay/direct
ratios from that one run. Everything shares this machine's cores, so the absolute numbers are indicative;
the ratios from one run are what compare. RSS is the relay's processes' sum (the supervisor and its
workers with `--workers N`). `--startup-only --rounds N` repeats just the start-up figures and prints their
medians; `--relay-python` runs the relay from another checkout's environment (before/after comparisons);
`--env NAME=VALUE` sets a relay setting. Usage:
`.venv/bin/python bench/side_by_side.py [--calls 2000] [--streams 60,1000] [--workers 1,2]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
STREAM_BODY = {**BODY, "stream": True}
COUNT_BODY = {
    "model": "us.anthropic.claude-sonnet-4-6",
    "messages": [{"role": "user", "content": "how many tokens?"}],
}
UPSTREAM_BODY = {"type": "UNIFY_CHAT_WITH_AI", "model": "gpt-4o-mini", "promptObject": {"prompt": "hi"}}
HEADERS = {"Authorization": "Bearer bench-key", "API-KEY": "bench-key"}
WARM_UP_CALLS = 300


@dataclass
class Figures:
    rps: float
    p50_ms: float
    p99_ms: float

    def __str__(self) -> str:
        return f"{self.rps:8.0f} RPS  p50 {self.p50_ms:6.2f} ms  p99 {self.p99_ms:6.2f} ms"


@dataclass
class StreamFigures:
    wall_s: float
    first: Figures
    peak_rss_mb: int | None = None

    def __str__(self) -> str:
        peak = f", peak RSS {self.peak_rss_mb} MB" if self.peak_rss_mb is not None else ""
        return (
            f"{self.wall_s:5.2f} s wall, first chunk p50 {self.first.p50_ms:7.1f} ms "
            f"p99 {self.first.p99_ms:7.1f} ms{peak}"
        )


@dataclass
class RelayRun:
    """Everything measured on the relays of one `--workers` count."""

    workers: int
    cold_start_s: float = 0.0
    first_chat_ms: float = 0.0
    first_chunk_ms: float = 0.0
    first_count_ms: float = 0.0
    rss_mb: dict[str, int] = field(default_factory=dict)  # when → MB
    calls: dict[int, Figures] = field(default_factory=dict)  # concurrency → figures
    streams: dict[int, StreamFigures] = field(default_factory=dict)  # count → figures


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def answers_health(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/health")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def wait_until_up(port: int, child: subprocess.Popen[bytes], log: Path) -> float:
    """Seconds until `/health` answers 200 (polled every 10 ms)."""
    started = time.perf_counter()
    while not answers_health(port):
        if child.poll() is not None or time.perf_counter() - started > 60:
            raise SystemExit(f"not up on port {port}:\n{log.read_text()[-3000:]}")
        time.sleep(0.01)
    return time.perf_counter() - started


def rss_mb(pid: int) -> int:
    """Resident memory of `pid` and its descendants, MB (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        with contextlib.suppress(OSError, IndexError, ValueError):
            status = (Path("/proc") / str(current) / "status").read_text()
            total += int(status.split("VmRSS:")[1].split()[0])
    return total // 1024


@contextlib.contextmanager
def started(command: list[str], port: int, env: dict[str, str], log: Path) -> Iterator[tuple[int, float]]:
    """Runs `command` (its output to `log`) until the block ends: (its pid, seconds until `/health`
    answered)."""
    with log.open("ab") as output:
        child = subprocess.Popen(command, env={**os.environ, **env}, stdout=output, stderr=output)
    try:
        yield child.pid, wait_until_up(port, child, log)
    finally:
        child.terminate()
        child.wait(timeout=20)


@contextlib.contextmanager
def fast_upstream(chunk_delay_ms: int, log: Path) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, str(HERE / "fast_upstream.py"), "--port", str(port)]
    with started([*command, "--chunk-delay-ms", str(chunk_delay_ms)], port, {}, log):
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def relay(
    upstream: str, workers: int, data: Path, args: argparse.Namespace
) -> Iterator[tuple[str, int, float]]:
    """(URL, pid, cold start seconds) of `1min-relay serve` in front of `upstream`: default settings, but
    for `--env`."""
    port = free_port()
    env = {"ONEMIN_API_URL": upstream, "ONEMIN_ASSET_URL": upstream, "DATA_DIR": str(data / str(port))}
    env.update(setting.split("=", 1) for setting in args.env)
    command = [args.relay_python, "-m", "onemin_relay.cli", "serve", "--port", str(port)]
    command += ["--workers", str(workers)]
    with started(command, port, env, data / f"relay-{port}.log") as (pid, cold_start):
        yield f"http://127.0.0.1:{port}", pid, cold_start


def session(limit: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit), timeout=aiohttp.ClientTimeout(total=300)
    )


async def requests(url: str, body: object, calls: int, concurrency: int) -> Figures:
    latencies: list[float] = []
    remaining = calls

    async def one_client(http: aiohttp.ClientSession) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            async with http.post(url, json=body, headers=HEADERS) as response:
                await response.read()
                assert response.status == 200, response.status
            latencies.append(time.perf_counter() - started)

    async with session(concurrency) as http:
        remaining = min(concurrency, 50)
        await asyncio.gather(*(one_client(http) for _ in range(concurrency)))  # warm-up: connections
        latencies.clear()
        remaining = calls
        started = time.perf_counter()
        await asyncio.gather(*(one_client(http) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return summary(latencies, calls / wall)


async def one_stream(http: aiohttp.ClientSession, url: str, body: object) -> float:
    """Seconds to the stream's first data; reads it to the end."""
    started = time.perf_counter()
    first: float | None = None
    async with http.post(url, json=body, headers=HEADERS) as response:
        assert response.status == 200, response.status
        async for _ in response.content.iter_any():
            if first is None:
                first = time.perf_counter() - started
    assert first is not None, "an empty stream"
    return first


async def streams(url: str, body: object, count: int, pid: int | None = None) -> StreamFigures:
    """Wall time of `count` concurrent streams, their time to the first data, and (given the relay's pid)
    its peak RSS meanwhile."""
    peak = 0

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, rss_mb(pid)) if pid is not None else 0
            await asyncio.sleep(0.1)

    async with session(0) as http:
        await one_stream(http, url, body)  # warm-up
        sampler = asyncio.create_task(sample())
        started = time.perf_counter()
        firsts = await asyncio.gather(*(one_stream(http, url, body) for _ in range(count)))
        wall = time.perf_counter() - started
        sampler.cancel()
    return StreamFigures(wall, summary(list(firsts), count / wall), peak if pid is not None else None)


async def first_requests(url: str) -> tuple[float, float]:
    """(ms) a chat's answer and a stream's first chunk, sent together the moment the relay is up."""
    async with session(0) as http:

        async def chat() -> float:
            started = time.perf_counter()
            async with http.post(f"{url}/v1/chat/completions", json=BODY, headers=HEADERS) as response:
                await response.read()
                assert response.status == 200, response.status
            return time.perf_counter() - started

        answer, first_chunk = await asyncio.gather(
            chat(), one_stream(http, f"{url}/v1/chat/completions", STREAM_BODY)
        )
    return answer * 1000, first_chunk * 1000


async def first_count(url: str) -> float:
    """(ms) the first request that needs a token count."""
    async with session(0) as http:
        started = time.perf_counter()
        async with http.post(f"{url}/v1/messages/count_tokens", json=COUNT_BODY, headers=HEADERS) as response:
            await response.read()
            assert response.status == 200, response.status
        return (time.perf_counter() - started) * 1000


def summary(seconds: list[float], rps: float) -> Figures:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return Figures(rps, statistics.median(ordered) * 1000, p99 * 1000)


async def measure_start(run: RelayRun, url: str, pid: int, cold_start: float) -> None:
    """The start-up figures of a relay that has just answered `/health`."""
    run.cold_start_s = cold_start
    run.rss_mb["at /health"] = rss_mb(pid)
    run.first_chat_ms, run.first_chunk_ms = await first_requests(url)
    await asyncio.sleep(2)
    run.rss_mb["idle after start"] = rss_mb(pid)
    rss = run.rss_mb
    print(
        f"relay ×{run.workers}: cold start to /health {cold_start:.2f} s, RSS {rss['at /health']} MB "
        f"({rss['idle after start']} MB idle 2 s later); first requests: chat {run.first_chat_ms:.0f} ms, "
        f"stream's first chunk {run.first_chunk_ms:.0f} ms"
    )


async def measure_count(run: RelayRun, url: str, pid: int) -> None:
    run.first_count_ms = await first_count(url)
    run.rss_mb["after the first count"] = rss_mb(pid)
    print(
        f"relay ×{run.workers}: first count {run.first_count_ms:.0f} ms, "
        f"RSS then {run.rss_mb['after the first count']} MB"
    )


async def measure_relay(
    workers: int, instant: str, streaming: str, args: argparse.Namespace, data: Path
) -> RelayRun:
    run = RelayRun(workers)
    label = f"relay ×{workers}"
    with relay(streaming, workers, data, args) as (url, pid, cold_start):
        await measure_start(run, url, pid, cold_start)
        for count in args.stream_counts:
            run.streams[count] = await streams(f"{url}/v1/chat/completions", STREAM_BODY, count, pid)
            print(f"{label}: {count:>5} streams {run.streams[count]}")
    with relay(instant, workers, data, args) as (url, pid, _):
        await requests(f"{url}/v1/chat/completions", BODY, WARM_UP_CALLS, 8)
        run.rss_mb["after warm-up"] = rss_mb(pid)
        done = WARM_UP_CALLS
        for concurrency in (1, 32):
            run.calls[concurrency] = await requests(
                f"{url}/v1/chat/completions", BODY, args.calls, concurrency
            )
            done += args.calls + min(concurrency, 50)
            print(f"{label}: non-stream c={concurrency:<3} {run.calls[concurrency]}")
        run.rss_mb[f"after {done:,} requests"] = rss_mb(pid)
        await measure_count(run, url, pid)
        print(f"{label}: RSS " + ", ".join(f"{when} {mb} MB" for when, mb in run.rss_mb.items()))
    return run


async def startup_only(args: argparse.Namespace, data: Path) -> None:
    """`--startup-only`: the start-up figures, `--rounds` times per worker count, and their medians."""
    with fast_upstream(0, data / "upstream.log") as instant:
        for workers in (int(n) for n in args.workers.split(",")):
            runs = []
            for _ in range(args.rounds):
                run = RelayRun(workers)
                with relay(instant, workers, data, args) as (url, pid, cold_start):
                    await measure_start(run, url, pid, cold_start)
                    await measure_count(run, url, pid)
                runs.append(run)
            figures: dict[str, list[float]] = {
                "cold start (s)": [r.cold_start_s for r in runs],
                "first chat (ms)": [r.first_chat_ms for r in runs],
                "first stream's first chunk (ms)": [r.first_chunk_ms for r in runs],
                "first count (ms)": [r.first_count_ms for r in runs],
                **{f"RSS {when} (MB)": [float(r.rss_mb[when]) for r in runs] for when in runs[0].rss_mb},
            }
            medians = ", ".join(f"{name} {statistics.median(values):.2f}" for name, values in figures.items())
            print(f"relay ×{workers}, median of {args.rounds}: {medians}")


def table(
    direct_calls: dict[int, Figures], direct_streams: dict[int, StreamFigures], runs: list[RelayRun]
) -> str:
    """The issue's table: one row per workload, direct then one column per relay run."""
    header = "| workload | direct | " + " | ".join(f"relay, {r.workers} worker(s)" for r in runs) + " |"
    lines = [header, "|---" * (2 + len(runs)) + "|"]

    def row(name: str, direct: str, cells: list[str]) -> None:
        lines.append(f"| {name} | {direct} | " + " | ".join(cells) + " |")

    def calls(figures: Figures) -> str:
        return f"{figures.rps:,.0f} RPS, p50 {figures.p50_ms:.2f} ms, p99 {figures.p99_ms:.2f} ms"

    def stream(figures: StreamFigures) -> str:
        text = f"{figures.wall_s:.2f} s wall, first chunk p50 {figures.first.p50_ms:,.0f} ms, "
        text += f"p99 {figures.first.p99_ms:,.0f} ms"
        return text + (f", peak RSS {figures.peak_rss_mb} MB" if figures.peak_rss_mb is not None else "")

    for concurrency, direct in direct_calls.items():
        row(f"non-stream c={concurrency}", calls(direct), [calls(r.calls[concurrency]) for r in runs])
    for count, direct_stream in direct_streams.items():
        row(f"{count:,} streams", stream(direct_stream), [stream(r.streams[count]) for r in runs])
    row("cold start to /health", "—", [f"{r.cold_start_s:.2f} s" for r in runs])
    row(
        "first requests after start",
        "—",
        [f"chat {r.first_chat_ms:.0f} ms, first chunk {r.first_chunk_ms:.0f} ms" for r in runs],
    )
    row("first request needing a count", "—", [f"{r.first_count_ms:.0f} ms" for r in runs])
    for when in runs[0].rss_mb:
        row(f"RSS {when}", "—", [f"{r.rss_mb.get(when, 0)} MB" for r in runs])
    return "\n".join(lines)


def ratios(
    direct_calls: dict[int, Figures], direct_streams: dict[int, StreamFigures], run: RelayRun
) -> list[str]:
    lines = []
    for concurrency, direct in direct_calls.items():
        ours = run.calls[concurrency]
        lines.append(
            f"relay ×{run.workers} c={concurrency}: throughput relay/direct {ours.rps / direct.rps:.2f}, "
            f"added p50 {ours.p50_ms - direct.p50_ms:+.2f} ms, p99 {ours.p99_ms - direct.p99_ms:+.2f} ms"
        )
    for count, direct_stream in direct_streams.items():
        ours_stream = run.streams[count]
        wall = ours_stream.wall_s / direct_stream.wall_s
        lines.append(
            f"relay ×{run.workers} {count} streams: wall relay/direct {wall:.2f}, "
            f"added first chunk p50 {ours_stream.first.p50_ms - direct_stream.first.p50_ms:+.1f} ms, "
            f"p99 {ours_stream.first.p99_ms - direct_stream.first.p99_ms:+.1f} ms"
        )
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2000, help="non-streaming requests per figure")
    parser.add_argument("--streams", default="60,1000", help="concurrent stream counts, comma-separated")
    parser.add_argument("--workers", default="1", help="the relay's `serve --workers`, comma-separated: 1,2")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="a relay setting")
    parser.add_argument("--relay-python", default=sys.executable, help="the interpreter running the relay")
    parser.add_argument("--startup-only", action="store_true", help="only the start-up figures")
    parser.add_argument("--rounds", type=int, default=5, help="start-up rounds with --startup-only")
    args = parser.parse_args()
    args.stream_counts = [int(n) for n in args.streams.split(",")]
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Linux {platform.release()}, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.2f}; relay: {args.relay_python} {' '.join(args.env)}"
    )
    with tempfile.TemporaryDirectory() as directory:
        data = Path(directory)
        if args.startup_only:
            await startup_only(args, data)
            return
        with (
            fast_upstream(0, data / "upstream.log") as instant,
            fast_upstream(50, data / "upstream.log") as streaming,
        ):
            direct_calls = {}
            for concurrency in (1, 32):
                direct_calls[concurrency] = await requests(
                    f"{instant}/api/features", UPSTREAM_BODY, args.calls, concurrency
                )
                print(f"direct: non-stream c={concurrency:<3} {direct_calls[concurrency]}")
            direct_streams = {}
            for count in args.stream_counts:
                url = f"{streaming}/api/features?isStreaming=true"
                direct_streams[count] = await streams(url, UPSTREAM_BODY, count)
                print(f"direct: {count:>5} streams {direct_streams[count]}")
            runs = [
                await measure_relay(int(workers), instant, streaming, args, data)
                for workers in args.workers.split(",")
            ]
    print()
    print(table(direct_calls, direct_streams, runs))
    print()
    print("--- relay/direct ---")
    for run in runs:
        print("\n".join(ratios(direct_calls, direct_streams, run)))


if __name__ == "__main__":
    asyncio.run(main())
