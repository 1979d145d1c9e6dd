"""The control API under `/_sim/`: arm faults, change the configuration, reset, read the request log."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from onemin_relay.simulator.gateway import key_hash, sim_state


def _bad(message: str) -> Response:
    return JSONResponse({"error": message}, 400)


async def _json_object(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def arm_fault(request: Request) -> Response:
    """`{"fault": "http-503", "times": 2, "path": "/api/"}`: the next 2 matching calls get the fault."""
    body = await _json_object(request)
    if body is None or not isinstance(body.get("fault"), str):
        return _bad('expected {"fault": "<name>[=<value>]", "times": <n>, "path": "<prefix>"}')
    times = body.get("times", 1)
    path = body.get("path", "/api/")
    if not isinstance(times, int) or isinstance(times, bool) or times < 1 or not isinstance(path, str):
        return _bad("times must be a positive integer and path a string")
    state = sim_state(request)
    try:
        state.faults.arm(body["fault"], times, path)
    except ValueError as exc:
        return _bad(str(exc))
    return JSONResponse({"armed": state.faults.snapshot()})


async def queue_answers(request: Request) -> Response:
    """`{"key": "<api key>", "answers": ["…", "…"]}`: that key's next chat calls answer these texts, in
    order (then the usual deterministic answers again). The key is hashed at once, never kept."""
    body = await _json_object(request)
    answers = body.get("answers") if body else None
    key = body.get("key") if body else None
    if (
        not isinstance(key, str)
        or not key
        or not isinstance(answers, list)
        or not all(isinstance(answer, str) and answer for answer in answers)
    ):
        return _bad('expected {"key": "<api key>", "answers": ["<non-empty text>", ...]}')
    try:
        waiting = sim_state(request).scripted.add(key_hash(key), answers)
    except ValueError as exc:
        return _bad(str(exc))
    return JSONResponse({"waiting": waiting})


async def list_faults(request: Request) -> Response:
    return JSONResponse({"armed": sim_state(request).faults.snapshot()})


async def update_config(request: Request) -> Response:
    """A partial configuration update, e.g. `{"legacy_chat": true, "faults": ["delay=20"]}`."""
    body = await _json_object(request)
    if body is None:
        return _bad("expected a JSON object of configuration fields")
    state = sim_state(request)
    try:
        state.configure(state.config.updated(body))
    except ValidationError as exc:
        return _bad("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
    return JSONResponse(state.config.model_dump(mode="json"))


async def show_config(request: Request) -> Response:
    return JSONResponse(sim_state(request).config.model_dump(mode="json"))


async def reset(request: Request) -> Response:
    sim_state(request).reset()
    return JSONResponse({"status": "reset"})


async def requests_log(request: Request) -> Response:
    """Calls received, oldest first; `?path=/api/chat` keeps those whose path starts with it."""
    prefix = request.query_params.get("path", "")
    items = [entry for entry in sim_state(request).log if entry["path"].startswith(prefix)]
    return JSONResponse({"requests": items})


routes = [
    Route("/_sim/faults", arm_fault, methods=["POST"]),
    Route("/_sim/faults", list_faults, methods=["GET"]),
    Route("/_sim/answers", queue_answers, methods=["POST"]),
    Route("/_sim/config", update_config, methods=["POST"]),
    Route("/_sim/config", show_config, methods=["GET"]),
    Route("/_sim/reset", reset, methods=["POST"]),
    Route("/_sim/requests", requests_log, methods=["GET"]),
]
