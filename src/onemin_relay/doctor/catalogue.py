"""The live catalogue against the shipped snapshot (`onemin_relay/data/catalogue.json`), and its refresh.

The snapshot is the relay's offline fallback and what the simulator serves; it lists, per feature, the
raw `GET /models?feature=…` entries. Refreshing asks the service for the same features and rewrites
the file only when every one of them answered with models.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from onemin_relay.upstream.client import OneMinClient

Entries = list[dict[str, Any]]


def _by_id(entries: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    models: dict[str, Mapping[str, Any]] = {}
    for entry in entries:
        model_id = entry.get("modelId")
        if isinstance(model_id, str) and model_id != "NOT_APPLICABLE":
            models.setdefault(model_id, entry)
    return models


def _active(entry: Mapping[str, Any]) -> bool:
    return str(entry.get("status", "ACTIVE")).upper() == "ACTIVE"


def feature_changes(snapshot: Entries, live: Entries) -> dict[str, Any]:
    """Models added, removed, disabled, enabled, re-priced or newly deprecated (empty: no change)."""
    before, after = _by_id(snapshot), _by_id(live)
    both = [model for model in after if model in before]
    changes: dict[str, Any] = {
        "added": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "disabled": sorted(m for m in both if _active(before[m]) and not _active(after[m])),
        "enabled": sorted(m for m in both if not _active(before[m]) and _active(after[m])),
        "prices": [
            {"model": m, "before": before[m].get("creditMetadata"), "after": after[m].get("creditMetadata")}
            for m in sorted(both)
            if before[m].get("creditMetadata") != after[m].get("creditMetadata")
        ],
        "deprecations": [
            {"model": m, "date": after[m].get("deprecationDate")}
            for m in sorted(both)
            if after[m].get("deprecationDate")
            and after[m].get("deprecationDate") != before[m].get("deprecationDate")
        ],
    }
    return {kind: value for kind, value in changes.items() if value}


def catalogue_changes(
    snapshot: Mapping[str, Entries], live: Mapping[str, Entries]
) -> dict[str, dict[str, Any]]:
    """Per feature answered live, its changes against the snapshot (features without changes left out)."""
    changes = {
        feature: feature_changes(snapshot.get(feature, []), entries) for feature, entries in live.items()
    }
    return {feature: change for feature, change in changes.items() if change}


async def fetch_catalogue(client: OneMinClient, features: Iterable[str]) -> dict[str, Entries]:
    """Every feature's live entries; the first failure raises UpstreamError (ValueError: no models)."""
    live: dict[str, Entries] = {}
    for feature in features:
        entries = await client.models(feature)
        if not entries:
            raise ValueError(f"1min.ai listed no models for {feature}")
        live[feature] = entries
    return live


def write_snapshot(catalogue: Mapping[str, Entries], path: Path) -> None:
    """Write the snapshot in the shipped file's format, atomically (a failed write leaves the old file)."""
    text = json.dumps(catalogue, indent=1) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".catalogue-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
