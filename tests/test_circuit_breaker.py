"""The upstream circuit breaker: a failing 1min.ai is not called again and again; no call is paid twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import openai
import pytest

from onemin_relay.serving import BackgroundServer
from onemin_relay.upstream.breaker import CIRCUIT_OPEN, Circuits, CircuitState
from onemin_relay.upstream.client import OneMinClient
from onemin_relay.upstream.errors import UpstreamError
from tests.harness import KEY_A, SimulatorHandle, upstream_settings
from tests.servers import free_port

HOST = "api.example"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail(circuits: Circuits, times: int = 1) -> None:
    for _ in range(times):
        with circuits.attempt(HOST) as verdict:
            verdict.failed()


def refused(circuits: Circuits) -> UpstreamError:
    with pytest.raises(UpstreamError) as caught, circuits.attempt(HOST):
        pytest.fail("the attempt should not have started")
    return caught.value


def test_repeated_failures_open_the_circuit_which_refuses_until_its_cool_down_ends() -> None:
    clock = Clock()
    circuits = Circuits(failures=3, cooldown=30, clock=clock)
    fail(circuits, 2)
    with circuits.attempt(HOST) as verdict:  # a success in between starts the count again
        verdict.succeeded()
    fail(circuits, 2)
    assert circuits.state(HOST) == CircuitState.CLOSED
    fail(circuits)
    assert circuits.state(HOST) == CircuitState.OPEN
    error = refused(circuits)
    assert (error.status, error.code, error.retry_after) == (503, CIRCUIT_OPEN, 30)
    clock.now += 20
    assert refused(circuits).retry_after == 10


def test_after_the_cool_down_one_probe_goes_and_its_answer_decides() -> None:
    clock = Clock()
    circuits = Circuits(failures=1, cooldown=30, clock=clock)
    fail(circuits)
    clock.now += 30
    assert circuits.state(HOST) == CircuitState.HALF_OPEN
    with circuits.attempt(HOST) as probe:
        assert refused(circuits).retry_after == 1  # only one probe at a time
        probe.failed()
    assert circuits.state(HOST) == CircuitState.OPEN  # a failed probe: another full cool-down
    assert refused(circuits).retry_after == 30
    clock.now += 30
    with circuits.attempt(HOST) as probe:
        probe.succeeded()
    assert circuits.state(HOST) == CircuitState.CLOSED
    with circuits.attempt(HOST):
        pass


def test_a_probe_that_ends_without_an_answer_frees_the_slot() -> None:
    clock = Clock()
    circuits = Circuits(failures=1, cooldown=5, clock=clock)
    fail(circuits)
    clock.now += 5
    with pytest.raises(KeyboardInterrupt), circuits.attempt(HOST):  # e.g. the client went away
        raise KeyboardInterrupt
    with circuits.attempt(HOST) as probe:
        probe.succeeded()
    assert circuits.state(HOST) == CircuitState.CLOSED


def test_zero_failures_turns_the_breaker_off() -> None:
    circuits = Circuits(failures=0, cooldown=30)
    fail(circuits, 100)
    assert circuits.states() == {}


async def test_failed_connections_stop_reaching_the_network_once_the_circuit_opens() -> None:
    connections = 0

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()  # before answering anything

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = upstream_settings(
        f"http://127.0.0.1:{port}", upstream_breaker_failures=3, upstream_max_retries=0
    )
    client = OneMinClient(settings)
    try:
        async with server:
            codes = []
            for _ in range(5):
                with pytest.raises(UpstreamError) as caught:
                    await client.chat(KEY_A, {"type": "UNIFY_CHAT_WITH_AI", "model": "gpt-4o-mini"})
                codes.append(caught.value.code)
        assert codes == ["NETWORK_ERROR"] * 3 + [CIRCUIT_OPEN] * 2
        assert connections == 3
        assert client.circuits.states() == {"127.0.0.1/api/chat-with-ai": CircuitState.OPEN}
    finally:
        await client.aclose()


CHAT_BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "are you there?"}]}


def chat_calls(sim: SimulatorHandle) -> int:
    return sum(1 for call in sim.requests() if call["path"] == "/api/chat-with-ai")


def test_an_upstream_outage_fails_fast_with_retry_after_and_recovers_after_the_cool_down(
    start_relay: Callable[..., BackgroundServer], sim: SimulatorHandle
) -> None:
    url = start_relay(upstream_breaker_failures=2, upstream_breaker_cooldown=1).url
    headers = {"Authorization": f"Bearer {KEY_A}"}
    # Chat fails; the catalogue (fetched before each chat here) still answers: only chat's circuit opens.
    sim.http.post(
        "/_sim/faults", json={"fault": "http-503", "times": 2, "path": "/api/chat-with-ai"}
    ).raise_for_status()
    for _ in range(2):
        assert httpx.post(f"{url}/v1/chat/completions", json=CHAT_BODY, headers=headers).status_code == 503
    assert chat_calls(sim) == 2
    health = httpx.get(f"{url}/health").json()
    assert health["status"] == "ok"
    assert health["upstream"] == "open"
    assert health["circuits"] == {"127.0.0.1/api/chat-with-ai": {"state": "open", "retry_after": 1}}

    fast = httpx.post(f"{url}/v1/chat/completions", json=CHAT_BODY, headers=headers)
    assert fast.status_code == 503
    assert fast.headers["retry-after"] == "1"
    assert fast.json()["error"]["code"] == "service_unavailable"
    assert chat_calls(sim) == 2  # refused before sending: nothing reached 1min.ai, nothing billed
    assert httpx.get(f"{url}/v1/models", headers=headers).status_code == 200  # other endpoints go on

    deadline = time.monotonic() + 10
    while httpx.get(f"{url}/health").json()["upstream"] != "half-open":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with openai.OpenAI(base_url=f"{url}/v1", api_key=KEY_A, max_retries=0) as client:
        answer = client.chat.completions.create(**CHAT_BODY)  # type: ignore[call-overload]
    assert answer.choices[0].message.content
    assert chat_calls(sim) == 3
    assert httpx.get(f"{url}/health").json() == {"status": "ok", "upstream": "closed"}


def test_readiness_checks_the_state_store(start_relay: Callable[..., BackgroundServer]) -> None:
    assert httpx.get(f"{start_relay().url}/health/ready").json() == {"status": "ok", "state": "ok"}
    nowhere = start_relay(state_url=f"redis://127.0.0.1:{free_port()}/0").url
    not_ready = httpx.get(f"{nowhere}/health/ready")
    assert not_ready.status_code == 503
    assert not_ready.json() == {"status": "unavailable", "state": "unreachable"}
    assert httpx.get(f"{nowhere}/health").status_code == 200  # alive all the same
    metrics = httpx.get(f"{nowhere}/metrics").text
    assert "onemin_relay_state_store_up 0.0" in metrics
