"""Shared end-to-end plumbing: a simulator and relays on real loopback sockets, and the keys tests use."""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from onemin_relay.app import create_app
from onemin_relay.config import Settings
from onemin_relay.serving import BackgroundServer

# Keys the test simulator accepts; anything else is rejected upstream with 401.
KEY_A = "sk-test-alice-000000000001"
KEY_B = "sk-test-bob-00000000000002"
KEY_C = "sk-test-carol-000000000003"
KNOWN_KEYS = frozenset({KEY_A, KEY_B, KEY_C})
UNKNOWN_KEY = "sk-test-nobody-0000000009"


# Makes an in-process simulator client with the given SimulatorConfig fields (the `make_api` fixture).
SimulatorFactory = Callable[..., httpx.AsyncClient]


class SimulatorHandle:
    """The running simulator plus its control API (`/_sim/...`)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=30)

    def reset(self) -> None:
        self.http.post("/_sim/reset").raise_for_status()

    def set_fault(self, fault: str, times: int = 1) -> None:
        """Make the next `times` upstream calls fail with `fault` (e.g. "http-503")."""
        self.http.post("/_sim/faults", json={"fault": fault, "times": times}).raise_for_status()

    def queue_answers(self, *answers: str, key: str = KEY_A) -> None:
        """Make `key`'s next chat calls answer these texts, in order (a scripted model)."""
        self.http.post("/_sim/answers", json={"key": key, "answers": list(answers)}).raise_for_status()

    def configure(self, **changes: Any) -> None:
        self.http.post("/_sim/config", json=changes).raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        """What the simulator received, oldest first (the relay's upstream calls)."""
        response = self.http.get("/_sim/requests")
        response.raise_for_status()
        body = response.json()
        items: list[dict[str, Any]] = body["requests"] if isinstance(body, dict) else body
        return items

    def close(self) -> None:
        self.http.close()


def relay_settings(simulator_url: str, data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a relay talking to the simulator, ignoring the developer's environment and .env."""
    values: dict[str, Any] = {
        "onemin_api_url": simulator_url,
        "onemin_asset_url": f"{simulator_url}/cdn",
        "data_dir": data_dir,
        "upstream_max_retries": 0,
        "model_cache_ttl": 0,
        **overrides,
    }
    return Settings(_env_file=None, **values)


def upstream_settings(url: str, **overrides: Any) -> Settings:
    """Settings for an upstream client aimed at a test server: short timeouts, nothing from the env."""
    values: dict[str, Any] = {
        "onemin_api_url": url,
        "onemin_asset_url": f"{url}/cdn",
        "upstream_timeout": 5.0,
        "upstream_media_timeout": 5.0,
        "upstream_connect_timeout": 5.0,
        **overrides,
    }
    return Settings(_env_file=None, **values)


@contextmanager
def running_relay(settings: Settings) -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(settings)) as server:
        yield server


@contextmanager
def serve_process(
    env: dict[str, str], *args: str, log: Path | None = None, open_files: tuple[int, int] | None = None
) -> Iterator[str]:
    """`1min-relay serve --port 0 [args]` in its own process with `env` added, until it answers /health:
    its URL. Stopped with SIGTERM (a graceful shutdown) when the block ends. `log` receives its stderr;
    `open_files` is the (soft, hard) limit on open files it starts with."""
    with open(log or os.devnull, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "onemin_relay.cli", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, **env},
            preexec_fn=None
            if open_files is None
            else lambda: resource.setrlimit(resource.RLIMIT_NOFILE, open_files),
        )
    assert process.stdout is not None
    try:
        banner = process.stdout.readline()
        match = re.search(r"on (http://127\.0\.0\.1:\d+)/v1$", banner.strip())
        assert match, banner
        deadline = time.monotonic() + 30
        while True:
            try:
                # The socket listens before the app is up: a slow start must not time this request out and
                # send a second one (a test may count the /health requests).
                httpx.get(f"{match.group(1)}/health", timeout=30)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.05)
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=20)
        process.stdout.close()
