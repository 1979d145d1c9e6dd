"""Probes that spend credits (`--spend-credits`): the smallest calls that answer what free ones cannot.

Some of them carry a simulator magic word (`[[sim:…]]`, docs/simulator.md) in their text: to 1min.ai it is
a few more characters of an ordinary request, which it answers normally — the item is then `?`, since
the failure it asks about did not happen — while the simulator fails the call as asked, which is how the
doctor's own reading of failures is tested.
"""

from __future__ import annotations

import asyncio
import math
import re
from typing import Any

from onemin_relay.doctor.context import (
    CHAT_FEATURE,
    PROMPT,
    SPEECH_MODEL,
    SPOKEN_TEXT,
    TRANSCRIPTION_MODEL,
    Context,
    error_answer,
    is_answer,
    item,
    not_run,
    price,
    switch_item,
    unseen,
    verdict,
)
from onemin_relay.doctor.observation import Observation, observe
from onemin_relay.doctor.report import Item
from onemin_relay.doctor.stream import stream_chat
from onemin_relay.translate.audio import (
    SPEECH,
    TRANSCRIPTION,
    TranscriptionOptions,
    parse_transcript,
    speech_prompt_object,
    transcription_prompt_object,
)
from onemin_relay.translate.chat import build_payload
from onemin_relay.translate.features import feature_request, first_result_text, result_keys
from onemin_relay.upstream.errors import UpstreamError
from onemin_relay.upstream.sse import record_text

# Calls made with --spend-credits, for the estimate: chats (plain, cut, streamed, failing stream, failed
# record, out of credit, image for a text-only model), speech (plain and async) and one transcription.
CHAT_CALLS = 7
SPEECH_CALLS = 2
# A generous guess at one probe chat's size: the prompt plus a wordy answer.
ESTIMATED_INPUT_TOKENS = 60
ESTIMATED_OUTPUT_TOKENS = 200
CREDIT_TOLERANCE = 0.05  # relative, on top of one credit of rounding
POLL_DELAYS = (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 5, 10, 10, 10)  # seconds before each poll
AUDIO_TYPES = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "opus": "audio/ogg",
    "flac": "audio/flac",
    "aac": "audio/aac",
}


def estimate_credits(ctx: Context) -> int:
    """Roughly what the billed probes cost, from the live catalogue's prices (an upper bound)."""
    chat = ctx.entry(CHAT_FEATURE, ctx.chat_model)
    per_chat = ESTIMATED_INPUT_TOKENS * (price(chat, "INPUT") or 1) + ESTIMATED_OUTPUT_TOKENS * (
        price(chat, "OUTPUT") or 1
    )
    speech = price(ctx.entry(SPEECH, SPEECH_MODEL), "ALL") or 100
    transcription = price(ctx.entry(TRANSCRIPTION, TRANSCRIPTION_MODEL), "ALL") or 100
    return math.ceil(CHAT_CALLS * per_chat + SPEECH_CALLS * speech + transcription)


def _with_magic(fault: str) -> str:
    return f"{PROMPT} [[sim:{fault}]]"


async def _chat(ctx: Context, prompt: str, **attachments: Any) -> Observation:
    payload = build_payload(ctx.chat_model, prompt, **attachments)
    return await observe(ctx.client, "POST", "/api/chat-with-ai", ctx.key, json=payload)


def _succeeded(seen: Observation) -> dict[str, Any] | None:
    record = seen.record
    return record if seen.status == 200 and record is not None and record.get("status") == "SUCCESS" else None


# --- chat ---------------------------------------------------------------------------------------------


