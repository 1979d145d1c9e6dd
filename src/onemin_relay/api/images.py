"""OpenAI /v1/images routes: generations (JSON), variations (multipart), edits (multipart or JSON)."""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from onemin_relay.api.auth import caller
from onemin_relay.api.capabilities import require_capability
from onemin_relay.api.common import read_json, relay
from onemin_relay.api.downloads import download_asset
from onemin_relay.api.image_refs import ImageRef, image_assets
from onemin_relay.api.uploads import UploadForm, image_type, multipart_form, safe_filename, store_asset
from onemin_relay.errors import invalid_request, validate
from onemin_relay.fastjson import JSONResponse, dumps
from onemin_relay.translate.features import feature_request, result_keys
from onemin_relay.translate.images import (
    EDITOR,
    GENERATOR,
    INPAINTER,
    VARIATOR,
    ImageOptions,
    ImagePlan,
    default_response_format,
    edit_plan,
    generation_plan,
    images_response,
    nearest_size,
    variation_plan,
    with_inputs,
)

if TYPE_CHECKING:
    from onemin_relay.app import RelayContext

MAX_PROMPT_CHARS = 32_000
DEFAULT_EDIT_MODEL = "gpt-image-1"  # OpenAI's default, gpt-image-1.5, is not on 1min.ai
_RESPONSE_FORMATS = ("url", "b64_json")
# OpenAI allows up to 16 input images per edit; the form parser must accept them to answer clearly.
_MAX_EDIT_IMAGES = 16


class _ImageBody(BaseModel):
    """The fields CreateImageRequest and EditImageBodyJsonParam share; family-specific values are checked
    by translate/images."""

    model_config = ConfigDict(extra="ignore", strict=True)  # JSON types as OpenAI checks them

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    model: str | None = Field(None, min_length=1, max_length=200)
    n: int | None = None
    size: str | None = Field(None, max_length=32)
    quality: str | None = Field(None, max_length=32)
    background: str | None = Field(None, max_length=32)
    output_format: str | None = Field(None, max_length=32)
    output_compression: int | None = None
    response_format: Literal["url", "b64_json"] | None = None
    stream: bool | None = None
    user: str | None = None

    def options(self, *, style: str | None = None) -> ImageOptions:
        return ImageOptions(
            n=1 if self.n is None else self.n,
            size=self.size,
            quality=self.quality,
            style=style,
            background=self.background,
            output_format=self.output_format,
            output_compression=self.output_compression,
        )


class GenerationBody(_ImageBody):
    """CreateImageRequest."""

    style: str | None = Field(None, max_length=32)
    moderation: Literal["low", "auto"] | None = None


def _refuse_streaming(stream: bool | str | None) -> None:
    if stream is True or (isinstance(stream, str) and stream.strip().lower() == "true"):
        raise invalid_request(
            "Streaming image generation is not supported by 1min.ai; send stream=false.",
            param="stream",
            code="unsupported_parameter",
        )


async def create_image(request: Request) -> Response:
    api_key = caller(request).upstream_key
    context = relay(request)
    body = validate(GenerationBody, await read_json(request))
    _refuse_streaming(body.stream)
    model = body.model or "dall-e-2"
    info = await require_capability(context, model, GENERATOR, "image generation")
    options = body.options(style=body.style)
    # IMAGE_SIZE_ADJUST: a size the model does not take becomes its nearest one, said in a header.
    adjusted = (
        nearest_size(model, options.size, provider=info.provider)
        if context.settings.image_size_adjust
        else None
    )
    if adjusted is not None:
        options = replace(options, size=adjusted)
    plan = generation_plan(model, body.prompt, options, provider=info.provider)
    record = await context.upstream.feature(api_key, feature_request(GENERATOR, model, plan.prompt_object))
    response = await _answer(context, record, plan, body.response_format or default_response_format(model))
    if adjusted is not None:
        response.headers["x-onemin-size-adjusted"] = f"{body.size}->{adjusted}"
    return response


def _n(form: UploadForm) -> int:
    n = form.integer("n")
    return 1 if n is None else n


def _form_options(form: UploadForm) -> ImageOptions:
    return ImageOptions(
        n=_n(form),
        size=form.text("size"),
        quality=form.text("quality"),
        style=form.text("style"),
        background=form.text("background"),
        output_format=form.text("output_format"),
        output_compression=form.integer("output_compression"),
    )


async def create_variation(request: Request) -> Response:
    api_key = caller(request).upstream_key
    context = relay(request)
    async with multipart_form(request, max_file_bytes=context.settings.max_image_upload_bytes) as form:
        image = form.required_file("image")
        model = form.text("model") or "dall-e-2"
        response_format = form.choice("response_format", _RESPONSE_FORMATS, None)
        options = ImageOptions(n=_n(form), size=form.text("size"))
        media = await image_type(image, "image")
        info = await require_capability(context, model, VARIATOR, "image variations")
        plan = variation_plan(model, options, provider=info.provider)
        asset = await store_asset(
            context.upstream, api_key, image.file, _image_name(image, media.extension), media, "image"
        )
    payload = feature_request(VARIATOR, model, with_inputs(plan, asset.path))
    record = await context.upstream.feature(api_key, payload)
    return await _answer(context, record, plan, response_format or default_response_format(model))


