"""The access log: one structured line per request, with its request id, and never an API key."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import httpx
import openai
import pytest

from onemin_relay.observability import JsonFormatter
from tests.harness import KEY_A, UNKNOWN_KEY


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "onemin_relay.access"]


def access_line(caplog: pytest.LogCaptureFixture, request_id: str) -> dict[str, Any]:
    """The access line of one request. The relay writes it once the response is sent, on the server's
    thread, so it may land just after the client has the answer: wait for it (bounded)."""
    deadline = time.monotonic() + 10
    while True:
        lines: list[dict[str, Any]] = [
            json.loads(JsonFormatter().format(record)) for record in access_records(caplog)
        ]
        found = [line for line in lines if line["request_id"] == request_id]
        if found or time.monotonic() > deadline:
            [line] = found
            return line
        time.sleep(0.01)


def test_each_request_writes_one_access_line(relay_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    response = httpx.post(
        f"{relay_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {KEY_A}"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "log me"}]},
    )
    assert response.status_code == 200
    line = access_line(caplog, response.headers["x-request-id"])
    assert line["method"] == "POST"
    assert line["path"] == "/v1/chat/completions"
    assert line["status"] == 200
    assert line["duration_ms"] >= line["upstream_wait_ms"] > 0


def test_keys_never_reach_the_logs_even_at_debug(
    relay_url: str, client: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])
    for _ in client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "stream"}], stream=True
    ):
        pass
    stranger = openai.OpenAI(base_url=f"{relay_url}/v1", api_key=UNKNOWN_KEY, max_retries=0)
    with stranger, pytest.raises(openai.AuthenticationError) as refused:
        stranger.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert UNKNOWN_KEY not in str(refused.value.body)
    access_line(caplog, refused.value.response.headers["x-request-id"])  # the last request's lines are in
    logged = "\n".join(JsonFormatter().format(record) for record in caplog.records)
    for key in (KEY_A, UNKNOWN_KEY):
        assert key not in logged
