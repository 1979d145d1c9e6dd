"""OpenAI image parameters → each 1min.ai family's promptObject, and 400s for values it cannot take."""

from __future__ import annotations

from typing import Any

import pytest

from onemin_relay.errors import OpenAIError
from onemin_relay.translate.features import result_keys
from onemin_relay.translate.images import (
    Family,
    ImageOptions,
    default_response_format,
    edit_plan,
    family_of,
    flux_aspect_ratio,
    generation_plan,
    images_response,
    midjourney_aspect,
    nearest_size,
    variation_plan,
    with_inputs,
)
from onemin_relay.upstream.errors import UpstreamError
from tests.openapi_schema import assert_matches_schema

LEONARDO_PHOENIX = "6b645e3a-d64f-4341-a6d8-7a3690fbf042"


def refused(call: Any, *args: Any, **kwargs: Any) -> OpenAIError:
    with pytest.raises(OpenAIError) as caught:
        call(*args, **kwargs)
    assert caught.value.status == 400
    return caught.value


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("dall-e-2", Family.DALL_E_2),
        ("dall-e-3", Family.DALL_E_3),
        ("gpt-image-1", Family.GPT_IMAGE_1),
        ("gpt-image-1-mini", Family.GPT_IMAGE_1),
        ("gpt-image-2", Family.GPT_IMAGE_2),
        ("midjourney", Family.MIDJOURNEY),
        ("midjourney_7_0", Family.MIDJOURNEY),
        ("magic-art_6_1", Family.MIDJOURNEY),
        ("black-forest-labs/flux-schnell", Family.FLUX),
        ("black-forest-labs/flux-1.1-pro-ultra", Family.FLUX),
        (LEONARDO_PHOENIX, Family.LEONARDO),
        ("stable-diffusion-xl-1024-v1-0", Family.SDXL),
        ("stable-image", Family.OTHER),
        ("gemini-2.5-flash-image", Family.OTHER),
    ],
)
def test_every_catalogue_family_is_recognised(model: str, family: Family) -> None:
    assert family_of(model) is family


def test_provider_names_leonardo_models_whatever_their_id() -> None:
    assert family_of("some-new-leonardo-model", "leonardoai") is Family.LEONARDO


# --- DALL·E ---------------------------------------------------------------------------------------------


def test_dall_e_3_takes_size_quality_and_style() -> None:
    options = ImageOptions(size="1792x1024", quality="hd", style="natural")
    plan = generation_plan("dall-e-3", "a fox", options)
    assert plan.prompt_object == {
        "prompt": "a fox",
        "n": 1,
        "size": "1792x1024",
        "quality": "hd",
        "style": "natural",
    }
    assert plan.keep == 1


def test_dall_e_3_defaults_and_auto() -> None:
    plan = generation_plan("dall-e-3", "a fox", ImageOptions(size="auto", quality="auto"))
    assert plan.prompt_object == {
        "prompt": "a fox",
        "n": 1,
        "size": "1024x1024",
        "quality": "standard",
        "style": "vivid",
    }


@pytest.mark.parametrize(
    ("options", "param", "allowed"),
    [
        (ImageOptions(n=2), "n", "1"),
        (ImageOptions(size="512x512"), "size", "'1792x1024'"),
        (ImageOptions(quality="high"), "quality", "'hd'"),
        (ImageOptions(style="cartoon"), "style", "'natural'"),
        (ImageOptions(background="transparent"), "background", None),
        (ImageOptions(output_format="png"), "output_format", None),
    ],
)
def test_dall_e_3_refuses_what_it_cannot_take(options: ImageOptions, param: str, allowed: str | None) -> None:
    error = refused(generation_plan, "dall-e-3", "a fox", options)
    assert error.param == param
    if allowed:
        assert allowed in error.message


