"""Probes that cost no credits: the catalogue, the key, requests 1min.ai rejects before doing any work,
an asset upload and its download. Each returns one `Item`."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from onemin_relay.api.images import DEFAULT_EDIT_MODEL
from onemin_relay.doctor.catalogue import Entries
from onemin_relay.doctor.context import (
    NO_SUCH_MODEL,
    SPEECH_MODEL,
    TRANSCRIPTION_MODEL,
    Context,
    endpoint_missing,
    error_answer,
    is_answer,
    item,
    meaning,
    switch_item,
    verdict,
)
from onemin_relay.doctor.observation import Observation, observe
from onemin_relay.doctor.report import Item
from onemin_relay.doctor.stream import stream_chat
from onemin_relay.translate.audio import SPEECH
from onemin_relay.translate.chat import build_payload
from onemin_relay.translate.features import feature_request
from onemin_relay.upstream.catalogue import SERVED_FEATURES
from onemin_relay.upstream.errors import UpstreamError

INVALID_KEY = "1min-relay-doctor-invalid-key"
# Models the relay names on its own: its defaults (api/images.py) and OpenAI's names that clients send.
RELAY_MODELS = (
    ("IMAGE_GENERATOR", "dall-e-2"),
    ("IMAGE_VARIATOR", "dall-e-2"),
    ("IMAGE_EDITOR", DEFAULT_EDIT_MODEL),
    ("TEXT_TO_SPEECH", SPEECH_MODEL),
    ("SPEECH_TO_TEXT", TRANSCRIPTION_MODEL),
)
# A 1×1 transparent PNG: the smallest image the Asset API takes.
PIXEL_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
_ENTRY_FIELDS = ("modelId", "status")


async def catalogue(ctx: Context, features: list[str]) -> Item:
    """Every feature of the snapshot answers `GET /models` with entries the relay can read."""
    problems: list[str] = []
    breaking = False
    for feature in features:
        try:
            entries: Entries = await ctx.client.models(feature)
        except UpstreamError as exc:
            problems.append(f"{feature}: {exc.status} {exc.code} {ctx.mask(exc.message)}")
            breaking = breaking or feature in SERVED_FEATURES
            continue
        unreadable = [
            entry for entry in entries if not all(isinstance(entry.get(f), str) for f in _ENTRY_FIELDS)
        ]
        if not entries or unreadable:
            problems.append(f"{feature}: {len(entries)} entries, {len(unreadable)} without modelId/status")
            breaking = breaking or feature in SERVED_FEATURES
        if entries:
            ctx.live[feature] = entries
    expected = f"{len(features)} features listed, each entry with modelId and status"
    if problems:
        return item(
            "catalogue",
            "catalogue: GET /models per feature",
            "differs",
            expected,
            "; ".join(problems),
            breaking=breaking,
        )
    total = sum(len(entries) for entries in ctx.live.values())
    return item(
        "catalogue",
        "catalogue: GET /models per feature",
        "match",
        expected,
        f"{len(features)} features, {total} entries",
    )


def relay_models(ctx: Context) -> Item:
    """The models the relay picks or special-cases are listed and ACTIVE."""
    title = "catalogue: models the relay names itself"
    expected = ", ".join(f"{model} ({feature})" for feature, model in RELAY_MODELS) + " ACTIVE"
    unknown = [feature for feature, _ in RELAY_MODELS if feature not in ctx.live]
    missing = [
        f"{model} ({feature})"
        for feature, model in RELAY_MODELS
        if feature in ctx.live and not ctx.active(feature, model)
    ]
    if missing:
        return item(
            "catalogue.relay_models",
            title,
            "differs",
            expected,
            "missing or disabled: " + ", ".join(missing),
            breaking=True,
        )
    if unknown:
        return item("catalogue.relay_models", title, "unknown", expected, "not listed: " + ", ".join(unknown))
    return item("catalogue.relay_models", title, "match", expected, "all listed and ACTIVE")


async def key_accepted(ctx: Context) -> Item:
    """`GET /api/results/<unknown id>` is free and needs a valid key: 200 `{"aiRecord": null}` (§7.3)."""
    seen = await observe(ctx.client, "GET", f"/api/results/{uuid.uuid4()}", ctx.key)
    expected = '200 {"aiRecord": null}'
    title = "auth: the key is accepted"
    if seen.status == 200 and seen.body == {"aiRecord": None}:
        return item("auth.accepted", title, "match", expected, "200, key accepted")
    breaking = seen.status in (401, 403) or endpoint_missing(seen)
    return item("auth.accepted", title, "differs", expected, ctx.show(seen), breaking=breaking)


async def key_rejected(ctx: Context) -> Item:
    seen = await observe(ctx.client, "GET", f"/api/results/{uuid.uuid4()}", INVALID_KEY)
    expected = error_answer(401, "A", "UNAUTHORIZED")
    result = verdict(is_answer(seen, 401, "A", "UNAUTHORIZED"))
    return item("auth.rejected", "auth: a wrong key is refused", result, expected, ctx.show(seen))


async def _chat(ctx: Context, body: dict[str, Any]) -> Any:
    return await observe(ctx.client, "POST", "/api/chat-with-ai", ctx.key, json=body)


async def chat_validation(ctx: Context) -> Item:
    """The chat endpoint is where the relay calls it, and checks the prompt before doing any work."""
    body = build_payload(ctx.chat_model, "")
    body["promptObject"]["prompt"] = 42
    seen = await _chat(ctx, body)
    expected = error_answer(422, "A", "PROMPT_OBJECT_VALIDATION_FAILED")
    title = "chat: /api/chat-with-ai checks the prompt"
    result = verdict(is_answer(seen, 422, "A", "PROMPT_OBJECT_VALIDATION_FAILED"))
    return item("chat.endpoint", title, result, expected, ctx.show(seen), breaking=endpoint_missing(seen))


async def refused_stream(ctx: Context) -> Item:
    """§3.6: a stream refused before it starts is an ordinary JSON error, not an event stream."""
    body = build_payload(ctx.chat_model, "")
    body["promptObject"]["prompt"] = 42
    streamed = await stream_chat(ctx.client, ctx.key, body)
    expected = error_answer(422, "A", "PROMPT_OBJECT_VALIDATION_FAILED") + " as JSON, no event stream"
    result = verdict(
        not streamed.is_sse and is_answer(streamed.answer, 422, "A", "PROMPT_OBJECT_VALIDATION_FAILED")
    )
    observed = streamed.describe(ctx.mask)
    return item("chat.refused_stream", "chat: a stream refused before it starts", result, expected, observed)


async def type_required(ctx: Context) -> Item:
    """§18.7: a chat without `type`. Sent with an invalid prompt, so it is refused either way (free)."""
    body = build_payload(ctx.chat_model, "")
    del body["type"]
    body["promptObject"]["prompt"] = 42
    answers = {True: (400, "A", "INVALID_REQUEST"), False: (422, "A", "PROMPT_OBJECT_VALIDATION_FAILED")}
    title = "chat: `type` is required (§18.7)"
    return await _refusal(
        ctx, "chat.type_required", title, "require_type", "/api/chat-with-ai", body, answers
    )


async def chat_unknown_model(ctx: Context) -> Item:
    """§18.3: the error for a model the chat endpoint does not know (refused, so free)."""
    seen = await _chat(ctx, build_payload(NO_SUCH_MODEL, "Hello"))
    shape = ctx.assumed.chat_model_error_shape
    observed = seen.shape if seen.status == 400 and seen.error_code == "UNSUPPORTED_MODEL" else None
    return switch_item(
        ctx,
        "chat.unknown_model",
        "chat: unknown model error shape (§18.3)",
        "chat_model_error_shape",
        observed if observed in ("A", "B") else None,
        error_answer(400, shape, "UNSUPPORTED_MODEL"),
        ctx.show(seen),
    )


async def features_endpoint(ctx: Context) -> Item:
    body = feature_request(SPEECH, NO_SUCH_MODEL, {"text": "Hello", "voice": "alloy"}, conversation_id=SPEECH)
    seen = await observe(ctx.client, "POST", "/api/features", ctx.key, json=body)
    expected = error_answer(400, "B", "UNSUPPORTED_MODEL")
    result = verdict(is_answer(seen, 400, "B", "UNSUPPORTED_MODEL"))
    title = "features: /api/features refuses an unknown model"
    return item("features.endpoint", title, result, expected, ctx.show(seen), breaking=endpoint_missing(seen))


async def legacy_chat(ctx: Context) -> Item:
    """Legacy chat (`CHAT_WITH_AI` on /api/features), with an invalid prompt: refused either way."""
    body = feature_request("CHAT_WITH_AI", ctx.chat_model, {"prompt": 42})
    # retired: "Unsupported feature type"; still served: the prompt is checked
    answers = {False: (400, "B", "UNKNOWN_ERROR"), True: (400, "B", "PROMPT_OBJECT_VALIDATION_FAILED")}
    title = "features: legacy chat is retired"
    return await _refusal(ctx, "features.legacy_chat", title, "legacy_chat", "/api/features", body, answers)


async def _refusal(
    ctx: Context,
    id: str,
    title: str,
    field: str,
    path: str,
    body: dict[str, Any],
    answers: dict[Any, tuple[int, str, str]],
) -> Item:
    """POST a request refused either way; which refusal it gets tells the value of the switch `field`."""
    seen = await observe(ctx.client, "POST", path, ctx.key, json=body)
    expected = error_answer(*answers[getattr(ctx.assumed, field)])
    return switch_item(ctx, id, title, field, meaning(seen, answers), expected, ctx.show(seen))


async def asset_round_trip(ctx: Context) -> Item:
    """Upload a one-pixel PNG (the Asset API is free) and read it back from the asset CDN."""
    title = "assets: upload, then download from the CDN"
    expected = "200 {asset, fileContent} with a path and a uuid; the CDN serves the same bytes"
    try:
        asset = await ctx.client.upload_asset(ctx.key, "1min-relay-doctor.png", PIXEL_PNG, "image/png")
    except UpstreamError as exc:
        return item(
            "assets",
            title,
            "differs",
            expected,
            f"upload: {exc.status} {exc.code} {ctx.mask(exc.message)}",
            breaking=True,
        )
    ctx.image = asset
    try:
        data, _ = await ctx.client.download(asset.path, max_bytes=1024 * 1024)
    except UpstreamError as exc:
        observed = f"uploaded as {asset.path}; download: {exc.status} {exc.code} {ctx.mask(exc.message)}"
        return item("assets", title, "differs", expected, observed, breaking=True)
    if data != PIXEL_PNG:
        observed = f"uploaded as {asset.path}; the CDN served {len(data)} other bytes"
        return item("assets", title, "differs", expected, observed, breaking=True)
    return item("assets", title, "match", expected, f"stored as {asset.path}")


async def rate_limit(ctx: Context, *, attempts: int = 400, concurrency: int = 8) -> Item:
    """§18.9: free calls in a burst until one is refused as rate-limited; does that 429 carry Retry-After?

    Opt-in (`--probe-rate-limit`): it leaves the key rate-limited for up to a minute."""
    title = "rate limit: Retry-After on a 429 (§18.9)"
    with_header = ctx.assumed.rate_limit_retry_after
    expected = error_answer(429, "A", "RATE_LIMITED") + (
        " with Retry-After" if with_header else " without Retry-After"
    )
    refused: list[Observation] = []
    sent = 0

    async def worker() -> None:
        nonlocal sent
        while not refused and sent < attempts:
            sent += 1
            seen = await observe(ctx.client, "GET", f"/api/results/{uuid.uuid4()}", ctx.key)
            if seen.status == 429:
                refused.append(seen)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    if not refused:
        return item(
            "rate_limit",
            title,
            "unknown",
            expected,
            f"no 429 in {sent} calls",
            switch=("rate_limit_retry_after",),
        )
    seen = refused[0]
    observed = f"after {sent} calls: {ctx.show(seen)}"
    return switch_item(
        ctx, "rate_limit", title, "rate_limit_retry_after", "retry-after" in seen.headers, expected, observed
    )