async def chat_json(ctx: Context) -> Item:
    seen = await _chat(ctx, PROMPT)
    expected = "200 aiRecord, status SUCCESS, the answer in resultObject[0]"
    record = _succeeded(seen)
    title = "chat: a short answer as JSON"
    if record is None or not record_text(record):
        return item("chat.json", title, "differs", expected, ctx.show(seen), breaking=True)
    ctx.chat_record = record
    return item("chat.json", title, "match", expected, f"200, {len(record_text(record) or '')} characters")


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def credit_formula(ctx: Context) -> Item:
    """§18.8: credits = tokens × the catalogue price × credit_scale, read from the plain chat's metadata."""
    title = "chat: credits follow the catalogue prices (§18.8)"
    scale = ctx.assumed.credit_scale
    entry = ctx.entry(CHAT_FEATURE, ctx.chat_model)
    prices = (price(entry, "INPUT"), price(entry, "OUTPUT"))
    expected = f"credit = round(inputToken × INPUT × {scale}) + round(outputToken × OUTPUT × {scale})"
    record = ctx.chat_record
    if record is None:
        return not_run("chat.credits", title, expected, "the plain chat failed", ("credit_scale",))
    metadata = record.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    tokens = (_int(metadata.get("inputToken")), _int(metadata.get("outputToken")))
    credit = _int(metadata.get("credit"))
    if credit is None or None in tokens or not any(tokens) or None in prices:
        observed = f"metadata {ctx.mask(str(record.get('metadata')))}, prices {prices}"
        return unseen(
            "chat.credits",
            title,
            expected,
            observed,
            ("credit_scale",),
            "no token counts or prices to compare",
        )
    input_tokens, output_tokens = tokens[0] or 0, tokens[1] or 0
    input_price, output_price = prices[0] or 0.0, prices[1] or 0.0
    observed = (
        f"credit {credit} for {input_tokens} input and {output_tokens} output tokens of {ctx.chat_model}"
    )

    def credits_at(factor: float) -> int:
        return round(input_tokens * input_price * factor) + round(output_tokens * output_price * factor)

    def close(factor: float) -> bool:
        wanted = credits_at(factor)
        return abs(credit - wanted) <= 1 + CREDIT_TOLERANCE * wanted

    if close(scale):
        return item("chat.credits", title, "match", expected, observed, switch=("credit_scale",))
    base = input_tokens * input_price + output_tokens * output_price
    # the roundest factor that reproduces the observation: 2 rather than 1.99
    fits = [f for digits in (1, 2, 3) if base > 0 and close(f := float(f"{credit / base:.{digits}g}"))]
    suggestion = {"credit_scale": fits[0]} if fits else {}
    note = "" if suggestion else "no credit_scale reproduces this"
    return item(
        "chat.credits",
        title,
        "differs",
        expected,
        observed,
        switch=("credit_scale",),
        suggestion=suggestion,
        note=note,
    )


async def stream_cut(ctx: Context) -> Item:
    """A stream the client hangs up on after the first words (what the relay does when its client leaves)."""
    streamed = await stream_chat(
        ctx.client, ctx.key, build_payload(ctx.chat_model, PROMPT), cut_after_content=True
    )
    expected = "200 text/event-stream; content arrives, then the client hangs up"
    title = "chat: a stream cut by the client"
    if streamed.is_sse and "content" in streamed.kinds():
        return item("chat.stream_cut", title, "match", expected, f"cut after {len(streamed.events)} events")
    return item("chat.stream_cut", title, "differs", expected, streamed.describe(ctx.mask), breaking=True)


