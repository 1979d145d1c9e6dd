"""Speech payloads per TTS family, transcription payloads, and transcripts in every OpenAI response format."""

from __future__ import annotations

import itertools
import json
import math

import pytest

from onemin_relay.errors import OpenAIError
from onemin_relay.translate.audio import (
    TRANSCRIPTION,
    TRANSLATION,
    TranscriptionOptions,
    parse_transcript,
    render_transcript,
    speech_content_type,
    speech_prompt_object,
    synthesise_segments,
    transcription_prompt_object,
)
from tests.openapi_schema import assert_matches_schema


def test_openai_tts_models_take_openai_fields() -> None:
    assert speech_prompt_object("tts-1-hd", "Hi.", "nova", "wav", 1.5) == {
        "text": "Hi.",
        "voice": "nova",
        "response_format": "wav",
        "speed": 1.5,
    }


def test_openai_tts_refuses_unknown_voices_listing_them() -> None:
    with pytest.raises(OpenAIError) as caught:
        speech_prompt_object("tts-1", "Hi.", "marin", "mp3", 1.0)
    assert caught.value.param == "voice"
    assert "'alloy'" in caught.value.message


def test_google_tts_takes_a_google_voice_and_its_encodings() -> None:
    assert speech_prompt_object("google-tts", "Hallo.", "de-DE-Neural2-B", "opus", 0.5) == {
        "text": "Hallo.",
        "name": "de-DE-Neural2-B",
        "languageCode": "de-DE",
        "audioEncoding": "OGG_OPUS",
        "speakingRate": 0.5,
        "pitch": 0,
        "volumeGainDb": 0,
    }
    with pytest.raises(OpenAIError) as caught:
        speech_prompt_object("google-tts", "Hi.", "alloy", "mp3", 1.0)
    assert caught.value.param == "voice"
    with pytest.raises(OpenAIError) as caught:
        speech_prompt_object("google-tts", "Hi.", "en-US-Casual-K", "aac", 1.0)
    assert caught.value.param == "response_format"


def test_elevenlabs_takes_a_voice_id_and_mp3_or_pcm() -> None:
    assert speech_prompt_object("elevenlabs-tts", "Hi.", "21m00Tcm4TlvDq8ikWAM", "pcm", 1.0) == {
        "text": "Hi.",
        "voice_id": "21m00Tcm4TlvDq8ikWAM",
        "output_format": "pcm_24000",
    }
    with pytest.raises(OpenAIError) as caught:
        speech_prompt_object("elevenlabs-tts", "Hi.", "v", "flac", 1.0)
    assert caught.value.param == "response_format"
    with pytest.raises(OpenAIError) as caught:
        speech_prompt_object("elevenlabs-tts", "Hi.", "v", "mp3", 2.0)
    assert caught.value.param == "speed"


@pytest.mark.parametrize(
    ("requested", "location", "content_type"),
    [
        ("mp3", "audios/2026_x.mp3", "audio/mpeg"),
        ("opus", "audios/x.opus", "audio/opus"),
        ("aac", "audios/x.aac", "audio/aac"),
        ("flac", "audios/x.flac", "audio/flac"),
        ("wav", "https://cdn/audios/x.wav?X-Amz-Signature=1", "audio/wav"),
        ("pcm", "audios/x.pcm", "audio/pcm"),
        ("pcm", "audios/noextension", "audio/pcm"),
        ("wav", "audios/x.mp3", "audio/mpeg"),  # upstream sent mp3: say so, the relay does not transcode
    ],
)
def test_speech_content_type(requested: str, location: str, content_type: str) -> None:
    assert speech_content_type(requested, location) == content_type


