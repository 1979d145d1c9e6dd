"""Real redis-server and memcached processes on free loopback ports, for state and rate-limit tests.

`tests/conftest.py` loads these fixtures for every test module. Servers keep nothing on disk and are
killed at teardown. A missing binary skips the test with a loud reason, except under CI (the `CI`
environment variable is set), where it fails: CI installs both.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

_START_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Terminate `process`, killing it if it has not exited within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        reason = (
            f"`{name}` is not installed: tests that need a real {name} cannot run (apt-get install {name})"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


class ServerProcess:
    """One server on a fixed loopback port that a test can stop and start again (an outage)."""

    def __init__(self, name: str, command: Callable[[int], list[str]], scheme: str) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self._command = command(self.port)
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(self._command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                error = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                raise RuntimeError(f"{self.name} exited at start: {error.strip()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{self.name} did not listen on port {self.port} within {_START_TIMEOUT}s")

    def stop(self) -> None:
        if self._process is None:
            return
        stop_process(self._process)
        if self._process.stderr:
            self._process.stderr.close()
        self._process = None


def _redis_command(binary: str) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        return [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]

    return command


def _memcached_command(binary: str) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        # memcached refuses to run as root unless told which user to be.
        user = ["-u", getpass.getuser()] if os.geteuid() == 0 else []
        return [binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "64", *user]

    return command


@contextmanager
def running(server: ServerProcess) -> Iterator[ServerProcess]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


def redis_process() -> ServerProcess:
    return ServerProcess("redis-server", _redis_command(require_binary("redis-server")), "redis")


def memcached_process() -> ServerProcess:
    return ServerProcess("memcached", _memcached_command(require_binary("memcached")), "memcached")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[ServerProcess]:
    """One Redis for the session; tests keep apart by using their own owners and keys."""
    with running(redis_process()) as server:
        yield server


@pytest.fixture(scope="session")
def memcached_server() -> Iterator[ServerProcess]:
    with running(memcached_process()) as server:
        yield server


@pytest.fixture
def own_redis() -> Iterator[ServerProcess]:
    """A Redis for one test alone: for tests that stop it (outages)."""
    with running(redis_process()) as server:
        yield server


@pytest.fixture
def own_memcached() -> Iterator[ServerProcess]:
    with running(memcached_process()) as server:
        yield server
