"""OpenAI image requests → 1min.ai image feature payloads, and image results → OpenAI `ImagesResponse`.

Each model family takes its own parameters (reference §8). OpenAI's `size`, `quality`, `style`, `n`,
`background`, `output_format` and `output_compression` are mapped here, and a value a family cannot take
is refused with a 400 naming the param and the allowed values — before anything is sent upstream.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from onemin_relay.errors import invalid_request
from onemin_relay.translate.params import unsupported_parameter, unsupported_value

GENERATOR = "IMAGE_GENERATOR"
VARIATOR = "IMAGE_VARIATOR"
EDITOR = "IMAGE_EDITOR"
INPAINTER = "IMAGE_INPAINTER"

# Values that mean "let the model decide": accepted by every family.
_AUTO = "auto"
_MAX_N = 10
_SIZE_PATTERN = re.compile(r"^(\d{1,5})x(\d{1,5})$")
_RATIO_PATTERN = re.compile(r"^(\d{1,2}):(\d{1,2})$")
_UUID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

DALL_E_2_SIZES = ("256x256", "512x512", "1024x1024")
DALL_E_3_SIZES = ("1024x1024", "1792x1024", "1024x1792")
GPT_IMAGE_SIZES = ("1024x1024", "1536x1024", "1024x1536")
LEONARDO_SIZES = ("512x512", "1024x768", "768x1024", "1024x1024")
SDXL_SIZES = (
    "1024x1024",
    "1152x896",
    "1216x832",
    "1344x768",
    "1536x640",
    "640x1536",
    "768x1344",
    "832x1216",
    "896x1152",
)
FLUX_RATIOS = ("1:1", "16:9", "9:16", "3:2", "2:3", "4:5", "5:4")
# A requested size maps to a Flux ratio when it is within this relative distance of it (1792x1024 → 16:9).
_RATIO_TOLERANCE = 0.05
_MIDJOURNEY_MAX_SIDE = 7  # aspect_width / aspect_height are small integers 1–7
_MIDJOURNEY_IMAGES = 4  # Midjourney always renders four images

GPT_IMAGE_QUALITIES = ("low", "medium", "high")
OUTPUT_FORMATS = ("png", "jpeg", "webp")
# ImagesResponse.size only has these three values in OpenAI's schema.
_RESPONSE_SIZES = frozenset(GPT_IMAGE_SIZES)


class Family(Enum):
    DALL_E_2 = "dall-e-2"
    DALL_E_3 = "dall-e-3"
    GPT_IMAGE_1 = "gpt-image-1"
    GPT_IMAGE_2 = "gpt-image-2"
    MIDJOURNEY = "midjourney"
    FLUX = "flux"
    LEONARDO = "leonardo"
    SDXL = "stable-diffusion-xl"
    OTHER = "other"


def family_of(model: str, provider: str | None = None) -> Family:
    """The payload family of a 1min.ai image model id (the catalogue's provider breaks ties)."""
    if model == "dall-e-2":
        return Family.DALL_E_2
    if model == "dall-e-3":
        return Family.DALL_E_3
    if model in ("gpt-image-1", "gpt-image-1-mini"):
        return Family.GPT_IMAGE_1
    if model.startswith("gpt-image-2"):
        return Family.GPT_IMAGE_2
    if model.startswith(("midjourney", "magic-art")):
        return Family.MIDJOURNEY
    if model.startswith("black-forest-labs/flux"):
        return Family.FLUX
    if _UUID_PATTERN.match(model) or (provider or "").lower() == "leonardoai":
        return Family.LEONARDO
    if model == "stable-diffusion-xl-1024-v1-0":
        return Family.SDXL
    return Family.OTHER


def is_gpt_image(model: str) -> bool:
    return family_of(model) in (Family.GPT_IMAGE_1, Family.GPT_IMAGE_2)


@dataclass(frozen=True)
class ImageOptions:
    """OpenAI's image parameters after type validation; None means the client did not send it."""

    n: int = 1
    size: str | None = None
    quality: str | None = None
    style: str | None = None
    background: str | None = None
    output_format: str | None = None
    output_compression: int | None = None


@dataclass(frozen=True)
class ImagePlan:
    """What to send upstream and how to shape the answer."""

    prompt_object: dict[str, Any]
    keep: int  # how many of the returned images to answer with (Midjourney renders 4 whatever `n` is)
    echo: dict[str, str]  # gpt-image fields OpenAI echoes in ImagesResponse (size, quality, …)


# --- validation helpers ---------------------------------------------------------------------------


def _pick(param: str, value: str | None, model: str, allowed: Sequence[str], default: str) -> str:
    """`value` if allowed, `default` when absent or 'auto', else a 400 listing the allowed values."""
    if value is None or value == _AUTO:
        return default
    if value not in allowed:
        raise unsupported_value(param, value, model, [*allowed, _AUTO])
    return value


def _refuse(options: ImageOptions, model: str, *params: str) -> None:
    """Refuse parameters the family has no use for, unless left unset or 'auto'."""
    for param in params:
        value = getattr(options, param)
        if value is not None and value != _AUTO:
            raise unsupported_parameter(param, model)


def _check_n(n: int, model: str, maximum: int) -> None:
    if not 1 <= n <= maximum:
        allowed = "1" if maximum == 1 else f"between 1 and {maximum}"
        raise invalid_request(
            f"Invalid value for 'n': {n}. Model `{model}` supports n {allowed}.",
            param="n",
            code="invalid_value",
        )


def parse_size(value: str) -> tuple[int, int] | None:
    """(width, height) of a `WIDTHxHEIGHT` size, or None when it is not one."""
    match = _SIZE_PATTERN.match(value)
    if not match:
        return None
    width, height = int(match.group(1)), int(match.group(2))
    return (width, height) if width > 0 and height > 0 else None


# The families that take only a fixed list of sizes (gpt-image-2 takes any within bounds; Midjourney and
# Flux already map a size to their nearest aspect ratio).
_SIZE_TABLES = {
    Family.DALL_E_2: DALL_E_2_SIZES,
    Family.DALL_E_3: DALL_E_3_SIZES,
    Family.GPT_IMAGE_1: GPT_IMAGE_SIZES,
    Family.LEONARDO: LEONARDO_SIZES,
    Family.SDXL: SDXL_SIZES,
}


def nearest_size(model: str, size: str | None, *, provider: str | None = None) -> str | None:
    """The size `model` takes nearest a `WIDTHxHEIGHT` it does not take (the closest shape first, then the
    closest area); None when there is nothing to adjust (IMAGE_SIZE_ADJUST, docs/open-webui.md)."""
    sizes = _SIZE_TABLES.get(family_of(model, provider))
    wanted = parse_size(size) if size else None
    if sizes is None or wanted is None or size in sizes:
        return None

    def distance(candidate: str) -> tuple[float, float]:
        width, height = parse_size(candidate) or wanted
        shape = abs(math.log(width / height * wanted[1] / wanted[0]))
        return round(shape, 6), abs(math.log(width * height / (wanted[0] * wanted[1])))

    return min(sizes, key=distance)


def _ratio_of(value: str) -> float | None:
    size = parse_size(value)
    if size:
        return size[0] / size[1]
    match = _RATIO_PATTERN.match(value)
    if match and int(match.group(1)) > 0 and int(match.group(2)) > 0:
        return int(match.group(1)) / int(match.group(2))
    return None


def midjourney_aspect(size: str | None, model: str) -> tuple[int, int]:
    """Midjourney's `aspect_width:aspect_height` (integers 1–7) closest to a size or `W:H` ratio."""
    if size is None or size == _AUTO:
        return 1, 1
    ratio = _ratio_of(size)
    if ratio is None:
        raise unsupported_value("size", size, model, ["WIDTHxHEIGHT", "W:H"])
    sides = range(1, _MIDJOURNEY_MAX_SIDE + 1)
    candidates = [(w, h) for w in sides for h in sides if math.gcd(w, h) == 1]
    return min(candidates, key=lambda wh: (abs(math.log(wh[0] / wh[1] / ratio)), wh[0] + wh[1]))


def flux_aspect_ratio(size: str | None, model: str) -> str:
    """The Flux aspect ratio for a size (or a `W:H` ratio) within 5 %, else a 400 listing the choices."""
    if size is None or size == _AUTO:
        return "1:1"
    if size in FLUX_RATIOS:
        return size
    ratio = _ratio_of(size)
    if ratio is not None:
        best = min(FLUX_RATIOS, key=lambda item: abs(math.log(_ratio_of(item) or 1.0) - math.log(ratio)))
        if abs((_ratio_of(best) or 1.0) / ratio - 1) <= _RATIO_TOLERANCE:
            return best
    raise unsupported_value(
        "size", size, model, ["1024x1024", "1344x768", "768x1344", "1536x1024", "1024x1536", *FLUX_RATIOS]
    )


def _gpt_image_2_size(size: str | None, model: str) -> str:
    """gpt-image-2 takes any WxH within the model's limits (reference §8.1)."""
    if size is None or size == _AUTO:
        return "1024x1024"
    parsed = parse_size(size)
    if parsed is not None:
        width, height = parsed
        if (
            width % 16 == 0
            and height % 16 == 0
            and 655_360 <= width * height <= 8_294_400
            and max(width, height) <= 3840
            and max(width, height) / min(width, height) <= 3
        ):
            return size
    raise invalid_request(
        f"Invalid value for 'size': {size!r} is not supported by model `{model}`. "
        "Use 'auto' or WIDTHxHEIGHT with both sides divisible by 16, between 655360 and 8294400 pixels, "
        "longest side at most 3840 and an aspect ratio between 1:3 and 3:1 "
        "(e.g. '1024x1024', '1536x1024', '1024x1536', '2048x1152').",
        param="size",
        code="invalid_value",
    )


# --- per-family OpenAI options → promptObject fields --------------------------------------------


def _gpt_image_fields(
    model: str, options: ImageOptions, *, family: Family
) -> tuple[dict[str, Any], dict[str, str]]:
    """Fields shared by gpt-image generation, editing and inpainting, and what OpenAI echoes back."""
    _check_n(options.n, model, _MAX_N)
    if family is Family.GPT_IMAGE_2:
        size = _gpt_image_2_size(options.size, model)
    else:
        size = _pick("size", options.size, model, GPT_IMAGE_SIZES, "1024x1024")
    quality = _pick("quality", options.quality, model, GPT_IMAGE_QUALITIES, "medium")
    output_format = _pick("output_format", options.output_format, model, OUTPUT_FORMATS, "png")
    fields: dict[str, Any] = {
        "size": size,
        "n": options.n,
        "quality": quality,
        "output_format": output_format,
    }
    echo = {"quality": quality, "output_format": output_format}
    if size in _RESPONSE_SIZES:
        echo["size"] = size
    if options.output_compression is not None:
        if output_format == "png":
            raise invalid_request(
                "The 'output_compression' parameter is only supported with output_format 'jpeg' or 'webp'.",
                param="output_compression",
                code="unsupported_parameter",
            )
        if not 0 <= options.output_compression <= 100:
            raise invalid_request(
                f"Invalid value for 'output_compression': {options.output_compression}. "
                "It must be between 0 and 100.",
                param="output_compression",
                code="invalid_value",
            )
        fields["output_compression"] = options.output_compression
    if options.background is not None and options.background != _AUTO:
        background = _pick("background", options.background, model, ("opaque", "transparent"), "opaque")
        if background == "transparent" and output_format == "jpeg":
            raise invalid_request(
                "A transparent background needs output_format 'png' or 'webp'.",
                param="background",
                code="invalid_value",
            )
        fields["background"] = background
        echo["background"] = background
    if options.style is not None:
        if model != "gpt-image-1":  # 1min.ai documents `style` for gpt-image-1 only
            raise unsupported_parameter("style", model)
        fields["style"] = _pick("style", options.style, model, ("vivid", "natural"), "vivid")
    return fields, echo


def generation_plan(
    model: str, prompt: str, options: ImageOptions, *, provider: str | None = None
) -> ImagePlan:
    """The IMAGE_GENERATOR promptObject for `model` (reference §8.1)."""
    family = family_of(model, provider)
    base: dict[str, Any] = {"prompt": prompt}
    if family is Family.DALL_E_3:
        _check_n(options.n, model, 1)
        _refuse(options, model, "background", "output_format", "output_compression")
        return ImagePlan(
            {
                **base,
                "n": 1,
                "size": _pick("size", options.size, model, DALL_E_3_SIZES, "1024x1024"),
                "quality": _pick("quality", options.quality, model, ("standard", "hd"), "standard"),
                "style": _pick("style", options.style, model, ("vivid", "natural"), "vivid"),
            },
            keep=1,
            echo={},
        )
    if family is Family.DALL_E_2:
        _check_n(options.n, model, _MAX_N)
        _pick("quality", options.quality, model, ("standard",), "standard")
        _refuse(options, model, "style", "background", "output_format", "output_compression")
        size = _pick("size", options.size, model, DALL_E_2_SIZES, "1024x1024")
        return ImagePlan({**base, "n": options.n, "size": size}, keep=options.n, echo={})
    if family in (Family.GPT_IMAGE_1, Family.GPT_IMAGE_2):
        fields, echo = _gpt_image_fields(model, options, family=family)
        return ImagePlan({**base, **fields}, keep=options.n, echo=echo)
    if family is Family.MIDJOURNEY:
        _check_n(options.n, model, _MIDJOURNEY_IMAGES)
        _refuse(options, model, "quality", "style", "background", "output_format", "output_compression")
        return ImagePlan({**base, **_midjourney_fields(options.size, model)}, keep=options.n, echo={})
    if family is Family.FLUX:
        _check_n(options.n, model, 1)
        _refuse(options, model, "quality", "style", "background", "output_format", "output_compression")
        return ImagePlan({**base, "aspect_ratio": flux_aspect_ratio(options.size, model)}, keep=1, echo={})
    if family is Family.LEONARDO:
        _check_n(options.n, model, 4)
        _refuse(options, model, "quality", "style", "background", "output_format", "output_compression")
        size = _pick("size", options.size, model, LEONARDO_SIZES, "1024x1024")
        return ImagePlan({**base, "size": size, "n": options.n}, keep=options.n, echo={})
    if family is Family.SDXL:
        _check_n(options.n, model, _MAX_N)
        _refuse(options, model, "quality", "style", "background", "output_format", "output_compression")
        size = _pick("size", options.size, model, SDXL_SIZES, "1024x1024")
        return ImagePlan({**base, "samples": options.n, "size": size}, keep=options.n, echo={})
    # Models without a documented payload: the prompt, and an explicit size as `size` (upstream decides).
    _check_n(options.n, model, 1)
    _refuse(options, model, "quality", "style", "background", "output_format", "output_compression")
    if options.size is not None and options.size != _AUTO:
        if parse_size(options.size) is None:
            raise unsupported_value("size", options.size, model, ["WIDTHxHEIGHT", _AUTO])
        base["size"] = options.size
    return ImagePlan(base, keep=1, echo={})


def _midjourney_fields(size: str | None, model: str) -> dict[str, Any]:
    aspect_width, aspect_height = midjourney_aspect(size, model)
    return {
        "mode": "fast",
        "n": _MIDJOURNEY_IMAGES,
        "isNiji6": False,
        "maintainModeration": True,
        "aspect_width": aspect_width,
        "aspect_height": aspect_height,
    }


def variation_plan(model: str, options: ImageOptions, *, provider: str | None = None) -> ImagePlan:
    """The IMAGE_VARIATOR promptObject for `model` (reference §8.2), without the input image: see
    `with_inputs`, so every value is checked before the image is uploaded."""
    family = family_of(model, provider)
    base: dict[str, Any] = {}
    if family is Family.DALL_E_2:
        _check_n(options.n, model, _MAX_N)
        size = _pick("size", options.size, model, DALL_E_2_SIZES, "1024x1024")
        return ImagePlan({**base, "n": options.n, "size": size}, keep=options.n, echo={})
    if family is Family.MIDJOURNEY:
        _check_n(options.n, model, _MIDJOURNEY_IMAGES)
        return ImagePlan({**base, **_midjourney_fields(options.size, model)}, keep=options.n, echo={})
    _check_n(options.n, model, 1)
    _refuse(options, model, "size")
    return ImagePlan(base, keep=1, echo={})


def edit_plan(
    model: str, prompt: str, options: ImageOptions, *, masked: bool, provider: str | None = None
) -> ImagePlan:
    """The IMAGE_EDITOR promptObject, or IMAGE_INPAINTER's when `masked` (reference §8.3), without the
    input images (see `with_inputs`)."""
    family = family_of(model, provider)
    base: dict[str, Any] = {"prompt": prompt}
    if family in (Family.GPT_IMAGE_1, Family.GPT_IMAGE_2):
        fields, echo = _gpt_image_fields(model, options, family=family)
        return ImagePlan({**base, **fields}, keep=options.n, echo=echo)
    _refuse(options, model, "size", "quality", "style", "background", "output_format", "output_compression")
    if family is Family.SDXL and not masked:
        _check_n(options.n, model, _MAX_N)
        return ImagePlan({**base, "samples": options.n, "isMasked": False}, keep=options.n, echo={})
    _check_n(options.n, model, 1)
    return ImagePlan(base, keep=1, echo={})


def with_inputs(plan: ImagePlan, image_path: str, mask_path: str | None = None) -> dict[str, Any]:
    """The plan's promptObject with the uploaded input image (and mask) asset paths."""
    inputs = {"imageUrl": image_path} if mask_path is None else {"imageUrl": image_path, "maskUrl": mask_path}
    return {**inputs, **plan.prompt_object}


def images_response(created: int, images: Sequence[dict[str, str]], echo: dict[str, str]) -> dict[str, Any]:
    """OpenAI's ImagesResponse: `images` items are `{"url": …}` or `{"b64_json": …}`."""
    return {"created": created, "data": list(images), **echo}


def default_response_format(model: str) -> str:
    """OpenAI answers the GPT image models with base64 and the others with URLs unless told otherwise."""
    return "b64_json" if is_gpt_image(model) else "url"