async def chat_stream(ctx: Context) -> list[Item]:
    """One streamed chat: its event sequence, its opening `content` event, and its `result` record."""
    streamed = await stream_chat(ctx.client, ctx.key, build_payload(ctx.chat_model, PROMPT))
    summary = streamed.describe(ctx.mask)
    decoded = streamed.decoded() if streamed.is_sse else []
    results = [event.record for event in decoded if event.kind == "result" and event.record is not None]
    text = "".join(event.text for event in decoded if event.kind == "content")
    expected = "200 text/event-stream: content…, result, done; the streamed text equals the result's"
    ok = (
        bool(decoded) and decoded[-1].kind == "done" and len(results) == 1 and record_text(results[0]) == text
    )
    items = [
        item(
            "chat.stream",
            "chat: a short answer streamed",
            verdict(ok),
            expected,
            summary,
            breaking=not ok,
        )
    ]
    empty_title = "chat: a stream opens with an empty content event"
    empty_expected = (
        'first event content {"content": ""}'
        if ctx.assumed.empty_first_content
        else "first event carries text"
    )
    first = streamed.first_content()
    if first is None:
        items.append(
            not_run(
                "chat.stream_empty_first",
                empty_title,
                empty_expected,
                "no content event",
                ("empty_first_content",),
            )
        )
    else:
        items.append(
            switch_item(
                ctx,
                "chat.stream_empty_first",
                empty_title,
                "empty_first_content",
                first == "",
                empty_expected,
                f"first content {first[:40]!r}",
            )
        )
    metadata_title = "chat: the streamed result carries credits (§18.1)"
    metadata_expected = (
        "result aiRecord.metadata with credit and tokens"
        if ctx.assumed.stream_result_metadata
        else "result aiRecord.metadata null"
    )
    if not results:
        items.append(
            not_run(
                "chat.stream_metadata",
                metadata_title,
                metadata_expected,
                "no result event",
                ("stream_result_metadata",),
            )
        )
    else:
        metadata = results[0].get("metadata")
        carries = isinstance(metadata, dict) and "credit" in metadata
        observed = f"metadata {ctx.mask(str(metadata))[:200]}"
        items.append(
            switch_item(
                ctx,
                "chat.stream_metadata",
                metadata_title,
                "stream_result_metadata",
                carries,
                metadata_expected,
                observed,
            )
        )
        _note_cut_cost(ctx, results[0])
    return items


def _note_cut_cost(ctx: Context, after: dict[str, Any]) -> None:
    """What the cut stream cost, from `teamUser.usedCredit` (usage before each call, §2.1) around it."""
    before = ctx.chat_record
    used_before = _used(before)
    used_after = _used(after)
    metadata = before.get("metadata") if before else None
    credit = _int(metadata.get("credit")) if isinstance(metadata, dict) else None
    if used_before is None or used_after is None or credit is None:
        ctx.cut_cost = None
        return
    ctx.cut_cost = used_after - used_before - credit


def _used(record: dict[str, Any] | None) -> int | None:
    team_user = record.get("teamUser") if record else None
    return _int(team_user.get("usedCredit")) if isinstance(team_user, dict) else None


async def stream_error(ctx: Context) -> Item:
    """§18.2: what follows a mid-stream `error` event (asks the simulator to fail this stream)."""
    streamed = await stream_chat(
        ctx.client, ctx.key, build_payload(ctx.chat_model, _with_magic("error-mid-stream"))
    )
    title = "chat: `done` after a mid-stream error (§18.2)"
    expected = "error, then done" if ctx.assumed.done_after_error else "error, then the stream ends"
    kinds = streamed.kinds()
    if "error" not in kinds:
        return unseen(
            "chat.stream_error",
            title,
            expected,
            streamed.describe(ctx.mask),
            ("done_after_error",),
            "1min.ai did not fail this stream, so what follows a failure could not be seen",
        )
    after = kinds[kinds.index("error") + 1 :]
    return switch_item(
        ctx,
        "chat.stream_error",
        title,
        "done_after_error",
        "done" in after,
        expected,
        streamed.describe(ctx.mask),
    )


async def failed_status(ctx: Context) -> Item:
    """§18.4: the spelling of a failed chat record's status (asks the simulator to fail this call)."""
    seen = await _chat(ctx, _with_magic("failed-status"))
    title = "chat: status of a failed record (§18.4)"
    expected = f"200 aiRecord.status {ctx.assumed.failed_status}"
    record = seen.record
    status = record.get("status") if record is not None and seen.status == 200 else None
    if status is None or status == "SUCCESS":
        return unseen(
            "chat.failed_status",
            title,
            expected,
            ctx.show(seen),
            ("failed_status",),
            "1min.ai did not fail this call",
        )
    observed = f"200 aiRecord.status {ctx.mask(str(status))}"
    return switch_item(
        ctx,
        "chat.failed_status",
        title,
        "failed_status",
        status if status in ("FAILED", "FAILURE") else None,
        expected,
        observed,
    )


