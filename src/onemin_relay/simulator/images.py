"""Image features: IMAGE_GENERATOR, IMAGE_VARIATOR, IMAGE_EDITOR, IMAGE_INPAINTER (reference §8).

Each model family checks its own parameters the way its provider does; a rejected value becomes
400 `EXTERNAL_API_RESPONSE_WITH_ERROR` with the provider's text in `details`.

The size tables repeat those in `translate/images.py` on purpose: the simulator stands in for upstream,
written from the reference on its own, so the relay's validation is tested against it, not against itself.
"""

from __future__ import annotations

import asyncio
import json
import re
import struct
from dataclasses import dataclass
from typing import Any

from onemin_relay.simulator.assets import StoredFile
from onemin_relay.simulator.errors import SimError, shape_b
from onemin_relay.simulator.gateway import Call
from onemin_relay.simulator.media import png

MIDJOURNEY = re.compile(r"^(midjourney|magic-art)(_\d+_\d+)?$")
LEONARDO = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SIZE = re.compile(r"^(\d{2,5})x(\d{2,5})$")
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
GPT_IMAGE_SIZES = ("1024x1024", "1024x1536", "1536x1024")
DALLE3_SIZES = ("1024x1024", "1024x1792", "1792x1024")
DALLE2_SIZES = ("256x256", "512x512", "1024x1024")
LEONARDO_SIZES = ("512x512", "1024x768", "768x1024", "1024x1024")
FLUX_RATIOS = ("1:1", "16:9", "9:16", "3:2", "2:3", "4:5", "5:4", "custom")


def provider_error(name: str, message: str) -> SimError:
    details = json.dumps({"name": name, "message": message})
    return shape_b(400, "EXTERNAL_API_RESPONSE_WITH_ERROR", "The AI provider rejected the request", details)


def validation_error(field: str, message: str) -> SimError:
    details = [{"field": field, "message": message}]
    return shape_b(400, "PROMPT_OBJECT_VALIDATION_FAILED", "Invalid prompt object", details)


def required_text(prompt_object: dict[str, Any], field: str) -> str:
    value = prompt_object.get(field)
    if not isinstance(value, str) or not value.strip():
        raise validation_error(field, f"{field} must be a non-empty string")
    return value


def integer(prompt_object: dict[str, Any], field: str, default: int, low: int, high: int) -> int:
    value = prompt_object.get(field, default)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise provider_error(f"invalid_{field}", f"{field} must be an integer between {low} and {high}")
    return value


def choice(prompt_object: dict[str, Any], field: str, default: str | None, allowed: tuple[str, ...]) -> str:
    value = prompt_object.get(field, default)
    if value not in allowed:
        raise provider_error(
            f"invalid_{field}", f"{field} must be one of {', '.join(allowed)}, but we received {value}"
        )
    return str(value)


def dimensions(size: str) -> tuple[int, int]:
    match = SIZE.match(size)
    return (int(match.group(1)), int(match.group(2))) if match else (1024, 1024)


def from_ratio(width_part: float, height_part: float, long_side: int = 1024) -> tuple[int, int]:
    if width_part >= height_part:
        return long_side, max(16, round(long_side * height_part / width_part))
    return max(16, round(long_side * width_part / height_part)), long_side


def png_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    return None


@dataclass(frozen=True)
class Plan:
    """How many images of which size a call produces."""

    count: int
    width: int
    height: int


def midjourney_plan(prompt_object: dict[str, Any]) -> Plan:
    choice(prompt_object, "mode", "fast", ("fast", "relax"))
    width_part = integer(prompt_object, "aspect_width", 1, 1, 7)
    height_part = integer(prompt_object, "aspect_height", 1, 1, 7)
    return Plan(4, *from_ratio(width_part, height_part))  # Midjourney always renders a grid of four


