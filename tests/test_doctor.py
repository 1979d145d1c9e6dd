"""`1min-relay doctor` and `refresh-catalogue`, proven against the simulator (never the real service).

The simulator stands in for a live 1min.ai whose open questions (§18) were answered one way or the other:
with its default switches every item matches; with one switch flipped exactly that item differs, and the
configuration the doctor suggests makes it match again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from onemin_relay.doctor.catalogue import catalogue_changes
from onemin_relay.doctor.report import Report
from onemin_relay.doctor.runner import Options, run_doctor
from onemin_relay.serving import BackgroundServer
from onemin_relay.simulator.app import create_simulator_app
from onemin_relay.simulator.catalogue import load_catalogue
from onemin_relay.simulator.config import SimulatorConfig
from tests.harness import upstream_settings

# Distinctive, so a leak anywhere shows up in a plain substring search.
KEY = "sk-doctor-LEAKCHECK-5a7f19c3e2b84d06"
# Enough for the doctor's own calls; the rate-limit probe's burst then reaches it quickly.
RATE_LIMIT = 60
SWITCHES = (
    "require_type",
    "chat_model_error_shape",
    "non_vision_images",
    "empty_first_content",
    "stream_result_metadata",
    "done_after_error",
    "failed_status",
    "result_failed_status",
    "tts_binary",
    "legacy_chat",
    "rate_limit_retry_after",
    "credit_scale",
    "insufficient_credits_status",
    "insufficient_credits_shape",
)
# §18 switches no probe answers: finding the asset size limit would take a 100 MB upload (docs/doctor.md).
NOT_PROBED = {"asset_max_bytes"}
# One flip per switch, and the item it must turn ✗.
FLIPS: list[tuple[dict[str, Any], str]] = [
    ({"require_type": False}, "chat.type_required"),
    ({"chat_model_error_shape": "B"}, "chat.unknown_model"),
    ({"non_vision_images": "ignore"}, "chat.non_vision"),
    ({"empty_first_content": False}, "chat.stream_empty_first"),
    ({"stream_result_metadata": False}, "chat.stream_metadata"),
    ({"done_after_error": True}, "chat.stream_error"),
    ({"failed_status": "FAILURE"}, "chat.failed_status"),
    ({"result_failed_status": "FAILED"}, "features.async_failed"),
    ({"tts_binary": True}, "speech"),
    ({"legacy_chat": True}, "features.legacy_chat"),
    ({"rate_limit_retry_after": False}, "rate_limit"),
    ({"credit_scale": 2.0}, "chat.credits"),
    ({"insufficient_credits_status": 429}, "chat.credits_exhausted"),
    ({"insufficient_credits_shape": "B"}, "chat.credits_exhausted"),
]
EVERYTHING = Options(spend_credits=True, yes=True, probe_rate_limit=True)


@pytest.fixture(scope="module")
def service() -> Iterator[str]:
    """The stand-in for the live service, accepting only the doctor's key."""
    config = SimulatorConfig(api_keys=frozenset({KEY}), rate_limit_per_minute=RATE_LIMIT)
    with BackgroundServer(create_simulator_app(config)) as server:
        yield server.url


def open_question_switches() -> set[str]:
    """The SimulatorConfig fields that answer an open question of the reference (§18)."""
    return {
        name for name, field in SimulatorConfig.model_fields.items() if "§18" in (field.description or "")
    }


def behave(url: str, **changes: Any) -> None:
    """Reset the service, then set every open-question switch to its default except `changes`."""
    defaults = SimulatorConfig().model_dump(mode="json", include=set(SWITCHES))
    with httpx.Client(base_url=url) as control:
        control.post("/_sim/reset").raise_for_status()
        control.post("/_sim/config", json={**defaults, **changes}).raise_for_status()


async def calls_made(url: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=url) as control:
        calls: list[dict[str, Any]] = (await control.get("/_sim/requests")).json()["requests"]
    return calls


async def doctor(url: str, options: Options = EVERYTHING) -> Report:
    return await run_doctor(upstream_settings(url), KEY, options)


