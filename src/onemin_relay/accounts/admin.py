"""The admin HTTP API under /admin/: relay keys, the usage ledger, the upstream balance.

Off (404, as if it did not exist) unless ADMIN_TOKEN is set; then every call needs that token as
`Authorization: Bearer …` or `X-Admin-Token`, compared in constant time. Answers never carry a
secret: not the relay keys' (shown once, at creation), not an upstream key (only its short hash).
"""

from __future__ import annotations

import hmac
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from onemin_relay.accounts.keys import KeyRequest, RelayKey
from onemin_relay.accounts.store import revoke_key
from onemin_relay.accounts.usage import (
    FIELDS,
    GroupBy,
    UsageQuery,
    UsageRecord,
    day_of,
    month_of,
    rows_csv,
    summarise,
    usage_query,
)
from onemin_relay.api.common import read_json, relay
from onemin_relay.errors import OpenAIError, invalid_request, not_found, validate
from onemin_relay.fastjson import JSONResponse

if TYPE_CHECKING:
    from onemin_relay.app import RelayContext

_MAX_RECORDS_SHOWN = 10_000


def require_admin(request: Request) -> None:
    token = relay(request).settings.admin_token
    if not token:
        raise OpenAIError(
            404, f"Unknown request URL: {request.method} {request.url.path}.", code="unknown_url"
        )
    header = request.headers.get("authorization", "")
    given = (
        header[7:].strip() if header[:7].lower() == "bearer " else request.headers.get("x-admin-token", "")
    )
    if not hmac.compare_digest(given.encode("utf-8", "replace"), token.encode("utf-8")):
        raise OpenAIError(
            401, "The admin API needs the relay's ADMIN_TOKEN as a bearer token.", code="invalid_admin_token"
        )


async def list_keys(request: Request) -> Response:
    require_admin(request)
    context = relay(request)
    keys = await context.accounts.list_keys()
    return JSONResponse({"object": "list", "data": [await _with_spend(context, key) for key in keys]})


async def _with_spend(context: RelayContext, key: RelayKey) -> dict[str, Any]:
    day, month = await context.ledger.spent(key.id)
    return {**key.public(), "spent_today": round(day, 4), "spent_this_month": round(month, 4)}


async def create_key(request: Request) -> Response:
    require_admin(request)
    spec = validate(KeyRequest, await read_json(request))
    key, secret = spec.issue()
    await relay(request).accounts.put_key(key)
    return JSONResponse({**key.public(), "key": secret}, status_code=201)


async def show_key(request: Request) -> Response:
    require_admin(request)
    context = relay(request)
    key = await context.accounts.key_by_id(request.path_params["key_id"])
    if key is None:
        raise not_found(f"No such relay key: {request.path_params['key_id'][:64]}")
    return JSONResponse(await _with_spend(context, key))


async def revoke(request: Request) -> Response:
    require_admin(request)
    context = relay(request)
    key = await revoke_key(context.accounts, request.path_params["key_id"])
    if key is None:
        raise not_found(f"No such relay key: {request.path_params['key_id'][:64]}")
    context.authenticator.forget(key)
    return JSONResponse(key.public())


async def usage(request: Request) -> Response:
    """Totals, optionally grouped by key, model, day or endpoint; `format=csv` for a spreadsheet."""
    require_admin(request)
    query, group_by = _query(request)
    rows = summarise(await _records(request, query), group_by)
    if request.query_params.get("format") == "csv":
        return _csv(rows_csv(rows, rows[0].keys() if rows else ["group"]), "usage.csv")
    return JSONResponse({"object": "list", "group_by": group_by, "data": rows})


async def usage_records(request: Request) -> Response:
    """The ledger's records themselves (the newest `limit`, oldest first); `format=csv` to export."""
    require_admin(request)
    query, _ = _query(request)
    records = await _records(request, query)
    limit = request.query_params.get("limit", "")
    shown = records[-int(limit) :] if limit.isdigit() and 0 < int(limit) <= _MAX_RECORDS_SHOWN else records
    rows: list[dict[str, Any]] = [record.__dict__ for record in shown]
    if request.query_params.get("format") == "csv":
        return _csv(rows_csv(rows, FIELDS), "usage-records.csv")
    return JSONResponse({"object": "list", "data": rows[-_MAX_RECORDS_SHOWN:]})


async def balance(request: Request) -> Response:
    """1min.ai's credit balance per upstream key, as the last record 1min.ai sent reported it."""
    require_admin(request)
    context = relay(request)
    now = time.time()
    return JSONResponse(
        {
            "object": "list",
            "today": day_of(now),
            "month": month_of(now),
            "auth_mode": context.settings.auth_mode,
            "data": [report.public() for report in context.upstream.balances()],
        }
    )


async def _records(request: Request, query: UsageQuery) -> list[UsageRecord]:
    context = relay(request)
    await context.ledger.flush()  # what this relay has queued shows at once
    return await context.accounts.usage(query)


def _query(request: Request) -> tuple[UsageQuery, GroupBy | None]:
    try:
        return usage_query(request.query_params)
    except ValueError as exc:
        raise invalid_request(str(exc), code="invalid_value") from None


def _csv(text: str, filename: str) -> Response:
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


routes: list[BaseRoute] = [
    Route("/admin/keys", list_keys, methods=["GET"]),
    Route("/admin/keys", create_key, methods=["POST"]),
    Route("/admin/keys/{key_id}", show_key, methods=["GET"]),
    Route("/admin/keys/{key_id}", revoke, methods=["DELETE"]),
    Route("/admin/keys/{key_id}/revoke", revoke, methods=["POST"]),
    Route("/admin/usage", usage, methods=["GET"]),
    Route("/admin/usage/records", usage_records, methods=["GET"]),
    Route("/admin/balance", balance, methods=["GET"]),
]