def gpt_image_2_plan(prompt_object: dict[str, Any]) -> Plan:
    choice(prompt_object, "quality", None, ("low", "medium", "high"))
    size = prompt_object.get("size")
    match = SIZE.match(size) if isinstance(size, str) else None
    if match is None:
        raise provider_error("invalid_size", "size is required, as WIDTHxHEIGHT")
    width, height = int(match.group(1)), int(match.group(2))
    if (
        width % 16
        or height % 16
        or not 655_360 <= width * height <= 8_294_400
        or max(width, height) > 3840
        or max(width, height) > 3 * min(width, height)
    ):
        raise provider_error("invalid_size", f"size {size} is not supported for gpt-image-2")
    return Plan(integer(prompt_object, "n", 1, 1, 10), width, height)


def gpt_image_plan(prompt_object: dict[str, Any], *, editing: bool = False) -> Plan:
    """§8.1 (and §8.3 for edits, whose `background` defaults to `auto`): no other `auto`."""
    size = choice(prompt_object, "size", "1024x1024", GPT_IMAGE_SIZES)
    choice(prompt_object, "quality", "medium", ("low", "medium", "high"))
    choice(prompt_object, "output_format", "png", ("png", "jpeg", "webp"))
    if editing:
        choice(prompt_object, "background", "auto", ("opaque", "transparent", "auto"))
    else:
        choice(prompt_object, "background", "opaque", ("opaque", "transparent"))
    return Plan(integer(prompt_object, "n", 1, 1, 10), *dimensions(size))


def flux_plan(model_id: str, prompt_object: dict[str, Any]) -> Plan:
    default_ratio = "custom" if model_id == "black-forest-labs/flux-pro" else "1:1"
    ratio = choice(prompt_object, "aspect_ratio", default_ratio, FLUX_RATIOS)
    count = integer(prompt_object, "num_outputs", 1, 1, 4)
    if ratio == "custom":
        width = integer(prompt_object, "width", 1024, 256, 1440)
        height = integer(prompt_object, "height", 1024, 256, 1440)
        if width % 32 or height % 32:
            raise provider_error("invalid_dimensions", "width and height must be multiples of 32")
        return Plan(count, width, height)
    width_part, height_part = (int(part) for part in ratio.split(":"))
    return Plan(count, *from_ratio(width_part, height_part))


def sdxl_plan(prompt_object: dict[str, Any], count_field: str = "samples") -> Plan:
    size = prompt_object.get("size", "1024x1024")
    if size not in SDXL_SIZES:
        raise provider_error(
            "invalid_height",
            "for stable-diffusion-xl-1024-v0-9 and stable-diffusion-xl-1024-v1-0 the allowed dimensions are "
            f"{', '.join(SDXL_SIZES)}, but we received {size}",
        )
    return Plan(integer(prompt_object, count_field, 1, 1, 10), *dimensions(str(size)))


def generator_plan(model_id: str, prompt_object: dict[str, Any]) -> Plan:
    if MIDJOURNEY.match(model_id):
        return midjourney_plan(prompt_object)
    if model_id == "dall-e-3":
        size = choice(prompt_object, "size", "1024x1024", DALLE3_SIZES)
        choice(prompt_object, "quality", "standard", ("standard", "hd"))
        choice(prompt_object, "style", "vivid", ("vivid", "natural"))
        return Plan(integer(prompt_object, "n", 1, 1, 1), *dimensions(size))
    if model_id == "dall-e-2":
        size = choice(prompt_object, "size", "1024x1024", DALLE2_SIZES)
        return Plan(integer(prompt_object, "n", 1, 1, 10), *dimensions(size))
    if model_id in ("gpt-image-1", "gpt-image-1-mini"):
        return gpt_image_plan(prompt_object)
    if model_id == "gpt-image-2":
        return gpt_image_2_plan(prompt_object)
    if model_id.startswith("black-forest-labs/"):
        return flux_plan(model_id, prompt_object)
    if LEONARDO.match(model_id):
        if "size" not in prompt_object or "n" not in prompt_object:
            raise provider_error("missing_parameter", "size and n are required for Leonardo models")
        size = choice(prompt_object, "size", None, LEONARDO_SIZES)
        return Plan(integer(prompt_object, "n", 1, 1, 4), *dimensions(size))
    if model_id == "stable-diffusion-xl-1024-v1-0":
        return sdxl_plan(prompt_object)
    requested = prompt_object.get("size")
    return Plan(
        integer(prompt_object, "n", 1, 1, 4), *dimensions(requested if isinstance(requested, str) else "")
    )


