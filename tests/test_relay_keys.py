"""Relay keys (AUTH_MODE keys/both): the admin API, the CLI, what a key may do, and upstream key failover."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from onemin_relay.cli import main
from onemin_relay.config import ConfigError, load_settings
from onemin_relay.serving import BackgroundServer
from onemin_relay.simulator.gateway import key_hash
from tests.admin import ADMIN_TOKEN, admin, chat, create_key, sdk
from tests.harness import KEY_A, KEY_B, SimulatorHandle

StartRelay = Callable[..., BackgroundServer]


def keys_relay(start_relay: StartRelay, **overrides: Any) -> BackgroundServer:
    values: dict[str, Any] = {"auth_mode": "keys", "onemin_api_keys": [KEY_A], "admin_token": ADMIN_TOKEN}
    return start_relay(**{**values, **overrides})


def upstream_calls(sim: SimulatorHandle, path: str = "/api/chat-with-ai") -> list[dict[str, Any]]:
    return [call for call in sim.requests() if call["path"] == path]


def test_a_key_is_created_used_and_revoked(start_relay: StartRelay, sim: SimulatorHandle) -> None:
    relay = keys_relay(start_relay)
    created = create_key(relay, "alice")
    secret = created["key"]
    assert secret.startswith("sk-relay-")
    assert created["state"] == "active"

    with sdk(relay, secret) as client:
        answer = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
        )
    assert answer.choices[0].message.content
    # The relay called 1min.ai with its own key, never the relay key.
    assert [call["key_hash"] for call in upstream_calls(sim)] == [key_hash(KEY_A)]

    with admin(relay) as http:
        listed = http.get("/admin/keys").json()["data"]
        assert [key["id"] for key in listed] == [created["id"]]
        assert secret not in http.get("/admin/keys").text  # shown once, at creation, never again
        assert http.post(f"/admin/keys/{created['id']}/revoke").json()["state"] == "revoked"

    refused = chat(relay, secret)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
    assert "revoked" in refused.json()["error"]["message"]
    assert len(upstream_calls(sim)) == 1


def test_expired_unknown_and_passthrough_keys_are_refused(
    start_relay: StartRelay, sim: SimulatorHandle
) -> None:
    relay = keys_relay(start_relay)
    expired = create_key(relay, "gone", expires_at=int(time.time()) - 1)["key"]

    for key, words in (
        (expired, "expired"),
        ("sk-relay-not-a-key", "no such relay key"),
        (KEY_B, "only relay keys"),
    ):
        answer = chat(relay, key)
        assert answer.status_code == 401, key
        assert words in answer.json()["error"]["message"]
        assert KEY_B not in answer.text
    assert upstream_calls(sim) == []


def test_both_mode_takes_relay_keys_and_callers_own_keys(
    start_relay: StartRelay, sim: SimulatorHandle
) -> None:
    relay = keys_relay(start_relay, auth_mode="both")
    secret = create_key(relay)["key"]

    assert chat(relay, secret).status_code == 200
    assert chat(relay, KEY_B).status_code == 200
    assert [call["key_hash"] for call in upstream_calls(sim)] == [key_hash(KEY_A), key_hash(KEY_B)]


def test_a_key_uses_only_its_allowed_models(start_relay: StartRelay, sim: SimulatorHandle) -> None:
    relay = keys_relay(start_relay)
    secret = create_key(relay, models=["gpt-4o*"])["key"]

    refused = chat(relay, secret, model="claude-3-5-haiku-20241022")
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "model_not_allowed"
    assert error["param"] == "model"
    assert "claude-3-5-haiku-20241022" in error["message"]
    assert upstream_calls(sim) == []
    assert chat(relay, secret, model="gpt-4o-mini").status_code == 200

    with sdk(relay, secret) as client:
        listed = [model.id for model in client.models.list()]
        assert listed
        assert all(model.startswith("gpt-4o") for model in listed)
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve("claude-3-5-haiku-20241022")


def test_files_are_namespaced_by_relay_key_not_by_the_shared_upstream_key(
    start_relay: StartRelay, sim: SimulatorHandle
) -> None:
    relay = keys_relay(start_relay)
    alice, bob = create_key(relay, "alice")["key"], create_key(relay, "bob")["key"]
    with sdk(relay, alice) as client:
        file_id = client.files.create(file=("a.txt", b"alice's notes", "text/plain"), purpose="user_data").id
    with sdk(relay, bob) as client:
        assert [item.id for item in client.files.list()] == []
        with pytest.raises(openai.NotFoundError):
            client.files.retrieve(file_id)
    with sdk(relay, alice) as client:
        assert client.files.retrieve(file_id).filename == "a.txt"


def test_a_keys_own_rate_limit(start_relay: StartRelay, sim: SimulatorHandle) -> None:
    relay = keys_relay(start_relay)
    limited, free = (
        create_key(relay, "limited", rate_limit="2/minute")["key"],
        create_key(relay, "free")["key"],
    )

    statuses = [chat(relay, limited).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    assert chat(relay, free).status_code == 200


def test_the_admin_api_needs_the_token_and_is_off_without_one(
    start_relay: StartRelay, sim: SimulatorHandle
) -> None:
    relay = keys_relay(start_relay)
    for token in ("", "wrong-token", ADMIN_TOKEN[:-1]):
        with admin(relay, token) as http:
            assert http.get("/admin/keys").status_code == 401
            assert http.post("/admin/keys", json={"name": "x"}).status_code == 401
            assert http.get("/admin/usage").status_code == 401
    with httpx.Client(base_url=relay.url) as http:
        assert http.get("/admin/keys", headers={"X-Admin-Token": ADMIN_TOKEN}).status_code == 200

    off = keys_relay(start_relay, admin_token="")
    with admin(off) as http:
        assert http.get("/admin/keys").status_code == 404
        assert http.post("/admin/keys", json={"name": "x"}).status_code == 404


def test_admin_input_is_validated(start_relay: StartRelay, sim: SimulatorHandle) -> None:
    relay = keys_relay(start_relay)
    with admin(relay) as http:
        for body, param in (
            ({"name": ""}, "name"),
            ({"name": "x", "rate_limit": "lots"}, "rate_limit"),
            ({"name": "x", "daily_budget": -1}, "daily_budget"),
            ({"name": "x", "surprise": 1}, "surprise"),
        ):
            answer = http.post("/admin/keys", json=body)
            assert answer.status_code == 400, body
            assert answer.json()["error"]["param"] == param
        assert http.get("/admin/keys/rk_nothing").status_code == 404
        assert http.get("/admin/usage", params={"group_by": "planet"}).status_code == 400


@pytest.fixture
def cli_relay(start_relay: StartRelay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> BackgroundServer:
    """A keys-mode relay, and the environment that points `1min-relay keys` at its state store."""
    data_dir = tmp_path / "shared-data"
    for name, value in (("DATA_DIR", str(data_dir)), ("AUTH_MODE", "keys"), ("ONEMIN_API_KEYS", KEY_A)):
        monkeypatch.setenv(name, value)
    return keys_relay(start_relay, data_dir=data_dir)


def test_the_cli_manages_keys_a_running_relay_honours(
    cli_relay: BackgroundServer, sim: SimulatorHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    relay = cli_relay

    main(["keys", "create", "carol", "--daily-budget", "500", "--models", "gpt-4o*"])
    created = capsys.readouterr()
    secret = next(word for word in created.err.split() if word.startswith("sk-relay-"))
    assert chat(relay, secret).status_code == 200

    main(["keys", "list"])
    listed = capsys.readouterr().out
    assert "carol" in listed
    assert "active" in listed
    assert secret not in listed
    key_id = listed.split()[0]

    main(["keys", "revoke", key_id])
    deadline = time.monotonic() + 30  # the relay trusts a looked-up key for a couple of seconds
    while chat(relay, secret).status_code != 401:
        assert time.monotonic() < deadline
        time.sleep(0.2)


@pytest.mark.parametrize("fault", ["insufficient-credits", "http-429=1"])
def test_an_upstream_key_that_is_refused_hands_the_call_to_the_next(
    start_relay: StartRelay, sim: SimulatorHandle, fault: str
) -> None:
    relay = keys_relay(start_relay, onemin_api_keys=[KEY_B, KEY_A])
    secret = create_key(relay)["key"]
    sim.set_fault(fault)

    assert chat(relay, secret).status_code == 200

    calls = upstream_calls(sim)
    assert [call["key_hash"] for call in calls] == [key_hash(KEY_B), key_hash(KEY_A)]
    assert [call["status"] for call in calls] == [402 if fault == "insufficient-credits" else 429, 200]
    # The refused key rests: the next call goes straight to the other one.
    assert chat(relay, secret).status_code == 200
    assert upstream_calls(sim)[-1]["key_hash"] == key_hash(KEY_A)
    assert len(upstream_calls(sim)) == 3


def test_a_billed_call_that_may_have_run_never_moves_to_another_key(
    start_relay: StartRelay, sim: SimulatorHandle
) -> None:
    relay = keys_relay(start_relay, onemin_api_keys=[KEY_B, KEY_A])
    secret = create_key(relay)["key"]
    sim.set_fault("http-500")

    assert chat(relay, secret).status_code in (502, 503)
    assert [call["key_hash"] for call in upstream_calls(sim)] == [key_hash(KEY_B)]


def test_upstream_keys_come_from_the_list_and_the_secrets_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets_file = tmp_path / "onemin-keys"
    secrets_file.write_text(f"# the team's keys\n{KEY_B}\n\n{KEY_A}\n", encoding="utf-8")
    monkeypatch.setenv("AUTH_MODE", "keys")
    monkeypatch.setenv("ONEMIN_API_KEYS", KEY_A)
    monkeypatch.setenv("ONEMIN_API_KEYS_FILE", str(secrets_file))

    assert load_settings(_env_file=None).onemin_api_keys == [KEY_A, KEY_B]  # in order, once each

    monkeypatch.delenv("ONEMIN_API_KEYS")
    monkeypatch.delenv("ONEMIN_API_KEYS_FILE")
    with pytest.raises(ConfigError, match="ONEMIN_API_KEYS") as refused:
        load_settings(_env_file=None)
    assert KEY_A not in str(refused.value)
    monkeypatch.setenv("ONEMIN_API_KEYS", "good-key,bad key")
    with pytest.raises(ConfigError, match="upstream key number 2") as refused:
        load_settings(_env_file=None)
    assert "bad key" not in str(refused.value)


def test_the_cli_shows_a_key_and_exports_usage(
    cli_relay: BackgroundServer, sim: SimulatorHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    relay = cli_relay
    created = create_key(relay, "erin", daily_budget=10**9)
    assert chat(relay, created["key"]).status_code == 200
    with admin(relay) as http:  # the relay writes its ledger off the request path: wait for the record
        deadline = time.monotonic() + 30
        while not http.get("/admin/usage", params={"key": created["id"]}).json()["data"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    capsys.readouterr()

    main(["keys", "show", created["id"]])
    shown = json.loads(capsys.readouterr().out)
    assert shown["name"] == "erin"
    assert shown["spent_today"] > 0
    assert "key" not in shown
    assert "secret_hash" not in shown

    main(["keys", "usage", "--group-by", "model", "--csv"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("group,requests,errors")
    assert lines[1].startswith("gpt-4o-mini,1,0,")
