"""Start-up as a user sees it: the relay answers at once, the model catalogue is fetched in the background
so the first chat does not wait for it, the tokeniser is loaded only for a request that needs a count (once,
off the event loop), and 1min.ai being unreachable stops nothing."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import tiktoken

from onemin_relay.app import create_app
from onemin_relay.serving import BackgroundServer
from onemin_relay.translate import tokens
from onemin_relay.upstream.features import SERVED_FEATURES
from tests.harness import KEY_A, SimulatorHandle, relay_settings, serve_process
from tests.servers import free_port

HEADERS = {"Authorization": f"Bearer {KEY_A}"}
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}
COUNT = {"model": "us.anthropic.claude-sonnet-4-6", "messages": [{"role": "user", "content": "count me"}]}


class HeldLoad:
    """Stands in for the tokeniser's load in a fresh process: counts the loads, each runs when released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.loads = 0
        self._real = tiktoken.get_encoding

    def __call__(self, name: str) -> tiktoken.Encoding:
        self.loads += 1
        assert self.release.wait(timeout=60), "the test never released the load"
        return self._real(name)


@pytest.fixture
def held_load(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldLoad]:
    held = HeldLoad()
    monkeypatch.setattr(tokens, "_loading", None)  # as in a process that has not loaded it yet
    monkeypatch.setattr(tiktoken, "get_encoding", held)
    try:
        yield held
    finally:
        held.release.set()


def test_the_tokeniser_is_loaded_once_when_a_count_is_first_needed_and_off_the_event_loop(
    simulator_server: BackgroundServer, sim: SimulatorHandle, tmp_path: Path, held_load: HeldLoad
) -> None:
    with (
        BackgroundServer(create_app(relay_settings(simulator_server.url, tmp_path))) as relay,
        httpx.Client(base_url=relay.url, headers=HEADERS, timeout=30) as http,
        ThreadPoolExecutor(2) as pool,
    ):
        # A chat whose usage 1min.ai reports and that has no max_tokens to cut at needs no count.
        chat = http.post("/v1/chat/completions", json=CHAT)
        assert chat.status_code == 200
        assert chat.json()["usage"]["prompt_tokens"] > 0
        assert held_load.loads == 0
        # The first request that needs a count starts the load and waits for it; one more waits for the
        # same load; the relay goes on answering meanwhile.
        counting = [pool.submit(http.post, "/v1/messages/count_tokens", json=COUNT) for _ in range(2)]
        while held_load.loads == 0:
            assert http.get("/health").status_code == 200
        assert http.post("/v1/chat/completions", json=CHAT).status_code == 200
        assert not any(request.done() for request in counting)
        held_load.release.set()
        counted = [request.result(timeout=30) for request in counting]
        assert [response.status_code for response in counted] == [200, 200]
        assert (
            counted[0].json()
            == counted[1].json()
            == http.post("/v1/messages/count_tokens", json=COUNT).json()
        )
    assert held_load.loads == 1


def models_calls(sim: SimulatorHandle) -> list[dict[str, Any]]:
    return [call for call in sim.requests() if call["path"] == "/models"]


def test_the_catalogue_is_fetched_at_start_up_so_the_first_chat_does_not_wait_for_it(
    simulator_server: BackgroundServer, sim: SimulatorHandle, tmp_path: Path
) -> None:
    settings = relay_settings(simulator_server.url, tmp_path, model_cache_ttl=300)
    with BackgroundServer(create_app(settings)) as relay:
        deadline = threading.Event()
        timer = threading.Timer(20, deadline.set)  # a bound, not a measurement
        timer.start()
        try:
            while len(models_calls(sim)) < len(SERVED_FEATURES):  # no request has been made yet
                assert not deadline.wait(0.05), "the catalogue was not fetched at start-up"
        finally:
            timer.cancel()
        fetched = len(models_calls(sim))
        chat = httpx.post(f"{relay.url}/v1/chat/completions", json=CHAT, headers=HEADERS, timeout=30)
        assert chat.status_code == 200
    assert len(models_calls(sim)) == fetched  # the chat found the model in the catalogue fetched at start


@pytest.fixture
def silent_upstream() -> Iterator[str]:
    """An upstream that accepts connections and never answers (a 1min.ai that hangs): its URL."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_the_relay_starts_while_1min_ai_hangs(silent_upstream: str, tmp_path: Path) -> None:
    env = {"ONEMIN_API_URL": silent_upstream, "ONEMIN_ASSET_URL": silent_upstream, "DATA_DIR": str(tmp_path)}
    with serve_process(env) as url:  # it answers /health: started, the catalogue fetch still hanging
        assert httpx.get(f"{url}/health").json()["status"] == "ok"


def test_the_relay_starts_and_lists_models_with_1min_ai_down(tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = {"ONEMIN_API_URL": down, "ONEMIN_ASSET_URL": down, "DATA_DIR": str(tmp_path)}
    with serve_process(env) as url:
        listed = httpx.get(f"{url}/v1/models", headers=HEADERS, timeout=30)
        assert listed.status_code == 200
        assert "gpt-4o-mini" in {model["id"] for model in listed.json()["data"]}  # the packaged snapshot
        chat = httpx.post(f"{url}/v1/chat/completions", json=CHAT, headers=HEADERS, timeout=30)
        assert chat.status_code >= 500
        assert set(chat.json()["error"]) == {"message", "type", "param", "code"}
