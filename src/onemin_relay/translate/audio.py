"""OpenAI audio requests → 1min.ai audio feature payloads, and transcripts → OpenAI's response formats.

Speech: `TEXT_TO_SPEECH` (reference §9.1). Transcription/translation: `SPEECH_TO_TEXT` / `AUDIO_TRANSLATOR`
(§9.2, §9.3). 1min.ai returns a transcript as text; when it carries no timing (every model but whisper may
answer plain text), the segment and word timings of `verbose_json`, `srt` and `vtt` are synthesised: see
`synthesise_segments` and docs/images-audio-files.md.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from onemin_relay.errors import invalid_request
from onemin_relay.translate.params import unsupported_value

SPEECH = "TEXT_TO_SPEECH"
TRANSCRIPTION = "SPEECH_TO_TEXT"
TRANSLATION = "AUDIO_TRANSLATOR"

# The Content-Type OpenAI answers /v1/audio/speech with, per response_format.
SPEECH_CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
# File extensions upstream results may carry, mapped to the speech format they hold.
_EXTENSION_FORMATS = {
    "mp3": "mp3",
    "mpeg": "mp3",
    "opus": "opus",
    "ogg": "opus",
    "aac": "aac",
    "flac": "flac",
}
_EXTENSION_FORMATS |= {"wav": "wav", "pcm": "pcm"}

OPENAI_VOICES = ("alloy", "echo", "fable", "onyx", "nova", "shimmer")  # the voices 1min.ai documents
MAX_SPEECH_INPUT = 4096
_GOOGLE_VOICE = re.compile(r"^([a-z]{2,3}-[A-Z]{2})-[A-Za-z0-9]+(-[A-Za-z0-9]+)*$")
_GOOGLE_ENCODINGS = {"mp3": "MP3", "wav": "LINEAR16", "opus": "OGG_OPUS"}
_ELEVENLABS_FORMATS = {"mp3": "mp3_44100_128", "pcm": "pcm_24000"}

TRANSCRIPT_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
# Synthesised timing: an average speaking rate, used when the audio's real duration is unknown.
_CHARS_PER_SECOND = 15.0
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


# --- speech ------------------------------------------------------------------------------------------


def model_voices(model: str) -> tuple[str, ...]:
    """The voices `model` takes, when they are a known list (empty: the model names its voices itself,
    e.g. Google's `en-US-Casual-K` or an ElevenLabs voice id)."""
    return OPENAI_VOICES if model.startswith("tts-1") else ()


def speech_prompt_object(
    model: str, text: str, voice: str, response_format: str, speed: float
) -> dict[str, Any]:
    """The TEXT_TO_SPEECH promptObject for `model`; 400 for a voice or format the model cannot take."""
    if voices := model_voices(model):
        if voice not in voices:
            raise unsupported_value("voice", voice, model, voices)
        return {"text": text, "voice": voice, "response_format": response_format, "speed": speed}
    if model == "google-tts":
        match = _GOOGLE_VOICE.match(voice)
        if not match:
            raise invalid_request(
                f"Invalid value for 'voice': {voice!r}. Model `google-tts` takes a Google voice name such as "
                "'en-US-Casual-K' or 'de-DE-Neural2-B'.",
                param="voice",
                code="invalid_value",
            )
        if response_format not in _GOOGLE_ENCODINGS:
            raise unsupported_value("response_format", response_format, model, list(_GOOGLE_ENCODINGS))
        return {
            "text": text,
            "name": voice,
            "languageCode": match.group(1),
            "audioEncoding": _GOOGLE_ENCODINGS[response_format],
            "speakingRate": speed,
            "pitch": 0,
            "volumeGainDb": 0,
        }
    if model == "elevenlabs-tts":
        if response_format not in _ELEVENLABS_FORMATS:
            raise unsupported_value("response_format", response_format, model, list(_ELEVENLABS_FORMATS))
        if speed != 1:
            raise invalid_request(
                f"Model `{model}` does not support 'speed' other than 1.",
                param="speed",
                code="unsupported_parameter",
            )
        return {"text": text, "voice_id": voice, "output_format": _ELEVENLABS_FORMATS[response_format]}
    # Other models (qwen3-tts-flash, …): OpenAI-style fields, upstream decides.
    return {"text": text, "voice": voice, "response_format": response_format, "speed": speed}


def speech_content_type(requested_format: str, location: str) -> str:
    """The Content-Type of the audio: the requested format's, unless the upstream file is plainly another
    format (its extension says so) — the relay does not transcode, so it labels what it sends."""
    path = location.split("?", 1)[0].rsplit("/", 1)[-1]
    extension = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    actual = _EXTENSION_FORMATS.get(extension, requested_format)
    return SPEECH_CONTENT_TYPES[actual]


# --- transcription and translation ----------------------------------------------------------------


@dataclass(frozen=True)
class TranscriptionOptions:
    response_format: str = "json"
    language: str | None = None
    prompt: str | None = None
    temperature: float | None = None
    timestamp_granularities: tuple[str, ...] = ()


def transcription_prompt_object(
    model: str, feature: str, audio_path: str, options: TranscriptionOptions
) -> dict[str, Any]:
    """The SPEECH_TO_TEXT / AUDIO_TRANSLATOR promptObject. whisper-1 takes OpenAI's own fields; the Google
    models take a BCP-47 `language`; other models get the audio and the language when one is given."""
    prompt_object: dict[str, Any] = {"audioUrl": audio_path}
    if model == "whisper-1":
        prompt_object["response_format"] = options.response_format
        if options.language and feature == TRANSCRIPTION:
            prompt_object["language"] = options.language
        if options.prompt:
            prompt_object["prompt"] = options.prompt
        prompt_object["temperature"] = options.temperature if options.temperature is not None else 0
        return prompt_object
    if options.language and feature == TRANSCRIPTION:
        prompt_object["language"] = options.language
    return prompt_object


@dataclass
class Segment:
    start: float
    end: float
    text: str
    statistics: dict[str, Any] = field(default_factory=dict)  # upstream's decoder figures, when it sent any


@dataclass
class Transcript:
    text: str
    language: str | None = None
    duration: float | None = None
    segments: list[Segment] | None = None  # real timing from upstream, when it sent any
    subtitles: str | None = None  # upstream's own srt/vtt text, when it answered in the requested format
    words: list[dict[str, Any]] = field(default_factory=list)


# A cue timing line (`00:00:01,000 --> …` in SRT, `00:01.000 --> …` in VTT): what makes text subtitles.
_CUE_TIMING = re.compile(r"(?m)^[ \t]*(?:\d+:)?\d{2}:\d{2}[.,]\d{3}[ \t]+-->")


def parse_transcript(raw: str, requested_format: str) -> Transcript:
    """Read what upstream returned: plain text, a JSON string with `text` (and maybe `segments`), or
    subtitles in the requested srt/vtt format."""
    stripped = raw.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("text"), str):
            return Transcript(
                text=data["text"].strip(),
                language=data.get("language") if isinstance(data.get("language"), str) else None,
                duration=_number(data.get("duration")),
                segments=_segments(data.get("segments")),
                words=_words_of(data.get("words")),
            )
    if requested_format in ("srt", "vtt") and _CUE_TIMING.search(stripped):
        return Transcript(text=_subtitle_text(stripped), subtitles=raw)
    return Transcript(text=stripped)