def test_dall_e_2_takes_n_and_its_sizes() -> None:
    plan = generation_plan("dall-e-2", "a fox", ImageOptions(n=3, size="256x256", quality="standard"))
    assert plan.prompt_object == {"prompt": "a fox", "n": 3, "size": "256x256"}
    assert plan.keep == 3
    assert refused(generation_plan, "dall-e-2", "x", ImageOptions(size="1792x1024")).param == "size"
    assert refused(generation_plan, "dall-e-2", "x", ImageOptions(n=11)).param == "n"
    assert refused(generation_plan, "dall-e-2", "x", ImageOptions(style="vivid")).param == "style"
    assert refused(generation_plan, "dall-e-2", "x", ImageOptions(quality="hd")).param == "quality"


# --- GPT Image ------------------------------------------------------------------------------------------


def test_gpt_image_1_maps_every_option_and_echoes_what_openai_echoes() -> None:
    options = ImageOptions(
        n=2,
        size="1536x1024",
        quality="high",
        background="transparent",
        output_format="webp",
        output_compression=70,
    )
    plan = generation_plan("gpt-image-1", "a fox", options)
    assert plan.prompt_object == {
        "prompt": "a fox",
        "n": 2,
        "size": "1536x1024",
        "quality": "high",
        "output_format": "webp",
        "output_compression": 70,
        "background": "transparent",
    }
    assert plan.echo == {
        "size": "1536x1024",
        "quality": "high",
        "output_format": "webp",
        "background": "transparent",
    }


def test_gpt_image_defaults_send_what_upstream_requires() -> None:
    plan = generation_plan("gpt-image-1-mini", "a fox", ImageOptions(quality="auto", background="auto"))
    assert plan.prompt_object == {
        "prompt": "a fox",
        "n": 1,
        "size": "1024x1024",
        "quality": "medium",
        "output_format": "png",
    }


@pytest.mark.parametrize(
    ("options", "param"),
    [
        (ImageOptions(quality="hd"), "quality"),
        (ImageOptions(size="1792x1024"), "size"),
        (ImageOptions(background="transparent", output_format="jpeg"), "background"),
        (ImageOptions(output_compression=50), "output_compression"),  # png has no compression
        (ImageOptions(output_format="jpeg", output_compression=101), "output_compression"),
        (ImageOptions(output_format="gif"), "output_format"),
        (ImageOptions(n=11), "n"),
    ],
)
def test_gpt_image_refusals_name_the_param(options: ImageOptions, param: str) -> None:
    assert refused(generation_plan, "gpt-image-1", "a fox", options).param == param


def test_style_is_only_for_gpt_image_1_among_gpt_image_models() -> None:
    assert (
        generation_plan("gpt-image-1", "x", ImageOptions(style="natural")).prompt_object["style"] == "natural"
    )
    assert refused(generation_plan, "gpt-image-1-mini", "x", ImageOptions(style="natural")).param == "style"


def test_gpt_image_2_takes_any_size_within_its_limits() -> None:
    plan = generation_plan("gpt-image-2", "x", ImageOptions(size="2048x1152"))
    assert plan.prompt_object["size"] == "2048x1152"
    assert "size" not in plan.echo  # ImagesResponse.size only names the three classic sizes
    for bad in ("1000x1000", "512x512", "4096x1024", "3840x3840", "big"):
        assert refused(generation_plan, "gpt-image-2", "x", ImageOptions(size=bad)).param == "size"


# --- Midjourney -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "aspect"),
    [
        (None, (1, 1)),
        ("auto", (1, 1)),
        ("1024x1024", (1, 1)),
        ("1792x1024", (7, 4)),
        ("1024x1792", (4, 7)),
        ("1536x1024", (3, 2)),
        ("1024x1536", (2, 3)),
        ("16:9", (7, 4)),
        ("1920x1080", (7, 4)),
        ("4:3", (4, 3)),
    ],
)
def test_midjourney_sizes_become_small_integer_aspects(size: str | None, aspect: tuple[int, int]) -> None:
    assert midjourney_aspect(size, "midjourney") == aspect


