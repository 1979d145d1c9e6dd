"""OpenAI /v1/audio routes: speech (audio bytes streamed from the CDN), transcriptions and translations."""

from __future__ import annotations

import asyncio
import wave
from typing import IO, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from onemin_relay.api.auth import caller
from onemin_relay.api.capabilities import require_capability
from onemin_relay.api.common import read_json, relay
from onemin_relay.api.downloads import stream_asset
from onemin_relay.api.uploads import audio_type, multipart_form, safe_filename, store_asset
from onemin_relay.errors import invalid_request, validate
from onemin_relay.fastjson import JSONResponse
from onemin_relay.translate.audio import (
    MAX_SPEECH_INPUT,
    SPEECH,
    TRANSCRIPT_FORMATS,
    TRANSCRIPTION,
    TRANSLATION,
    TranscriptionOptions,
    parse_transcript,
    render_transcript,
    speech_content_type,
    speech_prompt_object,
    transcription_prompt_object,
)
from onemin_relay.translate.features import feature_request, first_result_text, result_keys


def _voice_id(value: object) -> object:
    """OpenAI's `voice` is a name or `{"id": …}` (a custom voice); upstream takes either as a voice id."""
    return value.get("id") if isinstance(value, dict) else value


class SpeechBody(BaseModel):
    """CreateSpeechRequest."""

    model_config = ConfigDict(extra="ignore", strict=True)  # JSON types as OpenAI checks them

    model: str = Field(min_length=1, max_length=200)
    input: str = Field(min_length=1, max_length=MAX_SPEECH_INPUT)
    voice: Annotated[str, BeforeValidator(_voice_id), Field(min_length=1, max_length=200)]
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0)
    instructions: str | None = Field(None, max_length=4096)
    stream_format: Literal["sse", "audio"] | None = None


async def create_speech(request: Request) -> Response:
    api_key = caller(request).upstream_key
    context = relay(request)
    body = validate(SpeechBody, await read_json(request))
    if body.stream_format == "sse":
        raise invalid_request(
            "stream_format 'sse' is not supported by 1min.ai's text to speech; use 'audio'.",
            param="stream_format",
            code="unsupported_parameter",
        )
    await require_capability(context, body.model, SPEECH, "text to speech")
    prompt_object = speech_prompt_object(body.model, body.input, body.voice, body.response_format, body.speed)
    payload = feature_request(SPEECH, body.model, prompt_object, conversation_id=SPEECH)
    record = await context.upstream.feature(api_key, payload)
    location = _speech_location(record)
    return await stream_asset(context.upstream, location, speech_content_type(body.response_format, location))


def _speech_location(record: dict[str, Any]) -> str:
    """The audio file: the pre-signed `temporaryUrl` if given, else the first result key (ref. §9.1)."""
    temporary = record.get("temporaryUrl")
    if isinstance(temporary, str) and temporary.startswith(("http://", "https://")):
        return temporary
    return result_keys(record)[0]


async def create_transcription(request: Request) -> Response:
    return await _speech_to_text(request, TRANSCRIPTION)


async def create_translation(request: Request) -> Response:
    return await _speech_to_text(request, TRANSLATION)


async def _speech_to_text(request: Request, feature: str) -> Response:
    api_key = caller(request).upstream_key
    context = relay(request)
    async with multipart_form(request, max_file_bytes=context.settings.max_audio_upload_bytes) as form:
        upload = form.required_file("file")
        model = form.required_text("model")
        if (form.text("stream") or "").strip().lower() == "true":
            raise invalid_request(
                "Streaming transcription is not supported by 1min.ai; send stream=false.",
                param="stream",
                code="unsupported_parameter",
            )
        granularities = tuple(form.texts("timestamp_granularities"))
        for granularity in granularities:
            if granularity not in ("word", "segment"):
                raise invalid_request(
                    f"Invalid value for 'timestamp_granularities': {granularity[:40]!r}. "
                    "Supported values are: 'word', 'segment'.",
                    param="timestamp_granularities",
                    code="invalid_value",
                )
        options = TranscriptionOptions(
            response_format=form.choice("response_format", TRANSCRIPT_FORMATS, "json") or "json",
            language=form.text("language") if feature == TRANSCRIPTION else None,
            prompt=form.text("prompt"),
            temperature=_temperature(form.number("temperature")),
            timestamp_granularities=granularities,
        )
        media = await audio_type(upload, "file")
        capability = "transcription" if feature == TRANSCRIPTION else "audio translation"
        await require_capability(context, model, feature, capability)
        duration = await _wav_duration(upload.file) if media.extension == "wav" else None
        filename = safe_filename(upload.filename or "audio", extension=media.extension)
        asset = await store_asset(context.upstream, api_key, upload.file, filename, media, "file")
    prompt_object = transcription_prompt_object(model, feature, asset.path, options)
    conversation_id = TRANSLATION if feature == TRANSLATION else None
    record = await context.upstream.feature(
        api_key, feature_request(feature, model, prompt_object, conversation_id=conversation_id)
    )
    transcript = parse_transcript(first_result_text(record), options.response_format)
    task = "transcribe" if feature == TRANSCRIPTION else "translate"
    body, content_type = render_transcript(transcript, options, task=task, audio_duration=duration)
    if isinstance(body, dict):
        return JSONResponse(body)
    return PlainTextResponse(body, media_type=content_type)


def _temperature(value: float | None) -> float | None:
    if value is not None and not 0 <= value <= 1:
        raise invalid_request(
            f"Invalid value for 'temperature': {value}. It must be between 0 and 1.",
            param="temperature",
            code="invalid_value",
        )
    return value


async def _wav_duration(file: IO[bytes]) -> float | None:
    """The length of a WAV upload from its header (so synthesised timings span the real audio)."""

    def read() -> float | None:
        try:
            with wave.open(file, "rb") as audio:
                rate = audio.getframerate()
                return round(audio.getnframes() / rate, 3) if rate else None
        except (wave.Error, EOFError, ValueError):
            return None
        finally:
            file.seek(0)

    return await asyncio.to_thread(read)


routes: list[BaseRoute] = [
    Route("/v1/audio/speech", create_speech, methods=["POST"]),
    Route("/v1/audio/transcriptions", create_transcription, methods=["POST"]),
    Route("/v1/audio/translations", create_translation, methods=["POST"]),
]