def source_image(call: Call, prompt_object: dict[str, Any], field: str) -> StoredFile:
    """The stored image an editing feature works on (`imageUrl`, `maskUrl`): an asset key or URL."""
    reference = prompt_object.get(field)
    if not isinstance(reference, str) or not reference:
        raise validation_error(field, f"{field} must be an asset key or URL")
    stored = call.state.assets.resolve(reference)
    if stored is None or not stored.key.startswith("images/"):
        raise provider_error(
            "invalid_image_url", f"{field} does not point to an uploaded image: {reference[:200]}"
        )
    return stored


async def render(call: Call, seed: str, plan: Plan) -> list[str]:
    """Store `plan.count` PNGs and return their keys (pixels are drawn off the event loop)."""
    keys = []
    for index in range(plan.count):
        data = await asyncio.to_thread(png, f"{seed}|{index}", plan.width, plan.height)
        key = call.state.assets.generated_key("images", "png")
        call.state.assets.put(key, data, "image/png")
        keys.append(key)
    return keys


async def generate(call: Call, model: dict[str, Any], prompt_object: dict[str, Any]) -> list[str]:
    prompt = required_text(prompt_object, "prompt")
    plan = generator_plan(model["modelId"], prompt_object)
    return await render(call, f"{model['modelId']}|{prompt}", plan)


async def variate(call: Call, model: dict[str, Any], prompt_object: dict[str, Any]) -> list[str]:
    source = source_image(call, prompt_object, "imageUrl")
    model_id = model["modelId"]
    size = png_size(source.data) or (1024, 1024)
    if MIDJOURNEY.match(model_id):
        plan = midjourney_plan(prompt_object)
    elif model_id == "dall-e-2":
        chosen = choice(prompt_object, "size", "1024x1024", DALLE2_SIZES)
        plan = Plan(integer(prompt_object, "n", 1, 1, 10), *dimensions(chosen))
    else:
        plan = Plan(integer(prompt_object, "n", 1, 1, 4), *size)
    return await render(call, f"{model_id}|variation|{source.key}", plan)


async def edit(call: Call, model: dict[str, Any], prompt_object: dict[str, Any]) -> list[str]:
    source = source_image(call, prompt_object, "imageUrl")
    prompt = required_text(prompt_object, "prompt")
    return await render(
        call,
        f"{model['modelId']}|edit|{source.key}|{prompt}",
        _edit_plan(model["modelId"], prompt_object, source),
    )


async def inpaint(call: Call, model: dict[str, Any], prompt_object: dict[str, Any]) -> list[str]:
    source = source_image(call, prompt_object, "imageUrl")
    mask = source_image(call, prompt_object, "maskUrl")
    prompt = required_text(prompt_object, "prompt")
    seed = f"{model['modelId']}|inpaint|{source.key}|{mask.key}|{prompt}"
    return await render(call, seed, _edit_plan(model["modelId"], prompt_object, source))


def _edit_plan(model_id: str, prompt_object: dict[str, Any], source: StoredFile) -> Plan:
    if model_id in ("gpt-image-1", "gpt-image-1-mini"):
        return gpt_image_plan(prompt_object, editing=True)
    if model_id == "gpt-image-2":
        return gpt_image_2_plan(prompt_object)
    count = integer(prompt_object, "samples" if model_id.startswith("stable-diffusion") else "n", 1, 1, 10)
    return Plan(count, *(png_size(source.data) or (1024, 1024)))