def test_whisper_gets_every_openai_field_others_only_what_they_take() -> None:
    options = TranscriptionOptions(
        response_format="srt", language="fr", prompt="Names: Zoë.", temperature=0.2
    )
    assert transcription_prompt_object("whisper-1", TRANSCRIPTION, "audios/a.mp3", options) == {
        "audioUrl": "audios/a.mp3",
        "response_format": "srt",
        "language": "fr",
        "prompt": "Names: Zoë.",
        "temperature": 0.2,
    }
    assert transcription_prompt_object("latest_long", TRANSCRIPTION, "audios/a.mp3", options) == {
        "audioUrl": "audios/a.mp3",
        "language": "fr",
    }
    translated = transcription_prompt_object("whisper-1", TRANSLATION, "audios/a.mp3", TranscriptionOptions())
    assert translated == {"audioUrl": "audios/a.mp3", "response_format": "json", "temperature": 0}


def test_parse_transcript_reads_text_json_and_verbose_json() -> None:
    assert parse_transcript("  Hello there.\n", "text").text == "Hello there."
    assert parse_transcript('{"text": "Hi."}', "json").text == "Hi."
    verbose = {
        "language": "french",
        "duration": 3.5,
        "text": "Bonjour.",
        "segments": [{"start": 0.0, "end": 3.5, "text": " Bonjour."}],
    }
    transcript = parse_transcript(json.dumps(verbose), "verbose_json")
    assert (transcript.language, transcript.duration, transcript.text) == ("french", 3.5, "Bonjour.")
    assert transcript.segments is not None
    assert transcript.segments[0].end == 3.5
    # Text that merely starts with a brace is still text.
    assert parse_transcript("{not json", "text").text == "{not json"


def test_impossible_upstream_timings_are_dropped_not_answered() -> None:
    raw = '{"text": "Hi.", "duration": Infinity, "segments": [{"start": 0, "end": NaN, "text": "Hi."}]}'
    transcript = parse_transcript(raw, "verbose_json")
    assert (transcript.duration, transcript.segments) == (None, None)
    body, _ = render_transcript(
        transcript,
        TranscriptionOptions(response_format="verbose_json"),
        task="transcribe",
        audio_duration=None,
    )
    json.dumps(body, allow_nan=False)  # what the response is rendered with: no inf or nan may reach it


@pytest.mark.parametrize(
    "words",
    [
        7,
        [{"word": "Hi.", "start": 0, "end": math.inf}, {"word": "Hi.", "start": 0}, "Hi."],
    ],
)
def test_malformed_upstream_words_are_replaced_by_synthesised_ones(words: object) -> None:
    upstream = {
        "text": "Hi.",
        "duration": 1.0,
        "segments": [{"start": 0, "end": 1.0, "text": "Hi.", "avg_logprob": math.nan}],
        "words": words,
    }
    transcript = parse_transcript(json.dumps(upstream), "verbose_json")
    options = TranscriptionOptions(response_format="verbose_json", timestamp_granularities=("word",))
    body, _ = render_transcript(transcript, options, task="transcribe", audio_duration=None)
    assert isinstance(body, dict)
    assert_matches_schema("CreateTranscriptionResponseVerboseJson", body)
    assert body["words"] == [{"word": "Hi.", "start": 0.0, "end": 1.0}]
    json.dumps(body, allow_nan=False)


def test_upstream_subtitles_pass_through_untouched() -> None:
    srt = "1\n00:00:00,000 --> 00:00:02,500\nHello there.\n"
    transcript = parse_transcript(srt, "srt")
    assert transcript.text == "Hello there."
    body, _ = render_transcript(
        transcript, TranscriptionOptions(response_format="srt"), task="transcribe", audio_duration=None
    )
    assert body == srt


def test_text_with_an_arrow_is_not_mistaken_for_subtitles() -> None:
    transcript = parse_transcript("Press the arrow --> then wait.", "srt")
    assert transcript.subtitles is None
    body, _ = render_transcript(
        transcript, TranscriptionOptions(response_format="srt"), task="transcribe", audio_duration=2.0
    )
    assert body == "1\n00:00:00,000 --> 00:00:02,000\nPress the arrow --> then wait.\n\n"
    vtt = "WEBVTT\n\n00:01.000 --> 00:02.500\nHello.\n"
    assert parse_transcript(vtt, "vtt").subtitles == vtt


