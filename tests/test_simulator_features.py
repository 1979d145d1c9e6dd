"""Simulator: the AI Feature API — images, speech, transcripts, code, async results, legacy chat."""

from __future__ import annotations

import io
import json
import struct
import wave
import zlib
from typing import Any

import httpx
import pytest

from onemin_relay.simulator.answers import expected_answer
from tests.harness import KEY_B
from tests.harness import SimulatorFactory as Factory


async def feature(api: httpx.AsyncClient, kind: str, model: str, **prompt_object: Any) -> httpx.Response:
    return await api.post("/api/features", json={"type": kind, "model": model, "promptObject": prompt_object})


async def record_of(api: httpx.AsyncClient, kind: str, model: str, **prompt_object: Any) -> dict[str, Any]:
    response = await feature(api, kind, model, **prompt_object)
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()["aiRecord"]
    return record


def png_size(data: bytes) -> tuple[int, int]:
    """Check the PNG really decodes (signature, chunk CRCs, zlib stream) and return its size."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, idat, size = 8, b"", (0, 0)
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + body) == crc
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        idat += body if kind == b"IDAT" else b""
        offset += 12 + length
    width, height = size
    assert len(zlib.decompress(idat)) == height * (1 + 3 * width)
    return width, height


async def image_bytes(api: httpx.AsyncClient, key: str) -> bytes:
    response = await api.get(f"/cdn/{key}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    return response.content


async def upload(api: httpx.AsyncClient, name: str, data: bytes) -> str:
    response = await api.post("/api/assets", files={"asset": (name, data, "application/octet-stream")})
    assert response.status_code == 200, response.text
    path: str = response.json()["fileContent"]["path"]
    return path


def provider_detail(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400
    body = response.json()
    assert body["errorCode"] == "EXTERNAL_API_RESPONSE_WITH_ERROR"
    detail: dict[str, Any] = json.loads(body["details"])
    return detail


# --- image generation -----------------------------------------------------------------------------


async def test_generated_images_are_real_deterministic_pngs(api: httpx.AsyncClient) -> None:
    record = await record_of(api, "IMAGE_GENERATOR", "dall-e-3", prompt="a red apple", size="1792x1024")
    again = await record_of(api, "IMAGE_GENERATOR", "dall-e-3", prompt="a red apple", size="1792x1024")
    other = await record_of(api, "IMAGE_GENERATOR", "dall-e-3", prompt="a green pear", size="1792x1024")

    keys = [r["aiRecordDetail"]["resultObject"][0] for r in (record, again, other)]
    first, second, third = [await image_bytes(api, key) for key in keys]
    assert png_size(first) == (1792, 1024)
    assert first == second
    assert first != third
    assert keys[0] != keys[1]
    assert record["type"] == "IMAGE_GENERATOR"
    assert record["status"] == "SUCCESS"
    assert record["metadata"] == {}
    assert record["aiRecordDetail"]["promptObject"] == {"prompt": "a red apple", "size": "1792x1024"}
    assert keys[0].startswith("images/")
    assert keys[0].endswith(".png")


@pytest.mark.parametrize("model", ["midjourney", "midjourney_7_0", "magic-art", "magic-art_6_1"])
async def test_midjourney_always_makes_four_images(api: httpx.AsyncClient, model: str) -> None:
    record = await record_of(
        api, "IMAGE_GENERATOR", model, prompt="lighthouse", n=1, aspect_width=7, aspect_height=4
    )
    keys = record["aiRecordDetail"]["resultObject"]
    assert len(keys) == 4
    assert len(set(keys)) == 4
    assert png_size(await image_bytes(api, keys[0])) == (1024, 585)
    assert record["temporaryUrl"].split("?")[0].endswith(keys[0])


async def test_media_calls_are_billed_from_catalogue_prices(api: httpx.AsyncClient) -> None:
    """Prices from reference Appendix C; `usedCredit` shows what was billed before the call."""
    leonardo_phoenix = "6b645e3a-d64f-4341-a6d8-7a3690fbf042"
    calls: list[tuple[str, dict[str, Any], int]] = [
        ("midjourney", {}, 10_000),  # fast mode, "10000 vs 5000 per job" (§8.1): one job, four images
        ("dall-e-3", {"quality": "hd", "size": "1792x1024"}, 120_000),
        ("dall-e-3", {}, 40_000),  # the provider's defaults: standard, 1024x1024
        ("gpt-image-1", {"n": 2}, 2 * 42_000),  # default quality medium, 1024x1024, per image
        ("dall-e-2", {}, 20_000),  # default 1024x1024
        (leonardo_phoenix, {"size": "1024x1024", "n": 2}, 33_800),  # Leonardo prices the job by image count
        ("stable-diffusion-xl-1024-v1-0", {}, 6_000),  # flat ALL
    ]
    billed = 0
    for model, options, price in calls:
        record = await record_of(api, "IMAGE_GENERATOR", model, prompt="x", **options)
        assert record["teamUser"]["usedCredit"] == billed, model
        billed += price
    after = await record_of(api, "IMAGE_GENERATOR", "stable-diffusion-xl-1024-v1-0", prompt="x")
    assert after["teamUser"]["usedCredit"] == billed


@pytest.mark.parametrize(
    ("option", "value"), [("size", "auto"), ("quality", "auto"), ("background", "auto"), ("size", "512x512")]
)
async def test_gpt_image_1_takes_only_the_documented_values(
    api: httpx.AsyncClient, option: str, value: str
) -> None:
    """§8.1: size 1024x1024|1024x1536|1536x1024, quality low|medium|high, background opaque|transparent —
    no OpenAI `auto` (the relay must resolve it before sending)."""
    detail = provider_detail(
        await feature(api, "IMAGE_GENERATOR", "gpt-image-1", prompt="x", **{option: value})
    )
    assert detail["name"] == f"invalid_{option}"


async def test_gpt_image_1_edits_default_their_background_to_auto(api: httpx.AsyncClient) -> None:
    """§8.3: the editor's `background` defaults to `auto`, so there it is a value."""
    source = (await record_of(api, "IMAGE_GENERATOR", "dall-e-2", prompt="cat"))["aiRecordDetail"]
    image = source["resultObject"][0]
    record = await record_of(
        api, "IMAGE_EDITOR", "gpt-image-1", imageUrl=image, prompt="x", background="auto"
    )
    assert len(record["aiRecordDetail"]["resultObject"]) == 1