def results(report: Report) -> dict[str, str]:
    return {item.id: item.result for item in report.items}


async def test_every_item_matches_the_default_simulator(service: str) -> None:
    behave(service)
    report = await doctor(service)
    assert [item.id for item in report.items if item.result != "match"] == []
    covered = {name for item in report.items for name in item.switch}
    assert covered == set(SWITCHES)
    assert covered >= open_question_switches() - NOT_PROBED  # a new §18 switch needs its probe item
    assert report.suggested_config() == {}
    assert report.catalogue_changes == {}
    assert report.exit_code == 0


@pytest.mark.parametrize(("changes", "item_id"), FLIPS, ids=[next(iter(c)) for c, _ in FLIPS])
async def test_a_flipped_switch_differs_in_exactly_its_item_and_the_suggestion_fixes_it(
    service: str, changes: dict[str, Any], item_id: str
) -> None:
    behave(service, **changes)
    report = await doctor(service)
    assert {k: v for k, v in results(report).items() if v != "match"} == {item_id: "differs"}
    suggestion = report.suggested_config()
    assert suggestion == {**suggestion, **changes}  # it names the flipped switch's value

    behave(service, **changes)
    fixed = await doctor(service, Options(True, True, True, SimulatorConfig().updated(suggestion)))
    assert all(result == "match" for result in results(fixed).values()), results(fixed)


async def test_binary_speech_is_something_the_relay_relies_on(service: str) -> None:
    behave(service, tts_binary=True)
    report = await doctor(service)
    assert [item.id for item in report.items if item.breaking] == ["speech"]
    assert report.exit_code == 1


async def test_without_spend_credits_nothing_billed_is_called(service: str) -> None:
    behave(service)
    report = await doctor(service, Options())
    assert report.exit_code == 0
    assert not report.spent_credits
    assert all(result == "match" for result in results(report).values())
    calls = await calls_made(service)
    billed = [c for c in calls if c["path"] in ("/api/chat-with-ai", "/api/features") and c["status"] == 200]
    assert billed == []
    assert any("--spend-credits" in note for note in report.notes)


async def test_declining_the_estimate_spends_nothing(service: str) -> None:
    behave(service)
    asked: list[int] = []

    async def decline(credits: int) -> bool:
        asked.append(credits)
        return False

    report = await run_doctor(upstream_settings(service), KEY, Options(spend_credits=True), confirm=decline)
    assert len(asked) == 1
    assert asked[0] > 0
    assert not report.spent_credits
    calls = await calls_made(service)
    assert [c for c in calls if c["path"] == "/api/features" and c["status"] == 200] == []


async def test_an_unreachable_service_is_something_the_relay_relies_on(unused_tcp_port: int) -> None:
    report = await doctor(f"http://127.0.0.1:{unused_tcp_port}", Options())
    assert report.items[0].result == "differs"
    assert report.items[0].breaking
    assert report.exit_code == 1


def test_catalogue_changes_name_added_removed_disabled_and_repriced_models() -> None:
    snapshot = {
        "TEXT_TO_SPEECH": [
            {"modelId": "tts-1", "status": "ACTIVE", "creditMetadata": {"ALL": 15}},
            {"modelId": "old", "status": "ACTIVE", "creditMetadata": {"ALL": 1}},
            {"modelId": "kept", "status": "ACTIVE", "creditMetadata": {"ALL": 2}},
        ]
    }
    live = {
        "TEXT_TO_SPEECH": [
            {"modelId": "tts-1", "status": "ACTIVE", "creditMetadata": {"ALL": 20}},
            {
                "modelId": "kept",
                "status": "DISABLED",
                "creditMetadata": {"ALL": 2},
                "deprecationDate": "2027-01-01",
            },
            {"modelId": "new", "status": "ACTIVE", "creditMetadata": {"ALL": 3}},
        ]
    }
    assert catalogue_changes(snapshot, live) == {
        "TEXT_TO_SPEECH": {
            "added": ["new"],
            "removed": ["old"],
            "disabled": ["kept"],
            "prices": [{"model": "tts-1", "before": {"ALL": 15}, "after": {"ALL": 20}}],
            "deprecations": [{"model": "kept", "date": "2027-01-01"}],
        }
    }