def _number(value: object) -> float | None:
    """A time or duration from upstream JSON: finite and not negative (json.loads takes `Infinity`)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def _segments(value: object) -> list[Segment] | None:
    if not isinstance(value, list) or not value:
        return None
    segments = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            return None
        start, end = _number(item.get("start")), _number(item.get("end"))
        if start is None or end is None:
            return None
        statistics = {name: item[name] for name in _SEGMENT_STATISTICS if _is_statistic(name, item.get(name))}
        segments.append(Segment(start, end, item["text"].strip(), statistics))
    return segments


_SEGMENT_STATISTICS = ("seek", "tokens", "temperature", "avg_logprob", "compression_ratio", "no_speech_prob")


def _is_statistic(name: str, value: object) -> bool:
    if name == "tokens":
        return isinstance(value, list) and all(isinstance(token, int) for token in value)
    if name == "seek":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _words_of(value: object) -> list[dict[str, Any]]:
    """Upstream's word timings as OpenAI's TranscriptionWord (word, start, end), minus malformed ones."""
    if not isinstance(value, list):
        return []
    words = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("word"), str):
            continue
        start, end = _number(item.get("start")), _number(item.get("end"))
        if start is not None and end is not None:
            words.append({"word": item["word"], "start": start, "end": end})
    return words


def _subtitle_text(subtitles: str) -> str:
    lines = [
        line.strip()
        for line in subtitles.splitlines()
        if line.strip() and "-->" not in line and not line.strip().isdigit() and line.strip() != "WEBVTT"
    ]
    return " ".join(lines)


def synthesise_segments(text: str, duration: float | None) -> tuple[list[Segment], float]:
    """Sentence segments with timing spread in proportion to their length over `duration` (measured from
    the audio when the relay could), else over an estimate of 15 characters per second of speech."""
    sentences = [part.strip() for part in _SENTENCE_END.split(text.strip()) if part.strip()]
    total_chars = sum(len(sentence) for sentence in sentences)
    if duration is None or duration <= 0:
        duration = round(total_chars / _CHARS_PER_SECOND, 2)
    segments: list[Segment] = []
    elapsed = 0
    for sentence in sentences:
        start = duration * elapsed / total_chars
        elapsed += len(sentence)
        segments.append(Segment(round(start, 2), round(duration * elapsed / total_chars, 2), sentence))
    return segments, duration


def _words(segments: list[Segment]) -> list[dict[str, Any]]:
    words: list[dict[str, Any]] = []
    for segment in segments:
        parts = segment.text.split()
        span = segment.end - segment.start
        chars = sum(len(part) for part in parts) or 1
        elapsed = 0
        for part in parts:
            start = segment.start + span * elapsed / chars
            elapsed += len(part)
            words.append(
                {
                    "word": part,
                    "start": round(start, 2),
                    "end": round(segment.start + span * elapsed / chars, 2),
                }
            )
    return words


def render_transcript(
    transcript: Transcript,
    options: TranscriptionOptions,
    *,
    task: str,
    audio_duration: float | None,
) -> tuple[str | dict[str, Any], str]:
    """The body and Content-Type OpenAI answers for `options.response_format`."""
    fmt = options.response_format
    if fmt == "json":
        return {"text": transcript.text}, "application/json"
    if fmt == "text":
        return transcript.text + "\n", "text/plain; charset=utf-8"
    if transcript.subtitles is not None and fmt in ("srt", "vtt"):
        return transcript.subtitles, "text/plain; charset=utf-8"
    segments = transcript.segments
    duration = transcript.duration or audio_duration
    if segments is None:
        segments, duration = synthesise_segments(transcript.text, duration)
    elif duration is None:
        duration = segments[-1].end if segments else 0.0
    if fmt == "srt":
        return _srt(segments), "text/plain; charset=utf-8"
    if fmt == "vtt":
        return _vtt(segments), "text/plain; charset=utf-8"
    language = "english" if task == "translate" else (transcript.language or options.language or "unknown")
    body: dict[str, Any] = {
        "task": task,
        "language": language,
        "duration": duration,
        "text": transcript.text,
        "segments": [_openai_segment(index, segment, options) for index, segment in enumerate(segments)],
    }
    if task == "transcribe" and "word" in options.timestamp_granularities:
        body["words"] = transcript.words or _words(segments)
        if "segment" not in options.timestamp_granularities:
            del body["segments"]
    return body, "application/json"


def _openai_segment(index: int, segment: Segment, options: TranscriptionOptions) -> dict[str, Any]:
    # OpenAI's segment carries decoder statistics: upstream's when it sent them, else neutral placeholders.
    return {
        "id": index,
        "seek": 0,
        "start": segment.start,
        "end": segment.end,
        "text": " " + segment.text,
        "tokens": [],
        "temperature": options.temperature or 0.0,
        "avg_logprob": 0.0,
        "compression_ratio": 1.0,
        "no_speech_prob": 0.0,
        **segment.statistics,
    }


def _timestamp(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _srt(segments: list[Segment]) -> str:
    blocks = [
        f"{index}\n{_timestamp(s.start, ',')} --> {_timestamp(s.end, ',')}\n{s.text}\n"
        for index, s in enumerate(segments, start=1)
    ]
    return "\n".join(blocks) + ("\n" if blocks else "")


def _vtt(segments: list[Segment]) -> str:
    blocks = [f"{_timestamp(s.start, '.')} --> {_timestamp(s.end, '.')}\n{s.text}\n" for s in segments]
    return "WEBVTT\n\n" + "\n".join(blocks) + ("\n" if blocks else "")