async def test_midjourney_aspect_numbers_are_one_to_seven(api: httpx.AsyncClient) -> None:
    detail = provider_detail(await feature(api, "IMAGE_GENERATOR", "midjourney", prompt="x", aspect_width=16))
    assert detail["name"] == "invalid_aspect_width"


@pytest.mark.parametrize(
    ("model", "params", "count", "size"),
    [
        ("dall-e-3", {}, 1, (1024, 1024)),
        ("dall-e-2", {"n": 3, "size": "256x256"}, 3, (256, 256)),
        ("gpt-image-1", {"n": 2, "size": "1024x1536", "quality": "low"}, 2, (1024, 1536)),
        ("gpt-image-1-mini", {"quality": "high", "output_format": "webp"}, 1, (1024, 1024)),
        ("gpt-image-2", {"size": "1280x720", "quality": "medium"}, 1, (1280, 720)),
        ("black-forest-labs/flux-dev", {"aspect_ratio": "16:9"}, 1, (1024, 576)),
        ("black-forest-labs/flux-1.1-pro", {"aspect_ratio": "2:3", "num_outputs": 2}, 2, (683, 1024)),
        ("black-forest-labs/flux-pro", {"width": 512, "height": 768}, 1, (512, 768)),
        ("6b645e3a-d64f-4341-a6d8-7a3690fbf042", {"size": "1024x768", "n": 4}, 4, (1024, 768)),
        ("stable-diffusion-xl-1024-v1-0", {"size": "1344x768", "samples": 2}, 2, (1344, 768)),
        ("stable-image", {}, 1, (1024, 1024)),
    ],
)
async def test_family_parameters(
    api: httpx.AsyncClient, model: str, params: dict[str, Any], count: int, size: tuple[int, int]
) -> None:
    record = await record_of(api, "IMAGE_GENERATOR", model, prompt="a small red apple", **params)
    keys = record["aiRecordDetail"]["resultObject"]
    assert len(keys) == count
    assert png_size(await image_bytes(api, keys[-1])) == size