def test_midjourney_always_asks_for_four_and_keeps_n() -> None:
    plan = generation_plan("midjourney_7_0", "a fox", ImageOptions(n=2, size="1792x1024"))
    assert plan.prompt_object == {
        "prompt": "a fox",
        "mode": "fast",
        "n": 4,
        "isNiji6": False,
        "maintainModeration": True,
        "aspect_width": 7,
        "aspect_height": 4,
    }
    assert plan.keep == 2
    assert refused(generation_plan, "midjourney", "x", ImageOptions(n=5)).param == "n"
    assert refused(generation_plan, "magic-art", "x", ImageOptions(quality="hd")).param == "quality"
    assert refused(generation_plan, "magic-art", "x", ImageOptions(size="huge")).param == "size"


# --- Flux, Leonardo, SDXL, others -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "ratio"),
    [
        (None, "1:1"),
        ("512x512", "1:1"),
        ("1792x1024", "16:9"),
        ("1344x768", "16:9"),
        ("1024x1792", "9:16"),
        ("1536x1024", "3:2"),
        ("1024x1536", "2:3"),
        ("1024x1280", "4:5"),
        ("5:4", "5:4"),
    ],
)
def test_flux_sizes_become_aspect_ratios(size: str | None, ratio: str) -> None:
    assert flux_aspect_ratio(size, "black-forest-labs/flux-dev") == ratio


def test_flux_refuses_sizes_far_from_every_ratio_and_lists_them() -> None:
    error = refused(generation_plan, "black-forest-labs/flux-dev", "x", ImageOptions(size="1024x768"))
    assert error.param == "size"
    assert "'16:9'" in error.message
    assert refused(generation_plan, "black-forest-labs/flux-dev", "x", ImageOptions(n=2)).param == "n"


def test_flux_payload() -> None:
    plan = generation_plan("black-forest-labs/flux-1.1-pro", "x", ImageOptions(size="1024x1536"))
    assert plan.prompt_object == {"prompt": "x", "aspect_ratio": "2:3"}


def test_leonardo_takes_size_and_n_up_to_four() -> None:
    plan = generation_plan(LEONARDO_PHOENIX, "x", ImageOptions(n=4, size="768x1024"))
    assert plan.prompt_object == {"prompt": "x", "size": "768x1024", "n": 4}
    assert generation_plan(LEONARDO_PHOENIX, "x", ImageOptions()).prompt_object["size"] == "1024x1024"
    assert refused(generation_plan, LEONARDO_PHOENIX, "x", ImageOptions(n=5)).param == "n"
    assert refused(generation_plan, LEONARDO_PHOENIX, "x", ImageOptions(size="1792x1024")).param == "size"


def test_sdxl_uses_samples_and_its_fixed_sizes() -> None:
    plan = generation_plan("stable-diffusion-xl-1024-v1-0", "x", ImageOptions(n=2, size="1344x768"))
    assert plan.prompt_object == {"prompt": "x", "samples": 2, "size": "1344x768"}
    error = refused(generation_plan, "stable-diffusion-xl-1024-v1-0", "x", ImageOptions(size="512x512"))
    assert error.param == "size"
    assert "'1152x896'" in error.message


def test_other_models_get_the_prompt_and_an_explicit_size() -> None:
    assert generation_plan("stable-image", "x", ImageOptions()).prompt_object == {"prompt": "x"}
    assert generation_plan("recraft", "x", ImageOptions(size="1024x1024")).prompt_object == {
        "prompt": "x",
        "size": "1024x1024",
    }
    assert refused(generation_plan, "recraft", "x", ImageOptions(n=2)).param == "n"
    assert refused(generation_plan, "recraft", "x", ImageOptions(style="vivid")).param == "style"


# --- variations and edits -------------------------------------------------------------------------


def test_variations_per_family() -> None:
    dalle = variation_plan("dall-e-2", ImageOptions(n=2, size="512x512"))
    assert with_inputs(dalle, "images/a.png") == {"imageUrl": "images/a.png", "n": 2, "size": "512x512"}
    midjourney = variation_plan("magic-art", ImageOptions(n=3))
    assert with_inputs(midjourney, "images/a.png")["imageUrl"] == "images/a.png"
    assert midjourney.prompt_object["n"] == 4
    assert midjourney.keep == 3
    redux = variation_plan("black-forest-labs/flux-redux-dev", ImageOptions())
    assert with_inputs(redux, "images/a.png") == {"imageUrl": "images/a.png"}
    assert (
        refused(variation_plan, "black-forest-labs/flux-redux-dev", ImageOptions(size="512x512")).param
        == "size"
    )


