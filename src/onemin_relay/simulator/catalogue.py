"""The model catalogue fixture (`onemin_relay/data/catalogue.json`), as `GET /models?feature=…` serves it."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

Entry = dict[str, Any]


@cache
def load_catalogue() -> dict[str, list[Entry]]:
    """`{feature: [model entry, …]}`; the same file is the relay's offline catalogue snapshot."""
    text = resources.files("onemin_relay").joinpath("data", "catalogue.json").read_text(encoding="utf-8")
    data: dict[str, list[Entry]] = json.loads(text)
    return data


def models_for(feature: str) -> list[Entry]:
    return load_catalogue().get(feature, [])


def find_model(feature: str, model_id: str) -> Entry | None:
    for entry in models_for(feature):
        if entry["modelId"] == model_id:
            return entry
    return None


def active_model(feature: str, model_id: Any) -> Entry | None:
    """The entry when `model_id` is listed for `feature` and ACTIVE; DISABLED models count as unsupported."""
    if not isinstance(model_id, str):
        return None
    entry = find_model(feature, model_id)
    return entry if entry is not None and entry["status"] == "ACTIVE" else None


def accepts_images(entry: Entry) -> bool:
    return "IMAGE" in entry.get("modality", {}).get("INPUT", [])