async def create_edit(request: Request) -> Response:
    """Multipart (`image`, `mask` uploads) or JSON (`images`, `mask` as URL, data URL or file id)."""
    if request.headers.get("content-type", "").lower().startswith("application/json"):
        return await _json_edit(request)
    api_key = caller(request).upstream_key
    context = relay(request)
    limit = context.settings.max_image_upload_bytes
    async with multipart_form(request, max_file_bytes=limit, max_files=_MAX_EDIT_IMAGES + 1) as form:
        images = form.files("image")
        if not images:
            raise invalid_request(
                "Missing required parameter: 'image'.", param="image", code="missing_required_parameter"
            )
        _one_input_image(len(images), "image")
        mask = form.file("mask")
        prompt = form.required_text("prompt")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise invalid_request(f"'prompt' is longer than {MAX_PROMPT_CHARS} characters.", param="prompt")
        _refuse_streaming(form.text("stream"))
        model = form.text("model") or DEFAULT_EDIT_MODEL
        response_format = form.choice("response_format", _RESPONSE_FORMATS, None)
        image_media = await image_type(images[0], "image")
        mask_media = await image_type(mask, "mask") if mask is not None else None
        feature, plan = await _plan_edit(context, model, prompt, _form_options(form), masked=mask is not None)
        image_name = _image_name(images[0], image_media.extension)
        image_path = (
            await store_asset(context.upstream, api_key, images[0].file, image_name, image_media, "image")
        ).path
        mask_path = None
        if mask is not None and mask_media is not None:
            mask_name = _image_name(mask, mask_media.extension)
            mask_path = (
                await store_asset(context.upstream, api_key, mask.file, mask_name, mask_media, "mask")
            ).path
    payload = feature_request(feature, model, with_inputs(plan, image_path, mask_path))
    record = await context.upstream.feature(api_key, payload)
    return await _answer(context, record, plan, response_format or default_response_format(model))


class JsonEditBody(_ImageBody):
    """EditImageBodyJsonParam: OpenAI's JSON form of an image edit."""

    images: list[ImageRef] = Field(min_length=1, max_length=_MAX_EDIT_IMAGES)
    mask: ImageRef | None = None


async def _json_edit(request: Request) -> Response:
    api_key = caller(request).upstream_key
    context = relay(request)
    body = validate(JsonEditBody, await read_json(request))
    _refuse_streaming(body.stream)
    _one_input_image(len(body.images), "images")
    model = body.model or DEFAULT_EDIT_MODEL
    feature, plan = await _plan_edit(
        context, model, body.prompt, body.options(), masked=body.mask is not None
    )
    refs = [(body.images[0], "images[0]"), *([(body.mask, "mask")] if body.mask else [])]
    image_path, *mask = await image_assets(request, context, api_key, refs)
    mask_path = mask[0] if mask else None
    payload = feature_request(feature, model, with_inputs(plan, image_path, mask_path))
    record = await context.upstream.feature(api_key, payload)
    return await _answer(context, record, plan, body.response_format or default_response_format(model))


def _one_input_image(count: int, param: str) -> None:
    if count > 1:
        raise invalid_request(
            f"1min.ai's image editors take one input image per edit; send a single item in '{param}'.",
            param=param,
        )


async def _plan_edit(
    context: RelayContext, model: str, prompt: str, options: ImageOptions, *, masked: bool
) -> tuple[str, ImagePlan]:
    """The feature (editor, or inpainter with a mask) and its payload, checked before any upload."""
    feature = INPAINTER if masked else EDITOR
    capability = "image edits with a mask (inpainting)" if masked else "image edits"
    info = await require_capability(context, model, feature, capability)
    return feature, edit_plan(model, prompt, options, masked=masked, provider=info.provider)


def _image_name(upload: UploadFile, extension: str) -> str:
    return safe_filename(upload.filename or "image", extension=extension)


async def _answer(
    context: RelayContext, record: dict[str, Any], plan: ImagePlan, response_format: str
) -> Response:
    """ImagesResponse with public URLs, or with the images fetched and base64-encoded.

    The fetched images of one answer share one budget, UPSTREAM_MAX_DOWNLOAD_BYTES (each may take its
    share), and are encoded and rendered in worker threads: a many-megabyte JSON body is built off the loop.
    """
    keys = result_keys(record)[: plan.keep]
    if response_format == "url":
        images = [{"url": context.upstream.asset_url(key)} for key in keys]
        return JSONResponse(images_response(int(time.time()), images, plan.echo))
    share = context.settings.upstream_max_download_bytes // len(keys)
    encoded = await asyncio.gather(*(_base64_image(context, key, share) for key in keys))
    body = images_response(int(time.time()), [{"b64_json": data} for data in encoded], plan.echo)
    return Response(await asyncio.to_thread(dumps, body), media_type="application/json")


async def _base64_image(context: RelayContext, key: str, max_bytes: int) -> str:
    data = await download_asset(context.upstream, key, max_bytes=max_bytes)
    return (await asyncio.to_thread(base64.b64encode, data)).decode("ascii")


routes: list[BaseRoute] = [
    Route("/v1/images/generations", create_image, methods=["POST"]),
    Route("/v1/images/variations", create_variation, methods=["POST"]),
    Route("/v1/images/edits", create_edit, methods=["POST"]),
]