def test_synthesised_segments_split_sentences_and_span_the_duration() -> None:
    segments, duration = synthesise_segments("One two three. Four five! Six?", 12.0)
    assert duration == 12.0
    assert [segment.text for segment in segments] == ["One two three.", "Four five!", "Six?"]
    assert segments[0].start == 0.0
    assert segments[-1].end == 12.0
    assert all(a.end == b.start for a, b in itertools.pairwise(segments))


def test_synthesised_duration_is_estimated_from_the_text_when_unknown() -> None:
    _, duration = synthesise_segments("x" * 150, None)
    assert duration == 10.0


def render(text: str, fmt: str, **kwargs: object) -> tuple[object, str]:
    options = TranscriptionOptions(response_format=fmt, **kwargs)  # type: ignore[arg-type]
    return render_transcript(parse_transcript(text, fmt), options, task="transcribe", audio_duration=4.0)


def test_json_and_text_formats() -> None:
    body, content_type = render("Hello there.", "json")
    assert body == {"text": "Hello there."}
    assert content_type == "application/json"
    assert_matches_schema("CreateTranscriptionResponseJson", body)
    body, content_type = render("Hello there.", "text")
    assert body == "Hello there.\n"
    assert content_type.startswith("text/plain")


def test_srt_and_vtt_from_plain_text() -> None:
    srt, _ = render("Hello there. General Kenobi.", "srt")
    assert srt == (
        "1\n00:00:00,000 --> 00:00:01,780\nHello there.\n\n"
        "2\n00:00:01,780 --> 00:00:04,000\nGeneral Kenobi.\n\n"
    )
    vtt, _ = render("Hello there. General Kenobi.", "vtt")
    assert isinstance(vtt, str)
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.780\nHello there.\n")


def test_verbose_json_matches_openai_schema_with_words_when_asked() -> None:
    body, _ = render(
        "Hello there. General Kenobi.",
        "verbose_json",
        language="en",
        timestamp_granularities=("word", "segment"),
    )
    assert isinstance(body, dict)
    assert_matches_schema("CreateTranscriptionResponseVerboseJson", body)
    assert body["duration"] == 4.0
    assert body["language"] == "en"
    assert [word["word"] for word in body["words"]] == ["Hello", "there.", "General", "Kenobi."]
    assert len(body["segments"]) == 2
    words_only, _ = render("Hi.", "verbose_json", timestamp_granularities=("word",))
    assert isinstance(words_only, dict)
    assert "segments" not in words_only


def test_translation_verbose_json_is_english_and_matches_schema() -> None:
    transcript = parse_transcript("Good morning.", "verbose_json")
    options = TranscriptionOptions(response_format="verbose_json")
    body, _ = render_transcript(transcript, options, task="translate", audio_duration=None)
    assert isinstance(body, dict)
    assert body["language"] == "english"
    assert_matches_schema("CreateTranslationResponseVerboseJson", body)


def test_upstream_segment_timing_and_statistics_are_kept() -> None:
    upstream = {
        "text": "Hi. Bye.",
        "duration": 2.0,
        "segments": [
            {"start": 0.0, "end": 0.7, "text": " Hi.", "avg_logprob": -0.31, "tokens": [50364, 2421]},
            {"start": 0.9, "end": 2.0, "text": " Bye.", "no_speech_prob": "high"},  # not a number: dropped
        ],
    }
    transcript = parse_transcript(json.dumps(upstream), "verbose_json")
    body, _ = render_transcript(
        transcript,
        TranscriptionOptions(response_format="verbose_json"),
        task="transcribe",
        audio_duration=None,
    )
    assert isinstance(body, dict)
    assert_matches_schema("CreateTranscriptionResponseVerboseJson", body)
    first, second = body["segments"]
    assert (first["start"], first["end"], first["avg_logprob"], first["tokens"]) == (
        0.0,
        0.7,
        -0.31,
        [50364, 2421],
    )
    assert (second["start"], second["no_speech_prob"]) == (0.9, 0.0)
    srt, _ = render_transcript(
        transcript, TranscriptionOptions(response_format="srt"), task="transcribe", audio_duration=None
    )
    assert "00:00:00,900 --> 00:00:02,000\nBye." in str(srt)