async def insufficient_credits(ctx: Context) -> Item:
    """§18.3: status and shape of the out-of-credit error (asks the simulator to refuse this call)."""
    seen = await _chat(ctx, _with_magic("insufficient-credits"))
    assumed = ctx.assumed
    switch = ("insufficient_credits_status", "insufficient_credits_shape")
    assumed_shape = "A" if assumed.insufficient_credits_shape in ("endpoint", "A") else "B"
    title = "chat: the out-of-credit error (§18.3)"
    expected = f"{assumed.insufficient_credits_status} shape {assumed_shape}"
    about_credit = seen.status == 402 or "CREDIT" in (seen.error_code or "").upper()
    if seen.status < 400 or not about_credit:
        return unseen(
            "chat.credits_exhausted",
            title,
            expected,
            ctx.show(seen),
            switch,
            "1min.ai did not refuse this call for lack of credit",
        )
    suggestion: dict[str, Any] = {}
    if seen.status != assumed.insufficient_credits_status:
        suggestion["insufficient_credits_status"] = seen.status
    if seen.shape != assumed_shape and seen.shape in ("A", "B"):
        suggestion["insufficient_credits_shape"] = "endpoint" if seen.shape == "A" else "B"
    if not suggestion and seen.shape == assumed_shape:
        return item("chat.credits_exhausted", title, "match", expected, ctx.show(seen), switch=switch)
    note = "" if seen.shape in ("A", "B") else "no simulator switch reproduces this shape"
    return item(
        "chat.credits_exhausted",
        title,
        "differs",
        expected,
        ctx.show(seen),
        switch=switch,
        suggestion=suggestion,
        note=note,
    )


async def non_vision_images(ctx: Context) -> Item:
    """§18.11: an image sent to a text-only model is refused, or silently dropped (then it is billed)."""
    title = "chat: an image for a text-only model (§18.11)"
    assumed = ctx.assumed.non_vision_images
    expected = error_answer(400, "A", "INVALID_REQUEST") if assumed == "error" else "200, the image ignored"
    model = ctx.text_only_model
    if ctx.image is None or model is None:
        why = "no uploaded image" if ctx.image is None else "no text-only chat model listed"
        return not_run("chat.non_vision", title, expected, why, ("non_vision_images",))
    payload = build_payload(model, PROMPT, images=[ctx.image.path])
    seen = await observe(ctx.client, "POST", "/api/chat-with-ai", ctx.key, json=payload)
    value = (
        "ignore" if _succeeded(seen) else "error" if is_answer(seen, 400, "A", "INVALID_REQUEST") else None
    )
    return switch_item(
        ctx, "chat.non_vision", title, "non_vision_images", value, expected, f"{model}: {ctx.show(seen)}"
    )


# --- audio -----------------------------------------------------------------------------------------------


def _speech_request(text: str) -> dict[str, Any]:
    prompt_object = speech_prompt_object(SPEECH_MODEL, text, "alloy", "mp3", 1.0)
    return feature_request(SPEECH, SPEECH_MODEL, prompt_object, conversation_id=SPEECH)


async def speech(ctx: Context) -> Item:
    """§18.13: TEXT_TO_SPEECH answers a JSON record pointing at the audio (or the audio itself)."""
    seen = await observe(ctx.client, "POST", "/api/features", ctx.key, json=_speech_request(SPOKEN_TEXT))
    title = "speech: TEXT_TO_SPEECH answer (§18.13)"
    binary = ctx.assumed.tts_binary
    expected = "200 audio bytes" if binary else "200 aiRecord with an audios/… key; the audio downloads"
    if seen.status == 200 and seen.raw and seen.body is None and not seen.content_type.startswith("text/"):
        ctx.speech = (seen.raw, "mp3")
        observed = f"200 {seen.content_type}, {len(seen.raw)} bytes of audio (the relay expects a record)"
        result = switch_item(ctx, "speech", title, "tts_binary", True, expected, observed)
        result.breaking = True
        return result
    record = _succeeded(seen)
    if record is None:
        return item(
            "speech", title, "differs", expected, ctx.show(seen), switch=("tts_binary",), breaking=True
        )
    try:
        temporary = record.get("temporaryUrl")
        location = temporary if isinstance(temporary, str) and temporary else result_keys(record)[0]
        data, _ = await ctx.client.download(location, max_bytes=16 * 1024 * 1024)
    except UpstreamError as exc:
        observed = f"200 aiRecord; the audio: {exc.status} {exc.code} {ctx.mask(exc.message)}"
        return item("speech", title, "differs", expected, observed, switch=("tts_binary",), breaking=True)
    key = result_keys(record)[0]
    ctx.speech = (data, key.rsplit(".", 1)[-1].lower() if "." in key else "mp3")
    observed = f"200 aiRecord {ctx.mask(key)}, {len(data)} bytes of audio"
    return switch_item(ctx, "speech", title, "tts_binary", False, expected, observed)