@pytest.mark.parametrize(
    ("model", "params", "name"),
    [
        ("dall-e-3", {"n": 2}, "invalid_n"),
        ("dall-e-3", {"size": "512x512"}, "invalid_size"),
        ("dall-e-3", {"quality": "ultra"}, "invalid_quality"),
        ("dall-e-2", {"n": 11}, "invalid_n"),
        ("gpt-image-1", {"size": "1792x1024"}, "invalid_size"),
        ("gpt-image-2", {"size": "1000x1000", "quality": "low"}, "invalid_size"),
        ("gpt-image-2", {"size": "1024x1024"}, "invalid_quality"),
        ("black-forest-labs/flux-dev", {"aspect_ratio": "21:9"}, "invalid_aspect_ratio"),
        ("black-forest-labs/flux-pro", {"width": 500, "height": 512}, "invalid_dimensions"),
        ("6b645e3a-d64f-4341-a6d8-7a3690fbf042", {"size": "1024x1024"}, "missing_parameter"),
        ("6b645e3a-d64f-4341-a6d8-7a3690fbf042", {"size": "2048x2048", "n": 1}, "invalid_size"),
    ],
)
async def test_family_parameter_errors(
    api: httpx.AsyncClient, model: str, params: dict[str, Any], name: str
) -> None:
    assert provider_detail(await feature(api, "IMAGE_GENERATOR", model, prompt="x", **params))["name"] == name


async def test_sdxl_size_outside_its_list_is_the_live_provider_error(api: httpx.AsyncClient) -> None:
    response = await feature(
        api, "IMAGE_GENERATOR", "stable-diffusion-xl-1024-v1-0", prompt="x", size="512x512"
    )
    detail = provider_detail(response)
    assert detail["name"] == "invalid_height"
    assert detail["message"].endswith("896x1152, but we received 512x512")


@pytest.mark.parametrize("model", ["black-forest-labs/flux-schnell", "no-such-model", "tts-1"])
async def test_disabled_unknown_or_wrong_feature_models_are_unsupported(
    api: httpx.AsyncClient, model: str
) -> None:
    response = await feature(api, "IMAGE_GENERATOR", model, prompt="x")
    assert response.status_code == 400
    assert response.json() == {
        "errorCode": "UNSUPPORTED_MODEL",
        "message": f"Model {model} is not supported for feature IMAGE_GENERATOR",
    }


async def test_missing_prompt_is_a_validation_error(api: httpx.AsyncClient) -> None:
    response = await feature(api, "IMAGE_GENERATOR", "dall-e-3")
    assert response.status_code == 400
    assert response.json()["errorCode"] == "PROMPT_OBJECT_VALIDATION_FAILED"
    no_prompt_object = await api.post("/api/features", json={"type": "IMAGE_GENERATOR", "model": "dall-e-3"})
    assert no_prompt_object.json()["errorCode"] == "PROMPT_OBJECT_VALIDATION_FAILED"


@pytest.mark.parametrize("kind", ["CHAT_WITH_IMAGE", "CHAT_WITH_AI", "TEXT_TO_VIDEO", "NOT_A_FEATURE", None])
async def test_unsupported_feature_types(api: httpx.AsyncClient, kind: str | None) -> None:
    response = await api.post(
        "/api/features", json={"type": kind, "model": "gpt-4o", "promptObject": {"prompt": "x"}}
    )
    assert response.status_code == 400
    assert response.json() == {"errorCode": "UNKNOWN_ERROR", "message": f"Unsupported feature type: {kind}"}


async def test_is_streaming_false_is_accepted(api: httpx.AsyncClient) -> None:
    body = {"type": "IMAGE_GENERATOR", "model": "dall-e-3", "promptObject": {"prompt": "x"}}
    assert (await api.post("/api/features?isStreaming=false", json=body)).status_code == 200


