"""`1min-relay keys …`: relay keys and usage from the command line, on the configured state store."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from onemin_relay.config import ConfigError, Settings

# The stores and the key and usage models are imported by the actions (see doctor/command.py for why).
if TYPE_CHECKING:
    from onemin_relay.accounts.store import AccountStore

Command = Callable[["AccountStore", argparse.Namespace], Awaitable[None]]


def add_keys_command(commands: Any, settings: Callable[[], Settings]) -> None:
    """Register `keys` and its sub-commands on the top-level parser's sub-parsers."""
    keys = commands.add_parser(
        "keys", help="create, list, show and revoke relay keys; see usage", description=__doc__
    )
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")

    create = actions.add_parser("create", help="create a key (its secret is printed once)")
    create.add_argument("name")
    create.add_argument(
        "--models", default="", help="comma-separated model patterns, e.g. 'gpt-4o*,claude-*'"
    )
    create.add_argument("--rate-limit", default="", help="e.g. 60/minute")
    create.add_argument("--daily-budget", type=float, help="credits per UTC day")
    create.add_argument("--monthly-budget", type=float, help="credits per UTC month")
    create.add_argument("--expires-in-days", type=float)
    create.set_defaults(keys_handler=_create)

    actions.add_parser("list", help="every key, with its state").set_defaults(keys_handler=_list)
    for name, handler, help_text in (
        ("show", _show, "one key and its spend"),
        ("revoke", _revoke, "revoke a key"),
    ):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("key_id")
        action.set_defaults(keys_handler=handler)

    usage = actions.add_parser("usage", help="the usage ledger's totals (or records with --records)")
    usage.add_argument("--since", help="date (2026-11-29), UTC time or unix seconds; default 30 days ago")
    usage.add_argument("--until")
    usage.add_argument("--key", help="a relay key id (rk_…) or a passthrough key hash")
    usage.add_argument("--model")
    usage.add_argument("--group-by", choices=["key", "model", "day", "endpoint"])
    usage.add_argument("--records", action="store_true", help="the records themselves, not totals")
    usage.add_argument("--csv", action="store_true", help="CSV instead of JSON")
    usage.set_defaults(keys_handler=_usage)

    keys.set_defaults(handler=lambda args: asyncio.run(_run(settings(), args.keys_handler, args)))


async def _run(settings: Settings, command: Command, args: argparse.Namespace) -> None:
    from onemin_relay.accounts.factory import open_accounts

    store = await open_accounts(settings)
    try:
        await command(store, args)
    finally:
        await store.aclose()


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


async def _create(store: AccountStore, args: argparse.Namespace) -> None:
    from onemin_relay.accounts.keys import KeyRequest

    try:
        spec = KeyRequest(
            name=args.name,
            models=[pattern.strip() for pattern in args.models.split(",") if pattern.strip()],
            rate_limit=args.rate_limit,
            daily_budget=args.daily_budget,
            monthly_budget=args.monthly_budget,
            expires_in_days=args.expires_in_days,
        )
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise ConfigError(
            f"--{'-'.join(str(p) for p in problem['loc']).replace('_', '-')}: {problem['msg']}"
        ) from None
    key, secret = spec.issue()
    await store.put_key(key)
    print(f"Relay key for {key.name} (shown only now, keep it safe):\n\n  {secret}\n", file=sys.stderr)
    _print({**key.public(), "key": secret})


async def _list(store: AccountStore, args: argparse.Namespace) -> None:
    for key in await store.list_keys():
        budgets = " ".join(
            f"{label}={value:g}"
            for label, value in (("daily", key.daily_budget), ("monthly", key.monthly_budget))
            if value is not None
        )
        print(f"{key.id}  {key.state():8}  {key.hint}  {key.name}  {budgets}".rstrip())


async def _show(store: AccountStore, args: argparse.Namespace) -> None:
    from onemin_relay.accounts.usage import periods_of

    key = await store.key_by_id(args.key_id)
    if key is None:
        raise ConfigError(f"no relay key {args.key_id}")
    day, month = await store.spent(key.id, periods_of(time.time()))
    _print({**key.public(), "spent_today": round(day, 4), "spent_this_month": round(month, 4)})


async def _revoke(store: AccountStore, args: argparse.Namespace) -> None:
    from onemin_relay.accounts.store import revoke_key

    key = await revoke_key(store, args.key_id)
    if key is None:
        raise ConfigError(f"no relay key {args.key_id}")
    print(f"revoked {key.id} ({key.name}); relays refuse it within seconds", file=sys.stderr)


async def _usage(store: AccountStore, args: argparse.Namespace) -> None:
    from onemin_relay.accounts.usage import FIELDS, rows_csv, summarise, usage_query

    filters = {name: getattr(args, name) or "" for name in ("since", "until", "key", "model", "group_by")}
    try:
        query, group_by = usage_query(filters)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    records = await store.usage(query)
    rows = [record.__dict__ for record in records] if args.records else summarise(records, group_by)
    if not args.csv:
        _print(rows)
    else:
        columns = FIELDS if args.records else (rows[0].keys() if rows else ["group"])
        print(rows_csv(rows, columns), end="")