async def transcription(ctx: Context) -> Item:
    """The speech above, uploaded and transcribed back with whisper-1."""
    title = "transcription: SPEECH_TO_TEXT of that speech"
    expected = f"200 aiRecord whose text has the words of {SPOKEN_TEXT!r}"
    if ctx.speech is None:
        return not_run("transcription", title, expected, "no speech to transcribe")
    data, extension = ctx.speech
    extension = extension if extension in AUDIO_TYPES else "mp3"
    try:
        asset = await ctx.client.upload_asset(
            ctx.key, f"1min-relay-doctor-speech.{extension}", data, AUDIO_TYPES[extension]
        )
    except UpstreamError as exc:
        observed = f"upload: {exc.status} {exc.code} {ctx.mask(exc.message)}"
        return item("transcription", title, "differs", expected, observed, breaking=True)
    options = TranscriptionOptions(response_format="text")
    prompt_object = transcription_prompt_object(TRANSCRIPTION_MODEL, TRANSCRIPTION, asset.path, options)
    body = feature_request(TRANSCRIPTION, TRANSCRIPTION_MODEL, prompt_object)
    seen = await observe(ctx.client, "POST", "/api/features", ctx.key, json=body)
    record = _succeeded(seen)
    try:
        text = parse_transcript(first_result_text(record), "text").text if record else ""
    except UpstreamError:
        text = ""
    if not text:
        return item("transcription", title, "differs", expected, ctx.show(seen), breaking=True)
    heard = set(_words(text))
    result = verdict(bool(heard & set(_words(SPOKEN_TEXT))))
    return item("transcription", title, result, expected, f"200, heard {ctx.mask(text)[:80]!r}")


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


async def async_failed_status(ctx: Context) -> Item:
    """§18.4: a failed async record's status on GET /api/results (asks the simulator to fail it)."""
    title = "features: status of a failed async result (§18.4)"
    expected = f"PROCESSING, then GET /api/results → status {ctx.assumed.result_failed_status}"
    body = {**_speech_request(f"{SPOKEN_TEXT} [[sim:failed-status]]"), "async": True}
    seen = await observe(ctx.client, "POST", "/api/features", ctx.key, json=body)
    uuid = seen.record.get("uuid") if seen.record else None
    why = "the call was not taken as an async job"
    if (
        seen.status == 200
        and seen.record
        and seen.record.get("status") == "PROCESSING"
        and isinstance(uuid, str)
    ):
        why = "1min.ai did not fail this job"
        seen = await _finished(ctx, uuid)
    status = seen.record.get("status") if seen.record else None
    if not isinstance(status, str) or status in ("SUCCESS", "PROCESSING"):
        return unseen(
            "features.async_failed", title, expected, ctx.show(seen), ("result_failed_status",), why
        )
    observed = f"GET /api/results → status {ctx.mask(str(status))}"
    value = status if status in ("FAILED", "FAILURE") else None
    return switch_item(ctx, "features.async_failed", title, "result_failed_status", value, expected, observed)


async def _finished(ctx: Context, uuid: str) -> Observation:
    """Poll GET /api/results/{uuid}, backing off, until the record is no longer PROCESSING."""
    for delay in POLL_DELAYS:
        await asyncio.sleep(delay)
        seen = await observe(ctx.client, "GET", f"/api/results/{uuid}", ctx.key)
        if not seen.record or seen.record.get("status") != "PROCESSING":
            break
    return seen