# --- image editing --------------------------------------------------------------------------------


async def test_variator_editor_and_inpainter_work_on_stored_images(api: httpx.AsyncClient) -> None:
    source = (await record_of(api, "IMAGE_GENERATOR", "dall-e-2", prompt="cat", size="512x512"))[
        "aiRecordDetail"
    ]
    image = source["resultObject"][0]
    mask = await upload(api, "mask.png", await image_bytes(api, image))

    variations = await record_of(api, "IMAGE_VARIATOR", "magic-art", imageUrl=image, mode="fast", n=4)
    dalle = await record_of(api, "IMAGE_VARIATOR", "dall-e-2", imageUrl=f"https://asset.1min.ai/{image}", n=2)
    edited = await record_of(
        api, "IMAGE_EDITOR", "gpt-image-1", imageUrl=image, prompt="add a hat", size="1536x1024"
    )
    sdxl = await record_of(api, "IMAGE_EDITOR", "stable-diffusion-xl-1024-v1-0", imageUrl=image, prompt="hat")
    painted = await record_of(
        api, "IMAGE_INPAINTER", "stable-image", imageUrl=image, maskUrl=mask, prompt="sky"
    )

    assert len(variations["aiRecordDetail"]["resultObject"]) == 4
    assert len(dalle["aiRecordDetail"]["resultObject"]) == 2
    assert png_size(await image_bytes(api, edited["aiRecordDetail"]["resultObject"][0])) == (1536, 1024)
    assert png_size(await image_bytes(api, sdxl["aiRecordDetail"]["resultObject"][0])) == (
        512,
        512,
    )  # as the source
    assert png_size(await image_bytes(api, painted["aiRecordDetail"]["resultObject"][0])) == (512, 512)
    assert all("temporaryUrl" in r for r in (variations, dalle, edited, sdxl, painted))


async def test_editing_needs_an_uploaded_image(api: httpx.AsyncClient) -> None:
    audio = await upload(api, "talk.mp3", b"ID3")
    missing = await feature(
        api, "IMAGE_VARIATOR", "dall-e-2", imageUrl="images/2020_01_01_00_00_00_000_x.png"
    )
    not_an_image = await feature(api, "IMAGE_EDITOR", "gpt-image-1", imageUrl=audio, prompt="x")
    no_url = await feature(api, "IMAGE_EDITOR", "gpt-image-1", prompt="x")
    no_mask = await feature(
        api, "IMAGE_INPAINTER", "stable-image", imageUrl=await upload(api, "a.png", b"x"), prompt="x"
    )
    assert provider_detail(missing)["name"] == "invalid_image_url"
    assert provider_detail(not_an_image)["name"] == "invalid_image_url"
    assert no_url.json()["errorCode"] == "PROMPT_OBJECT_VALIDATION_FAILED"
    assert no_mask.json()["errorCode"] == "PROMPT_OBJECT_VALIDATION_FAILED"


# --- speech ---------------------------------------------------------------------------------------


async def speech(api: httpx.AsyncClient, text: str, **params: Any) -> tuple[dict[str, Any], bytes]:
    options = {"voice": "alloy", **params}
    record = await record_of(api, "TEXT_TO_SPEECH", "tts-1", text=text, **options)
    download = await api.get(record["temporaryUrl"])
    assert download.status_code == 200
    return record, download.content


async def test_tts_returns_the_json_envelope_and_a_real_mp3(api: httpx.AsyncClient) -> None:
    record, audio = await speech(api, "Hello from the relay.")
    key = record["aiRecordDetail"]["resultObject"][0]
    assert key.startswith("audios/")
    assert key.endswith(".mp3")
    assert record["temporaryUrl"].split("?")[0].endswith(key)
    assert (await api.get(f"/cdn/{key}")).content == audio
    assert audio[:3] == b"ID3"
    tag_size = int.from_bytes(bytes(b & 0x7F for b in audio[6:10]), "big")  # syncsafe
    frame = audio[10 + tag_size :]
    assert frame[0] == 0xFF
    assert frame[1] & 0xE0 == 0xE0
    assert frame[1] & 0x1E == 0x1A  # MPEG-1 Layer III
    assert len(frame) % 104 == 0
    assert frame[104:106] == frame[:2]


