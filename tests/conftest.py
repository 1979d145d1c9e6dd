"""Fixtures: one simulator per test session, one default relay in front of it, relays on demand."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from onemin_relay.serving import BackgroundServer
from onemin_relay.simulator.app import create_simulator_app
from onemin_relay.simulator.config import SimulatorConfig
from tests.harness import (
    KEY_A,
    KNOWN_KEYS,
    SimulatorFactory,
    SimulatorHandle,
    relay_settings,
    running_relay,
)

# Real redis-server / memcached fixtures, shared by the state, rate-limit and scale-out tests.
pytest_plugins = ["tests.servers"]

# Tests must never see a developer's own configuration.
for _name in list(os.environ):
    if _name.upper().startswith(
        (
            "ONEMIN_",
            "STATE_",
            "RATE_LIMIT",
            "MEMCACHED_",
            "SUBSET_OF",
            "PERMIT_MODELS",
            "MODELS_LIST",
            "ANTHROPIC_",
            "PUBLIC_MODELS",
            "IMAGE_SIZE_ADJUST",
            "TOOLS_PROMPT",
            "AUTH_MODE",
        )
    ):
        del os.environ[_name]


@pytest.fixture(scope="session")
def simulator_server() -> Iterator[BackgroundServer]:
    with BackgroundServer(create_simulator_app(SimulatorConfig(api_keys=KNOWN_KEYS))) as server:
        yield server


@pytest.fixture
def sim(simulator_server: BackgroundServer) -> Iterator[SimulatorHandle]:
    """The simulator, with faults and its request log cleared before each test."""
    handle = SimulatorHandle(simulator_server.url)
    handle.reset()
    yield handle
    handle.close()


@pytest.fixture(scope="session")
def relay_server(
    simulator_server: BackgroundServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BackgroundServer]:
    settings = relay_settings(
        simulator_server.url, tmp_path_factory.mktemp("relay-data"), fetch_allow_private=True
    )
    with running_relay(settings) as server:
        yield server


@pytest.fixture
def relay_url(relay_server: BackgroundServer, sim: SimulatorHandle) -> str:
    return relay_server.url


@pytest.fixture
def start_relay(
    simulator_server: BackgroundServer, sim: SimulatorHandle, tmp_path: Path
) -> Iterator[Callable[..., BackgroundServer]]:
    """Start extra relays with their own settings: `start_relay(rate_limit="2/minute").url`."""
    with ExitStack() as stack:

        def start(**overrides: Any) -> BackgroundServer:
            overrides.setdefault("data_dir", tmp_path / "relay-data")
            settings = relay_settings(simulator_server.url, **overrides)
            return stack.enter_context(running_relay(settings))

        yield start


@pytest.fixture
def client(relay_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{relay_url}/v1", api_key=KEY_A, max_retries=0) as sdk:
        yield sdk


@pytest.fixture
async def aclient(relay_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=f"{relay_url}/v1", api_key=KEY_A, max_retries=0) as sdk:
        yield sdk


@pytest.fixture
async def make_api() -> AsyncIterator[SimulatorFactory]:
    """In-process simulators (no socket), each with its own config: `make_api(rate_limit_per_minute=2)`."""
    clients: list[httpx.AsyncClient] = []

    def make(**config: Any) -> httpx.AsyncClient:
        app = create_simulator_app(SimulatorConfig(api_keys=KNOWN_KEYS, **config))
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://sim.test", headers={"API-KEY": KEY_A}
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def api(make_api: SimulatorFactory) -> httpx.AsyncClient:
    """A default in-process simulator client, authenticated as KEY_A."""
    return make_api()
