"""The access log: one structured line per request, with its request id, and never an API key."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
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


def test_serve_writes_each_access_line_to_stderr_by_exit(tmp_path: Path) -> None:
    """The lines are written by a thread; a graceful stop still writes every one of them, as JSON lines
    carrying the request id the client was given."""
    stderr = tmp_path / "stderr"
    with stderr.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "onemin_relay.cli", "serve", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=sink,
            text=True,
            env={**os.environ, "DATA_DIR": str(tmp_path / "data"), "LOG_LEVEL": "INFO"},
        )
        assert process.stdout is not None
        try:
            url = process.stdout.readline().strip().rpartition(" on ")[2].removesuffix("/v1")
            request_ids = [httpx.get(f"{url}/health", timeout=30).headers["x-request-id"] for _ in range(20)]
        finally:
            process.terminate()
            process.wait(timeout=20)
            process.stdout.close()
    lines = [json.loads(line) for line in stderr.read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "onemin_relay.access"]
    assert [line["request_id"] for line in access] == request_ids
    assert all(line["path"] == "/health" and line["status"] == 200 for line in access)


def test_every_line_logged_before_exit_is_written() -> None:
    program = (
        "import logging\n"
        "from onemin_relay.observability import configure_logging\n"
        "configure_logging('INFO')\n"
        "for n in range(1000):\n"
        "    logging.getLogger('onemin_relay').info('line %d', n)\n"
    )
    ran = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert [json.loads(line)["msg"] for line in ran.stderr.splitlines()] == [f"line {n}" for n in range(1000)]
