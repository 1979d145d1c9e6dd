"""The `aiRecord` envelope (reference §2) shared by chat, features and Get Result."""

from __future__ import annotations

import uuid
from typing import Any

from onemin_relay.simulator.gateway import Call
from onemin_relay.simulator.state import now_iso

_IDS = uuid.UUID("0b7e7a51-5c1d-4d8e-9a11-6b1f0c2d3e4f")


def team_user(call: Call, used_before: int) -> dict[str, Any]:
    user_id, team_id = (str(uuid.uuid5(_IDS, f"{kind}:{call.key_hash}")) for kind in ("user", "team"))
    return {
        "teamId": team_id,
        "userId": user_id,
        "userName": "1minAI",
        "userAvatar": "https://lh3.googleusercontent.com/a/ACg8ocJxHeiuADdtp",
        "status": "ACTIVE",
        "role": "ADMIN",
        "creditLimit": call.state.config.credit_limit,
        "usedCredit": used_before,
        "createdAt": "2023-11-24T06:31:06.467Z",
        "createdBy": "SYSTEM",
        "updatedAt": "2024-09-29T09:17:08.210Z",
        "updatedBy": "SYSTEM",
    }


def ai_record(
    call: Call,
    *,
    model: dict[str, Any],
    feature: str,
    prompt_object: dict[str, Any],
    result_object: list[str],
    status: str,
    metadata: dict[str, Any] | None,
    conversation_id: str | None,
    credits: int,
) -> dict[str, Any]:
    """A complete record; bills `credits` to the key, showing the usage from before this call."""
    used_before = call.state.ledger.bill(call.key_hash, credits)
    user = team_user(call, used_before)
    return {
        "uuid": str(uuid.uuid4()),
        "userId": user["userId"],
        "teamId": user["teamId"],
        "teamUser": user,
        "model": model["modelId"],
        "type": feature,
        "metadata": metadata,
        "rating": None,
        "feedback": None,
        "conversationId": conversation_id,
        "status": status,
        "createdAt": now_iso(),
        "aiRecordDetail": {"promptObject": prompt_object, "resultObject": result_object},
        "modelDetail": {"name": model["modelId"], "provider": str(model.get("provider") or "").upper()},
        "additionalData": None,
    }
