"""`GET /metrics` as Prometheus scrapes it, and the `Server-Timing` header on every answer."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from onemin_relay.api.auth import key_hash
from onemin_relay.serving import BackgroundServer
from tests.harness import KEY_A, SimulatorHandle, serve_process

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
CHAT = "/v1/chat/completions"


def scrape(url: str, token: str | None = None) -> Samples:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{url}/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def wait_for(url: str, check: Callable[[Samples], bool]) -> Samples:
    """Metrics are counted once a response is finished, which may be just after the client has it."""
    deadline = time.monotonic() + 10
    while not check(samples := scrape(url)):
        assert time.monotonic() < deadline, "the metrics never showed it"
        time.sleep(0.02)
    return samples


def requests_of(samples: Samples, route: str, model: str, status: str) -> float:
    return value(
        samples, "onemin_relay_requests_total", route=route, method="POST", model=model, status=status
    )


def test_requests_latency_credits_and_tokens_are_counted_by_route_model_and_status(
    relay_url: str, client: openai.OpenAI
) -> None:
    before = scrape(relay_url)
    completion = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "metered"}]
    )
    for _ in client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "metered stream"}], stream=True
    ):
        pass
    after = wait_for(
        relay_url,
        lambda s: (
            requests_of(s, CHAT, "gpt-4o-mini", "200") == requests_of(before, CHAT, "gpt-4o-mini", "200") + 2
        ),
    )

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("onemin_relay_request_duration_seconds_count", route=CHAT) == 2
    assert grew("onemin_relay_upstream_wait_seconds_count", route=CHAT) == 2
    assert grew("onemin_relay_relay_overhead_seconds_count", route=CHAT) == 2
    assert grew("onemin_relay_stream_first_chunk_seconds_count", route=CHAT) == 1
    assert grew("onemin_relay_credits_total", model="gpt-4o-mini") > 0
    assert completion.usage is not None
    assert grew("onemin_relay_tokens_total", model="gpt-4o-mini", direction="prompt") >= (
        completion.usage.prompt_tokens
    )
    assert value(after, "onemin_relay_streams_in_flight") == 0
    assert value(after, "onemin_relay_state_store_up") == 1
    assert value(after, "process_resident_memory_bytes") > 0  # the process's own figures come along


def test_a_model_nobody_knows_is_not_a_label_and_keys_never_appear(
    relay_url: str, client: openai.OpenAI
) -> None:
    invented = "my-secret-model-" + "x" * 20
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model=invented, messages=[{"role": "user", "content": "x"}])
    samples = wait_for(relay_url, lambda s: requests_of(s, CHAT, "other", "404") > 0)
    text = httpx.get(f"{relay_url}/metrics").text
    for secret in (invented, KEY_A, key_hash(KEY_A)):
        assert secret not in text
    assert requests_of(samples, CHAT, "other", "404") >= 1


def test_upstream_errors_are_counted_by_status_and_code(
    relay_url: str, client: openai.OpenAI, sim: SimulatorHandle
) -> None:
    name = "onemin_relay_upstream_errors_total"
    before = value(scrape(relay_url), name, status="503", code="HTTP_ERROR")
    sim.set_fault("http-503")
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    wait_for(relay_url, lambda s: value(s, name, status="503", code="HTTP_ERROR") == before + 1)


def test_rate_limit_refusals_are_counted(start_relay: Callable[..., BackgroundServer]) -> None:
    url = start_relay(rate_limit="1/minute").url
    headers = {"Authorization": f"Bearer {KEY_A}"}
    assert httpx.get(f"{url}/v1/models", headers=headers).status_code == 200
    assert httpx.get(f"{url}/v1/models", headers=headers).status_code == 429
    samples = wait_for(url, lambda s: value(s, "onemin_relay_rejections_total", reason="rate_limit") == 1)
    assert value(samples, "onemin_relay_upstream_wait_seconds_count", route="/v1/models") == 1


def test_a_stream_in_flight_is_counted_until_it_ends(relay_url: str, client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "[[sim:delay=200]] slowly, please"}],
        stream=True,
    )
    with stream:
        next(iter(stream))
        assert value(scrape(relay_url), "onemin_relay_streams_in_flight") == 1
    wait_for(relay_url, lambda s: value(s, "onemin_relay_streams_in_flight") == 0)


def test_with_a_token_set_metrics_need_it(start_relay: Callable[..., BackgroundServer]) -> None:
    url = start_relay(metrics_token="scrape-me").url
    refused = httpx.get(f"{url}/metrics")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert value(scrape(url, token="scrape-me"), "onemin_relay_state_store_up") == 1


SERVER_TIMING = re.compile(r'^upstream;dur=(\d+\.\d);desc="1min\.ai", relay;dur=(\d+\.\d)$')


def test_every_answer_says_how_its_time_split_between_upstream_and_relay(
    relay_url: str, client: openai.OpenAI
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "timed"}]
    )
    timing = SERVER_TIMING.match(raw.headers["server-timing"])
    assert timing is not None
    assert float(timing.group(1)) > 0  # the answer came from 1min.ai
    health = SERVER_TIMING.match(httpx.get(f"{relay_url}/health").headers["server-timing"])
    assert health is not None
    assert float(health.group(1)) == 0  # /health never touches 1min.ai
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "timed stream"}], stream=True
    ) as streamed:
        stream_timing = SERVER_TIMING.match(streamed.headers["server-timing"])
        assert stream_timing is not None
        assert float(stream_timing.group(1)) > 0  # waiting for the first upstream event, so far


# --- several worker processes ------------------------------------------------------------------


def relay_env(simulator_url: str, data_dir: Path, metrics_dir: Path) -> dict[str, str]:
    return {
        "ONEMIN_API_URL": simulator_url,
        "ONEMIN_ASSET_URL": f"{simulator_url}/cdn",
        "DATA_DIR": str(data_dir),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "LOG_LEVEL": "WARNING",
    }


def test_with_a_multiprocess_directory_every_process_answers_for_all(
    simulator_server: BackgroundServer, sim: SimulatorHandle, tmp_path: Path
) -> None:
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    headers = {"Authorization": f"Bearer {KEY_A}"}
    with (
        serve_process(relay_env(simulator_server.url, tmp_path / "a", metrics_dir)) as first,
        serve_process(relay_env(simulator_server.url, tmp_path / "b", metrics_dir)) as second,
    ):
        for url in (first, second, second):
            assert httpx.get(f"{url}/v1/models", headers=headers).status_code == 200
        labels = {"route": "/v1/models", "method": "GET", "model": "none", "status": "200"}
        for url in (first, second):
            wait_for(url, lambda s: value(s, "onemin_relay_requests_total", **labels) == 3)
