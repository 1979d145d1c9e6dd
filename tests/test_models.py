"""`GET /v1/models` and `GET /v1/models/{id}` end to end, with the official SDK against the simulator."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from typing import Any

import httpx
import openai
import pytest

from onemin_relay.serving import BackgroundServer
from tests.harness import KEY_A, SimulatorHandle
from tests.openapi_schema import assert_matches_schema

SERVED = ("UNIFY_CHAT_WITH_AI", "IMAGE_GENERATOR", "TEXT_TO_SPEECH", "SPEECH_TO_TEXT")


def fixture_catalogue() -> dict[str, list[dict[str, Any]]]:
    text = resources.files("onemin_relay").joinpath("data/catalogue.json").read_text(encoding="utf-8")
    catalogue: dict[str, list[dict[str, Any]]] = json.loads(text)
    return catalogue


def test_lists_every_active_model_of_the_served_features_with_its_provider(client: openai.OpenAI) -> None:
    listed = {model.id: model for model in client.models.list().data}
    catalogue = fixture_catalogue()
    for feature in SERVED:
        for entry in catalogue[feature]:
            if entry["status"] == "ACTIVE":
                assert listed[entry["modelId"]].owned_by == entry["provider"]
    disabled = {e["modelId"] for f in catalogue.values() for e in f if e["status"] != "ACTIVE"}
    active = {e["modelId"] for f in catalogue.values() for e in f if e["status"] == "ACTIVE"}
    assert not (disabled - active) & set(listed)


def test_list_matches_the_openai_schema(relay_url: str) -> None:
    response = httpx.get(f"{relay_url}/v1/models", headers={"Authorization": f"Bearer {KEY_A}"})
    assert response.status_code == 200
    assert_matches_schema("ListModelsResponse", response.json())


@pytest.mark.parametrize(
    "model_id", ["gpt-4o-mini", "meta/llama-4-scout-instruct", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"]
)
def test_retrieve_takes_ids_with_slashes_colons_and_dots(
    client: openai.OpenAI, relay_url: str, model_id: str
) -> None:
    assert client.models.retrieve(model_id).id == model_id
    raw = httpx.get(f"{relay_url}/v1/models/{model_id}", headers={"Authorization": f"Bearer {KEY_A}"})
    assert_matches_schema("Model", raw.json())


@pytest.mark.parametrize("model_id", ["no-such-model", "claude-sonnet-4-6"])  # unknown; DISABLED upstream
def test_unknown_or_disabled_models_are_404_model_not_found(client: openai.OpenAI, model_id: str) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve(model_id)
    assert caught.value.code == "model_not_found"
    assert model_id in caught.value.message


def test_models_need_a_key(relay_url: str) -> None:
    response = httpx.get(f"{relay_url}/v1/models")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_subset_only_lists_and_accepts_only_the_subset(
    start_relay: Callable[..., BackgroundServer], sim: SimulatorHandle
) -> None:
    relay = start_relay(
        subset_of_one_min_permitted_models="gpt-4o-mini,o3", permit_models_from_subset_only=True
    )
    with openai.OpenAI(base_url=f"{relay.url}/v1", api_key=KEY_A, max_retries=0) as sdk:
        assert sorted(model.id for model in sdk.models.list().data) == ["gpt-4o-mini", "o3"]
        with pytest.raises(openai.NotFoundError) as caught:
            sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert caught.value.code == "model_not_found"
    assert not [r for r in sim.requests() if r["path"] == "/api/chat-with-ai"]


def test_an_unreachable_catalogue_falls_back_and_still_lists(
    start_relay: Callable[..., BackgroundServer], sim: SimulatorHandle
) -> None:
    relay = start_relay()
    sim.http.post(
        "/_sim/faults", json={"fault": "http-503", "times": 100, "path": "/models"}
    ).raise_for_status()
    with openai.OpenAI(base_url=f"{relay.url}/v1", api_key=KEY_A, max_retries=0) as sdk:
        assert "gpt-4o-mini" in {model.id for model in sdk.models.list().data}
        reply = sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content
    assert any(r["path"] == "/models" and r["status"] == 503 for r in sim.requests())
