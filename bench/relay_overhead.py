"""How much latency the relay adds over calling 1min.ai (the simulator) directly.

The simulator and the relay each run as their own `1min-relay` process (as deployed: no shared GIL with
the load generator); this script sends the same chat to both with one `httpx.AsyncClient`:

- non-streaming `POST /api/chat-with-ai` vs `POST /v1/chat/completions`, at concurrency 1 and 32;
- streaming, time to the first SSE `data:` line (upstream's first `content` event vs the relay's first
  chunk, which the relay sends when that same upstream event arrives).

The figures (p50/p99 and the difference) go to docs/benchmarks.md, between markers, so other sections
of that file are kept. Usage: `.venv/bin/python bench/relay_overhead.py [--calls 300] [--streams 200]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- relay_overhead:start -->", "<!-- relay_overhead:end -->"
KEYS_START, KEYS_END = "<!-- auth_modes:start -->", "<!-- auth_modes:end -->"
ADMIN_TOKEN = "bench-admin-token"  # noqa: S105 (a throw-away relay on loopback)
KEY = "bench-key"
MODEL = "gpt-4o-mini"
PROMPT = "Explain in one paragraph why the sky is blue. — « ciel » 空"
UPSTREAM_BODY = {"type": "UNIFY_CHAT_WITH_AI", "model": MODEL, "promptObject": {"prompt": PROMPT}}
RELAY_BODY = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], ready_url: str) -> Iterator[None]:
    child = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "1min-relay"), *args],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(ready_url, timeout=1).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(args)} did not start")
            time.sleep(0.1)
        yield
    finally:
        child.terminate()
        child.wait(timeout=15)


@dataclass
class Target:
    name: str
    url: str
    headers: dict[str, str]
    body: Mapping[str, object]


async def one_call(client: httpx.AsyncClient, target: Target) -> float:
    started = time.perf_counter()
    response = await client.post(target.url, json=dict(target.body), headers=target.headers)
    response.raise_for_status()
    return time.perf_counter() - started


async def first_chunk(client: httpx.AsyncClient, target: Target) -> float:
    started = time.perf_counter()
    waited = 0.0
    async with client.stream("POST", target.url, json=dict(target.body), headers=target.headers) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line.startswith("data:") and not waited:
                waited = time.perf_counter() - started
        # read to the end: the connection is reused, as a real client would
    return waited


async def run(calls: int, concurrency: int, call: Callable[[], Awaitable[float]]) -> list[float]:
    results: list[float] = []
    remaining = calls

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            results.append(await call())

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] * 1000


async def measure(
    direct: Target, relay: Target, calls: int, streams: int
) -> list[tuple[str, list[float], list[float]]]:
    rows = []
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        # Warm up connections, caches and the relay's model catalogue.
        await run(50, 8, lambda: one_call(client, direct))
        await run(50, 8, lambda: one_call(client, relay))
        for concurrency in (1, 32):
            count = calls if concurrency == 1 else calls * 4
            ups = await run(count, concurrency, lambda: one_call(client, direct))
            ours = await run(count, concurrency, lambda: one_call(client, relay))
            rows.append((f"non-streaming, concurrency {concurrency} ({count} calls)", ups, ours))
        stream_direct = Target(direct.name, direct.url + "?isStreaming=true", direct.headers, direct.body)
        stream_relay = Target(relay.name, relay.url, relay.headers, {**relay.body, "stream": True})
        ups = await run(streams, 1, lambda: first_chunk(client, stream_direct))
        ours = await run(streams, 1, lambda: first_chunk(client, stream_relay))
        rows.append((f"streaming, time to first chunk ({streams} streams)", ups, ours))
    return rows


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} CPUs, {system}, Python {platform.python_version()}"


def report(rows: list[tuple[str, list[float], list[float]]], command: str) -> str:
    lines = [
        START,
        "## Relay overhead over calling 1min.ai directly",
        "",
        f"Command: `{command}` — run on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"Machine: {machine()}.",
        "",
        "The simulator and the relay run as separate `1min-relay` processes on loopback and the simulator",
        "answers at once, so the added time is the relay's own cost: parsing, validation, catalogue look-up,",
        "translation, the extra hop to upstream, logging. Latencies in milliseconds; the load generator",
        "shares the machine's CPUs with both servers, so the concurrency-32 figures include that contention.",
        "",
        "| workload | direct p50 | direct p99 | via relay p50 | via relay p99 | added p50 | added p99 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, ups, ours in rows:
        d50, d99, r50, r99 = (percentile(v, q) for v in (ups, ours) for q in (50, 99))
        figures = [d50, d99, r50, r99]
        cells = " | ".join(f"{value:.2f}" for value in figures)
        lines.append(f"| {name} | {cells} | {r50 - d50:+.2f} | {r99 - d99:+.2f} |")
    lines += ["", END]
    return "\n".join(lines)


async def compare_auth_modes(
    passthrough: Target, keys: Target, calls: int
) -> tuple[list[float], list[float]]:
    """The same non-streaming chat through a passthrough relay and a keys-mode relay (a relay key with a
    model allow-list, a rate limit and budgets: every check runs), one call each in turn, so both see
    the same machine load."""
    plain: list[float] = []
    keyed: list[float] = []
    async with httpx.AsyncClient(timeout=60) as client:
        await run(50, 4, lambda: one_call(client, passthrough))
        await run(50, 4, lambda: one_call(client, keys))
        for _ in range(calls):
            plain.append(await one_call(client, passthrough))
            keyed.append(await one_call(client, keys))
    return plain, keyed


def auth_report(plain: list[float], keyed: list[float], command: str) -> str:
    p50, k50 = percentile(plain, 50), percentile(keyed, 50)
    p99, k99 = percentile(plain, 99), percentile(keyed, 99)
    return "\n".join(
        [
            KEYS_START,
            "## Relay keys: what `AUTH_MODE=keys` adds",
            "",
            f"Command: `{command}` — run on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
            "",
            "Two relays in front of one simulator, one in passthrough mode, one in keys mode called with a",
            "relay key that has a model allow-list, a rate limit and daily and monthly budgets (so the key",
            "look-up, the budget read and the limit all run); non-streaming chat, concurrency 1, the two",
            f"relays called in turn ({len(plain)} calls each). Milliseconds.",
            "",
            "| mode | p50 | p99 |",
            "|---|---:|---:|",
            f"| passthrough | {p50:.2f} | {p99:.2f} |",
            f"| keys | {k50:.2f} | {k99:.2f} |",
            f"| added by keys | {k50 - p50:+.2f} | {k99 - p99:+.2f} |",
            "",
            KEYS_END,
        ]
    )


def write_report(section: str, start: str = START, end: str = END) -> None:
    existing = REPORT.read_text(encoding="utf-8") if REPORT.exists() else "# Benchmarks\n"
    if start in existing and end in existing:
        before, _, rest = existing.partition(start)
        _, _, after = rest.partition(end)
        text = before + section + after
    else:
        text = existing.rstrip("\n") + "\n\n" + section + "\n"
    REPORT.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--calls", type=int, default=300, help="non-streaming calls at concurrency 1 (x4 at 32)"
    )
    parser.add_argument("--streams", type=int, default=200, help="streams for the time to first chunk")
    parser.add_argument("--auth-only", action="store_true", help="only passthrough vs keys mode")
    args = parser.parse_args()
    sim_port, relay_port = free_port(), free_port()
    sim_url, relay_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{relay_port}"
    with tempfile.TemporaryDirectory() as data_dir:
        relay_env = {
            "ONEMIN_API_URL": sim_url,
            "ONEMIN_ASSET_URL": f"{sim_url}/cdn",
            "DATA_DIR": data_dir,
            "UPSTREAM_MAX_RETRIES": "0",
        }
        with process(["simulate", "--port", str(sim_port)], {}, f"{sim_url}/models"):
            httpx.post(f"{sim_url}/_sim/config", json={"rate_limit_per_minute": 0}).raise_for_status()
            with process(["serve", "--port", str(relay_port)], relay_env, f"{relay_url}/health"):
                direct = Target("direct", f"{sim_url}/api/chat-with-ai", {"API-KEY": KEY}, UPSTREAM_BODY)
                relay = Target(
                    "relay",
                    f"{relay_url}/v1/chat/completions",
                    {"Authorization": f"Bearer {KEY}"},
                    RELAY_BODY,
                )
                rows = [] if args.auth_only else asyncio.run(measure(direct, relay, args.calls, args.streams))
                keys_env = {
                    **relay_env,
                    "AUTH_MODE": "keys",
                    "ONEMIN_API_KEYS": KEY,
                    "ADMIN_TOKEN": ADMIN_TOKEN,
                    "DATA_DIR": f"{data_dir}/keys",
                }
                keys_port = free_port()
                keys_url = f"http://127.0.0.1:{keys_port}"
                with process(["serve", "--port", str(keys_port)], keys_env, f"{keys_url}/health"):
                    created = httpx.post(
                        f"{keys_url}/admin/keys",
                        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                        json={
                            "name": "bench",
                            "models": ["gpt-4o*"],
                            "rate_limit": "100000/minute",
                            "daily_budget": 10**12,
                            "monthly_budget": 10**12,
                        },
                    )
                    created.raise_for_status()
                    keyed = Target(
                        "keys",
                        f"{keys_url}/v1/chat/completions",
                        {"Authorization": f"Bearer {created.json()['key']}"},
                        RELAY_BODY,
                    )
                    plain, with_keys = asyncio.run(compare_auth_modes(relay, keyed, args.calls))
    command = " ".join([".venv/bin/python", "bench/relay_overhead.py", *sys.argv[1:]])
    if rows:
        section = report(rows, command)
        write_report(section)
        print(section)
    keys_section = auth_report(plain, with_keys, command)
    write_report(keys_section, KEYS_START, KEYS_END)
    print(keys_section)


if __name__ == "__main__":
    main()
