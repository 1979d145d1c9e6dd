"""What every client sees regardless of endpoint: health, request ids, OpenAI-shaped errors, CORS."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from onemin_relay.app import create_app
from onemin_relay.observability import JsonFormatter
from onemin_relay.serving import BackgroundServer, bind_socket
from tests.harness import KEY_A, SimulatorHandle, relay_settings


def test_health_answers_without_touching_upstream(relay_url: str, sim: SimulatorHandle) -> None:
    response = httpx.get(f"{relay_url}/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "upstream": "closed"}
    assert sim.requests() == []


def test_every_response_carries_a_request_id(relay_url: str) -> None:
    first = httpx.get(f"{relay_url}/health").headers["x-request-id"]
    second = httpx.get(f"{relay_url}/health").headers["x-request-id"]
    assert first
    assert second
    assert first != second


def test_a_sane_incoming_request_id_is_kept(relay_url: str) -> None:
    response = httpx.get(f"{relay_url}/health", headers={"x-request-id": "trace-123"})
    assert response.headers["x-request-id"] == "trace-123"
    hostile = httpx.get(f"{relay_url}/health", headers={"x-request-id": "bad id\twith spaces"})
    assert hostile.headers["x-request-id"] != "bad id\twith spaces"


def test_unknown_route_is_an_openai_404(relay_url: str) -> None:
    response = httpx.get(f"{relay_url}/v1/nothing-here", headers={"Authorization": f"Bearer {KEY_A}"})
    assert response.status_code == 404
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert "/v1/nothing-here" in error["message"]


def test_wrong_method_is_an_openai_405(relay_url: str) -> None:
    response = httpx.delete(f"{relay_url}/health")
    assert response.status_code == 405
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "GET" in response.headers["allow"]  # what the method must be instead


def test_missing_key_is_a_401_before_anything_goes_upstream(relay_url: str, sim: SimulatorHandle) -> None:
    response = httpx.post(
        f"{relay_url}/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 401
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_api_key")
    assert sim.requests() == []


def test_malformed_authorization_is_a_401(relay_url: str) -> None:
    response = httpx.post(
        f"{relay_url}/v1/chat/completions",
        headers={"Authorization": "Basic abc"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 401
    assert "abc" not in response.text


def test_browser_preflight_is_answered(relay_url: str) -> None:
    response = httpx.options(
        f"{relay_url}/v1/chat/completions",
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in {"*", "http://localhost:3000"}
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "authorization" in response.headers["access-control-allow-headers"].lower()


def test_absurdly_nested_json_is_a_400_not_a_500(relay_url: str) -> None:
    response = httpx.post(
        f"{relay_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {KEY_A}", "Content-Type": "application/json"},
        content=b"[" * 100_000,
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


class FormattedLines(logging.Handler):
    """Formats each record as it is emitted, in the emitting context, as the relay's log handler does."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


def test_an_unexpected_error_is_a_500_with_request_id_and_cors(
    simulator_server: BackgroundServer, tmp_path: Path
) -> None:
    async def broken(request: Request) -> Response:
        raise RuntimeError("a bug")

    app = create_app(relay_settings(simulator_server.url, tmp_path))
    app.router.routes.append(Route("/v1/broken", broken))
    logged = FormattedLines()
    relay_log = logging.getLogger("onemin_relay")
    relay_log.addHandler(logged)
    try:
        with BackgroundServer(app) as relay:
            response = httpx.get(f"{relay.url}/v1/broken", headers={"Origin": "http://localhost:3000"})
    finally:
        relay_log.removeHandler(logged)
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"
    assert response.headers["access-control-allow-origin"] in {"*", "http://localhost:3000"}
    request_id = response.headers["x-request-id"]  # what a user quotes when reporting the failure…
    [error] = [line for line in logged.lines if line["level"] == "ERROR"]
    assert error["request_id"] == request_id  # …finds the traceback
    assert "a bug" in error["exc"]


def test_a_relay_whose_state_cannot_open_does_not_start_and_frees_its_port(
    simulator_server: BackgroundServer, tmp_path: Path
) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    server = BackgroundServer(create_app(relay_settings(simulator_server.url, not_a_directory)))
    with pytest.raises(RuntimeError, match="failed to start"):
        server.start()
    bind_socket("127.0.0.1", server.port).close()  # nobody holds the port any more


def test_anthropic_routes_answer_errors_in_anthropics_shape(relay_url: str) -> None:
    response = httpx.post(f"{relay_url}/v1/messages/nothing-here", headers={"x-api-key": KEY_A}, json={})
    assert response.status_code == 404
    body = response.json()
    assert body == {
        "type": "error",
        "error": {"type": "not_found_error", "message": body["error"]["message"]},
        "request_id": response.headers["x-request-id"],
    }
    assert "/v1/messages/nothing-here" in body["error"]["message"]


def test_the_key_may_come_as_x_api_key(relay_url: str) -> None:
    assert httpx.get(f"{relay_url}/v1/models", headers={"x-api-key": KEY_A}).status_code == 200
    hostile = httpx.get(f"{relay_url}/v1/models", headers={"x-api-key": "sk-" + "x" * 600})
    assert hostile.status_code == 401
    assert "x" * 600 not in hostile.text
    empty = httpx.get(f"{relay_url}/v1/models", headers={"x-api-key": ""})
    assert "x-api-key" in empty.json()["error"]["message"]
