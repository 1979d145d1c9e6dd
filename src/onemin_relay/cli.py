"""The `1min-relay` command: serve the relay, run the simulator, a self-contained demo, or the doctor."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from starlette.types import ASGIApp

from onemin_relay import __version__
from onemin_relay.accounts.cli import add_keys_command
from onemin_relay.config import ConfigError, Settings, load_settings
from onemin_relay.doctor.command import add_commands as add_doctor_commands
from onemin_relay.metrics import multiprocess_dir
from onemin_relay.observability import configure_logging
from onemin_relay.serving import (
    BackgroundServer,
    bind_socket,
    raise_open_file_limit,
    serve_workers,
    url_of,
    uvicorn_server,
)

DEMO_KEY = "demo-key"
_SPARE_FILES = 256  # log files, the state store, the listening socket, the tokeniser's file, …

log = logging.getLogger("onemin_relay")


@contextmanager
def _listening_on(host: str, port: int) -> Iterator[None]:
    """Binding errors (port taken, address not on this machine, privileged port) as a ConfigError."""
    try:
        yield
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _listen(host: str, port: int) -> socket.socket:
    with _listening_on(host, port):
        return bind_socket(host, port)


def _relay_app(settings: Settings) -> ASGIApp:
    """The relay, imported here rather than at the top: the supervising process of `serve --workers N`
    never builds it, and leaves its ~70 MB of modules to the workers."""
    from onemin_relay.app import create_app

    return create_app(settings)


def _serve_forever(app: ASGIApp, sock: socket.socket, log_level: str) -> None:
    uvicorn_server(app, log_level=log_level).run(sockets=[sock])  # on uvloop (Server.run picks the loop)


def _settings(args: argparse.Namespace, **extra: object) -> Settings:
    overrides = {
        name: value for name, value in (("host", args.host), ("port", args.port)) if value is not None
    }
    return load_settings(**overrides, **extra)


def cmd_serve(args: argparse.Namespace) -> None:
    settings = _settings(args)
    configure_logging(settings.log_level)
    workers = args.workers if args.workers is not None else settings.web_concurrency
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    _check_capacity(settings)
    sock = _listen(settings.host, settings.port)
    print(f"1min-relay {__version__} serving the OpenAI API on {url_of(sock)}/v1", flush=True)
    if workers == 1:
        _serve_forever(_relay_app(settings), sock, settings.log_level)
        return
    with _metrics_shared_by_workers():
        serve_workers("onemin_relay.cli:worker_app", sock, workers, log_level=settings.log_level)


def _check_capacity(settings: Settings) -> None:
    """Open files enough for UPSTREAM_MAX_IN_FLIGHT calls (raised if the hard limit allows), and a word
    to an operator who still sets the retired UPSTREAM_MAX_CONNECTIONS."""
    wanted = 2 * settings.upstream_max_in_flight + _SPARE_FILES
    if (limit := raise_open_file_limit(wanted)) < wanted:
        log.warning(
            "open-file limit %d is below the %d that UPSTREAM_MAX_IN_FLIGHT=%d needs: raise `ulimit -n` "
            "or lower UPSTREAM_MAX_IN_FLIGHT, or busy moments will fail with connection errors",
            limit,
            wanted,
            settings.upstream_max_in_flight,
        )
    if settings.upstream_max_connections is not None:
        log.warning(
            "UPSTREAM_MAX_CONNECTIONS is no longer read: the upstream pool has no cap, and "
            "UPSTREAM_MAX_IN_FLIGHT (now %d) caps the calls in flight with an immediate 503",
            settings.upstream_max_in_flight,
        )


def worker_app() -> ASGIApp:
    """The app of one `serve --workers N` process: the same settings (environment and .env) as its parent."""
    settings = load_settings()
    configure_logging(settings.log_level)
    return _relay_app(settings)


@contextmanager
def _metrics_shared_by_workers() -> Iterator[None]:
    """`/metrics` must count every worker's requests, whichever worker is scraped: without an operator's
    PROMETHEUS_MULTIPROC_DIR, the workers share a fresh temporary one (prometheus-client's multiprocess
    mode)."""
    if multiprocess_dir() is not None:
        yield
        return
    with tempfile.TemporaryDirectory(prefix="1min-relay-metrics-") as directory:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory  # inherited by the workers, read at their import
        try:
            yield
        finally:
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]


def _simulator_app() -> ASGIApp:
    """The simulator with its default configuration; imported here, since `serve` never needs it."""
    from onemin_relay.simulator.app import create_simulator_app
    from onemin_relay.simulator.config import SimulatorConfig

    return create_simulator_app(SimulatorConfig())


def cmd_simulate(args: argparse.Namespace) -> None:
    settings = _settings(args)
    configure_logging(settings.log_level)
    host = args.host or "127.0.0.1"
    sock = _listen(host, args.port if args.port is not None else 5002)
    print(f"1min.ai simulator listening on {url_of(sock)} (API-KEY: any non-empty key)", flush=True)
    _serve_forever(_simulator_app(), sock, settings.log_level)


@dataclass(frozen=True)
class Snippet:
    """One thing to try, printed flush-left so it runs as pasted into a shell."""

    title: str
    command: str


def demo_snippets(base_url: str, python: str = sys.executable) -> list[Snippet]:
    """What the demo suggests trying, in order; `python` is an interpreter that has the openai SDK."""
    hello = '[{"role": "user", "content": "Hello!"}]'
    return [
        Snippet(
            "With curl:",
            f"curl -s {base_url}/v1/chat/completions \\\n"
            f'  -H "Authorization: Bearer {DEMO_KEY}" -H "Content-Type: application/json" \\\n'
            f'  -d \'{{"model": "gpt-4o-mini", "messages": {hello}}}\'',
        ),
        Snippet(
            "With the OpenAI Python SDK, run by this install's own Python (it has the SDK):",
            f"{shlex.quote(python)} - <<'EOF'\n"
            "from openai import OpenAI\n"
            f'client = OpenAI(base_url="{base_url}/v1", api_key="{DEMO_KEY}")\n'
            f'reply = client.chat.completions.create(model="gpt-4o-mini", messages={hello})\n'
            "print(reply.choices[0].message.content)\n"
            "EOF",
        ),
        Snippet(
            "With a tool call (emulated, docs/tools.md; the [[sim:answer=…]] magic word makes the simulator "
            "write the call):",
            f"{shlex.quote(python)} - <<'EOF'\n"
            "from openai import OpenAI\n"
            f'client = OpenAI(base_url="{base_url}/v1", api_key="{DEMO_KEY}")\n'
            'city = {"type": "object", "properties": {"city": {"type": "string"}}}\n'
            'tool = {"type": "function", "function": {"name": "get_weather", "parameters": city}}\n'
            'call = \'<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>\'\n'
            'ask = f"Weather in Paris? [[sim:answer={call}]]"\n'
            "reply = client.chat.completions.create(\n"
            '    model="gpt-4o-mini", tools=[tool], messages=[{"role": "user", "content": ask}]\n'
            ")\n"
            "print(reply.choices[0].message.tool_calls)\n"
            "EOF",
        ),
    ]


def demo_banner(base_url: str, simulator_url: str) -> str:
    """What `demo` prints: the base URL and snippets that work as pasted (each a block after its title)."""
    tries = "\n\n".join(f"{snippet.title}\n\n{snippet.command}" for snippet in demo_snippets(base_url))
    return f"""
