"""httpx vs aiohttp for the relay's upstream workload: small JSON POSTs and short SSE streams.

A stand-in upstream (uvicorn + httptools + uvloop, in its own process so it does not share the client's
CPU time slice) answers `POST /api/chat-with-ai` with a realistic ~1.5 kB aiRecord, and
`?isStreaming=true` with `--events` SSE content events, a result and done. Each client runs every
workload at each concurrency; per-call latency (p50/p99) and calls per second are printed as a
Markdown table. Clients measured:

- `httpx`      raw `httpx.AsyncClient` (httpx's own pool), SSE framed by the relay's `EventStreamDecoder`;
- `httpx2`     the same code on httpx2, Pydantic's maintained continuation of httpx (same API);
- `OneMinClient` the relay's own client as it runs: retries, destination and key checks, the circuit
  breaker, the in-flight cap, 1min.ai's SSE rules, on one `aiohttp.ClientSession` (`upstream/http.py`);
- `aiohttp`    raw `aiohttp.ClientSession`, SSE read line by line (a minimal parser: it does less work).

Until 2026-11 `OneMinClient` ran on httpx's API over aiohttp's pool (`httpx-aiohttp`), and before that
on httpcore; docs/http-client.md keeps those figures.

Usage: .venv/bin/python bench/http_clients.py [--calls 3000] [--streams 600] [--events 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import httpx
import httpx2
import uvicorn
import uvloop
from starlette.types import Receive, Scope, Send

from onemin_relay.config import Settings
from onemin_relay.upstream.client import OneMinClient, RetryPolicy
from onemin_relay.upstream.sse import server_sent_events

KEY = "sk-bench-0000000000000001"
PAYLOAD = {
    "type": "UNIFY_CHAT_WITH_AI",
    "model": "gpt-4o-mini",
    "promptObject": {"prompt": "Say hello " * 20},
}
ANSWER = "Quantum computing uses qubits, which can hold superpositions of 0 and 1. " * 4
RECORD = {
    "uuid": "120a0000-0000-4000-8000-000000000001",
    "userId": "75cz1a57-c969-47ac-9dc5-82941cdcfe57",
    "teamId": "595w4b41-dcc7-466f-8697-d4a919810b11",
    "model": "gpt-4o-mini",
    "type": "UNIFY_CHAT_WITH_AI",
    "metadata": {"credit": 56, "inputCredit": 45, "outputCredit": 11, "inputToken": 300, "outputToken": 18},
    "status": "SUCCESS",
    "createdAt": "2026-08-17T06:30:12.101Z",
    "aiRecordDetail": {
        "promptObject": {"prompt": "Say hello", "linkContentList": [], "searchContentList": []},
        "resultObject": [ANSWER],
    },
    "modelDetail": {"name": "gpt-4o-mini", "provider": "OPENAI"},
}
JSON_BODY = json.dumps({"aiRecord": RECORD}).encode()


# --- the stand-in upstream --------------------------------------------------------------------------


def _stream_body(events: int) -> list[bytes]:
    words = ANSWER.split(" ")
    chunks = [
        f"event: content\ndata: {json.dumps({'content': words[i % len(words)] + ' '})}\n\n".encode()
        for i in range(events)
    ]
    chunks.append(f"event: result\ndata: {json.dumps({'aiRecord': RECORD})}\n\n".encode())
    chunks.append(b'event: done\ndata: {"message":"Stream completed"}\n\n')
    return chunks


class StandIn:
    def __init__(self, events: int) -> None:
        self.stream = _stream_body(events)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        if b"isStreaming=true" in scope["query_string"]:
            headers = [(b"content-type", b"text/event-stream")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            for chunk in self.stream:  # one write per event, as a real token stream arrives
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(JSON_BODY)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": JSON_BODY})


def serve(port: int, events: int) -> None:
    uvicorn.run(
        StandIn(events), host="127.0.0.1", port=port, log_level="warning", access_log=False, loop="uvloop"
    )


# --- the clients ------------------------------------------------------------------------------------


class Client(Protocol):
    name: str

    async def json_call(self) -> None: ...

    async def stream_call(self) -> None: ...

    async def aclose(self) -> None: ...


def _check_stream(events: int, expected: int) -> None:
    if events != expected:
        raise RuntimeError(f"expected {expected} content events, got {events}")


class HttpxClient:
    """Raw httpx; `Httpx2Client` runs the very same code on httpx2 (same API, maintained fork)."""

    name = "httpx"
    lib: Any = httpx

    def __init__(self, url: str, events: int) -> None:
        self.events = events
        self.http = self.lib.AsyncClient(
            base_url=url, limits=self.lib.Limits(max_connections=200, max_keepalive_connections=200)
        )

    async def json_call(self) -> None:
        response = await self.http.post("/api/chat-with-ai", json=PAYLOAD, headers={"API-KEY": KEY})
        response.raise_for_status()
        assert response.json()["aiRecord"]["status"] == "SUCCESS"

    async def stream_call(self) -> None:
        headers = {"API-KEY": KEY, "Accept": "text/event-stream"}
        request = self.http.build_request(
            "POST", "/api/chat-with-ai", params={"isStreaming": "true"}, json=PAYLOAD, headers=headers
        )
        response = await self.http.send(request, stream=True)
        try:
            count = 0
            async for sse in server_sent_events(response.aiter_bytes()):
                data = json.loads(sse.data)
                count += sse.event == "content" and bool(data["content"])
        finally:
            await response.aclose()
        _check_stream(count, self.events)

    async def aclose(self) -> None:
        await self.http.aclose()


class Httpx2Client(HttpxClient):
    name = "httpx2"
    lib = httpx2


class RelayClient:
    name = "OneMinClient"

    def __init__(self, url: str, events: int) -> None:
        self.events = events
        settings = Settings(onemin_api_url=url, onemin_asset_url=url)
        self.client = OneMinClient(settings, retry=RetryPolicy(max_retries=0))

    async def json_call(self) -> None:
        await self.client.chat(KEY, PAYLOAD)

    async def stream_call(self) -> None:
        count = 0
        async with self.client.chat_stream(KEY, PAYLOAD) as events:
            async for event in events:
                count += event.kind == "content"
        _check_stream(count, self.events)

    async def aclose(self) -> None:
        await self.client.aclose()


class AiohttpClient:
    name = "aiohttp"

    def __init__(self, url: str, events: int) -> None:
        self.url = url
        self.events = events
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200))

    async def json_call(self) -> None:
        async with self.session.post(
            f"{self.url}/api/chat-with-ai", json=PAYLOAD, headers={"API-KEY": KEY}
        ) as response:
            response.raise_for_status()
            assert (await response.json())["aiRecord"]["status"] == "SUCCESS"

    async def stream_call(self) -> None:
        headers = {"API-KEY": KEY, "Accept": "text/event-stream"}
        count, event = 0, ""
        async with self.session.post(
            f"{self.url}/api/chat-with-ai?isStreaming=true", json=PAYLOAD, headers=headers
        ) as response:
            response.raise_for_status()
            async for raw in response.content:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data = json.loads(line[5:])
                    count += event == "content" and bool(data["content"])
        _check_stream(count, self.events)

    async def aclose(self) -> None:
        await self.session.close()


# --- measuring ----------------------------------------------------------------------------------------


@dataclass
class Result:
    latencies: list[float]
    seconds: float

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000

    @property
    def p99_ms(self) -> float:
        return statistics.quantiles(self.latencies, n=100)[98] * 1000

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds


async def measure(call: Callable[[], Awaitable[None]], total: int, concurrency: int) -> Result:
    latencies: list[float] = []
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(latencies, time.perf_counter() - started)


def _median_result(results: list[Result]) -> Result:
    return sorted(results, key=lambda result: result.per_second)[len(results) // 2]


async def run(url: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    factories: list[Callable[[str, int], Client]] = [
        HttpxClient,
        Httpx2Client,
        RelayClient,
        AiohttpClient,
    ]
    for workload, total in (("json", args.calls), ("sse", args.streams)):
        for concurrency in (1, 32):
            for factory in factories:
                client = factory(url, args.events)
                call = client.json_call if workload == "json" else client.stream_call
                try:
                    await measure(call, max(50, concurrency * 4), concurrency)  # warm the pool
                    results = [await measure(call, total, concurrency) for _ in range(args.repeat)]
                finally:
                    await client.aclose()
                best = _median_result(results)
                rows.append(
                    {
                        "client": client.name,
                        "workload": workload,
                        "concurrency": concurrency,
                        "calls": total,
                        "p50_ms": round(best.p50_ms, 2),
                        "p99_ms": round(best.p99_ms, 2),
                        "per_second": round(best.per_second),
                    }
                )
                print(rows[-1], file=sys.stderr, flush=True)
    return rows


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_listening(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the stand-in upstream did not start")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=3000, help="JSON calls per run")
    parser.add_argument("--streams", type=int, default=600, help="SSE streams per run")
    parser.add_argument("--events", type=int, default=20, help="content events per stream")
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell; the median run is reported")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # internal: run the stand-in
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.events)
        return
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--events", str(args.events)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        _wait_until_listening(port)
        rows = uvloop.run(run(f"http://127.0.0.1:{port}", args))
    finally:
        server.terminate()
        server.wait(timeout=10)
    cpu = platform.processor() or platform.machine()
    print(
        f"# {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs ({cpu}), "
        f"httpx {httpx.__version__}, httpx2 {httpx2.__version__}, aiohttp {aiohttp.__version__}, "
        "uvloop on both sides\n"
    )
    print("| client | workload | concurrency | calls | p50 ms | p99 ms | calls/s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['client']} | {row['workload']} | {row['concurrency']} | {row['calls']} | "
            f"{row['p50_ms']} | {row['p99_ms']} | {row['per_second']} |"
        )


if __name__ == "__main__":
    main()
