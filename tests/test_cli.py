"""The `1min-relay` command as a newcomer uses it."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from onemin_relay import __version__

COMMAND = [sys.executable, "-m", "onemin_relay.cli"]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}
    )


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert __version__ in result.stdout


@pytest.mark.parametrize(
    "args", [["--help"], ["serve", "--help"], ["simulate", "--help"], ["demo", "--help"]]
)
def test_help_everywhere(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.returncode == 0
    assert "usage: 1min-relay" in result.stdout


def test_invalid_configuration_names_the_variable_and_exits_non_zero() -> None:
    result = run_cli("serve", env={"UPSTREAM_TIMEOUT": "soon"})
    assert result.returncode == 2
    assert "UPSTREAM_TIMEOUT" in result.stderr


def test_serve_announces_the_address_it_actually_listens_on(tmp_path: Path) -> None:
    env = {**os.environ, "DATA_DIR": str(tmp_path)}
    process = subprocess.Popen(
        [*COMMAND, "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    try:
        banner = process.stdout.readline()
        match = re.search(r"on (http://127\.0\.0\.1:(\d+))/v1$", banner.strip())
        assert match, banner
        assert int(match.group(2)) > 0  # port 0 asked the system for one: say which
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(f"{match.group(1)}/health").json() == {"status": "ok"}
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.05)
    finally:
        process.terminate()
        process.wait(timeout=20)
        process.stdout.close()


def test_serve_on_a_taken_port_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--port", str(port), env={"DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


@contextmanager
def running_demo(env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A running `1min-relay demo` and what it printed up to its curl example; stopped with SIGTERM."""
    process = subprocess.Popen(
        [*COMMAND, "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    printed = []
    deadline = time.monotonic() + 60
    try:
        for line in process.stdout:
            printed.append(line)
            if line.startswith("Press Ctrl+C") or time.monotonic() > deadline:
                break
        yield process, "".join(printed)
    finally:
        process.terminate()
        process.wait(timeout=20)
        process.stdout.close()


@pytest.fixture
def demo() -> Iterator[str]:
    with running_demo() as (_, printed):
        yield printed


def test_demo_prints_a_curl_that_gets_an_answer(demo: str) -> None:
    match = re.search(r"^  (curl .*?)\n\n", demo, re.DOTALL | re.MULTILINE)
    assert match, demo
    curl = match.group(1).replace("\\\n", " ")
    answer = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=60, check=True)
    reply = json.loads(answer.stdout)
    assert reply["object"] == "chat.completion"
    assert reply["choices"][0]["message"]["content"]


def test_demo_prints_a_tool_call_example_that_calls_the_tool(demo: str) -> None:
    match = re.search(r"^A tool call.*?\n\n(.*?)\n\n", demo, re.DOTALL | re.MULTILINE)
    assert match, demo
    snippet = textwrap.dedent(match.group(1))
    ran = subprocess.run(
        [sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60, check=True
    )
    assert "ChatCompletionMessageFunctionToolCall" in ran.stdout
    assert "name='get_weather'" in ran.stdout
    assert 'arguments=\'{"city": "Paris"}\'' in ran.stdout


def test_demo_stopped_by_sigterm_removes_its_temporary_data(tmp_path: Path) -> None:
    with running_demo(env={"TMPDIR": str(tmp_path)}) as (process, printed):
        assert "Press Ctrl+C" in printed
        assert list(tmp_path.iterdir())  # the demo's data directory, with its SQLite state
    assert process.returncode == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []
