"""Relays that share state behave as one: restarts keep files, instances share files and rate limits,
and a state outage costs only the state features (503) until the backend is back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from onemin_relay.serving import BackgroundServer
from tests.harness import KEY_A, KEY_B, SimulatorHandle, relay_settings, running_relay
from tests.servers import ServerProcess

NOTE = "Grüße aus dem Relay — 共有状態 ✓\n".encode() * 50


def sdk(relay: BackgroundServer, key: str = KEY_A) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{relay.url}/v1", api_key=key, max_retries=0)


@pytest.fixture
def relays(simulator_server: BackgroundServer, sim: SimulatorHandle, tmp_path: Path) -> Iterator[Any]:
    """`relays(n, **settings)` starts n relays with the same settings (each its own data dir)."""
    with ExitStack() as stack:

        def start(count: int, **overrides: Any) -> list[BackgroundServer]:
            servers = []
            for index in range(count):
                settings = relay_settings(simulator_server.url, tmp_path / f"relay-{index}", **overrides)
                servers.append(stack.enter_context(running_relay(settings)))
            return servers

        yield start


def upload_note(relay: BackgroundServer) -> str:
    with sdk(relay) as client:
        return client.files.create(file=("note.txt", NOTE, "text/plain"), purpose="user_data").id


def assert_file_served(relay: BackgroundServer, file_id: str) -> None:
    with sdk(relay) as client:
        assert client.files.retrieve(file_id).filename == "note.txt"
        assert client.files.content(file_id).content == NOTE
        assert file_id in [item.id for item in client.files.list()]


def restart_keeps_files(simulator_url: str, data_dir: Path, **overrides: Any) -> None:
    settings = relay_settings(simulator_url, data_dir, **overrides)
    with running_relay(settings) as first:
        file_id = upload_note(first)
    with running_relay(settings) as second:
        assert_file_served(second, file_id)


def test_embedded_state_survives_a_restart(
    simulator_server: BackgroundServer, sim: SimulatorHandle, tmp_path: Path
) -> None:
    restart_keeps_files(simulator_server.url, tmp_path / "data")
    assert (tmp_path / "data").is_dir()


def test_redis_state_survives_a_restart(
    simulator_server: BackgroundServer, sim: SimulatorHandle, tmp_path: Path, redis_server: ServerProcess
) -> None:
    restart_keeps_files(simulator_server.url, tmp_path / "data", state_url=redis_server.url)


@pytest.mark.parametrize("backend", ["redis", "memcached"])
def test_two_relays_share_files(relays: Any, backend: str, request: pytest.FixtureRequest) -> None:
    server: ServerProcess = request.getfixturevalue(f"{backend}_server")
    one, two = relays(2, state_url=server.url)
    file_id = upload_note(one)
    assert_file_served(two, file_id)
    with sdk(two) as client:
        assert client.files.delete(file_id).deleted is True
    with sdk(one) as client, pytest.raises(openai.NotFoundError):
        client.files.retrieve(file_id)
    with sdk(two, KEY_B) as other, pytest.raises(openai.NotFoundError):
        other.files.retrieve(file_id)


@pytest.mark.parametrize("backend", ["redis", "memcached"])
def test_two_relays_share_one_rate_limit(relays: Any, backend: str, request: pytest.FixtureRequest) -> None:
    server: ServerProcess = request.getfixturevalue(f"{backend}_server")
    # A day-long window: memcached's windowed counting must not reset in the middle of the test.
    one, two = relays(2, state_url=server.url, rate_limit="3/day")
    key = f"sk-test-limit-{backend}-0000000001"  # a bucket no other test uses
    headers = {"Authorization": f"Bearer {key}"}
    answers = [httpx.get(f"{relay.url}/v1/models", headers=headers) for relay in (one, two, one)]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert [answer.headers["x-ratelimit-remaining-requests"] for answer in answers] == ["2", "1", "0"]
    refused = httpx.get(f"{two.url}/v1/models", headers=headers)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(refused.headers["retry-after"]) >= 1


def test_a_state_outage_costs_only_state_features(relays: Any, own_redis: ServerProcess) -> None:
    [relay] = relays(1, state_url=own_redis.url)
    file_id = upload_note(relay)
    own_redis.stop()
    with sdk(relay) as client:
        with pytest.raises(openai.InternalServerError) as outage:
            client.files.list()
        assert outage.value.status_code == 503
        with pytest.raises(openai.InternalServerError):
            client.files.create(file=("late.txt", b"late"), purpose="user_data")
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "still there?"}]
        )
        assert reply.choices[0].message.content
    own_redis.start()  # an empty Redis on the same port: the relay reconnects by itself
    with sdk(relay) as client:
        assert file_id not in [item.id for item in client.files.list()]
        assert_file_served(relay, upload_note(relay))
