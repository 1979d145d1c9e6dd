"""The per-request record: what each request did, filled in as it runs and handed to request-end listeners."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from onemin_relay.api.auth import key_hash
from onemin_relay.app import create_app
from onemin_relay.observability import RequestRecord
from onemin_relay.serving import BackgroundServer
from tests.harness import KEY_A, SimulatorHandle, relay_settings
from tests.test_logging import access_line


def test_parallel_upstream_calls_add_wall_time_once_and_their_sum_in_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ticks = iter([0.0, 2.0, 6.0, 10.0, 12.0, 13.0])  # a: 0→10, b: 2→6 inside it, then c: 12→13
    monkeypatch.setattr(time, "perf_counter", lambda: next(ticks))
    record = RequestRecord("req_1", "POST", "/v1/chat/completions", started=0.0)
    with record.timing_upstream(), record.timing_upstream():
        pass
    with record.timing_upstream():
        pass
    assert record.upstream_wall() == 11.0
    assert record.upstream_sum == 15.0
    assert record.upstream_calls == 3


def test_an_open_upstream_exchange_counts_up_to_now(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = itertools.count(0.0, 1.0)
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock))
    record = RequestRecord("req_1", "POST", "/v1/chat/completions", started=0.0)
    with record.timing_upstream():  # opened at 0
        assert record.upstream_wall(now=5.0) == 5.0


@pytest.fixture
def relay_with_listener(
    simulator_server: BackgroundServer, sim: SimulatorHandle, tmp_path: Path
) -> Iterator[tuple[str, list[RequestRecord]]]:
    """A relay whose finished request records are collected (as the usage ledger will collect them)."""
    app = create_app(relay_settings(simulator_server.url, tmp_path, rate_limit="3/minute"))
    records: list[RequestRecord] = []
    with BackgroundServer(app) as server:
        app.state.relay.request_listeners.append(records.append)
        yield server.url, records


def finished(records: list[RequestRecord], request_id: str) -> RequestRecord:
    """The record of one request: it is handed over once the response is sent, so wait for it (bounded)."""
    deadline = time.monotonic() + 10
    while not (found := [record for record in records if record.request_id == request_id]):
        assert time.monotonic() < deadline, f"no record for {request_id}"
        time.sleep(0.01)
    [record] = found
    return record


def test_a_chat_records_caller_model_tokens_and_the_credits_upstream_billed(
    relay_with_listener: tuple[str, list[RequestRecord]],
) -> None:
    url, records = relay_with_listener
    with openai.OpenAI(base_url=f"{url}/v1", api_key=KEY_A, max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "count me"}]
        )
    completion = raw.parse()
    record = finished(records, raw.headers["x-request-id"])
    assert record.caller == key_hash(KEY_A)
    assert (record.model, record.model_known) == ("gpt-4o-mini", True)
    assert record.route == "/v1/chat/completions"
    assert record.status == 200
    assert not record.stream
    assert completion.usage is not None
    assert (record.prompt_tokens, record.completion_tokens) == (
        completion.usage.prompt_tokens,
        completion.usage.completion_tokens,
    )
    assert record.credits == int(raw.headers["x-onemin-credits"]) > 0
    assert record.upstream_errors == []
    assert record.rejected_by is None


def test_a_stream_records_its_usage_credits_and_first_chunk(
    relay_with_listener: tuple[str, list[RequestRecord]],
) -> None:
    url, records = relay_with_listener
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY_A, max_retries=0)
    with (
        client,
        client.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "stream me"}],
            stream=True,
            stream_options={"include_usage": True},
        ) as response,
    ):
        request_id = response.headers["x-request-id"]
        chunks = list(response.parse())
    usage = chunks[-1].usage
    assert usage is not None
    record = finished(records, request_id)
    assert record.stream
    assert record.status == 200
    assert (record.prompt_tokens, record.completion_tokens) == (usage.prompt_tokens, usage.completion_tokens)
    assert record.credits > 0
    assert record.first_byte is not None
    assert record.duration is not None
    assert record.first_byte <= record.duration


def test_an_upstream_failure_and_a_rate_limit_refusal_are_recorded(
    relay_with_listener: tuple[str, list[RequestRecord]], sim: SimulatorHandle
) -> None:
    url, records = relay_with_listener
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}
    headers = {"Authorization": f"Bearer {KEY_A}"}
    sim.set_fault("http-503")
    failed = httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers)
    assert failed.status_code == 503
    assert finished(records, failed.headers["x-request-id"]).upstream_errors == [(503, "HTTP_ERROR")]
    for _ in range(2):
        httpx.get(f"{url}/v1/models", headers=headers)
    refused = httpx.get(f"{url}/v1/models", headers=headers)
    assert refused.status_code == 429
    record = finished(records, refused.headers["x-request-id"])
    assert record.rejected_by == "rate_limit"
    assert record.upstream_calls == 0


def test_the_access_log_tells_wall_time_on_upstream_from_the_sum_of_parallel_calls(
    relay_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # Both choices wait upstream at the same time: their times add up, the time waited does not.
    response = httpx.post(
        f"{relay_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {KEY_A}"},
        json={
            "model": "gpt-4o-mini",
            "n": 2,
            "messages": [{"role": "user", "content": "[[sim:slow-first-byte=200]] both"}],
        },
    )
    assert response.status_code == 200
    line = access_line(caplog, response.headers["x-request-id"])
    assert line["upstream_calls"] >= 2
    assert line["duration_ms"] >= line["upstream_wait_ms"]
    assert line["upstream_sum_ms"] > line["upstream_wait_ms"]
    assert "upstream_ms" not in line  # the old, ambiguous name


def test_a_restarted_app_hands_each_record_to_each_listener_once(
    simulator_server: BackgroundServer, tmp_path: Path
) -> None:
    app = create_app(relay_settings(simulator_server.url, tmp_path))
    counts = []
    for _ in range(2):
        with BackgroundServer(app):
            counts.append(len(app.state.relay.request_listeners))
    assert counts[0] == counts[1]  # the first run's ledger (closed by then) is not called any more
