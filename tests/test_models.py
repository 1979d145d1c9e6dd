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


def test_a_model_reads_without_a_key_unless_public_models_is_off(
    relay_url: str, start_relay: Callable[..., BackgroundServer]
) -> None:
    assert httpx.get(f"{relay_url}/v1/models/gpt-4o-mini").json()["id"] == "gpt-4o-mini"
    private = start_relay(public_models=False)
    response = httpx.get(f"{private.url}/v1/models/gpt-4o-mini")
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


# --- what each model can do, for chat UIs --------------------------------------------------------------


def listed(relay_url: str, query: str = "") -> list[dict[str, Any]]:
    response = httpx.get(f"{relay_url}/v1/models{query}", headers={"Authorization": f"Bearer {KEY_A}"})
    assert response.status_code == 200, response.text
    assert_matches_schema("ListModelsResponse", response.json())
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def active_ids(*features: str) -> set[str]:
    catalogue = fixture_catalogue()
    return {e["modelId"] for f in features for e in catalogue[f] if e["status"] == "ACTIVE"}


def test_each_model_says_what_it_serves_reads_writes_and_costs_from_the_catalogue(relay_url: str) -> None:
    models = {model["id"]: model for model in listed(relay_url)}
    entry = next(e for e in fixture_catalogue()["UNIFY_CHAT_WITH_AI"] if e["modelId"] == "gpt-4o")
    gpt = models["gpt-4o"]
    assert {key: gpt[key] for key in ("id", "object", "owned_by")} == {
        "id": "gpt-4o",
        "object": "model",
        "owned_by": entry["provider"],
    }
    assert gpt["name"] == entry["name"]
    assert "chat" in gpt["features"]
    assert gpt["architecture"]["input_modalities"] == sorted(m.lower() for m in entry["modality"]["INPUT"])
    assert gpt["architecture"]["output_modalities"] == ["text"]
    assert gpt["context_length"] == entry["creditMetadata"]["CONTEXT"]
    assert gpt["max_output_tokens"] == entry["creditMetadata"]["MAX_OUTPUT_TOKEN"]
    assert gpt["pricing"]["INPUT"] == entry["creditMetadata"]["INPUT"]
    assert gpt["pricing"]["OUTPUT"] == entry["creditMetadata"]["OUTPUT"]
    assert "CONTEXT" not in gpt["pricing"]


def test_leonardo_models_have_a_human_name_not_just_their_uuid(relay_url: str) -> None:
    models = {model["id"]: model for model in listed(relay_url)}
    leonardo = [e for e in fixture_catalogue()["IMAGE_GENERATOR"] if e["provider"] == "leonardoai"]
    assert leonardo
    for entry in leonardo:
        if entry["status"] == "ACTIVE":
            model = models[entry["modelId"]]
            assert model["name"] == entry["name"] != model["id"]
            assert model["features"][0] == "image_generation"
            assert model["architecture"]["output_modalities"] == ["image"]
            assert model["context_length"] is None


@pytest.mark.parametrize(
    ("query", "features"),
    [
        ("?feature=chat", ("UNIFY_CHAT_WITH_AI",)),
        ("?feature=speech", ("TEXT_TO_SPEECH",)),
        ("?feature=transcription", ("SPEECH_TO_TEXT",)),
        ("?feature=image", ("IMAGE_GENERATOR", "IMAGE_VARIATOR", "IMAGE_EDITOR", "IMAGE_INPAINTER")),
        ("?feature=speech,transcription", ("TEXT_TO_SPEECH", "SPEECH_TO_TEXT")),
        ("?feature=IMAGE_GENERATOR", ("IMAGE_GENERATOR",)),
    ],
)
def test_the_list_filters_by_feature(relay_url: str, query: str, features: tuple[str, ...]) -> None:
    assert {model["id"] for model in listed(relay_url, query)} == active_ids(*features)


def test_an_unknown_feature_filter_is_a_400_naming_feature(relay_url: str) -> None:
    response = httpx.get(
        f"{relay_url}/v1/models?feature=embeddings", headers={"Authorization": f"Bearer {KEY_A}"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "feature"
    assert "chat" in response.json()["error"]["message"]


def test_models_list_setting_lists_only_chat_models_for_uis_that_cannot_filter(
    start_relay: Callable[..., BackgroundServer],
) -> None:
    relay = start_relay(models_list="chat")
    assert {model["id"] for model in listed(relay.url)} == active_ids("UNIFY_CHAT_WITH_AI")
    # A client that asks gets the other models, and every model stays usable and retrievable.
    assert {model["id"] for model in listed(relay.url, "?feature=speech")} == active_ids("TEXT_TO_SPEECH")
    with openai.OpenAI(base_url=f"{relay.url}/v1", api_key=KEY_A, max_retries=0) as sdk:
        assert sdk.models.retrieve("dall-e-3").id == "dall-e-3"


def test_a_model_used_for_what_it_cannot_do_points_at_the_filtered_list(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="dall-e-3", messages=[{"role": "user", "content": "hi"}])
    assert (caught.value.code, caught.value.param) == ("unsupported_model", "model")
    assert "it serves: image_generation" in caught.value.message
    assert "GET /v1/models?feature=chat" in caught.value.message