async def test_tts_can_answer_with_the_bare_audio_as_its_docs_page_claims(make_api: Factory) -> None:
    """§9.1/§18.13: live calls return the JSON envelope, the docs page claims the binary file: a switch."""
    api = make_api(tts_binary=True)
    options = {"text": "Hello", "voice": "alloy", "response_format": "wav"}
    response = await feature(api, "TEXT_TO_SPEECH", "tts-1", **options)
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(response.content)) as reader:
        assert reader.getnframes() > 0


async def test_tts_wav_is_a_valid_wave_file(api: httpx.AsyncClient) -> None:
    _, audio = await speech(api, "Wave hello", response_format="wav")
    with wave.open(io.BytesIO(audio)) as reader:
        assert reader.getnchannels() == 1
        assert reader.getsampwidth() == 2
        assert reader.getframerate() == 24_000
        assert reader.getnframes() > 0


@pytest.mark.parametrize(
    ("fmt", "magic"),
    [("flac", b"fLaC"), ("opus", b"OggS\x00\x02"), ("aac", b"ID3"), ("pcm", b"\x00\x00")],
)
async def test_tts_other_formats_have_real_headers(api: httpx.AsyncClient, fmt: str, magic: bytes) -> None:
    record, audio = await speech(api, "Format check", response_format=fmt)
    assert record["aiRecordDetail"]["resultObject"][0].endswith(f".{fmt}")
    assert audio.startswith(magic)
    if fmt == "opus":
        assert b"OpusHead" in audio
        assert b"OpusTags" in audio
    if fmt == "aac":
        assert b"\xff\xf1" in audio  # ADTS sync after the ID3 tag
    if fmt == "pcm":
        assert len(audio) % 2 == 0
        assert len(audio) > 1000


@pytest.mark.parametrize(
    ("params", "name"),
    [({"voice": "robot"}, "invalid_voice"), ({"response_format": "ogg"}, "invalid_response_format"),
     ({"speed": 5}, "invalid_speed"), ({"text": "x" * 4097}, "string_above_max_length")],
)  # fmt: skip
async def test_tts_rejects_what_openai_rejects(
    api: httpx.AsyncClient, params: dict[str, Any], name: str
) -> None:
    prompt_object = {"text": "hi", "voice": "alloy", **params}
    assert provider_detail(await feature(api, "TEXT_TO_SPEECH", "tts-1", **prompt_object))["name"] == name


async def test_other_tts_models(api: httpx.AsyncClient) -> None:
    google = await record_of(api, "TEXT_TO_SPEECH", "google-tts", text="hi", audioEncoding="LINEAR16")
    eleven = await record_of(api, "TEXT_TO_SPEECH", "elevenlabs-tts", text="hi", voice_id="x")
    assert google["aiRecordDetail"]["resultObject"][0].endswith(".wav")
    assert eleven["aiRecordDetail"]["resultObject"][0].endswith(".mp3")


# --- transcription and translation ----------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["mp3", "wav", "flac", "opus", "aac", "pcm"])
async def test_speech_made_here_transcribes_back_to_its_text(api: httpx.AsyncClient, fmt: str) -> None:
    text = "Bonjour « monde » — 你好 🎧"
    _, audio = await speech(api, text, response_format=fmt)
    key = await upload(
        api, f"again.{'mp3' if fmt == 'pcm' else fmt}", audio
    )  # re-uploaded, as the relay would

    record = await record_of(api, "SPEECH_TO_TEXT", "whisper-1", audioUrl=key, response_format="text")
    assert record["aiRecordDetail"]["resultObject"] == [text]