# --- the command, as a user runs it -------------------------------------------------------------------


def run_cli(*args: str, cwd: Path, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ONEMIN_")}
    return subprocess.run(
        [sys.executable, "-m", "onemin_relay.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**clean, "HOME": str(cwd), **env},
    )


def service_args(url: str) -> list[str]:
    return ["--api-url", url, "--asset-url", f"{url}/cdn"]


def test_the_key_is_never_printed_logged_or_stored(service: str, tmp_path: Path) -> None:
    behave(service, chat_model_error_shape="B")  # a ✗ too: its observed answer is printed
    everything = [*service_args(service), "--spend-credits", "--yes", "--probe-rate-limit"]
    table = run_cli("doctor", *everything, cwd=tmp_path, env={"ONEMIN_API_KEY": KEY, "LOG_LEVEL": "DEBUG"})
    behave(service)
    as_json = run_cli("doctor", *everything, "--json", cwd=tmp_path, env={"ONEMIN_API_KEYS": f"{KEY},other"})
    behave(service)
    prompted = run_cli("doctor", *service_args(service), cwd=tmp_path, env={}, stdin=KEY + "\n")

    assert "✗  chat: unknown model error shape" in table.stdout
    assert table.returncode == 0
    assert json.loads(as_json.stdout)["exit_code"] == 0
    assert as_json.returncode == 0
    assert "✓  auth: the key is accepted" in prompted.stdout  # the typed key was used
    for run in (table, as_json, prompted):
        assert KEY not in run.stdout
        assert KEY not in run.stderr
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or KEY.encode() not in path.read_bytes(), path
    with httpx.Client(base_url=service) as control:
        assert KEY not in control.get("/_sim/requests").text


def test_the_table_shows_progress_and_the_config_that_matches(service: str, tmp_path: Path) -> None:
    behave(service, legacy_chat=True)
    run = run_cli("doctor", *service_args(service), cwd=tmp_path, env={"ONEMIN_API_KEY": KEY})
    assert run.returncode == 0
    assert "✗ features: legacy chat is retired" in run.stderr  # progress while probing
    assert 'POST /_sim/config {"legacy_chat": true}' in run.stdout
    assert "SimulatorConfig(legacy_chat=True)" in run.stdout


def test_no_key_at_all_stops_with_a_message(tmp_path: Path) -> None:
    run = run_cli("doctor", "--api-url", "http://127.0.0.1:9", cwd=tmp_path, env={})
    assert run.returncode == 2
    assert "ONEMIN_API_KEY" in run.stderr


def test_refresh_catalogue_writes_what_the_service_lists(service: str, tmp_path: Path) -> None:
    behave(service)
    output = tmp_path / "catalogue.json"
    run = run_cli("refresh-catalogue", *service_args(service), "--output", str(output), cwd=tmp_path, env={})
    assert run.returncode == 0, run.stderr
    assert json.loads(output.read_text()) == load_catalogue()  # the simulator serves the shipped snapshot
    shipped = Path(__file__).parents[1] / "src" / "onemin_relay" / "data" / "catalogue.json"
    assert output.read_bytes() == shipped.read_bytes()  # same format, so a refresh diffs cleanly


def test_refresh_catalogue_keeps_the_old_file_when_the_service_fails(
    tmp_path: Path, unused_tcp_port: int
) -> None:
    output = tmp_path / "catalogue.json"
    output.write_text("{}")
    url = f"http://127.0.0.1:{unused_tcp_port}"
    run = run_cli(
        "refresh-catalogue",
        *service_args(url),
        "--output",
        str(output),
        cwd=tmp_path,
        env={"UPSTREAM_MAX_RETRIES": "0"},
    )
    assert run.returncode == 1
    assert "not refreshed" in run.stderr
    assert output.read_text() == "{}"
