"""The 1min.ai model catalogue (`GET /models?feature=…`), cached per feature with a TTL.

When upstream cannot be read, the last good copy is served, and failing that the snapshot shipped in
`onemin_relay/data/catalogue.json`; the log says which. Concurrent refreshes of a feature share one call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from types import MappingProxyType
from typing import Any, Literal

import anyio

from onemin_relay.config import Settings
from onemin_relay.errors import model_not_found
from onemin_relay.upstream.client import OneMinClient
from onemin_relay.upstream.features import CHAT_FEATURE as CHAT_FEATURE
from onemin_relay.upstream.features import SERVED_FEATURES as SERVED_FEATURES

log = logging.getLogger("onemin_relay.catalogue")

# creditMetadata keys that are limits, not prices.
_CONTEXT, _MAX_OUTPUT = "CONTEXT", "MAX_OUTPUT_TOKEN"
# After a failed refresh, wait this long (at most the TTL) before asking upstream again.
FAILED_REFRESH_BACKOFF = 30.0

Source = Literal["upstream", "last good copy", "packaged snapshot"]


@dataclass(frozen=True)
class ModelInfo:
    """One catalogue entry, typed. `features` are the upstream feature types the model is listed under."""

    id: str
    name: str
    provider: str
    status: str
    features: frozenset[str]
    input_modalities: frozenset[str]
    output_modalities: frozenset[str]
    credit_metadata: Mapping[str, Any] = field(default_factory=dict)
    created: int = 0
    deprecation_date: str | None = None

    @property
    def active(self) -> bool:
        return self.status.upper() == "ACTIVE"

    @property
    def accepts_images(self) -> bool:
        return "IMAGE" in self.input_modalities

    @property
    def context_length(self) -> int | None:
        """Tokens the model reads at most (`creditMetadata.CONTEXT`), when the catalogue says."""
        return _positive_int(self.credit_metadata.get(_CONTEXT))

    @property
    def max_output_tokens(self) -> int | None:
        """Tokens the model writes at most (`creditMetadata.MAX_OUTPUT_TOKEN`), when the catalogue says."""
        return _positive_int(self.credit_metadata.get(_MAX_OUTPUT))

    @property
    def credit_prices(self) -> dict[str, Any]:
        """The prices in 1min.ai credits, keyed as its catalogue keys them (chat: `INPUT`/`OUTPUT` per
        token as far as is known, `LOW_IMAGE` per image; media: `ALL` per call, or per-size tables)."""
        limits = {_CONTEXT, _MAX_OUTPUT}
        return {key: value for key, value in self.credit_metadata.items() if key not in limits}


@dataclass(frozen=True)
class _Copy:
    models: Mapping[str, ModelInfo]
    source: Source
    expires_at: float


def parse_entry(entry: Mapping[str, Any], feature: str) -> ModelInfo | None:
    """A `/models` entry → ModelInfo; None for placeholders (`NOT_APPLICABLE`) and malformed entries."""
    model_id = entry.get("modelId")
    if not isinstance(model_id, str) or not model_id.strip() or model_id == "NOT_APPLICABLE":
        return None
    raw_modality = entry.get("modality")
    modality: Mapping[str, Any] = raw_modality if isinstance(raw_modality, Mapping) else {}
    credit = entry.get("creditMetadata")
    return ModelInfo(
        id=model_id.strip(),
        name=_text(entry.get("name")) or model_id,
        provider=(_text(entry.get("provider")) or _text(entry.get("group")) or "1min.ai").lower(),
        status=_text(entry.get("status")) or "ACTIVE",
        features=frozenset({feature, *_strings(entry.get("features"))}),
        input_modalities=frozenset(s.upper() for s in _strings(modality.get("INPUT"))),
        output_modalities=frozenset(s.upper() for s in _strings(modality.get("OUTPUT"))),
        credit_metadata=MappingProxyType(dict(credit))
        if isinstance(credit, Mapping)
        else MappingProxyType({}),
        created=_unix_time(entry.get("createdAt")),
        deprecation_date=_text(entry.get("deprecationDate")),
    )


def parse_feature(entries: Iterable[Any], feature: str) -> dict[str, ModelInfo]:
    models: dict[str, ModelInfo] = {}
    for entry in entries:
        info = parse_entry(entry, feature) if isinstance(entry, Mapping) else None
        if info is not None:
            models.setdefault(info.id, info)
    return models


class ModelCatalogue:
    """Cached view of the upstream catalogue, and the relay's model permission rules."""

    def __init__(self, client: OneMinClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self._copies: dict[str, _Copy] = {}
        self._refreshing: dict[str, asyncio.Task[_Copy]] = {}
        self._snapshot: dict[str, dict[str, ModelInfo]] | None = None

    # --- public API ---------------------------------------------------------------------------

    async def models(self, feature: str) -> Mapping[str, ModelInfo]:
        """Every model listed for `feature` (any status), keyed by id."""
        copy = self._copies.get(feature)
        if copy is not None and time.monotonic() < copy.expires_at:
            return copy.models
        task = self._refreshing.get(feature)
        if task is None:
            task = asyncio.create_task(self._refresh(feature), name=f"catalogue-{feature}")
            self._refreshing[feature] = task
            task.add_done_callback(lambda _: self._refreshing.pop(feature, None))
        # Shielded: a caller that goes away must not cancel the refresh others are waiting on.
        return (await asyncio.shield(task)).models

    def permitted(self, model_id: str) -> bool:
        """The original relay's rule: with PERMIT_MODELS_FROM_SUBSET_ONLY, only the subset is usable."""
        if not self.settings.permit_models_from_subset_only:
            return True
        return model_id in self.settings.permitted_models

    async def require(self, model_id: str, feature: str = CHAT_FEATURE) -> ModelInfo:
        """The ACTIVE, permitted model `model_id` of `feature`, or the OpenAI 404 `model_not_found`."""
        if not self.permitted(model_id):
            raise model_not_found(model_id)
        info = (await self.models(feature)).get(model_id)
        if info is None or not info.active:
            raise model_not_found(model_id)
        return info

    async def find(self, model_id: str) -> ModelInfo | None:
        """The model as /v1/models shows it (ACTIVE and permitted, in any served feature), or None."""
        for info in await self.list_active():
            if info.id == model_id:
                return info
        return None

    async def list_active(self) -> list[ModelInfo]:
        """ACTIVE, permitted models of every served feature, one entry per id (features merged)."""
        copies = await asyncio.gather(*(self.models(feature) for feature in SERVED_FEATURES))
        merged: dict[str, ModelInfo] = {}
        for models in copies:
            for info in models.values():
                if not info.active or not self.permitted(info.id):
                    continue
                seen = merged.get(info.id)
                merged[info.id] = info if seen is None else _merge(seen, info)
        return list(merged.values())

    async def warm(self) -> None:
        """Fetch every served feature's list now (the relay does, in the background, at start-up), so
        that the first requests find it cached. Nothing to keep when MODEL_CACHE_TTL is 0. Never fails:
        with upstream unreachable the packaged snapshot is served until a later refresh succeeds."""
        if self.settings.model_cache_ttl > 0:
            await asyncio.gather(*(self.models(feature) for feature in SERVED_FEATURES))

    # --- refreshing ---------------------------------------------------------------------------

    async def _refresh(self, feature: str) -> _Copy:
        ttl = self.settings.model_cache_ttl
        try:
            entries = await self.client.models(feature)
            models = parse_feature(entries, feature)
            if not models:
                raise ValueError("the catalogue listed no models")
        except Exception as exc:  # any failure means: fall back, and say so
            copy = await self._fallback(feature, exc, ttl)
        else:
            copy = _Copy(MappingProxyType(models), "upstream", time.monotonic() + ttl)
        self._copies[feature] = copy
        return copy

    async def _fallback(self, feature: str, exc: Exception, ttl: float) -> _Copy:
        expires_at = time.monotonic() + min(ttl, FAILED_REFRESH_BACKOFF)
        previous = self._copies.get(feature)
        source: Source
        if previous is not None and previous.source != "packaged snapshot":
            models, source = previous.models, "last good copy"
        else:
            models, source = MappingProxyType((await self._packaged()).get(feature, {})), "packaged snapshot"
        log.warning(
            "model catalogue for %s unavailable upstream (%s); serving the %s",
            feature,
            exc,
            source,
            extra={"fields": {"feature": feature, "catalogue_source": source}},
        )
        return _Copy(models, source, expires_at)

    async def _packaged(self) -> dict[str, dict[str, ModelInfo]]:
        if self._snapshot is None:
            self._snapshot = await anyio.to_thread.run_sync(load_packaged_snapshot)
        return self._snapshot


def load_packaged_snapshot() -> dict[str, dict[str, ModelInfo]]:
    """The catalogue shipped with the package: `{"FEATURE": [/models entries]}`."""
    text = resources.files("onemin_relay").joinpath("data/catalogue.json").read_text(encoding="utf-8")
    raw = json.loads(text)
    return {
        feature: parse_feature(entries, feature)
        for feature, entries in raw.items()
        if isinstance(entries, list)
    }


def _merge(first: ModelInfo, other: ModelInfo) -> ModelInfo:
    return ModelInfo(
        id=first.id,
        name=first.name,
        provider=first.provider,
        status=first.status,
        features=first.features | other.features,
        input_modalities=first.input_modalities | other.input_modalities,
        output_modalities=first.output_modalities | other.output_modalities,
        credit_metadata=first.credit_metadata,
        created=first.created,
        deprecation_date=first.deprecation_date or other.deprecation_date,
    )


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0 or value != int(value):
        return None
    return int(value)


def _unix_time(value: Any) -> int:
    if not isinstance(value, str):
        return 0
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0