async def test_whisper_response_formats(api: httpx.AsyncClient) -> None:
    text = "Round trip"
    tts, _ = await speech(api, text)
    key = tts["aiRecordDetail"]["resultObject"][0]

    async def transcript(**params: Any) -> str:
        record = await record_of(api, "SPEECH_TO_TEXT", "whisper-1", audioUrl=key, **params)
        result: str = record["aiRecordDetail"]["resultObject"][0]
        return result

    assert json.loads(await transcript()) == {"text": text}  # json is whisper's default
    assert json.loads(await transcript(response_format="json")) == {"text": text}
    verbose = json.loads(await transcript(response_format="verbose_json", language="en"))
    assert verbose["text"] == text
    assert verbose["task"] == "transcribe"
    assert verbose["language"] == "en"
    assert verbose["segments"][0]["text"] == text
    assert verbose["duration"] > 0
    srt = await transcript(response_format="srt")
    assert srt.startswith("1\n00:00:00,000 --> 00:00:")
    assert srt.endswith(f"\n{text}\n")
    vtt = await transcript(response_format="vtt")
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> ")
    assert vtt.endswith(f"\n{text}\n")
    assert provider_detail(
        await feature(api, "SPEECH_TO_TEXT", "whisper-1", audioUrl=key, response_format="xml")
    )


async def test_other_audio_gets_a_deterministic_stand_in(api: httpx.AsyncClient) -> None:
    key = await upload(api, "meeting.m4a", b"\x00\x00\x00\x18ftypM4A " + bytes(500))
    first = await record_of(api, "SPEECH_TO_TEXT", "latest_long", audioUrl=key, language="en-US")
    second = await record_of(api, "SPEECH_TO_TEXT", "latest_long", audioUrl=f"http://sim.test/cdn/{key}")
    text = first["aiRecordDetail"]["resultObject"][0]
    assert text == second["aiRecordDetail"]["resultObject"][0]
    assert "meeting.m4a" in text
    assert not text.startswith("{")


async def test_translator_returns_text(api: httpx.AsyncClient) -> None:
    tts, _ = await speech(api, "Good morning")
    key = tts["aiRecordDetail"]["resultObject"][0]
    whisper = await record_of(
        api, "AUDIO_TRANSLATOR", "whisper-1", audioUrl=key, response_format="verbose_json"
    )
    gemini = await record_of(api, "AUDIO_TRANSLATOR", "gemini-2.5-flash", audioUrl=key)
    assert json.loads(whisper["aiRecordDetail"]["resultObject"][0])["task"] == "translate"
    assert gemini["aiRecordDetail"]["resultObject"] == ["Good morning"]
    assert "temporaryUrl" not in gemini


async def test_transcription_needs_a_stored_audio_url(api: httpx.AsyncClient) -> None:
    unknown = await feature(
        api, "SPEECH_TO_TEXT", "whisper-1", audioUrl="audios/2020_01_01_00_00_00_000_x.mp3"
    )
    missing = await feature(api, "SPEECH_TO_TEXT", "whisper-1")
    assert provider_detail(unknown)["name"] == "invalid_audio_url"
    assert missing.json()["errorCode"] == "PROMPT_OBJECT_VALIDATION_FAILED"


# --- code -----------------------------------------------------------------------------------------


async def test_code_generator_answers_in_result_object(api: httpx.AsyncClient) -> None:
    body = {
        "type": "CODE_GENERATOR",
        "model": "gpt-4o",
        "conversationId": "CODE_GENERATOR",
        "promptObject": {"prompt": "Write a Python function that reverses a list."},
    }
    record = (await api.post("/api/features", json=body)).json()["aiRecord"]
    assert record["aiRecordDetail"]["resultObject"] == [
        expected_answer("Write a Python function that reverses a list.")
    ]
    assert record["conversationId"] == "CODE_GENERATOR"


# --- async + Get Result ---------------------------------------------------------------------------


async def test_async_call_is_processing_then_success(api: httpx.AsyncClient) -> None:
    body = {"type": "IMAGE_GENERATOR", "model": "dall-e-3", "async": True, "promptObject": {"prompt": "x"}}
    submitted = (await api.post("/api/features", json=body)).json()["aiRecord"]
    first = (await api.get(f"/api/results/{submitted['uuid']}")).json()["aiRecord"]
    second = (await api.get(f"/api/results/{submitted['uuid']}")).json()["aiRecord"]

    assert submitted["status"] == "PROCESSING"
    assert submitted["aiRecordDetail"]["resultObject"] == []
    assert "temporaryUrl" not in submitted
    assert first["status"] == "PROCESSING"
    assert second["status"] == "SUCCESS"
    assert second["uuid"] == submitted["uuid"]
    assert len(second["aiRecordDetail"]["resultObject"]) == 1
    assert (await api.get(second["temporaryUrl"])).status_code == 200


