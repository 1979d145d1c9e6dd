"""The 1min.ai Feature API envelope shared by image and audio calls: request body and result keys."""

from __future__ import annotations

from typing import Any

from onemin_relay.upstream.errors import invalid_response


def feature_request(
    feature: str, model: str, prompt_object: dict[str, Any], *, conversation_id: str | None = None
) -> dict[str, Any]:
    """The body of `POST /api/features` (reference §7.1)."""
    body: dict[str, Any] = {"type": feature, "model": model, "promptObject": prompt_object}
    if conversation_id is not None:
        body["conversationId"] = conversation_id
    return body


def result_keys(record: dict[str, Any]) -> list[str]:
    """The storage keys (or absolute URLs) a feature produced, in order (reference §2, §7.2).

    `resultObject` is a list of strings, defensively also a bare string; keys may carry a leading `/`."""
    detail = record.get("aiRecordDetail") or {}
    result = detail.get("resultObject") if isinstance(detail, dict) else None
    if isinstance(result, str):
        result = [result]
    if not isinstance(result, list):
        result = []
    keys = [
        item if item.startswith(("http://", "https://")) else item.lstrip("/")
        for item in result
        if _usable(item)
    ]
    if not keys:
        raise invalid_response("1min.ai reported success but returned no result.")
    return keys


def first_result_text(record: dict[str, Any]) -> str:
    """The text a text-producing feature returned: `resultObject[0]` (reference §9.2)."""
    detail = record.get("aiRecordDetail") or {}
    result = detail.get("resultObject") if isinstance(detail, dict) else None
    if isinstance(result, list):
        result = result[0] if result else None
    if not isinstance(result, str):
        raise invalid_response("1min.ai reported success but returned no text.")
    return result


def _usable(item: object) -> bool:
    return isinstance(item, str) and bool(item.strip())
