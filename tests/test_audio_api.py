"""/v1/audio end to end: speech bytes, transcriptions and translations in every format, upload limits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from onemin_relay.serving import BackgroundServer
from onemin_relay.simulator.media import SPEECH_FORMATS
from tests.harness import KEY_A, SimulatorHandle
from tests.openapi_schema import assert_matches_schema

CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
SPOKEN = "The quick brown fox jumps over the lazy dog. It was not amused!"


def feature_calls(sim: SimulatorHandle) -> list[dict[str, Any]]:
    return [entry["json"] for entry in sim.requests() if entry["path"] == "/api/features"]


def speech(client: openai.OpenAI, text: str = SPOKEN, response_format: str = "wav") -> bytes:
    return client.audio.speech.create(
        model="tts-1",
        input=text,
        voice="alloy",
        response_format=response_format,  # type: ignore[arg-type]
    ).content


# --- speech -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("response_format", list(CONTENT_TYPES))
def test_speech_answers_the_audio_bytes_with_the_right_content_type(
    client: openai.OpenAI, sim: SimulatorHandle, response_format: str
) -> None:
    response = client.audio.speech.with_raw_response.create(
        model="tts-1-hd",
        input="Hello from the relay.",
        voice="nova",
        response_format=response_format,  # type: ignore[arg-type]
        speed=1.25,
    )
    assert response.headers["content-type"] == CONTENT_TYPES[response_format]
    make, _ = SPEECH_FORMATS[response_format]
    assert response.content == make("Hello from the relay.", 1.25)  # byte for byte what upstream made
    [call] = feature_calls(sim)
    assert call == {
        "type": "TEXT_TO_SPEECH",
        "model": "tts-1-hd",
        "conversationId": "TEXT_TO_SPEECH",
        "promptObject": {
            "text": "Hello from the relay.",
            "voice": "nova",
            "response_format": response_format,
            "speed": 1.25,
        },
    }


def test_speech_streams_with_the_sdk_streaming_helper(client: openai.OpenAI) -> None:
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", input=SPOKEN, voice="echo"
    ) as response:
        received = b"".join(response.iter_bytes())
    assert received == SPEECH_FORMATS["mp3"][0](SPOKEN, 1.0)


def test_google_tts_takes_google_voices(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    response = client.audio.speech.with_raw_response.create(
        model="google-tts", input="Bonjour.", voice="fr-FR-Neural2-A", response_format="opus"
    )
    assert response.headers["content-type"] == "audio/opus"
    [call] = feature_calls(sim)
    assert call["promptObject"]["languageCode"] == "fr-FR"
    assert call["promptObject"]["audioEncoding"] == "OGG_OPUS"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "tts-1", "input": "Hi", "voice": "marin"}, "voice"),
        ({"model": "tts-1", "input": "x" * 4097, "voice": "alloy"}, "input"),
        ({"model": "tts-1", "input": "Hi", "voice": "alloy", "speed": 9}, "speed"),
        ({"model": "tts-1", "input": "Hi", "voice": "alloy", "response_format": "ogg"}, "response_format"),
        ({"model": "tts-1", "input": "Hi", "voice": "alloy", "stream_format": "sse"}, "stream_format"),
        ({"model": "tts-1", "voice": "alloy"}, "input"),
        ({"model": "whisper-1", "input": "Hi", "voice": "alloy"}, "model"),
        ({"model": "google-tts", "input": "Hi", "voice": "alloy"}, "voice"),
        ({"model": "tts-1", "input": "Hi", "voice": {}}, "voice"),
        ({"model": "tts-1", "input": "Hi", "voice": {"id": 7}}, "voice"),
        ({"model": "qwen3-tts-flash", "input": "Hi", "voice": ""}, "voice"),
        ({"model": "qwen3-tts-flash", "input": "Hi", "voice": {"id": ""}}, "voice"),
    ],
)
def test_speech_refusals_name_the_param_and_spend_nothing(
    relay_url: str, sim: SimulatorHandle, body: dict[str, Any], param: str
) -> None:
    response = httpx.post(
        f"{relay_url}/v1/audio/speech", json=body, headers={"Authorization": f"Bearer {KEY_A}"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert feature_calls(sim) == []


# --- transcriptions and translations ----------------------------------------------------------------


def test_transcription_round_trip_in_json(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    audio = speech(client)
    result = client.audio.transcriptions.create(model="whisper-1", file=("speech.wav", audio))
    assert result.text == SPOKEN
    assert_matches_schema("CreateTranscriptionResponseJson", result.model_dump(exclude_none=True))


def test_transcription_text_srt_and_vtt(client: openai.OpenAI) -> None:
    audio = speech(client, response_format="mp3")
    text = client.audio.transcriptions.create(
        model="whisper-1", file=("a.mp3", audio), response_format="text"
    )
    assert text.strip() == SPOKEN
    srt = client.audio.transcriptions.create(model="whisper-1", file=("a.mp3", audio), response_format="srt")
    assert srt.startswith("1\n00:00:00,000 --> ")
    assert SPOKEN in srt
    vtt = client.audio.transcriptions.create(model="whisper-1", file=("a.mp3", audio), response_format="vtt")
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> ")


def test_verbose_json_with_synthesised_timing_for_models_without_any(client: openai.OpenAI) -> None:
    audio = speech(client)  # a WAV: the relay measures its duration
    result = client.audio.transcriptions.create(
        model="latest_long",
        file=("speech.wav", audio),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
        language="en",
    )
    body = result.model_dump(exclude_none=True)
    assert_matches_schema("CreateTranscriptionResponseVerboseJson", body)
    assert result.text == SPOKEN
    assert result.segments is not None
    assert [segment.text.strip() for segment in result.segments] == [
        "The quick brown fox jumps over the lazy dog.",
        "It was not amused!",
    ]
    assert result.segments[-1].end == pytest.approx(result.duration)
    assert result.words is not None
    assert result.words[0].word == "The"
    expected_seconds = len(SPEECH_FORMATS["wav"][0](SPOKEN, 1.0)) - 44
    assert result.duration == pytest.approx(expected_seconds / 2 / 24_000, abs=0.01)


def test_transcription_passes_language_prompt_and_temperature(
    client: openai.OpenAI, sim: SimulatorHandle
) -> None:
    audio = speech(client)
    client.audio.transcriptions.create(
        model="whisper-1",
        file=("speech.wav", audio),
        language="en",
        prompt="Foxes and dogs.",
        temperature=0.3,
        response_format="verbose_json",
    )
    call = feature_calls(sim)[-1]
    assert call["type"] == "SPEECH_TO_TEXT"
    assert call["promptObject"]["audioUrl"].startswith("audios/")
    assert {
        key: call["promptObject"][key] for key in ("language", "prompt", "temperature", "response_format")
    } == {
        "language": "en",
        "prompt": "Foxes and dogs.",
        "temperature": 0.3,
        "response_format": "verbose_json",
    }


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK marks translations deprecated
def test_translation_in_json_and_verbose_json(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    audio = speech(client)
    result = client.audio.translations.create(model="whisper-1", file=("speech.wav", audio))
    assert result.text == SPOKEN
    assert_matches_schema("CreateTranslationResponseJson", result.model_dump(exclude_none=True))
    verbose = client.audio.translations.create(
        model="whisper-1", file=("speech.wav", audio), response_format="verbose_json"
    )
    body = verbose.model_dump(exclude_none=True)
    assert_matches_schema("CreateTranslationResponseVerboseJson", body)
    assert body["language"] == "english"
    call = feature_calls(sim)[-1]
    assert (call["type"], call["conversationId"]) == ("AUDIO_TRANSLATOR", "AUDIO_TRANSLATOR")


def test_audio_without_extension_is_recognised_by_its_bytes(
    client: openai.OpenAI, sim: SimulatorHandle
) -> None:
    audio = speech(client, response_format="flac")
    result = client.audio.transcriptions.create(model="whisper-1", file=("recording", audio))
    assert result.text == SPOKEN
    upload = next(entry for entry in sim.requests() if entry["path"] == "/api/assets")
    assert upload["multipart"][0]["filename"] == "recording.flac"


@pytest.mark.parametrize(
    ("files", "data", "param"),
    [
        ({"file": ("notes.txt", b"plain text, not audio")}, {"model": "whisper-1"}, "file"),
        ({}, {"model": "whisper-1"}, "file"),
        ({"file": ("a.wav", b"")}, {"model": "whisper-1"}, "file"),
        ({"file": ("a.wav", b"RIFF")}, {}, "model"),
        ({"file": ("a.wav", b"RIFF")}, {"model": "whisper-1", "response_format": "xml"}, "response_format"),
        ({"file": ("a.wav", b"RIFF")}, {"model": "whisper-1", "temperature": "warm"}, "temperature"),
        ({"file": ("a.wav", b"RIFF")}, {"model": "whisper-1", "temperature": "3"}, "temperature"),
        ({"file": ("a.wav", b"RIFF")}, {"model": "tts-1"}, "model"),
    ],
)
def test_transcription_refusals(
    relay_url: str, sim: SimulatorHandle, files: dict[str, Any], data: dict[str, str], param: str
) -> None:
    files = files or {"unrelated": ("x.bin", b"x")}
    response = httpx.post(
        f"{relay_url}/v1/audio/transcriptions",
        files=files,
        data=data,
        headers={"Authorization": f"Bearer {KEY_A}"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert feature_calls(sim) == []


def test_malformed_multipart_is_a_400(relay_url: str) -> None:
    headers = {"Authorization": f"Bearer {KEY_A}", "Content-Type": "multipart/form-data; boundary=xyz"}
    body = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF garbage'
    response = httpx.post(f"{relay_url}/v1/audio/transcriptions", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    headers["Content-Type"] = "multipart/form-data"  # no boundary
    response = httpx.post(f"{relay_url}/v1/audio/transcriptions", content=b"--", headers=headers)
    assert response.status_code == 400


# --- limits --------------------------------------------------------------------------------------------


def test_audio_over_the_limit_is_a_413_per_file_or_in_total(
    start_relay: Callable[..., BackgroundServer], sim: SimulatorHandle
) -> None:
    relay = start_relay(max_audio_upload_bytes=4096)
    headers = {"Authorization": f"Bearer {KEY_A}"}
    url = f"{relay.url}/v1/audio/transcriptions"
    too_big = b"RIFF" + bytes(8192)
    response = httpx.post(
        url, files={"file": ("a.wav", too_big)}, data={"model": "whisper-1"}, headers=headers
    )
    assert response.status_code == 413
    assert response.json()["error"]["param"] == "file"

    boundary = "b0undary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'.encode()

    def chunked() -> Any:  # no Content-Length: the relay must count as the bytes arrive
        yield head
        for _ in range(64):
            yield bytes(64 * 1024)
        yield f"\r\n--{boundary}--\r\n".encode()

    response = httpx.post(
        url,
        content=chunked(),
        headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "file_too_large"
    assert feature_calls(sim) == []
    assert not any(entry["path"] == "/api/assets" for entry in sim.requests())


def test_audio_within_the_limit_still_works(start_relay: Callable[..., BackgroundServer]) -> None:
    relay = start_relay(max_audio_upload_bytes=200_000)
    with openai.OpenAI(base_url=f"{relay.url}/v1", api_key=KEY_A, max_retries=0) as sdk:
        audio = speech(sdk, "Short.")
        assert sdk.audio.transcriptions.create(model="whisper-1", file=("a.wav", audio)).text == "Short."


def test_whisper_json_from_upstream_is_read_not_echoed(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    # whisper answers JSON text for response_format=json; the relay must not hand back that JSON as text.
    audio = speech(client, "Plain words.")
    text = client.audio.transcriptions.create(
        model="whisper-1", file=("a.wav", audio), response_format="text"
    )
    assert text.strip() == "Plain words."
    result = client.audio.transcriptions.create(
        model="whisper-1", file=("a.wav", audio), response_format="json"
    )
    assert result.text == "Plain words."
    assert not result.text.startswith("{")


def test_a_custom_voice_object_is_sent_as_its_id(relay_url: str, sim: SimulatorHandle) -> None:
    body = {"model": "qwen3-tts-flash", "input": "Hi", "voice": {"id": "Cherry"}}
    response = httpx.post(
        f"{relay_url}/v1/audio/speech", json=body, headers={"Authorization": f"Bearer {KEY_A}"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/mpeg"
    [call] = feature_calls(sim)
    assert call["promptObject"]["voice"] == "Cherry"
