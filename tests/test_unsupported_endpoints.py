"""OpenAI endpoints 1min.ai cannot serve answer a clear 404 `unsupported_endpoint`, not an unknown URL."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.harness import KEY_A, SimulatorHandle
from tests.openapi_schema import assert_matches_anthropic_schema, assert_matches_schema

AUTH = {"Authorization": f"Bearer {KEY_A}"}


@pytest.mark.parametrize(
    ("method", "path", "lacks"),
    [
        ("POST", "/v1/embeddings", "embeddings"),
        ("POST", "/v1/moderations", "moderation"),
        ("GET", "/v1/batches", "batch"),
        ("POST", "/v1/batches/batch_abc/cancel", "batch"),
        ("POST", "/v1/realtime/sessions", "realtime"),
        ("POST", "/v1/realtime/client_secrets", "realtime"),
        ("POST", "/v1/assistants", "assistants"),
        ("GET", "/v1/threads/thread_1/runs", "assistant threads"),
        ("DELETE", "/v1/vector_stores/vs_1", "vector stores"),
        ("POST", "/v1/fine_tuning/jobs", "fine-tuning"),
        ("POST", "/v1/uploads", "multi-part uploads"),
        ("GET", "/v1/evals", "evals"),
    ],
)
def test_an_endpoint_1min_ai_cannot_serve_says_so(
    relay_url: str, sim: SimulatorHandle, method: str, path: str, lacks: str
) -> None:
    response = httpx.request(method, f"{relay_url}{path}", json={}, headers=AUTH)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "unsupported_endpoint"
    assert f"1min.ai has no {lacks}" in error["message"]
    assert path in error["message"]
    assert_matches_schema("ErrorResponse", response.json())
    assert not sim.requests()


def test_anthropic_s_message_batches_are_refused_in_anthropic_s_shape(relay_url: str) -> None:
    response = httpx.post(f"{relay_url}/v1/messages/batches", json={"requests": []}, headers=AUTH)
    assert response.status_code == 404
    body = response.json()
    assert (body["type"], body["error"]["type"]) == ("error", "not_found_error")
    assert "1min.ai has no batch processing" in body["error"]["message"]
    assert_matches_anthropic_schema("ErrorResponse", body)


def test_the_sdk_gets_a_not_found_it_does_not_retry(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.embeddings.create(model="text-embedding-3-small", input="hello")
    assert caught.value.code == "unsupported_endpoint"
    with pytest.raises(openai.NotFoundError):
        client.moderations.create(input="hello")
    with pytest.raises(openai.NotFoundError):
        client.batches.list()


def test_a_realtime_websocket_is_closed_with_the_reason(relay_url: str) -> None:
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    headers = {
        **AUTH,
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": key,
    }
    response = httpx.get(f"{relay_url}/v1/realtime?model=gpt-realtime", headers=headers)
    assert response.status_code == 403  # closed before the handshake completed


def test_other_unknown_paths_are_still_unknown_urls(relay_url: str) -> None:
    response = httpx.post(f"{relay_url}/v1/embeddingsx", json={}, headers=AUTH)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "unknown_url")