async def test_async_poll_count_is_configurable(make_api: Factory) -> None:
    api = make_api(async_polls=0)
    body = {
        "type": "TEXT_TO_SPEECH",
        "model": "tts-1",
        "async": True,
        "promptObject": {"text": "x", "voice": "nova"},
    }
    submitted = (await api.post("/api/features", json=body)).json()["aiRecord"]
    assert (await api.get(f"/api/results/{submitted['uuid']}")).json()["aiRecord"]["status"] == "SUCCESS"


async def test_async_results_are_bounded_in_bytes(make_api: Factory) -> None:
    """Only a count (10000 records) bounded the results waiting to be polled, each echoing its promptObject:
    past `async_results_bytes` the oldest are forgotten, and polling them answers `{"aiRecord": null}`."""
    api = make_api(async_polls=0, async_results_bytes=5000)
    uuids = []
    for letter in "abc":
        body = {
            "type": "IMAGE_GENERATOR",
            "model": "dall-e-3",
            "async": True,
            "promptObject": {"prompt": letter * 2000},
        }
        uuids.append((await api.post("/api/features", json=body)).json()["aiRecord"]["uuid"])

    oldest = (await api.get(f"/api/results/{uuids[0]}")).json()
    newest = (await api.get(f"/api/results/{uuids[-1]}")).json()["aiRecord"]
    assert oldest == {"aiRecord": None}
    assert newest["status"] == "SUCCESS"
    assert newest["aiRecordDetail"]["promptObject"]["prompt"] == "c" * 2000


async def test_failed_async_call_ends_in_failure(api: httpx.AsyncClient) -> None:
    body = {
        "type": "IMAGE_GENERATOR",
        "model": "dall-e-3",
        "async": True,
        "promptObject": {"prompt": "[[sim:failed-status]]"},
    }
    submitted = (await api.post("/api/features", json=body)).json()["aiRecord"]
    await api.get(f"/api/results/{submitted['uuid']}")
    final = (await api.get(f"/api/results/{submitted['uuid']}")).json()["aiRecord"]
    assert final["status"] == "FAILURE"


async def test_unknown_or_foreign_result_is_a_null_record(api: httpx.AsyncClient) -> None:
    body = {"type": "IMAGE_GENERATOR", "model": "dall-e-3", "async": True, "promptObject": {"prompt": "x"}}
    submitted = (await api.post("/api/features", json=body)).json()["aiRecord"]
    unknown = await api.get("/api/results/00000000-0000-4000-8000-000000000000")
    foreign = await api.get(f"/api/results/{submitted['uuid']}", headers={"API-KEY": KEY_B})
    assert unknown.status_code == 200
    assert unknown.json() == {"aiRecord": None}
    assert foreign.json() == {"aiRecord": None}


# --- legacy chat switch ---------------------------------------------------------------------------


async def test_legacy_chat_streams_raw_text_when_switched_on(make_api: Factory) -> None:
    api = make_api(legacy_chat=True)
    body = {
        "type": "CHAT_WITH_AI",
        "model": "gpt-4o-mini",
        "conversationId": "CHAT_WITH_AI",
        "promptObject": {"prompt": "Hello", "isMixed": False, "webSearch": False},
    }
    streamed = await api.post("/api/features?isStreaming=true", json=body)
    plain = await api.post("/api/features", json=body)

    assert streamed.status_code == 200
    assert streamed.headers["content-type"].startswith("text/plain")
    assert streamed.text == expected_answer("Hello")
    record = plain.json()["aiRecord"]
    assert record["type"] == "CHAT_WITH_AI"
    assert record["conversationId"] == "CHAT_WITH_AI"
    assert record["aiRecordDetail"]["resultObject"] == [expected_answer("Hello")]