def test_gpt_image_edit_and_inpaint() -> None:
    plan = edit_plan("gpt-image-1", "add a hat", ImageOptions(n=2, quality="low"), masked=True)
    assert with_inputs(plan, "images/a.png", "images/m.png") == {
        "imageUrl": "images/a.png",
        "maskUrl": "images/m.png",
        "prompt": "add a hat",
        "size": "1024x1024",
        "n": 2,
        "quality": "low",
        "output_format": "png",
    }


def test_other_editors_take_image_and_prompt_only() -> None:
    sdxl = edit_plan("stable-diffusion-xl-1024-v1-0", "p", ImageOptions(n=2), masked=False)
    assert sdxl.prompt_object == {"prompt": "p", "samples": 2, "isMasked": False}
    kontext = edit_plan("black-forest-labs/flux-kontext-pro", "p", ImageOptions(), masked=False)
    assert with_inputs(kontext, "images/a.png") == {"imageUrl": "images/a.png", "prompt": "p"}
    error = refused(
        edit_plan, "black-forest-labs/flux-kontext-pro", "p", ImageOptions(size="512x512"), masked=False
    )
    assert error.param == "size"


# --- answers ------------------------------------------------------------------------------------------


def test_default_response_format_follows_openai() -> None:
    assert default_response_format("gpt-image-1") == "b64_json"
    assert default_response_format("dall-e-3") == "url"
    assert default_response_format("midjourney") == "url"


def test_images_response_matches_openai_schema() -> None:
    body = images_response(1_700_000_000, [{"b64_json": "aGk="}], {"size": "1024x1024", "quality": "low"})
    assert_matches_schema("ImagesResponse", body)
    assert_matches_schema(
        "ImagesResponse", images_response(1, [{"url": "https://asset.1min.ai/images/a.png"}], {})
    )


def test_result_keys_are_tolerant_of_shapes_upstream_has_used() -> None:
    record = {"aiRecordDetail": {"resultObject": ["images/a.png", "/images/b.png", "https://x/c.png", "", 7]}}
    assert result_keys(record) == ["images/a.png", "images/b.png", "https://x/c.png"]
    assert result_keys({"aiRecordDetail": {"resultObject": "images/a.png"}}) == ["images/a.png"]
    with pytest.raises(UpstreamError):
        result_keys({"aiRecordDetail": {"resultObject": []}})


@pytest.mark.parametrize(
    ("model", "size", "nearest"),
    [
        ("dall-e-3", "512x512", "1024x1024"),
        ("dall-e-3", "1920x1080", "1792x1024"),
        ("dall-e-3", "600x1000", "1024x1792"),
        ("dall-e-2", "2048x2048", "1024x1024"),
        ("gpt-image-1", "1200x800", "1536x1024"),
        ("stable-diffusion-xl-1024-v1-0", "512x512", "1024x1024"),
        ("stable-diffusion-xl-1024-v1-0", "1920x1080", "1344x768"),
        ("e71a1c2f-4f80-4800-934f-2c68979d8cc8", "2000x2000", "1024x1024"),  # Leonardo: shape, then area
        ("e71a1c2f-4f80-4800-934f-2c68979d8cc8", "300x300", "512x512"),
    ],
)
def test_nearest_size_keeps_the_shape_first_then_the_area(model: str, size: str, nearest: str) -> None:
    assert nearest_size(model, size) == nearest


@pytest.mark.parametrize(
    ("model", "size"),
    [
        ("dall-e-3", "1024x1024"),  # taken as it is
        ("dall-e-3", None),
        ("dall-e-3", "auto"),
        ("dall-e-3", "big"),  # not a size: the usual 400 says so
        ("gpt-image-2", "512x512"),  # takes any size within bounds
        ("black-forest-labs/flux-schnell", "512x512"),  # mapped to an aspect ratio already
    ],
)
def test_nothing_to_adjust(model: str, size: str | None) -> None:
    assert nearest_size(model, size) is None
