"""The `1min-relay` command as a newcomer uses it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from onemin_relay import __version__
from onemin_relay.simulator.answers import expected_answer
from tests.harness import serve_process
from tests.servers import free_port

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
    with serve_process({"DATA_DIR": str(tmp_path)}) as url:  # the address it printed answers /health
        assert int(url.rsplit(":", 1)[1]) > 0  # port 0 asked the system for one: say which
        assert httpx.get(f"{url}/health").json()["status"] == "ok"


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
def running_demo(
    env: dict[str, str] | None = None, args: Sequence[str] = ()
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A running `1min-relay demo` and what it printed up to "Press Ctrl+C"; stopped with SIGTERM."""
    process = subprocess.Popen(
        [*COMMAND, "demo", *args],
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


def printed_snippets(printed: str) -> list[str]:
    """The commands the demo offers: each block that follows a one-line title ending with a colon."""
    blocks = printed.split("\n\n")
    return [
        command
        for title, command in itertools.pairwise(blocks)
        if title.startswith("With ") and title.endswith(":") and "\n" not in title
    ]


def run_pasted(snippet: str, folder: Path) -> str:
    """Run a snippet as a user pasting it would: in bash, in another folder, with no virtualenv on PATH
    (so the snippet itself must say which interpreter has the SDK)."""
    ran = subprocess.run(
        ["bash", "-c", snippet],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=folder,
        env={"PATH": "/usr/bin:/bin", "HOME": str(folder)},
    )
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


def test_demo_snippets_run_as_pasted_in_a_fresh_shell(demo: str, tmp_path: Path) -> None:
    curl, python, _ = printed_snippets(demo)
    assert curl.startswith("curl ")
    assert python.startswith(f"{sys.executable} - <<'EOF'\n")
    reply = json.loads(run_pasted(curl, tmp_path))
    assert reply["choices"][0]["message"]["content"] == expected_answer("Hello!")
    assert run_pasted(python, tmp_path) == expected_answer("Hello!") + "\n"


def test_demo_listens_where_it_is_told_so_its_urls_survive_a_restart() -> None:
    relay_port, simulator_port = free_port(), free_port()
    with running_demo(env={"PORT": str(relay_port)}, args=["--simulator-port", str(simulator_port)]) as (
        _,
        printed,
    ):
        assert f"OpenAI base URL:  http://127.0.0.1:{relay_port}/v1" in printed
        assert f"Simulator:        http://127.0.0.1:{simulator_port}" in printed
    other = free_port()
    with running_demo(args=["--port", str(other)]) as (_, printed):
        assert f"http://127.0.0.1:{other}/v1" in printed


def test_make_demo_says_it_is_installing_on_the_first_run() -> None:
    # -n prints what would run; -W pretends pyproject.toml changed, as on a fresh clone.
    result = subprocess.run(
        ["make", "-n", "-W", "pyproject.toml", "demo"],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Installing 1min-relay and its dependencies" in result.stdout


def test_demo_prints_a_tool_call_example_that_calls_the_tool(demo: str, tmp_path: Path) -> None:
    printed = run_pasted(printed_snippets(demo)[2], tmp_path)
    assert "ChatCompletionMessageFunctionToolCall" in printed
    assert "name='get_weather'" in printed
    assert 'arguments=\'{"city": "Paris"}\'' in printed


def test_demo_stopped_by_sigterm_removes_its_temporary_data(tmp_path: Path) -> None:
    with running_demo(env={"TMPDIR": str(tmp_path)}) as (process, printed):
        assert "Press Ctrl+C" in printed
        assert list(tmp_path.iterdir())  # the demo's data directory, with its SQLite state
    assert process.returncode == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []


def test_serve_with_two_workers_answers_from_both_and_metrics_count_them_together(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {"DATA_DIR": str(tmp_path / "data"), "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}

    def workers_that_answered() -> set[str]:  # prometheus-client writes one file per process that counted
        return {path.stem.rsplit("_", 1)[1] for path in metrics_dir.glob("*.db")}

    with serve_process(env, "--workers", "2") as url:
        sent = 1  # serve_process's own /health
        with ThreadPoolExecutor(8) as pool:
            # Fresh connections, several at once, until the kernel has handed some to each worker (bounded).
            while len(workers_that_answered()) < 2 and sent < 2000:
                list(pool.map(lambda _: httpx.get(f"{url}/health").raise_for_status(), range(16)))
                sent += 16
        assert len(workers_that_answered()) == 2
        scraped = httpx.get(f"{url}/metrics").text
    health = [
        float(line.rsplit(" ", 1)[1])
        for line in scraped.splitlines()
        if line.startswith("onemin_relay_requests_total{") and 'route="/health"' in line
    ]
    assert sum(health) == sent  # whichever worker answered the scrape counted both workers' requests


async def _answered_on_open_connections(url: str, count: int) -> int:
    """Opens `count` connections at once, asks /health on each while all stay open: how many answered."""
    host, port = url.removeprefix("http://").split(":")
    connections = [await asyncio.open_connection(host, int(port)) for _ in range(count)]
    try:
        for _, writer in connections:
            writer.write(b"GET /health HTTP/1.1\r\nHost: relay\r\n\r\n")

        async def status(reader: asyncio.StreamReader) -> bytes:
            with contextlib.suppress(TimeoutError, ConnectionError):
                async with asyncio.timeout(20):
                    return await reader.readline()
            return b""

        lines = await asyncio.gather(*(status(reader) for reader, _ in connections))
        return sum(line.startswith(b"HTTP/1.1 200") for line in lines)
    finally:
        for _, writer in connections:
            writer.close()


def test_serve_raises_a_low_open_file_limit_to_hold_the_connections_its_calls_need(tmp_path: Path) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2 * 300 + 256:
        pytest.skip(f"this machine's hard limit on open files ({hard}) is too low for the test")
    env = {"DATA_DIR": str(tmp_path / "data"), "UPSTREAM_MAX_IN_FLIGHT": "300"}
    log = tmp_path / "serve.log"
    # Started with room for 128 open files, it raises its own limit to two per call in flight and more.
    with serve_process(env, log=log, open_files=(128, hard)) as url:
        assert asyncio.run(_answered_on_open_connections(url, 400)) == 400
    assert "open-file limit" not in log.read_text()


def test_serve_warns_of_an_open_file_limit_it_cannot_raise_and_of_the_retired_pool_setting(
    tmp_path: Path,
) -> None:
    env = {"DATA_DIR": str(tmp_path / "data"), "UPSTREAM_MAX_CONNECTIONS": "200"}
    log = tmp_path / "serve.log"
    with serve_process(env, log=log, open_files=(512, 512)) as url:
        assert httpx.get(f"{url}/health").status_code == 200  # it serves all the same
    text = log.read_text()
    assert "open-file limit 512 is below the 4352 that UPSTREAM_MAX_IN_FLIGHT=2048 needs" in text
    assert "UPSTREAM_MAX_CONNECTIONS is no longer read" in text
