"""What the per-request record and its metrics cost the relay, measured in-process (no network, no noise
from other processes): one request through the request layer (`EdgeMiddleware`) around a trivial app, with the
access log only and with the access log plus the Prometheus listener, and `RelayMetrics.observe` alone.

Usage: `.venv/bin/python bench/observability_cost.py [--requests 20000]`. Prints microseconds per request.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Callable

from starlette.types import Message, Receive, Scope, Send

from onemin_relay.edge import EdgeMiddleware
from onemin_relay.metrics import RelayMetrics
from onemin_relay.observability import (
    RequestListener,
    RequestRecord,
    note_credits,
    note_usage,
    timing_upstream,
    write_access_line,
)


async def chat_like(scope: Scope, receive: Receive, send: Send) -> None:
    """What the relay's record sees for a chat: a routed request, one upstream exchange, usage, credits."""
    with timing_upstream():
        pass
    note_usage(12, 34)
    note_credits(150)
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": b"{}"})


async def per_request(listeners: list[RequestListener], requests: int) -> float:
    app = EdgeMiddleware(chat_like, listeners=listeners)
    scope: Scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": []}

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        pass

    started = time.perf_counter()
    for _ in range(requests):
        await app(dict(scope), receive, send)
    return (time.perf_counter() - started) / requests * 1e6


def observe_alone(requests: int) -> float:
    metrics = RelayMetrics()
    record = RequestRecord("req_1", "POST", "/v1/chat/completions", route="/v1/chat/completions", status=200)
    record.model, record.model_known, record.credits = "gpt-4o-mini", True, 150
    record.prompt_tokens, record.completion_tokens, record.duration = 12, 34, 0.01
    started = time.perf_counter()
    for _ in range(requests):
        metrics.observe(record)
    return (time.perf_counter() - started) / requests * 1e6


def best_of(runs: int, measure: Callable[[], float]) -> float:
    return min(measure() for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args()
    logging.getLogger("onemin_relay.access").addHandler(logging.NullHandler())
    logging.getLogger("onemin_relay.access").setLevel(logging.INFO)
    logging.getLogger("onemin_relay.access").propagate = False
    metrics = RelayMetrics()
    n = args.requests
    rows = {
        "middleware + access log": best_of(5, lambda: asyncio.run(per_request([write_access_line], n))),
        "middleware + access log + metrics": best_of(
            5, lambda: asyncio.run(per_request([write_access_line, metrics.observe], n))
        ),
        "RelayMetrics.observe alone": best_of(5, lambda: observe_alone(n)),
    }
    width = max(map(len, rows))
    for name, micros in rows.items():
        print(f"{name:<{width}}  {micros:7.1f} µs/request")
    print(f"(best of 5 runs of {n} requests: the least disturbed one)")


if __name__ == "__main__":
    main()
