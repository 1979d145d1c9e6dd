"""Optional OpenTelemetry traces: off (and not imported) by default, spans sent to a collector when asked."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from onemin_relay.serving import BackgroundServer
from tests.harness import KEY_A

RUN_A_RELAY = """
import importlib.abc
import sys

if sys.argv[2] == "uninstalled":  # as if the [otel] extra were not installed

    class NoOpenTelemetry(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] == "opentelemetry":
                raise ModuleNotFoundError(name)
            return None

    sys.meta_path.insert(0, NoOpenTelemetry())

from starlette.testclient import TestClient
from onemin_relay.app import create_app
from onemin_relay.config import Settings

settings = Settings(_env_file=None, data_dir=sys.argv[1], otel_exporter_otlp_endpoint=sys.argv[3])
with TestClient(create_app(settings)) as client:
    assert client.get("/health").status_code == 200
    assert client.get("/metrics").status_code == 200
print(" ".join(sorted(name for name in sys.modules if name.startswith("opentelemetry"))))
"""
TRACING_MODULES = ("opentelemetry.sdk.trace", "opentelemetry.exporter")


def run_a_relay(data_dir: Path, otel: str, endpoint: str = "") -> list[str]:
    """Serve two requests in a fresh interpreter; the OpenTelemetry modules it loaded."""
    result = subprocess.run(
        [sys.executable, "-c", RUN_A_RELAY, str(data_dir), otel, endpoint],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_without_an_endpoint_the_relay_never_imports_the_tracing_modules(tmp_path: Path) -> None:
    loaded = run_a_relay(tmp_path, "installed")
    # (redis-py loads OpenTelemetry's metrics API by itself whenever it is installed; not the relay's doing)
    assert not [name for name in loaded if name.startswith(TRACING_MODULES)]


def test_without_the_otel_extra_the_relay_runs_even_with_an_endpoint_set(tmp_path: Path) -> None:
    assert run_a_relay(tmp_path, "uninstalled") == []
    assert run_a_relay(tmp_path, "uninstalled", "http://127.0.0.1:9") == []  # a warning, no traces


class Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP collector stand-in: keeps every export request it receives."""

    received: list[tuple[str, str, bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    received: list[tuple[str, str, bytes]] = []
    handler = type("TestCollector", (Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def test_with_an_endpoint_each_request_sends_a_span_and_its_upstream_calls(
    start_relay: Callable[..., BackgroundServer], collector: tuple[str, list[tuple[str, str, bytes]]]
) -> None:
    endpoint, received = collector
    relay = start_relay(otel_exporter_otlp_endpoint=endpoint)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    response = httpx.post(
        f"{relay.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {KEY_A}", "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "trace me"}]},
    )
    assert response.status_code == 200
    relay.stop()  # a clean shutdown exports what is queued

    spans = []
    for path, content_type, body in received:
        assert path == "/v1/traces"
        assert content_type == "application/x-protobuf"
        export = ExportTraceServiceRequest.FromString(body)
        spans += [
            span
            for resource in export.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]
    [server] = [span for span in spans if span.name == "POST /v1/chat/completions"]
    attributes = {item.key: item.value for item in server.attributes}
    assert attributes["http.response.status_code"].int_value == 200
    assert attributes["gen_ai.request.model"].string_value == "gpt-4o-mini"
    assert attributes["onemin.request_id"].string_value == response.headers["x-request-id"]
    assert server.trace_id.hex() == trace_id  # joined the caller's trace
    upstream = [span for span in spans if span.parent_span_id == server.span_id]
    assert upstream
    assert {span.name for span in upstream} == {"1min.ai"}
    assert all(server.start_time_unix_nano <= span.start_time_unix_nano for span in upstream)
    assert all(span.end_time_unix_nano <= server.end_time_unix_nano for span in upstream)
