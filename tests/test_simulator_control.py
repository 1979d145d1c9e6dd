"""Simulator: the catalogue endpoint, rate and credit limits, and the `/_sim/` control API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

import httpx
import pytest

from onemin_relay.api.auth import key_hash
from onemin_relay.simulator.app import create_simulator_app
from onemin_relay.simulator.config import SimulatorConfig
from onemin_relay.simulator.limits import CreditLedger, RateLimiter
from tests.harness import KEY_A, KEY_B, KNOWN_KEYS, SimulatorHandle

CHAT_BODY = {"type": "UNIFY_CHAT_WITH_AI", "model": "gpt-4o-mini", "promptObject": {"prompt": "hi"}}
ENTRY_FIELDS = {
    "uuid", "modelId", "name", "group", "provider", "status", "cutoffDate", "logoUrl", "features",
    "creditMetadata", "modality", "information", "createdAt", "createdBy", "updatedAt", "updatedBy",
    "numberOfStars", "creditEstimation", "deprecationDate",
}  # fmt: skip


@pytest.fixture
def http(sim: SimulatorHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, headers={"API-KEY": KEY_A}, timeout=30) as client:
        yield client


# --- catalogue ------------------------------------------------------------------------------------


def test_models_are_public_and_listed_per_feature(http: httpx.Client) -> None:
    response = http.get("/models", params={"feature": "UNIFY_CHAT_WITH_AI"}, headers={"API-KEY": ""})
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == len(body["models"]) > 100
    by_id = {entry["modelId"]: entry for entry in body["models"]}
    assert all(set(entry) == ENTRY_FIELDS for entry in body["models"])
    mini = by_id["gpt-4o-mini"]
    assert mini["status"] == "ACTIVE"
    assert mini["creditMetadata"]["INPUT"] == 0.15
    assert mini["creditMetadata"]["OUTPUT"] == 0.6
    assert mini["modality"]["INPUT"] == ["TEXT", "IMAGE"]
    assert by_id["gpt-3.5-turbo"]["modality"]["INPUT"] == ["TEXT"]
    assert by_id["gpt-3.5-turbo"]["deprecationDate"].startswith("2026-10-21")
    assert by_id["claude-sonnet-4-6"]["status"] == "DISABLED"  # renamed to us.anthropic.claude-sonnet-4-6
    assert by_id["us.anthropic.claude-sonnet-4-6"]["status"] == "ACTIVE"


def test_catalogue_lists_every_simulated_feature(http: httpx.Client) -> None:
    for feature, model in [
        ("IMAGE_GENERATOR", "dall-e-3"), ("IMAGE_VARIATOR", "magic-art"), ("IMAGE_EDITOR", "gpt-image-1"),
        ("IMAGE_INPAINTER", "stable-image"), ("TEXT_TO_SPEECH", "tts-1"), ("SPEECH_TO_TEXT", "whisper-1"),
        ("AUDIO_TRANSLATOR", "whisper-1"), ("CODE_GENERATOR", "gpt-4o"),
    ]:  # fmt: skip
        models = http.get("/models", params={"feature": feature}).json()["models"]
        assert model in {entry["modelId"] for entry in models}, feature
    flux = next(
        e
        for e in http.get("/models?feature=IMAGE_GENERATOR").json()["models"]
        if e["modelId"].endswith("flux-schnell")
    )
    assert flux["status"] == "DISABLED"


def test_models_without_feature_is_empty(http: httpx.Client) -> None:
    assert http.get("/models").json() == {"models": [], "total": 0}
    assert http.get("/models?feature=NOPE").json() == {"models": [], "total": 0}


def test_catalogue_fixture_is_well_formed() -> None:
    text = resources.files("onemin_relay").joinpath("data", "catalogue.json").read_text(encoding="utf-8")
    catalogue = json.loads(text)
    for feature, entries in catalogue.items():
        ids = [entry["modelId"] for entry in entries]
        assert len(ids) == len(set(ids)), feature
        for entry in entries:
            assert set(entry) == ENTRY_FIELDS
            assert entry["status"] in ("ACTIVE", "DISABLED")
            assert feature in entry["features"]


def test_models_faults_only_when_armed_for_its_path(sim: SimulatorHandle, http: httpx.Client) -> None:
    sim.set_fault("http-503")
    assert http.get("/models?feature=TEXT_TO_SPEECH").status_code == 200
    sim.http.post("/_sim/faults", json={"fault": "http-503", "path": "/models"}).raise_for_status()
    assert http.get("/models?feature=TEXT_TO_SPEECH").status_code == 503
    assert http.get("/models?feature=TEXT_TO_SPEECH").status_code == 200


def test_cdn_faults_only_when_armed_for_its_path(sim: SimulatorHandle, http: httpx.Client) -> None:
    key = http.post("/api/assets", files={"asset": ("a.png", b"x", "image/png")}).json()["asset"]["key"]
    sim.http.post("/_sim/faults", json={"fault": "http-502", "path": "/cdn/"}).raise_for_status()
    assert http.get(f"/cdn/{key}").status_code == 502
    assert http.get(f"/cdn/{key}").status_code == 200
    assert http.get(f"/cdn/{key}", headers={"X-Sim-Fault": "http-503"}).status_code == 503


# --- limits ---------------------------------------------------------------------------------------


def test_rate_limit_per_key(sim: SimulatorHandle, http: httpx.Client) -> None:
    sim.configure(rate_limit_per_minute=2)
    statuses = [http.post("/api/chat-with-ai", json=CHAT_BODY).status_code for _ in range(3)]
    limited = http.post("/api/chat-with-ai", json=CHAT_BODY)
    other_key = http.post("/api/chat-with-ai", json=CHAT_BODY, headers={"API-KEY": KEY_B})

    assert statuses == [200, 200, 429]
    assert limited.json() == {
        "success": False,
        "error": {"code": "RATE_LIMITED", "message": "Too many requests"},
    }
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert other_key.status_code == 200


def test_retry_after_on_the_rate_limit_is_switchable(sim: SimulatorHandle, http: httpx.Client) -> None:
    """§18.9: no rate-limit header is documented, so the relay must also cope with a bare 429."""
    sim.configure(rate_limit_per_minute=1, rate_limit_retry_after=False)
    http.post("/api/chat-with-ai", json=CHAT_BODY)
    limited = http.post("/api/chat-with-ai", json=CHAT_BODY)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "RATE_LIMITED"
    assert "retry-after" not in limited.headers


def test_credit_limit_per_key(sim: SimulatorHandle, http: httpx.Client) -> None:
    sim.configure(credit_limit=1)
    first = http.post("/api/chat-with-ai", json=CHAT_BODY)
    second = http.post("/api/chat-with-ai", json=CHAT_BODY)
    feature = http.post(
        "/api/features",
        json={"type": "IMAGE_GENERATOR", "model": "dall-e-3", "promptObject": {"prompt": "x"}},
    )
    other_key = http.post("/api/chat-with-ai", json=CHAT_BODY, headers={"API-KEY": KEY_B})

    assert first.status_code == 200
    assert second.status_code == 402
    assert second.json()["error"]["code"] == "INSUFFICIENT_CREDITS"
    assert feature.status_code == 402
    assert feature.json()["errorCode"] == "INSUFFICIENT_CREDITS"
    assert other_key.status_code == 200


def test_insufficient_credit_status_and_shape_are_switches(sim: SimulatorHandle, http: httpx.Client) -> None:
    sim.configure(insufficient_credits_status=429, insufficient_credits_shape="B")
    response = http.post("/api/chat-with-ai", json=CHAT_BODY, headers={"X-Sim-Fault": "insufficient-credits"})
    assert response.status_code == 429
    assert response.json()["errorCode"] == "INSUFFICIENT_CREDITS"


# --- control API ----------------------------------------------------------------------------------


def test_request_log_shows_what_was_received_without_the_key(
    sim: SimulatorHandle, http: httpx.Client
) -> None:
    http.post("/api/chat-with-ai?isStreaming=true", json=CHAT_BODY, headers={"Accept": "text/event-stream"})
    http.post("/api/assets", files={"asset": ("photo.png", b"12345", "image/png")})
    http.get("/models?feature=TEXT_TO_SPEECH", headers={"API-KEY": ""})
    http.post("/api/chat-with-ai", json=CHAT_BODY, headers={"API-KEY": "sk-wrong"})

    log = sim.requests()
    assert [(entry["method"], entry["path"], entry["status"]) for entry in log] == [
        ("POST", "/api/chat-with-ai", 200),
        ("POST", "/api/assets", 200),
        ("GET", "/models", 200),
        ("POST", "/api/chat-with-ai", 401),
    ]
    chat, upload, models, refused = log
    assert chat["query"] == {"isStreaming": "true"}
    assert chat["json"] == CHAT_BODY
    assert chat["key_hash"] == key_hash(KEY_A)
    assert chat["headers"]["accept"] == "text/event-stream"
    assert upload["json"] is None
    assert upload["multipart"] == [
        {"name": "asset", "filename": "photo.png", "content_type": "image/png", "size": 5}
    ]
    assert models["key_hash"] is None
    assert models["query"] == {"feature": "TEXT_TO_SPEECH"}
    assert refused["key_hash"] == key_hash("sk-wrong")
    assert KEY_A not in json.dumps(log)
    assert "sk-wrong" not in json.dumps(log)


def test_request_log_filter_and_control_calls_are_not_logged(
    sim: SimulatorHandle, http: httpx.Client
) -> None:
    http.get("/models")
    http.post("/api/chat-with-ai", json=CHAT_BODY)
    sim.configure(stream_chunk_chars=8)
    filtered = sim.http.get("/_sim/requests", params={"path": "/api/"}).json()["requests"]
    assert [entry["path"] for entry in sim.requests()] == ["/models", "/api/chat-with-ai"]
    assert [entry["path"] for entry in filtered] == ["/api/chat-with-ai"]


def test_request_log_is_bounded(sim: SimulatorHandle, http: httpx.Client) -> None:
    sim.configure(request_log_size=2)
    for _ in range(4):
        http.get("/models")
    assert len(sim.requests()) == 2


def test_request_log_bounds_the_bytes_of_bodies_it_keeps(sim: SimulatorHandle, http: httpx.Client) -> None:
    """500 logged 32 MiB bodies would be 16 GiB: the oldest entries go once their bodies pass the budget."""
    sim.configure(request_log_bytes=1500)
    prompts = [f"{index}" * 1000 for index in range(3)]
    for prompt in prompts:
        http.post("/api/chat-with-ai", json={**CHAT_BODY, "promptObject": {"prompt": prompt}})
    http.get("/models")  # no body: costs nothing

    kept = sim.requests()
    assert [entry["path"] for entry in kept] == ["/api/chat-with-ai", "/models"]
    assert kept[0]["json"]["promptObject"]["prompt"] == prompts[-1]


def test_config_updates_validate_and_reset_restores(sim: SimulatorHandle, http: httpx.Client) -> None:
    changed = sim.http.post("/_sim/config", json={"legacy_chat": True, "faults": ["delay=5"]})
    assert changed.status_code == 200
    assert changed.json()["legacy_chat"] is True
    assert changed.json()["faults"] == ["delay=5"]
    assert sorted(changed.json()["api_keys"]) == sorted(KNOWN_KEYS)
    for bad in ({"no_such_field": 1}, {"stream_chunk_chars": 0}, {"failed_status": "BROKEN"}):
        assert sim.http.post("/_sim/config", json=bad).status_code == 400
    sim.set_fault("http-500", times=3)
    assert sim.http.get("/_sim/faults").json()["armed"][0]["remaining"] == 3
    http.post("/api/chat-with-ai", json=CHAT_BODY)

    sim.reset()

    config = sim.http.get("/_sim/config").json()
    assert config["legacy_chat"] is False
    assert config["faults"] == []
    assert sim.http.get("/_sim/faults").json() == {"armed": []}
    assert sim.requests() == []
    assert http.post("/api/chat-with-ai", json=CHAT_BODY).status_code == 200


def test_reset_forgets_stored_files_and_conversations(sim: SimulatorHandle, http: httpx.Client) -> None:
    key = http.post("/api/assets", files={"asset": ("a.png", b"x", "image/png")}).json()["asset"]["key"]
    conversation = http.post(
        "/api/conversations", json={"type": "UNIFY_CHAT_WITH_AI", "title": "t", "model": "gpt-4o-mini"}
    ).json()["conversation"]["uuid"]
    sim.reset()
    assert http.get(f"/cdn/{key}").status_code == 404
    assert http.delete(f"/api/conversations/{conversation}").status_code == 404


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"fault": "http-503", "times": 0}, 400),
        ({"times": 1}, 400),
        ({"fault": "delay=abc"}, 400),
        ({"fault": "crlf"}, 200),
    ],
)
def test_arming_faults_validates(sim: SimulatorHandle, body: dict[str, Any], status: int) -> None:
    assert sim.http.post("/_sim/faults", json=body).status_code == status


def test_unknown_routes_answer_like_the_service(http: httpx.Client) -> None:
    missing = http.get("/api/nothing")
    wrong_method = http.get("/api/chat-with-ai")
    assert missing.status_code == 404
    assert missing.json() == {"statusCode": 404, "message": "Cannot GET /api/nothing", "error": "Not Found"}
    assert wrong_method.status_code == 405


async def test_default_config_is_what_the_demo_uses() -> None:
    config = SimulatorConfig()
    assert config.api_keys is None
    assert config.rate_limit_per_minute == 180
    assert config.faults == ()
    app = create_simulator_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://demo") as client:
        response = await client.post("/api/chat-with-ai", json=CHAT_BODY, headers={"API-KEY": "demo-key"})
    assert response.status_code == 200


def test_rate_limiter_forgets_keys_idle_for_a_minute() -> None:
    """With no key list any key is accepted, so one window per key ever seen grew without end."""
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    for index in range(1000):
        assert limiter.hit(f"key-{index}", 2) is None
    assert limiter.hit("key-0", 2) is None
    assert limiter.hit("key-0", 2) is not None  # the limit still counts within the minute

    now[0] = 61.0
    assert limiter.hit("fresh", 2) is None
    assert limiter.tracked_keys == 1


def test_credit_ledger_keeps_a_bounded_number_of_keys() -> None:
    """With no key list any key is accepted: the usage of the least recently billed keys goes first."""
    ledger = CreditLedger(max_keys=2)
    for key in ("a", "b", "a", "c"):
        ledger.bill(key, 10)
    assert (ledger.used("a"), ledger.used("b"), ledger.used("c")) == (20, 0, 10)
