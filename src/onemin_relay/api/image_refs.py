"""Images referenced by URL, data URL or file id (JSON image edits) → 1min.ai asset paths."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.requests import Request

from onemin_relay.api.files import find_file
from onemin_relay.api.uploads import IMAGE_TYPES, MediaType, image_kind, store_asset
from onemin_relay.errors import invalid_request, too_large
from onemin_relay.fetch import FetchError, FetchPolicy, fetch
from onemin_relay.translate.media import InvalidMedia, decode_data_url, decoded_size, is_data_url

if TYPE_CHECKING:
    from onemin_relay.app import RelayContext

_MAX_URL_CHARS = 28 * 1024 * 1024  # a 20 MiB image as base64, with room for the data: prefix


class ImageRef(BaseModel):
    """OpenAI's ImageRefParam: exactly one of `image_url` (http(s) or base64 data URL) and `file_id`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    image_url: str | None = Field(None, min_length=1, max_length=_MAX_URL_CHARS)
    file_id: str | None = Field(None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _exactly_one(self) -> ImageRef:
        if (self.image_url is None) == (self.file_id is None):
            raise ValueError("give exactly one of 'image_url' and 'file_id'")
        return self


async def image_assets(
    request: Request, context: RelayContext, api_key: str, refs: Sequence[tuple[ImageRef, str]]
) -> list[str]:
    """The asset paths of the referenced images (`(ref, param)` pairs), in order.

    A stored file of the caller is used as it is; any other image is uploaded to 1min.ai, but only once
    every reference has been checked and loaded: a bad mask leaves no orphaned upload of the image.
    """
    loaded = [await _load(request, context, ref, param) for ref, param in refs]
    return [item if isinstance(item, str) else await _upload(context, api_key, item) for item in loaded]


async def _load(request: Request, context: RelayContext, ref: ImageRef, param: str) -> str | _Image:
    """A stored image file's asset path, or the checked image behind a URL."""
    if ref.file_id is not None:
        record = await find_file(request, ref.file_id, param=f"{param}.file_id")
        if not record.mime_type.startswith("image/"):
            raise invalid_request(f"File {record.id} is not an image.", param=f"{param}.file_id")
        return record.asset_path
    assert ref.image_url is not None
    name = param.replace("[", "-").replace("]", "").replace(".", "-")
    return await _checked_image(context, ref.image_url, f"{param}.image_url", name)


async def upload_image_url(context: RelayContext, api_key: str, url: str, param: str, name: str) -> str:
    """Fetch (guarded) or decode an image URL, check it is an image, upload it; return the asset path.

    `name` is the uploaded file's stem: its extension comes from the image's real type.
    """
    return await _upload(context, api_key, await _checked_image(context, url, param, name))


@dataclass(frozen=True)
class _Image:
    content: bytes
    media: MediaType
    param: str  # the field it came from, named in errors
    name: str  # the uploaded file's stem


async def _checked_image(context: RelayContext, url: str, param: str, name: str) -> _Image:
    content = await _image_bytes(context, url, param)
    kind = image_kind(content[:64])
    if kind is None:
        raise invalid_request(
            "The image is not a PNG, JPEG, WebP or GIF image.", param=param, code="invalid_image_format"
        )
    return _Image(content, IMAGE_TYPES[kind], param, name)


async def _upload(context: RelayContext, api_key: str, image: _Image) -> str:
    filename = f"{image.name}.{image.media.extension}"
    asset = await store_asset(context.upstream, api_key, image.content, filename, image.media, image.param)
    return asset.path


async def _image_bytes(context: RelayContext, url: str, param: str) -> bytes:
    limit = context.settings.max_image_upload_bytes
    if is_data_url(url):
        if decoded_size(url.partition(",")[2]) > limit + 4:
            raise too_large(f"The image at '{param}' is larger than {limit} bytes.", param=param)
        try:
            content = (await asyncio.to_thread(decode_data_url, url)).content
        except InvalidMedia as exc:
            raise invalid_request(
                f"Invalid data URL at '{param}': {exc}.", param=param, code="invalid_base64"
            ) from None
    elif url.lower().startswith(("http://", "https://")):
        settings = context.settings
        policy = FetchPolicy(
            max_bytes=min(limit, settings.fetch_max_bytes),
            timeout=settings.fetch_timeout,
            allow_private=settings.fetch_allow_private,
        )
        try:
            content = (await fetch(url, policy)).content
        except FetchError as exc:
            raise invalid_request(
                f"The image URL at '{param}' was not fetched: {exc}.", param=param
            ) from None
    else:
        raise invalid_request("An image_url must be an http(s) URL or a base64 data: URL.", param=param)
    if len(content) > limit:
        raise too_large(f"The image at '{param}' is larger than {limit} bytes.", param=param)
    return content
