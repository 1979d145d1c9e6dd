"""Audio features: TEXT_TO_SPEECH, SPEECH_TO_TEXT and AUDIO_TRANSLATOR (reference §9).

Speech made here can be transcribed back to its text, so relay round trips (speech → text) are testable.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from onemin_relay.simulator.assets import StoredFile
from onemin_relay.simulator.gateway import Call
from onemin_relay.simulator.images import choice, provider_error, required_text, validation_error
from onemin_relay.simulator.media import SPEECH_FORMATS, speech_seconds, spoken_text

OPENAI_VOICES = ("alloy", "echo", "fable", "onyx", "nova", "shimmer")
TEXT_LIMIT = 4096
WHISPER_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
GOOGLE_ENCODINGS = {"MP3": "mp3", "LINEAR16": "wav", "OGG_OPUS": "opus"}


def _speed(prompt_object: dict[str, Any], field: str) -> float:
    value = prompt_object.get(field, 1)
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0.25 <= value <= 4.0:
        raise provider_error(f"invalid_{field}", f"{field} must be a number between 0.25 and 4.0")
    return float(value)


def speech_format(model_id: str, prompt_object: dict[str, Any]) -> tuple[str, float]:
    """The audio format and speed asked for, checked the way each provider checks them."""
    if model_id in ("tts-1", "tts-1-hd"):
        if prompt_object.get("voice") not in OPENAI_VOICES:
            raise provider_error("invalid_voice", f"voice must be one of {', '.join(OPENAI_VOICES)}")
        fmt = choice(prompt_object, "response_format", "mp3", tuple(SPEECH_FORMATS))
        return fmt, _speed(prompt_object, "speed")
    if model_id == "google-tts":
        encoding = choice(prompt_object, "audioEncoding", "MP3", tuple(GOOGLE_ENCODINGS))
        return GOOGLE_ENCODINGS[encoding], _speed(prompt_object, "speakingRate")
    if model_id == "elevenlabs-tts":
        output = prompt_object.get("output_format", "mp3_44100_128")
        return ("pcm" if isinstance(output, str) and output.startswith("pcm_") else "mp3"), 1.0
    return "mp3", 1.0


async def speak(call: Call, model: dict[str, Any], prompt_object: dict[str, Any]) -> list[str]:
    text = required_text(prompt_object, "text")
    if len(text) > TEXT_LIMIT:
        raise provider_error("string_above_max_length", f"text must be at most {TEXT_LIMIT} characters")
    fmt, speed = speech_format(model["modelId"], prompt_object)
    make, content_type = SPEECH_FORMATS[fmt]
    data = make(text, speed)
    key = call.state.assets.generated_key("audios", fmt)
    call.state.assets.put(key, data, content_type)
    call.state.assets.remember_speech(data, text)
    return [key]


def _source_audio(call: Call, prompt_object: dict[str, Any]) -> StoredFile:
    reference = prompt_object.get("audioUrl")
    if not isinstance(reference, str) or not reference:
        raise validation_error("audioUrl", "audioUrl must be an asset key or URL")
    stored = call.state.assets.resolve(reference)
    if stored is None:
        raise provider_error(
            "invalid_audio_url", f"audioUrl does not point to an uploaded file: {reference[:200]}"
        )
    return stored


def heard_text(call: Call, audio: StoredFile) -> tuple[str, float]:
    """What the audio says and how long it lasts: our own speech says its text; other audio a stand-in."""
    text = spoken_text(audio.data) or call.state.assets.speech_text(audio.data)
    if text is not None:
        return text, speech_seconds(text, 1.0)
    digest = hashlib.sha256(audio.data).hexdigest()[:8]
    name = audio.key.rsplit("/", 1)[-1]
    return f"Transcription simulée de {name} — 音声 #{digest} 🎧.", min(
        max(len(audio.data) / 16_000, 0.5), 3600.0
    )


def _timestamp(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def formatted(text: str, duration: float, fmt: str, task: str, language: str) -> str:
    """`resultObject[0]` for whisper-1 in each `response_format` (JSON formats as JSON text)."""
    if fmt == "text":
        return text
    if fmt == "json":
        return json.dumps({"text": text}, ensure_ascii=False)
    if fmt == "srt":
        return f"1\n{_timestamp(0, ',')} --> {_timestamp(duration, ',')}\n{text}\n"
    if fmt == "vtt":
        return f"WEBVTT\n\n{_timestamp(0, '.')} --> {_timestamp(duration, '.')}\n{text}\n"
    segment = {
        "id": 0, "seek": 0, "start": 0.0, "end": round(duration, 2), "text": text, "tokens": [],
        "temperature": 0.0, "avg_logprob": -0.2, "compression_ratio": 1.0, "no_speech_prob": 0.01,
    }  # fmt: skip
    verbose = {
        "task": task,
        "language": language,
        "duration": round(duration, 2),
        "text": text,
        "segments": [segment],
    }
    return json.dumps(verbose, ensure_ascii=False)


def _listen(call: Call, model: dict[str, Any], prompt_object: dict[str, Any], task: str) -> list[str]:
    audio = _source_audio(call, prompt_object)
    text, duration = heard_text(call, audio)
    if model["modelId"] != "whisper-1":
        return [text]
    fmt = choice(prompt_object, "response_format", "json", WHISPER_FORMATS)
    language = prompt_object.get("language") if task == "transcribe" else "english"
    return [formatted(text, duration, fmt, task, language if isinstance(language, str) else "english")]


async def transcribe(call: Call, model: dict[str, Any], prompt_object: dict[str, Any]) -> list[str]:
    return _listen(call, model, prompt_object, "transcribe")


async def translate(call: Call, model: dict[str, Any], prompt_object: dict[str, Any]) -> list[str]:
    return _listen(call, model, prompt_object, "translate")