1min-relay demo — the relay is running in front of a local 1min.ai simulator (no 1min.ai key needed).

OpenAI base URL:  {base_url}/v1
API key:          {DEMO_KEY}   (any non-empty key works with the simulator)
Simulator:        {simulator_url}

Paste any of these into a shell (bash, zsh).

{tries}

Press Ctrl+C to stop. The same addresses next time: `1min-relay demo --port {urlsplit(base_url).port} \
--simulator-port {urlsplit(simulator_url).port}` (or `make demo PORT=… SIMULATOR_PORT=…`).
"""


def _demo_port(args: argparse.Namespace) -> int:
    """--port, else PORT (environment or .env), else 0: a free port, different each run."""
    if args.port is not None:
        port: int = args.port
        return port
    configured = load_settings()
    return configured.port if "port" in configured.model_fields_set else 0


def cmd_demo(args: argparse.Namespace) -> None:
    host = args.host or "127.0.0.1"
    port = _demo_port(args)
    with tempfile.TemporaryDirectory(prefix="1min-relay-demo-") as data_dir:
        simulator_port = args.simulator_port or 0
        with _listening_on(host, simulator_port):
            simulator = BackgroundServer(_simulator_app(), host, simulator_port)
        with simulator:
            settings = load_settings(
                host=host,
                port=port,
                onemin_api_url=simulator.url,
                onemin_asset_url=f"{simulator.url}/cdn",
                data_dir=Path(data_dir),
                state_url="",
            )
            configure_logging(settings.log_level)
            sock = _listen(host, port)
            print(demo_banner(url_of(sock), simulator.url), flush=True)
            _serve_forever(_relay_app(settings), sock, settings.log_level)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="1min-relay",
        description="An OpenAI-compatible API in front of 1min.ai. Configuration comes from environment "
        "variables (and a .env file); see the README for the full table.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, handler, help_text in (
        ("serve", cmd_serve, "serve the relay (HOST/PORT from the environment, default 127.0.0.1:5001)"),
        ("simulate", cmd_simulate, "run the 1min.ai simulator alone (default 127.0.0.1:5002)"),
        (
            "demo",
            cmd_demo,
            "run the relay in front of an embedded simulator (port: --port, else PORT, else a free one)",
        ),
    ):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--host", help="address to listen on")
        sub.add_argument("--port", type=int, help="port to listen on (0 picks a free one)")
        if name == "serve":
            sub.add_argument(
                "--workers", type=int, help="worker processes (default: WEB_CONCURRENCY, else 1)"
            )
        if name == "demo":
            sub.add_argument(
                "--simulator-port", type=int, help="port of the embedded simulator (default: a free one)"
            )
        sub.set_defaults(handler=handler)
    add_doctor_commands(commands)
    add_keys_command(commands, load_settings)
    return parser


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # uvicorn catches SIGTERM, shuts down gracefully, then raises the signal again; exiting through an
    # exception (not the default handler's instant death) lets `demo` stop its simulator and remove its
    # temporary data directory.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        args.handler(args)
    except ConfigError as exc:
        print(f"1min-relay: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
