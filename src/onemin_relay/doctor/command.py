"""The `doctor` and `refresh-catalogue` subcommands: arguments, the key, the confirmation, the output.

The key comes from ONEMIN_API_KEY (or the first of the relay's own keys, ONEMIN_API_KEYS) or from a prompt
that does not echo it; it is only ever sent as the API-KEY header and shown nowhere (the report names it
by a hash).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from onemin_relay.config import ConfigError, Settings, load_settings

# The probes, the simulator's assumptions and the upstream client are imported by the commands that use
# them: every `1min-relay` command builds this parser, and `serve --workers N`'s supervising process needs
# none of them (docs/benchmarks.md, "Start-up and memory").
if TYPE_CHECKING:
    from onemin_relay.doctor.report import Item
    from onemin_relay.simulator.config import SimulatorConfig


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    help_text = "check a 1min.ai key and the simulator's assumptions against the live service"
    doctor = commands.add_parser("doctor", help=help_text, description=help_text + " (docs/doctor.md)")
    _add_service_arguments(doctor)
    doctor.add_argument(
        "--spend-credits", action="store_true", help="also make the smallest billed calls (asks first)"
    )
    doctor.add_argument("--yes", action="store_true", help="do not ask before spending credits")
    doctor.add_argument(
        "--probe-rate-limit",
        action="store_true",
        help="send free calls until one is rate-limited (the key stays limited for up to a minute)",
    )
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.add_argument(
        "--sim-config",
        metavar="JSON",
        help="compare with this simulator configuration (a /_sim/config body) instead of the defaults",
    )
    doctor.set_defaults(handler=cmd_doctor)

    help_text = "rewrite the shipped model catalogue snapshot from the live service"
    refresh = commands.add_parser("refresh-catalogue", help=help_text, description=help_text)
    _add_service_arguments(refresh)
    refresh.add_argument("--output", type=Path, help="file to write (default: the installed snapshot)")
    refresh.set_defaults(handler=cmd_refresh_catalogue)


def _add_service_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-url", help="1min.ai API base URL (default: ONEMIN_API_URL)")
    parser.add_argument("--asset-url", help="1min.ai asset CDN base URL (default: ONEMIN_ASSET_URL)")


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        name: value
        for name, value in (("onemin_api_url", args.api_url), ("onemin_asset_url", args.asset_url))
        if value is not None
    }
    return load_settings(**overrides)


def api_key(settings: Settings) -> str:
    """ONEMIN_API_KEY, else the relay's first own key (ONEMIN_API_KEYS or ONEMIN_API_KEYS_FILE), else
    asked for without echo."""
    key = os.environ.get("ONEMIN_API_KEY", "").strip()
    if not key and settings.onemin_api_keys:
        key = settings.onemin_api_keys[0]
    if not key:
        try:
            key = getpass.getpass("1min.ai API key (not shown): ", stream=sys.stderr).strip()
        except EOFError:
            key = ""
    if not key:
        raise ConfigError("no 1min.ai API key: set ONEMIN_API_KEY or type it at the prompt")
    return key


def _assumed(text: str | None) -> SimulatorConfig:
    from onemin_relay.simulator.config import SimulatorConfig

    if text is None:
        return SimulatorConfig()
    try:
        changes = json.loads(text)
        if not isinstance(changes, dict):
            raise ValueError("expected a JSON object")
        return SimulatorConfig().updated(changes)
    except (ValueError, ValidationError) as exc:
        raise ConfigError(f"--sim-config: {exc}") from None


async def _confirm(credits: int) -> bool:
    if not sys.stdin.isatty():
        print(f"Not spending about {credits} credits without --yes (no terminal to ask).", file=sys.stderr)
        return False
    print(
        f"The billed probes cost about {credits} credits. Spend them? [y/N] ",
        end="",
        file=sys.stderr,
        flush=True,
    )
    answer = await asyncio.to_thread(sys.stdin.readline)
    return answer.strip().lower() in ("y", "yes")


def _show_progress(item: Item) -> None:
    print(f"  {item.symbol} {item.title}", file=sys.stderr, flush=True)


def cmd_doctor(args: argparse.Namespace) -> None:
    from onemin_relay.doctor.report import render_table
    from onemin_relay.doctor.runner import Options, run_doctor

    settings = _settings(args)
    options = Options(args.spend_credits, args.yes, args.probe_rate_limit, _assumed(args.sim_config))
    key = api_key(settings)
    if not args.json:
        print(f"Probing {settings.onemin_api_url} …", file=sys.stderr, flush=True)
    report = asyncio.run(
        run_doctor(
            settings,
            key,
            options,
            progress=(lambda item: None) if args.json else _show_progress,
            confirm=_confirm,
        )
    )
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        print(render_table(report), end="")
    raise SystemExit(report.exit_code)


def cmd_refresh_catalogue(args: argparse.Namespace) -> None:
    from onemin_relay.doctor.catalogue import fetch_catalogue, write_snapshot
    from onemin_relay.simulator.catalogue import load_catalogue
    from onemin_relay.upstream.client import OneMinClient, RetryPolicy
    from onemin_relay.upstream.errors import UpstreamError

    settings = _settings(args)
    output = args.output or Path(str(resources.files("onemin_relay").joinpath("data", "catalogue.json")))
    features = list(load_catalogue())

    async def fetch() -> dict[str, list[dict[str, object]]]:
        client = OneMinClient(settings, retry=RetryPolicy(max_retries=settings.upstream_max_retries))
        try:
            return await fetch_catalogue(client, features)
        finally:
            await client.aclose()

    try:
        catalogue = asyncio.run(fetch())
    except (UpstreamError, ValueError) as exc:
        print(f"1min-relay: catalogue not refreshed, {output} left as it was: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    write_snapshot(catalogue, output)
    total = sum(len(entries) for entries in catalogue.values())
    print(f"Wrote {total} models of {len(catalogue)} features to {output}")
