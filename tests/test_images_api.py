"""/v1/images end to end: the official SDK → relay → simulator, over loopback sockets."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from onemin_relay.serving import BackgroundServer
from onemin_relay.simulator.media import png
from tests.harness import KEY_A, KEY_B, SimulatorHandle
from tests.openapi_schema import assert_matches_schema

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LEONARDO_PHOENIX = "6b645e3a-d64f-4341-a6d8-7a3690fbf042"
SOURCE = png("a source photo", 64, 64)
MASK = png("a mask", 64, 64)


def feature_calls(sim: SimulatorHandle) -> list[dict[str, Any]]:
    return [entry["json"] for entry in sim.requests() if entry["path"] == "/api/features"]


def asset_uploads(sim: SimulatorHandle) -> list[dict[str, Any]]:
    return [entry for entry in sim.requests() if entry["path"] == "/api/assets"]


def raw(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = response.model_dump(exclude_none=True)
    return body


# --- generations ---------------------------------------------------------------------------------


def test_dall_e_3_answers_public_urls_that_serve_the_image(
    client: openai.OpenAI, sim: SimulatorHandle
) -> None:
    result = client.images.generate(
        model="dall-e-3", prompt="a fox", size="1792x1024", quality="hd", style="natural"
    )
    assert_matches_schema("ImagesResponse", raw(result))
    assert result.data is not None
    assert len(result.data) == 1
    url = result.data[0].url
    assert url is not None
    assert url.startswith(sim.url + "/cdn/images/")
    assert httpx.get(url).content.startswith(PNG_MAGIC)
    [call] = feature_calls(sim)
    assert call == {
        "type": "IMAGE_GENERATOR",
        "model": "dall-e-3",
        "promptObject": {"prompt": "a fox", "n": 1, "size": "1792x1024", "quality": "hd", "style": "natural"},
    }


def test_gpt_image_answers_base64_by_default_with_openai_extras(
    client: openai.OpenAI, sim: SimulatorHandle
) -> None:
    result = client.images.generate(model="gpt-image-1", prompt="a fox", n=2, size="1536x1024", quality="low")
    assert_matches_schema("ImagesResponse", raw(result))
    assert result.data is not None
    assert len(result.data) == 2
    for image in result.data:
        assert image.url is None
        assert base64.b64decode(image.b64_json or "").startswith(PNG_MAGIC)
    assert (result.size, result.quality, result.output_format) == ("1536x1024", "low", "png")


def test_b64_json_is_the_bytes_on_the_cdn(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    as_b64 = client.images.generate(
        model="dall-e-2", prompt="same", size="256x256", response_format="b64_json"
    )
    as_url = client.images.generate(model="dall-e-2", prompt="same", size="256x256")
    assert as_b64.data is not None
    assert as_url.data is not None
    assert as_url.data[0].url is not None
    # The simulator renders the same prompt to the same pixels.
    assert base64.b64decode(as_b64.data[0].b64_json or "") == httpx.get(as_url.data[0].url).content


def test_midjourney_renders_four_and_the_relay_answers_n(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    result = client.images.generate(model="midjourney", prompt="a lighthouse", n=2, size="1792x1024")
    assert result.data is not None
    assert len(result.data) == 2
    [call] = feature_calls(sim)
    assert call["promptObject"]["n"] == 4
    assert (call["promptObject"]["aspect_width"], call["promptObject"]["aspect_height"]) == (7, 4)


@pytest.mark.parametrize(
    ("model", "kwargs", "sent", "count"),
    [
        ("black-forest-labs/flux-dev", {"size": "1024x1536"}, {"aspect_ratio": "2:3"}, 1),
        (LEONARDO_PHOENIX, {"size": "768x1024", "n": 3}, {"size": "768x1024", "n": 3}, 3),
        (
            "stable-diffusion-xl-1024-v1-0",
            {"size": "1344x768", "n": 2},
            {"samples": 2, "size": "1344x768"},
            2,
        ),
        ("gpt-image-1-mini", {"quality": "high"}, {"quality": "high", "size": "1024x1024"}, 1),
        ("gpt-image-2", {"size": "2048x1152", "n": 2}, {"size": "2048x1152", "n": 2, "quality": "medium"}, 2),
        ("stable-image-ultra", {}, {}, 1),
    ],
)
def test_each_family_gets_its_own_payload(
    client: openai.OpenAI,
    sim: SimulatorHandle,
    model: str,
    kwargs: dict[str, Any],
    sent: dict[str, Any],
    count: int,
) -> None:
    result = client.images.generate(model=model, prompt="a fox", **kwargs)
    assert result.data is not None
    assert len(result.data) == count
    [call] = feature_calls(sim)
    assert call["model"] == model
    assert call["promptObject"] == {"prompt": "a fox", **call["promptObject"], **sent}
    assert call["promptObject"]["prompt"] == "a fox"


@pytest.mark.parametrize(
    ("model", "kwargs", "param"),
    [
        ("dall-e-3", {"n": 2}, "n"),
        ("dall-e-3", {"size": "512x512"}, "size"),
        ("sdxl", {}, "model"),
        ("stable-diffusion-xl-1024-v1-0", {"size": "512x512"}, "size"),
        ("gpt-image-1", {"quality": "hd"}, "quality"),
        ("midjourney", {"n": 5}, "n"),
        ("black-forest-labs/flux-dev", {"style": "vivid"}, "style"),
    ],
)
def test_values_a_model_cannot_take_are_refused_before_any_credit_is_spent(
    client: openai.OpenAI, sim: SimulatorHandle, model: str, kwargs: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.images.generate(model=model, prompt="a fox", **kwargs)
    assert caught.value.status_code in (400, 404)
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["param"] == param
    assert feature_calls(sim) == []


def test_a_chat_model_cannot_generate_images(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model="gpt-4o-mini", prompt="a fox")
    assert "does not support image generation" in caught.value.message
    assert feature_calls(sim) == []


def test_streaming_and_bad_json_are_400s(client: openai.OpenAI, relay_url: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model="gpt-image-1", prompt="a fox", stream=True)
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["param"] == "stream"
    headers = {"Authorization": f"Bearer {KEY_A}"}
    response = httpx.post(f"{relay_url}/v1/images/generations", content=b"{nope", headers=headers)
    assert response.status_code == 400
    response = httpx.post(f"{relay_url}/v1/images/generations", json={"prompt": 7}, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "prompt"


def test_upstream_provider_rejections_come_back_as_openai_errors(
    client: openai.OpenAI, sim: SimulatorHandle
) -> None:
    sim.set_fault("http-503")
    with pytest.raises(openai.APIStatusError) as caught:
        client.images.generate(model="dall-e-2", prompt="a fox")
    assert caught.value.status_code >= 500
    assert isinstance(caught.value.body, dict)
    assert "message" in caught.value.body


# --- variations (the SDK marks create_variation deprecated) -------------------------------------


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_variation_uploads_the_image_then_calls_the_variator(
    client: openai.OpenAI, sim: SimulatorHandle
) -> None:
    result = client.images.create_variation(image=("photo.png", SOURCE, "image/png"), n=2, size="512x512")
    assert_matches_schema("ImagesResponse", raw(result))
    assert result.data is not None
    assert len(result.data) == 2
    [upload] = asset_uploads(sim)
    assert upload["multipart"][0]["filename"] == "photo.png"
    [call] = feature_calls(sim)
    assert call["type"] == "IMAGE_VARIATOR"
    assert call["model"] == "dall-e-2"
    assert call["promptObject"]["imageUrl"].startswith("images/")
    assert call["promptObject"]["n"] == 2


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_variation_of_an_image_without_extension_gets_the_real_one(
    client: openai.OpenAI, sim: SimulatorHandle
) -> None:
    result = client.images.create_variation(image=SOURCE, model="magic-art", n=1, response_format="b64_json")
    assert result.data is not None
    assert len(result.data) == 1
    [upload] = asset_uploads(sim)
    assert upload["multipart"][0]["filename"].endswith(".png")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_variation_refusals(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.create_variation(image=("photo.png", SOURCE), model="dall-e-3")
    assert "does not support image variations" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.create_variation(image=("photo.png", b"not an image at all"))
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["param"] == "image"
    assert feature_calls(sim) == []
    assert asset_uploads(sim) == []


# --- edits --------------------------------------------------------------------------------------------


def test_edit_without_mask_uses_the_image_editor(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    result = client.images.edit(
        image=("photo.png", SOURCE), prompt="add a hat", model="gpt-image-1", quality="low"
    )
    assert_matches_schema("ImagesResponse", raw(result))
    assert result.data is not None
    assert base64.b64decode(result.data[0].b64_json or "").startswith(PNG_MAGIC)
    [call] = feature_calls(sim)
    assert call["type"] == "IMAGE_EDITOR"
    assert call["promptObject"]["prompt"] == "add a hat"
    assert call["promptObject"]["quality"] == "low"


def test_edit_with_mask_uses_the_inpainter(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    result = client.images.edit(
        image=("photo.png", SOURCE),
        mask=("mask.png", MASK),
        prompt="a hat",
        model="stable-image",
        response_format="url",
    )
    assert result.data is not None
    assert result.data[0].url is not None
    uploads = asset_uploads(sim)
    assert len(uploads) == 2
    [call] = feature_calls(sim)
    assert call["type"] == "IMAGE_INPAINTER"
    assert call["promptObject"]["imageUrl"] != call["promptObject"]["maskUrl"]
    assert call["promptObject"]["maskUrl"].startswith("images/")


def test_edit_refusals(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"image": ("photo.png", SOURCE), "prompt": "x", "model": "dall-e-3"},
            "does not support image edits",
        ),
        (
            {
                "image": ("photo.png", SOURCE),
                "mask": ("m.png", MASK),
                "prompt": "x",
                "model": "qwen-image-edit-plus",
            },
            "inpainting",
        ),
        ({"image": [("a.png", SOURCE), ("b.png", SOURCE)], "prompt": "x"}, "one input image"),
        ({"image": ("photo.png", SOURCE), "mask": ("m.png", b"GIF8?"), "prompt": "x"}, "'mask'"),
    ]
    for kwargs, words in cases:
        with pytest.raises(openai.BadRequestError) as caught:
            client.images.edit(**kwargs)
        assert words in caught.value.message
    assert feature_calls(sim) == []
    assert asset_uploads(sim) == []


def test_edit_missing_fields_name_the_param(relay_url: str) -> None:
    headers = {"Authorization": f"Bearer {KEY_A}"}
    url = f"{relay_url}/v1/images/edits"
    response = httpx.post(url, headers=headers, files={"image": ("a.png", SOURCE)})
    assert (response.status_code, response.json()["error"]["param"]) == (400, "prompt")
    response = httpx.post(url, headers=headers, data={"prompt": "x"}, files={"other": ("a.png", SOURCE)})
    assert (response.status_code, response.json()["error"]["param"]) == (400, "image")
    response = httpx.post(
        url, headers=headers, files={"prompt": (None, b"x"), "image": (None, b"not a file")}
    )
    assert (response.status_code, response.json()["error"]["param"]) == (400, "image")
    response = httpx.post(url, headers=headers, data={"prompt": "x"})  # urlencoded, not multipart
    assert response.status_code == 400
    assert "multipart/form-data" in response.json()["error"]["message"]
    response = httpx.post(
        url, headers=headers, data={"prompt": "x", "n": "two"}, files={"image": ("a.png", SOURCE)}
    )
    assert (response.status_code, response.json()["error"]["param"]) == (400, "n")


def test_a_list_of_one_image_is_accepted(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    result = client.images.edit(image=[("photo.png", SOURCE)], prompt="add a hat", model="gpt-image-1-mini")
    assert result.data is not None
    assert len(result.data) == 1
    assert feature_calls(sim)[0]["type"] == "IMAGE_EDITOR"


def test_images_over_the_upload_limit_are_413s(
    start_relay: Callable[..., BackgroundServer], sim: SimulatorHandle
) -> None:
    relay = start_relay(max_image_upload_bytes=1024)
    big = png("a big photo", 256, 256)
    assert len(big) > 1024
    with openai.OpenAI(base_url=f"{relay.url}/v1", api_key=KEY_A, max_retries=0) as sdk:
        with pytest.raises(openai.APIStatusError) as caught:
            sdk.images.edit(image=("big.png", big), prompt="x", model="gpt-image-1")
        assert caught.value.status_code == 413
        assert isinstance(caught.value.body, dict)
        assert caught.value.body["param"] == "image"
        with pytest.raises(openai.APIStatusError) as caught:
            sdk.images.edit(image=("small.png", png("small", 4, 4)), mask=("m.png", big), prompt="x")
        assert caught.value.status_code == 413
        assert isinstance(caught.value.body, dict)
        assert caught.value.body["param"] == "mask"
    assert sim.requests() == []


# --- JSON edits (images referenced by URL, data URL or file id) -------------------------------------


def post_json_edit(relay_url: str, body: dict[str, Any], key: str = KEY_A) -> httpx.Response:
    return httpx.post(
        f"{relay_url}/v1/images/edits", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def data_url(content: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(content).decode()


def test_json_edit_with_data_urls(relay_url: str, sim: SimulatorHandle) -> None:
    body = {
        "prompt": "a hat",
        "model": "gpt-image-1",
        "images": [{"image_url": data_url(SOURCE)}],
        "mask": {"image_url": data_url(MASK)},
    }
    response = post_json_edit(relay_url, body)
    assert response.status_code == 200
    assert_matches_schema("ImagesResponse", response.json())
    assert len(asset_uploads(sim)) == 2
    [call] = feature_calls(sim)
    assert call["type"] == "IMAGE_INPAINTER"


def test_json_edit_with_a_file_id_and_a_url(
    client: openai.OpenAI, relay_url: str, sim: SimulatorHandle
) -> None:
    stored = client.files.create(file=("photo.png", SOURCE), purpose="vision")
    generated = client.images.generate(model="dall-e-2", prompt="a mask", size="256x256")
    assert generated.data is not None
    mask_url = generated.data[0].url
    assert mask_url is not None
    uploads_before = len(asset_uploads(sim))
    body = {"prompt": "a hat", "images": [{"file_id": stored.id}], "mask": {"image_url": mask_url}}
    response = post_json_edit(relay_url, body)
    assert response.status_code == 200, response.text
    call = feature_calls(sim)[-1]
    assert call["type"] == "IMAGE_INPAINTER"
    first_upload = asset_uploads(sim)[0]
    assert call["promptObject"]["imageUrl"].endswith(first_upload["multipart"][0]["filename"])
    assert (
        len(asset_uploads(sim)) == uploads_before + 1
    )  # the stored file is used as is; the mask is uploaded


@pytest.mark.parametrize(
    ("images", "param", "status"),
    [
        ([{"image_url": "data:image/png;base64,not*base64!"}], "images[0].image_url", 400),
        (
            [{"image_url": "data:image/png;base64," + base64.b64encode(b"plain text").decode()}],
            "images[0].image_url",
            400,
        ),
        ([{"image_url": "ftp://example.com/a.png"}], "images[0].image_url", 400),
        ([{"file_id": "file-nope"}], "images[0].file_id", 404),
        ([{"image_url": "https://x/a.png", "file_id": "file-1"}], "images.0", 400),
        ([{"image_url": data_url(SOURCE)}, {"image_url": data_url(SOURCE)}], "images", 400),
        ([], "images", 400),
    ],
)
def test_json_edit_refusals(
    relay_url: str, sim: SimulatorHandle, images: list[dict[str, str]], param: str, status: int
) -> None:
    response = post_json_edit(relay_url, {"prompt": "a hat", "images": images})
    assert response.status_code == status
    assert response.json()["error"]["param"] == param
    assert feature_calls(sim) == []


def test_json_edit_cannot_use_another_keys_file(client: openai.OpenAI, relay_url: str) -> None:
    stored = client.files.create(file=("photo.png", SOURCE), purpose="vision")
    response = post_json_edit(relay_url, {"prompt": "x", "images": [{"file_id": stored.id}]}, key=KEY_B)
    assert response.status_code == 404


def test_b64_json_images_share_one_download_budget(
    client: openai.OpenAI, start_relay: Callable[..., BackgroundServer]
) -> None:
    urls = client.images.generate(model="dall-e-2", prompt="budget", n=2, size="256x256")
    assert urls.data is not None
    largest = max(len(httpx.get(image.url or "").content) for image in urls.data)
    relay = start_relay(upstream_max_download_bytes=largest * 3 // 2)  # one image fits, two do not
    with openai.OpenAI(base_url=f"{relay.url}/v1", api_key=KEY_A, max_retries=0) as sdk:
        one = sdk.images.generate(
            model="dall-e-2", prompt="budget", n=1, size="256x256", response_format="b64_json"
        )
        assert one.data is not None
        assert base64.b64decode(one.data[0].b64_json or "").startswith(PNG_MAGIC)
        with pytest.raises(openai.APIStatusError) as caught:
            sdk.images.generate(
                model="dall-e-2", prompt="budget", n=2, size="256x256", response_format="b64_json"
            )
        assert caught.value.status_code == 502
        assert "larger than" in caught.value.message


@pytest.mark.parametrize(
    ("mask", "param", "status"),
    [
        ({"image_url": "data:image/png;base64,not*base64!"}, "mask.image_url", 400),
        (
            {"image_url": "data:image/png;base64," + base64.b64encode(b"plain text").decode()},
            "mask.image_url",
            400,
        ),
        ({"file_id": "file-nope"}, "mask.file_id", 404),
    ],
)
def test_json_edit_checks_every_image_before_uploading_any(
    relay_url: str, sim: SimulatorHandle, mask: dict[str, str], param: str, status: int
) -> None:
    body = {"prompt": "a hat", "images": [{"image_url": data_url(SOURCE)}], "mask": mask}
    response = post_json_edit(relay_url, body)
    assert response.status_code == status
    assert response.json()["error"]["param"] == param
    assert asset_uploads(sim) == []  # 1min.ai cannot delete an asset: none is left behind for nothing
