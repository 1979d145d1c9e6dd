"""The model catalogue cache: TTL, coalesced refreshes, fallbacks, and the permission rules."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from onemin_relay.config import Settings
from onemin_relay.errors import OpenAIError
from onemin_relay.upstream.catalogue import CHAT_FEATURE, ModelCatalogue, load_packaged_snapshot, parse_entry
from onemin_relay.upstream.client import OneMinClient
from onemin_relay.upstream.errors import UpstreamError


def entry(
    model_id: str, status: str = "ACTIVE", inputs: tuple[str, ...] = ("TEXT",), **extra: Any
) -> dict[str, Any]:
    return {
        "modelId": model_id,
        "name": model_id.upper(),
        "provider": "openai",
        "status": status,
        "features": [CHAT_FEATURE],
        "modality": {"INPUT": list(inputs), "OUTPUT": ["TEXT"]},
        "creditMetadata": {"INPUT": 1},
        "createdAt": "2024-07-18T00:00:00.000Z",
        **extra,
    }


class FakeUpstream:
    """Stands in for the upstream client (the catalogue is what is tested): answers `models()` from a dict."""

    def __init__(self, catalogue: dict[str, list[dict[str, Any]]]) -> None:
        self.catalogue = catalogue
        self.calls: list[str] = []
        self.failing = False
        self.gate: asyncio.Event | None = None

    async def models(self, feature: str) -> list[dict[str, Any]]:
        self.calls.append(feature)
        if self.gate is not None:
            await self.gate.wait()
        if self.failing:
            raise UpstreamError(503, "HTTP_ERROR", "down")
        return self.catalogue.get(feature, [])


def make(upstream: FakeUpstream, **settings: Any) -> ModelCatalogue:
    values: dict[str, Any] = {"model_cache_ttl": 300, **settings}
    config = Settings(_env_file=None, **values)
    client: OneMinClient = upstream  # type: ignore[assignment]
    return ModelCatalogue(client, config)


CHAT = {
    CHAT_FEATURE: [entry("gpt-4o", inputs=("TEXT", "IMAGE")), entry("old-model", "DISABLED"), entry("o3")]
}


async def test_entries_are_typed() -> None:
    info = await make(FakeUpstream(CHAT)).require("gpt-4o")
    assert info.id == "gpt-4o"
    assert info.name == "GPT-4O"
    assert info.provider == "openai"
    assert info.accepts_images
    assert info.features == frozenset({CHAT_FEATURE})
    assert info.created == 1721260800
    assert info.credit_metadata["INPUT"] == 1


def test_placeholders_and_malformed_entries_are_skipped() -> None:
    assert parse_entry({"modelId": "NOT_APPLICABLE"}, CHAT_FEATURE) is None
    assert parse_entry({"name": "no id"}, CHAT_FEATURE) is None
    bare = parse_entry({"modelId": "x", "modality": "weird", "createdAt": "yesterday"}, CHAT_FEATURE)
    assert bare is not None
    assert (bare.input_modalities, bare.created, bare.status) == (frozenset(), 0, "ACTIVE")


async def test_cached_within_the_ttl() -> None:
    upstream = FakeUpstream(CHAT)
    catalogue = make(upstream)
    await catalogue.require("gpt-4o")
    await catalogue.require("o3")
    assert upstream.calls == [CHAT_FEATURE]


async def test_ttl_zero_refreshes_every_time() -> None:
    upstream = FakeUpstream(CHAT)
    catalogue = make(upstream, model_cache_ttl=0)
    await catalogue.require("gpt-4o")
    await catalogue.require("gpt-4o")
    assert upstream.calls == [CHAT_FEATURE, CHAT_FEATURE]


async def test_concurrent_refreshes_share_one_upstream_call() -> None:
    upstream = FakeUpstream(CHAT)
    upstream.gate = asyncio.Event()
    catalogue = make(upstream, model_cache_ttl=0)
    waiters = [asyncio.create_task(catalogue.require("gpt-4o")) for _ in range(20)]
    await asyncio.sleep(0)
    upstream.gate.set()
    assert {info.id for info in await asyncio.gather(*waiters)} == {"gpt-4o"}
    assert upstream.calls == [CHAT_FEATURE]


async def test_falls_back_to_the_last_good_copy_then_says_so(caplog: pytest.LogCaptureFixture) -> None:
    upstream = FakeUpstream(CHAT)
    catalogue = make(upstream, model_cache_ttl=0)
    await catalogue.require("o3")
    upstream.failing = True
    with caplog.at_level(logging.WARNING, "onemin_relay.catalogue"):
        assert (await catalogue.require("o3")).id == "o3"
    assert "last good copy" in caplog.text


async def test_falls_back_to_the_packaged_snapshot(caplog: pytest.LogCaptureFixture) -> None:
    upstream = FakeUpstream(CHAT)
    upstream.failing = True
    catalogue = make(upstream, model_cache_ttl=0)
    with caplog.at_level(logging.WARNING, "onemin_relay.catalogue"):
        info = await catalogue.require("gpt-4o-mini")  # not in the fake: only in the shipped snapshot
    assert info.id == "gpt-4o-mini"
    assert "packaged snapshot" in caplog.text


async def test_an_empty_catalogue_counts_as_a_failure() -> None:
    catalogue = make(FakeUpstream({CHAT_FEATURE: []}))
    assert (await catalogue.require("gpt-4o-mini")).id == "gpt-4o-mini"


@pytest.mark.parametrize("model", ["unknown-model", "old-model"])
async def test_unknown_and_disabled_models_are_404_model_not_found(model: str) -> None:
    with pytest.raises(OpenAIError) as caught:
        await make(FakeUpstream(CHAT)).require(model)
    assert (caught.value.status, caught.value.code, caught.value.param) == (404, "model_not_found", "model")
    assert model in caught.value.message


async def test_a_model_of_another_feature_is_not_found_for_chat() -> None:
    upstream = FakeUpstream({**CHAT, "IMAGE_GENERATOR": [entry("dall-e-3")]})
    catalogue = make(upstream)
    assert (await catalogue.require("dall-e-3", "IMAGE_GENERATOR")).id == "dall-e-3"
    with pytest.raises(OpenAIError):
        await catalogue.require("dall-e-3")


async def test_subset_only_limits_both_the_list_and_what_is_accepted() -> None:
    upstream = FakeUpstream(CHAT)
    catalogue = make(upstream, subset_of_one_min_permitted_models="o3", permit_models_from_subset_only=True)
    assert [info.id for info in await catalogue.list_active()] == ["o3"]
    with pytest.raises(OpenAIError) as caught:
        await catalogue.require("gpt-4o")
    assert caught.value.code == "model_not_found"


async def test_subset_without_the_switch_changes_nothing() -> None:
    catalogue = make(FakeUpstream(CHAT), subset_of_one_min_permitted_models="o3")
    assert (await catalogue.require("gpt-4o")).id == "gpt-4o"


async def test_list_active_merges_features_and_drops_disabled_models() -> None:
    upstream = FakeUpstream({**CHAT, "IMAGE_GENERATOR": [entry("gpt-4o"), entry("dall-e-3")]})
    catalogue = make(upstream)
    listed = {info.id: info for info in await catalogue.list_active()}
    assert {"gpt-4o", "o3", "dall-e-3"} <= set(listed)  # other features come from the packaged snapshot
    assert "old-model" not in listed
    assert listed["gpt-4o"].features == frozenset({CHAT_FEATURE, "IMAGE_GENERATOR"})
    assert await catalogue.find("old-model") is None


def test_the_packaged_snapshot_has_every_served_feature() -> None:
    snapshot = load_packaged_snapshot()
    assert "gpt-4o-mini" in snapshot[CHAT_FEATURE]
    assert snapshot["IMAGE_GENERATOR"]
