"""Optional OpenTelemetry traces: one server span per request, one child span per 1min.ai exchange.

Only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set — and only then is OpenTelemetry imported (it is the
optional `[otel]` extra). Spans are built from the finished request record (a request-end listener), so
tracing adds nothing to the request path itself; the SDK's batch processor exports them over OTLP/HTTP from
its own thread. An incoming W3C `traceparent` makes the request's span part of the caller's trace.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from onemin_relay.observability import RequestRecord

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger("onemin_relay.tracing")

_TRACES_PATH = "/v1/traces"


class Tracing:
    """The tracer provider and the listener that turns each request record into spans."""

    def __init__(self, endpoint: str, service_name: str = "1min-relay") -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        url = endpoint.rstrip("/")
        url = url if url.endswith(_TRACES_PATH) else url + _TRACES_PATH
        self.provider: TracerProvider = TracerProvider(
            resource=Resource.create({"service.name": service_name})
        )
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
        self._tracer = self.provider.get_tracer("onemin_relay")

    def record_spans(self, record: RequestRecord) -> None:
        """A request-end listener: the request's span and its upstream exchanges' spans, after the fact."""
        from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        def wall_ns(perf: float) -> int:  # a perf_counter reading → epoch nanoseconds
            return int((record.started_at + (perf - record.started)) * 1e9)

        parent = None
        if record.traceparent:
            parent = TraceContextTextMapPropagator().extract({"traceparent": record.traceparent})
        name = f"{record.method} {record.route or 'unmatched'}"
        span = self._tracer.start_span(
            name, context=parent, kind=SpanKind.SERVER, start_time=wall_ns(record.started)
        )
        span.set_attributes(
            {
                "http.request.method": record.method,
                "http.route": record.route or "",
                "url.path": record.path,
                "http.response.status_code": record.status,
                "onemin.request_id": record.request_id,
                "onemin.stream": record.stream,
                "onemin.upstream.calls": record.upstream_calls,
                "onemin.upstream.wait_ms": round(record.upstream_wall() * 1000, 1),
                "onemin.credits": record.credits,
            }
        )
        if record.model is not None:
            span.set_attribute("gen_ai.request.model", record.model)
        if record.prompt_tokens is not None:
            span.set_attribute("gen_ai.usage.input_tokens", record.prompt_tokens)
        if record.completion_tokens is not None:
            span.set_attribute("gen_ai.usage.output_tokens", record.completion_tokens)
        if record.upstream_error is not None:
            span.set_attribute("onemin.upstream.error", record.upstream_error)
        if record.status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        inside = set_span_in_context(span)
        for started, ended in record.upstream_exchanges:
            child = self._tracer.start_span(
                "1min.ai", context=inside, kind=SpanKind.CLIENT, start_time=wall_ns(started)
            )
            child.end(end_time=wall_ns(ended))
        end = record.started + (record.duration if record.duration is not None else 0.0)
        span.end(end_time=wall_ns(end))

    def shutdown(self) -> None:
        """Export what is still queued (blocking: call it off the event loop)."""
        self.provider.shutdown()


def start_tracing(endpoint: str) -> Tracing | None:
    """Tracing when `endpoint` is set; None (and nothing imported) otherwise, or when `[otel]` is missing."""
    if not endpoint:
        return None
    try:
        tracing = Tracing(endpoint)
    except ImportError:
        log.warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed "
            "(pip install 'onemin-relay[otel]'): no traces are sent"
        )
        return None
    log.info("sending OpenTelemetry traces to %s", endpoint)
    return tracing
