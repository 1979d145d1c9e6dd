"""The usage ledger and budgets: every call recorded with its credits, totals equal to what 1min.ai (the
simulator) billed, budgets enforced before any upstream call, records kept across restarts and shared
by relays on one Redis."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from onemin_relay.serving import BackgroundServer
from onemin_relay.upstream.keys import key_hash
from tests.admin import ADMIN_TOKEN, admin, chat, create_key, sdk
from tests.harness import KEY_C, SimulatorHandle, relay_settings, running_relay
from tests.servers import ServerProcess

StartRelay = Callable[..., BackgroundServer]
KEYS_MODE: dict[str, Any] = {"auth_mode": "keys", "onemin_api_keys": [KEY_C], "admin_token": ADMIN_TOKEN}


def usage(relay: BackgroundServer, **params: str) -> list[dict[str, Any]]:
    with admin(relay) as http:
        answer = http.get("/admin/usage", params=params)
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()["data"]
    return rows


def settled_usage(relay: BackgroundServer, requests: int, **params: str) -> dict[str, Any]:
    """The ledger's total once `requests` records are written (the writer runs off the request path)."""
    deadline = time.monotonic() + 30
    while True:
        rows = usage(relay, **params)
        if rows and rows[0]["requests"] >= requests:
            return rows[0]
        assert time.monotonic() < deadline, rows
        time.sleep(0.1)


def billed_so_far(sim: SimulatorHandle, key: str) -> int:
    """What 1min.ai billed `key` before this call: `teamUser.usedCredit` lags one request (§2.1)."""
    answer = httpx.post(
        f"{sim.url}/api/chat-with-ai",
        headers={"API-KEY": key},
        json={"type": "UNIFY_CHAT_WITH_AI", "model": "gpt-4o-mini", "promptObject": {"prompt": "probe"}},
    )
    used: int = answer.json()["aiRecord"]["teamUser"]["usedCredit"]
    return used


def test_ledger_totals_equal_what_upstream_billed_over_a_mixed_run(
    start_relay: StartRelay, sim: SimulatorHandle
) -> None:
    relay = start_relay(**KEYS_MODE)
    key = create_key(relay, "mixed")
    with sdk(relay, key["key"]) as client:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "One"}])
        stream = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Two, streamed"}], stream=True
        )
        assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        client.images.generate(model="dall-e-2", prompt="a fox", size="256x256")
        speech = client.audio.speech.create(model="tts-1", input="Counted credits.", voice="alloy").content
        client.audio.transcriptions.create(model="whisper-1", file=("speech.mp3", speech))

    total = settled_usage(relay, 5, key=key["id"])

    billed = billed_so_far(sim, KEY_C)
    assert billed > 0
    assert total["credits"] == billed
    assert 0 < total["estimated_credits"] < billed  # media: catalogue prices; chat: 1min.ai's own figures
    by_model = {row["group"]: row for row in usage(relay, key=key["id"], group_by="model")}
    assert set(by_model) == {"gpt-4o-mini", "gpt-4o", "dall-e-2", "tts-1", "whisper-1"}
    assert by_model["gpt-4o-mini"]["tokens_in"] > 0
    assert by_model["gpt-4o-mini"]["tokens_out"] > 0
    with admin(relay) as http:
        records = http.get("/admin/usage/records", params={"key": key["id"]}).json()["data"]
        exported = http.get("/admin/usage/records", params={"key": key["id"], "format": "csv"})
    assert {record["endpoint"] for record in records} == {
        "/v1/chat/completions",
        "/v1/images/generations",
        "/v1/audio/speech",
        "/v1/audio/transcriptions",
    }
    assert all(record["latency_ms"] >= record["upstream_ms"] > 0 for record in records)
    assert exported.headers["content-type"].startswith("text/csv")
    lines = exported.text.splitlines()
    assert lines[0].startswith("ts,key,endpoint,model,status")
    assert len(lines) == 6


def test_a_spent_budget_is_refused_before_anything_goes_upstream(
    start_relay: StartRelay, sim: SimulatorHandle
) -> None:
    relay = start_relay(**KEYS_MODE)
    key = create_key(relay, "thrifty", daily_budget=1)
    assert chat(relay, key["key"]).status_code == 200  # costs more than 1 credit

    refused = chat(relay, key["key"])

    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "insufficient_quota"
    assert error["type"] == "insufficient_quota"
    assert "daily budget" in error["message"]
    assert len([call for call in sim.requests() if call["path"] == "/api/chat-with-ai"]) == 1
    other = create_key(relay, "other", monthly_budget=10**9)["key"]
    assert chat(relay, other).status_code == 200  # one key's budget is not another's


def test_passthrough_calls_are_in_the_ledger_by_key_hash(
    start_relay: StartRelay, sim: SimulatorHandle
) -> None:
    relay = start_relay(admin_token=ADMIN_TOKEN)
    assert chat(relay, KEY_C).status_code == 200
    total = settled_usage(relay, 1, group_by="key")
    assert total["group"] == key_hash(KEY_C)  # a hash, never the key
    assert KEY_C not in str(usage(relay, group_by="key"))


def test_the_ledger_survives_a_restart(
    simulator_server: BackgroundServer, sim: SimulatorHandle, tmp_path: Any
) -> None:
    settings = relay_settings(simulator_server.url, tmp_path / "data", **KEYS_MODE)
    with running_relay(settings) as first:
        key = create_key(first, "kept", daily_budget=1)
        assert chat(first, key["key"]).status_code == 200
    # A clean shutdown wrote the record; the budget it spent still counts after the restart.
    with running_relay(settings) as second:
        assert usage(second, key=key["id"])[0]["requests"] == 1
        assert chat(second, key["key"]).status_code == 429


def test_two_relays_on_one_redis_share_keys_budgets_and_ledger(
    simulator_server: BackgroundServer, sim: SimulatorHandle, tmp_path: Any, own_redis: ServerProcess
) -> None:
    shared = {**KEYS_MODE, "state_url": own_redis.url}
    with (
        running_relay(relay_settings(simulator_server.url, tmp_path / "a", **shared)) as first,
        running_relay(relay_settings(simulator_server.url, tmp_path / "b", **shared)) as second,
    ):
        key = create_key(first, "roaming", daily_budget=1)
        assert chat(second, key["key"]).status_code == 200  # made on one relay, honoured by the other

        settled_usage(first, 1, key=key["id"])  # the other relay's record, in the shared ledger
        deadline = time.monotonic() + 30  # its spend reaches this relay's budget check within seconds
        while (refused := chat(first, key["key"])).status_code == 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "insufficient_quota"

        with admin(second) as http:
            assert [item["id"] for item in http.get("/admin/keys").json()["data"]] == [key["id"]]
            assert http.post(f"/admin/keys/{key['id']}/revoke").status_code == 200
        deadline = time.monotonic() + 30
        while chat(first, key["key"]).status_code != 401:
            assert time.monotonic() < deadline
            time.sleep(0.2)


@pytest.mark.parametrize("params", [{"since": "yesterday"}, {"group_by": "colour"}, {"until": "2026-13-01"}])
def test_usage_filters_are_checked(
    start_relay: StartRelay, sim: SimulatorHandle, params: dict[str, str]
) -> None:
    relay = start_relay(admin_token=ADMIN_TOKEN)
    with admin(relay) as http:
        answer = http.get("/admin/usage", params=params)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_value"
