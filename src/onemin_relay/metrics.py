"""Prometheus metrics, filled from each request's record and served at `GET /metrics`.

Labels are bounded on purpose: routes are path templates, models are labelled only when the catalogue
knows them (anything else a client sends is `other`), upstream error codes are checked for shape, and no
label ever names a caller. With `PROMETHEUS_MULTIPROC_DIR` set (several worker processes), every process
writes its samples to files there and `/metrics` answers for all of them (prometheus-client's multiprocess
mode; the directory must be emptied before the relay starts).
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Iterable, Mapping
from typing import Generic, TypeVar

import anyio
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from onemin_relay.api.common import relay
from onemin_relay.errors import OpenAIError
from onemin_relay.observability import RequestRecord
from onemin_relay.state.base import answers_ping

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_PREFIX = "onemin_relay"
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
M = TypeVar("M", Counter, Histogram)
_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,48}$")
_REASON = re.compile(r"^[a-z0-9_]{1,32}$")
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)
_OVERHEAD_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def model_label(record: RequestRecord) -> str:
    if record.model is None:
        return "none"
    return record.model if record.model_known else "other"


class _Children(Generic[M]):
    """A labelled metric whose children are looked up once per label set: prometheus-client's `labels()`
    validates and takes a lock on every call, which was most of `observe`'s cost."""

    def __init__(self, metric: M) -> None:
        self._metric: M = metric
        self._children: dict[tuple[str, ...], M] = {}

    def __call__(self, *labels: str) -> M:
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self._metric.labels(*labels)
        return child


class RelayMetrics:
    """One app's metrics. `observe` is a request-end listener, `response_started` a response-start one."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # The process's own figures (memory, CPU, open files, GC, Python version); one process only:
        # multiprocess mode cannot add them up.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)

        def counter(name: str, documentation: str, *labels: str) -> _Children[Counter]:
            return _Children(Counter(f"{_PREFIX}_{name}", documentation, labels, registry=r))

        def histogram(name: str, documentation: str, buckets: tuple[float, ...]) -> _Children[Histogram]:
            metric = Histogram(f"{_PREFIX}_{name}", documentation, ["route"], buckets=buckets, registry=r)
            return _Children(metric)

        self.requests = counter(
            "requests",
            "Requests answered, by route template, method, model asked and status.",
            "route",
            "method",
            "model",
            "status",
        )
        self.duration = histogram(
            "request_duration_seconds",
            "From a request's arrival to its last byte.",
            _LATENCY_BUCKETS,
        )
        self.upstream_wait = histogram(
            "upstream_wait_seconds",
            "Wall time a request had at least one 1min.ai exchange open (requests that made one).",
            _LATENCY_BUCKETS,
        )
        self.overhead = histogram(
            "relay_overhead_seconds",
            "A request's duration minus its time waiting on 1min.ai: the relay's own share.",
            _OVERHEAD_BUCKETS,
        )
        self.first_chunk = histogram(
            "stream_first_chunk_seconds",
            "Streams: from the request's arrival to the first chunk of the answer (keep-alives excluded).",
            _LATENCY_BUCKETS,
        )
        self.streams = Gauge(
            f"{_PREFIX}_streams_in_flight",
            "Streamed answers being sent right now.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.upstream_errors = counter(
            "upstream_errors",
            "Failed 1min.ai attempts (retried ones too), by HTTP status (0: no answer) and code.",
            "status",
            "code",
        )
        self.credits = counter(
            "credits",
            "1min.ai credits spent, as upstream records report them (estimated ones included).",
            "model",
        )
        self.tokens = counter(
            "tokens",
            "Tokens reported to clients, by model and direction (prompt, completion).",
            "model",
            "direction",
        )
        self.rejections = counter(
            "rejections",
            "Requests refused before any upstream call, by reason (rate_limit, budget, …).",
            "reason",
        )

    def response_started(self, record: RequestRecord) -> None:
        if record.stream:
            self.streams.inc()

    def observe(self, record: RequestRecord) -> None:
        route = record.route or "unmatched"
        model = model_label(record)
        method = record.method if record.method in _METHODS else "other"
        self.requests(route, method, model, str(record.status)).inc()
        duration = record.duration or 0.0
        upstream = record.upstream_wall()
        self.duration(route).observe(duration)
        self.overhead(route).observe(max(0.0, duration - upstream))
        if record.upstream_calls:
            self.upstream_wait(route).observe(upstream)
        if record.stream:
            self.streams.dec()
            if record.first_byte is not None:
                self.first_chunk(route).observe(record.first_byte)
        for status, code in record.upstream_errors:
            self.upstream_errors(str(status), code if _CODE.match(code) else "other").inc()
        if record.credits:
            self.credits(model).inc(record.credits)
        if record.prompt_tokens:
            self.tokens(model, "prompt").inc(record.prompt_tokens)
        if record.completion_tokens:
            self.tokens(model, "completion").inc(record.completion_tokens)
        if record.rejected_by is not None:
            reason = record.rejected_by if _REASON.match(record.rejected_by) else "other"
            self.rejections(reason).inc()

    def exposition(self, scraped: Collector) -> bytes:
        """The text exposition: this process's registry (or every worker's files in multiprocess mode),
        then what `scraped` measured just now."""
        registry = self.registry
        if multiprocess_dir() is not None:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        now = CollectorRegistry(auto_describe=True)
        now.register(scraped)
        return generate_latest(registry) + generate_latest(now)

    def close(self) -> None:
        """At shutdown: this process's live gauges (streams in flight) no longer count."""
        if (directory := multiprocess_dir()) is not None:
            mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]


class _ScrapeTime(Collector):
    """Gauges measured when scraped (the state store's health, the circuits), by whichever process answers."""

    def __init__(self, state_up: bool, circuits: Mapping[str, int] | None = None) -> None:
        self.state_up = state_up
        self.circuits = circuits or {}

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily(
            f"{_PREFIX}_state_store_up", "1 when the state store answered a ping.", value=int(self.state_up)
        )
        circuit = GaugeMetricFamily(
            f"{_PREFIX}_upstream_circuit_state",
            "Upstream circuit breakers of the answering process: 0 closed, 1 half-open, 2 open.",
            labels=["circuit"],
        )
        for name, state in sorted(self.circuits.items()):
            circuit.add_metric([name], state)
        yield circuit


async def metrics_endpoint(request: Request) -> Response:
    """`GET /metrics`: open when `METRICS_TOKEN` is empty, else only with `Authorization: Bearer <token>`."""
    context = relay(request)
    token = context.settings.metrics_token
    if token:
        given = request.headers.get("authorization", "").partition(" ")[2].strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise OpenAIError(401, "Metrics need the token set in METRICS_TOKEN.", code="invalid_api_key")
    scraped = _ScrapeTime(await answers_ping(context.state), context.upstream.circuits.states())
    body = await anyio.to_thread.run_sync(context.metrics.exposition, scraped)
    return Response(body, media_type=CONTENT_TYPE)
