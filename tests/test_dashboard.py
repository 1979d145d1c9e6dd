"""The dashboard in a real headless browser (Debian's chromium): it signs in with the admin token, draws
charts from a seeded ledger, creates and revokes a key, and fits a phone's screen. Screenshots go to
test-artifacts/."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from onemin_relay.accounts.keys import issue_key
from onemin_relay.accounts.sqlite import SQLiteAccountStore
from onemin_relay.accounts.usage import UsageRecord
from onemin_relay.serving import BackgroundServer
from onemin_relay.state.factory import SQLITE_FILENAME
from tests.admin import ADMIN_TOKEN, chat
from tests.harness import KEY_C, SimulatorHandle, relay_settings, running_relay
from tests.webdriver import headless_chromium

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
MODELS = ("gpt-4o-mini", "claude-sonnet-4-6", "dall-e-3", "tts-1", "whisper-1")


async def seed_ledger(path: Path) -> None:
    """Three keys and two weeks of calls, written the way the relay writes them."""
    store = await SQLiteAccountStore.open(path)
    try:
        keys = [
            issue_key("alice", daily_budget=20000)[0],
            issue_key("bob", monthly_budget=400000, models=("gpt-4o*",))[0],
            issue_key("n8n workflows")[0],
        ]
        for key in keys:
            await store.put_key(key)
        now = time.time()
        # Inside today (UTC) so far, however soon after midnight the test runs: one bar per seeded day.
        today = now - now % 86400
        records = []
        for day in range(14):
            for number in range(3 + day % 5):
                key = keys[(day + number) % 3]
                model = MODELS[(day * 3 + number) % len(MODELS)]
                records.append(
                    UsageRecord(
                        ts=today + (now - today) * (number + 1) / 10 - day * 86400,
                        key=key.id,
                        endpoint="/v1/chat/completions",
                        model=model,
                        status=500 if (day + number) % 11 == 0 else 200,
                        tokens_in=300 + 40 * number,
                        tokens_out=120 + 15 * day,
                        credits=float(900 + 350 * number + 120 * (day % 4)),
                        estimated=model in ("dall-e-3", "tts-1"),
                        latency_ms=400.0 + 37 * number,
                        upstream_ms=380.0 + 35 * number,
                        request_id=f"req_seed_{day}_{number}",
                    )
                )
        await store.add_usage(records)
    finally:
        await store.aclose()


def test_the_dashboard_shows_the_ledger_and_manages_keys(
    simulator_server: BackgroundServer, sim: SimulatorHandle, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    asyncio.run(seed_ledger(data_dir / SQLITE_FILENAME))
    settings = relay_settings(
        simulator_server.url,
        data_dir,
        auth_mode="keys",
        onemin_api_keys=[KEY_C],
        admin_token=ADMIN_TOKEN,
    )
    ARTIFACTS.mkdir(exist_ok=True)
    with running_relay(settings) as relay, headless_chromium() as browser:
        browser.size(1280, 1900)
        browser.open(f"{relay.url}/dashboard")
        browser.wait_for("return !document.getElementById('sign-in').hidden")
        browser.type("#token", ADMIN_TOKEN)
        browser.click("#sign-in button")
        browser.wait_for("return document.body.dataset.loaded === 'true'")

        assert ADMIN_TOKEN not in browser.run("return location.href")
        assert browser.run("return sessionStorage.length") == 1
        drawn = browser.run(
            "return [...document.querySelectorAll('[data-chart=credits-per-day] rect.bar')]"
            ".filter(bar => Number(bar.dataset.value) > 0).length"
        )
        assert drawn == 14  # one bar for each seeded day
        key_bars = browser.run(
            "return [...document.querySelectorAll('[data-chart=credits-per-key] .hbar .name')]"
            ".map(n => n.textContent)"
        )
        assert set(key_bars) == {"alice", "bob", "n8n workflows"}
        assert browser.run("return document.querySelectorAll('#latency tbody tr').length") == len(MODELS)
        assert browser.run("return document.getElementById('tile-error-rate').textContent").endswith("%")

        # Create a key from the page; its secret is shown once and works.
        browser.type("#create-key [name=name]", "dora")
        browser.type("#create-key [name=daily_budget]", "5000")
        browser.click("#create-key button")
        secret = browser.wait_for(
            "const box = document.getElementById('new-secret');"
            "return box.hidden ? null : document.getElementById('new-secret-value').textContent"
        )
        assert secret.startswith("sk-relay-")
        assert chat(relay, secret).status_code == 200
        key_id = browser.wait_for(
            "const row = [...document.querySelectorAll('#keys tbody tr')]"
            ".find(r => r.cells[0].textContent === 'dora'); return row && row.dataset.keyId"
        )
        browser.run("return refresh()")  # now with dora's call and the balance 1min.ai reported
        assert browser.run("return document.getElementById('tile-balance').textContent") != "–"
        (ARTIFACTS / "dashboard.png").write_bytes(browser.screenshot())

        # Revoke it from the page (the confirmation dialog answered yes).
        browser.run("window.confirm = () => true")
        browser.click(f"button[data-revoke='{key_id}']")
        browser.wait_for(
            "return document.querySelector(`#keys tr[data-key-id='${arguments[0]}'] .state-revoked`)"
            " !== null",
            key_id,
        )
        assert chat(relay, secret).status_code == 401

        # A phone: one column, nothing wider than the screen.
        browser.size(390, 1600)
        browser.wait_for("return document.getElementById('chart-credits-day').viewBox.baseVal.width < 400")
        assert browser.run("return document.documentElement.scrollWidth <= window.innerWidth")
        (ARTIFACTS / "dashboard-phone.png").write_bytes(browser.screenshot())

        with httpx.Client(base_url=relay.url) as http:
            page = http.get("/dashboard")
            assert "script-src 'self'" in page.headers["content-security-policy"]
            assert http.get("/dashboard/dashboard.js").headers["content-type"].startswith("text/javascript")
            assert http.get("/dashboard/secrets.txt").status_code == 404
            assert (
                "https://" not in page.text + http.get("/dashboard/dashboard.js").text
            )  # nothing from a CDN


def test_the_dashboard_is_off_without_an_admin_token(
    start_relay: Callable[..., BackgroundServer], sim: SimulatorHandle
) -> None:
    relay = start_relay()
    with httpx.Client(base_url=relay.url) as http:
        assert http.get("/dashboard").status_code == 404
        assert http.get("/dashboard/dashboard.js").status_code == 404
