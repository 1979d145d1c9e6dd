"""Images and files in chat messages → 1min.ai assets → `attachments.images` / `attachments.files`.

Everything is checked before anything is uploaded (types, sizes, file ids, the model's image modality), so
a bad request costs no upload. Then the parts are uploaded concurrently, in conversation order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeVar

import anyio
from starlette.requests import Request

from onemin_relay.api.files import find_file
from onemin_relay.api.image_refs import upload_image_url
from onemin_relay.api.uploads import MediaType, safe_filename, store_asset
from onemin_relay.errors import invalid_request, too_large
from onemin_relay.state.base import FileRecord
from onemin_relay.translate.chat import MediaPart
from onemin_relay.translate.chat_wire import FilePart, ImagePart
from onemin_relay.translate.media import (
    DOCUMENT_TYPES,
    IMAGE_EXTENSIONS,
    InvalidMedia,
    decode_base64,
    decode_data_url,
    decoded_size,
    extension_of,
    is_data_url,
)

if TYPE_CHECKING:
    from onemin_relay.app import RelayContext
    from onemin_relay.upstream.catalogue import ModelInfo

T = TypeVar("T")

# Base64 above this size is decoded on a worker thread, so the event loop never stalls on it.
_THREAD_DECODE_CHARS = 256 * 1024


@dataclass
class Attachments:
    images: list[str] = field(default_factory=list)  # asset paths
    files: list[str] = field(default_factory=list)  # asset uuids
    file_names: dict[str, str] = field(default_factory=dict)  # file_id → filename, for the transcript


@dataclass(frozen=True)
class _Planned:
    """One media part, checked and ready to upload (or already stored)."""

    target: Literal["images", "files"]
    param: str
    number: int
    url: str = ""  # image_url: a data: or http(s) URL
    data: str = ""  # file_data: base64, or a data: URL
    filename: str = ""
    stored: FileRecord | None = None


async def resolve_attachments(
    request: Request, context: RelayContext, api_key: str, model: ModelInfo, parts: Sequence[MediaPart]
) -> Attachments:
    planned = [await _plan(request, part) for part in parts]
    images = [item for item in planned if item.target == "images"]
    if images and not model.accepts_images:
        modalities = ", ".join(sorted(model.input_modalities)) or "TEXT"
        raise invalid_request(
            f"Model `{model.id}` does not accept image input (its 1min.ai input modalities: {modalities}). "
            "Use a vision model (GET /v1/models) or remove the image.",
            param=images[0].param,
            code="image_input_not_supported",
        )
    refs = await all_or_nothing([_materialise(context, api_key, item) for item in planned])
    attachments = Attachments()
    for item, ref in zip(planned, refs, strict=True):
        getattr(attachments, item.target).append(ref)
        if item.stored is not None:
            attachments.file_names[item.stored.id] = item.stored.filename
    return attachments


async def all_or_nothing(awaitables: Sequence[Awaitable[T]]) -> list[T]:
    """Run concurrently; on the first failure cancel the rest and raise that failure itself."""

    async def wrap(awaitable: Awaitable[T]) -> T:
        return await awaitable

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(wrap(awaitable)) for awaitable in awaitables]
    except BaseExceptionGroup as failures:
        raise failures.exceptions[0] from None
    return [task.result() for task in tasks]


async def _plan(request: Request, media: MediaPart) -> _Planned:
    part = media.part
    if isinstance(part, ImagePart):
        url = part.image_url.url
        param = f"{media.param}.image_url.url"
        if not (is_data_url(url) or url.lower().startswith(("http://", "https://"))):
            raise invalid_request("An image_url must be an http(s) URL or a base64 data: URL.", param=param)
        return _Planned("images", param, media.number, url=url)
    return await _plan_file(request, media, part)


async def _plan_file(request: Request, media: MediaPart, part: FilePart) -> _Planned:
    ref = part.file
    param = f"{media.param}.file"
    if ref.file_id:
        record = await find_file(request, ref.file_id, param=f"{param}.file_id")
        target: Literal["images", "files"] = "images" if record.mime_type.startswith("image/") else "files"
        return _Planned(target, f"{param}.file_id", media.number, stored=record)
    if not ref.file_data:
        raise invalid_request(
            "A file part needs either 'file_id' or 'file_data' with 'filename'.", param=param
        )
    if not ref.filename:
        raise invalid_request(
            "A file part with 'file_data' needs a 'filename' (its extension says the type).",
            param=f"{param}.filename",
        )
    extension = extension_of(ref.filename)
    if extension in IMAGE_EXTENSIONS:
        return _Planned("images", f"{param}.file_data", media.number, url=_as_data_url(ref.file_data))
    if extension not in DOCUMENT_TYPES:
        shown = ", ".join(sorted(DOCUMENT_TYPES))
        raise invalid_request(
            f"Unsupported file type '{extension or ref.filename}': 1min.ai chat reads {shown} documents "
            "and PNG, JPEG, GIF or WebP images.",
            param=f"{param}.filename",
            code="unsupported_file",
        )
    return _Planned("files", f"{param}.file_data", media.number, data=ref.file_data, filename=ref.filename)


def _as_data_url(data: str) -> str:
    # The declared type does not matter: the image's type is read from its bytes.
    return data if is_data_url(data) else f"data:application/octet-stream;base64,{data}"


async def _materialise(context: RelayContext, api_key: str, item: _Planned) -> str:
    """The value for `attachments.*`: an asset path (images) or an asset uuid (files)."""
    if item.stored is not None:
        return item.stored.asset_path if item.target == "images" else item.stored.asset_uuid
    settings = context.settings
    if item.target == "files":
        content = await _decode(
            item.data, item.param, settings.max_file_upload_bytes, data_url=is_data_url(item.data)
        )
        extension = extension_of(item.filename)
        media = MediaType(extension, DOCUMENT_TYPES[extension])
        name = safe_filename(item.filename, extension=extension)
        return (await store_asset(context.upstream, api_key, content, name, media, item.param)).uuid
    return await upload_image_url(context, api_key, item.url, item.param, f"image-{item.number}")


async def _decode(data: str, param: str, limit: int, *, data_url: bool) -> bytes:
    if decoded_size(data) > limit + 4:
        raise too_large(f"The inline data at '{param}' is larger than {limit} bytes.", param=param)
    decode = _data_url_bytes if data_url else decode_base64
    try:
        if len(data) > _THREAD_DECODE_CHARS:
            content = await anyio.to_thread.run_sync(decode, data)
        else:
            content = decode(data)
    except InvalidMedia as exc:
        raise invalid_request(
            f"Invalid inline data at '{param}': {exc}.", param=param, code="invalid_base64"
        ) from None
    if len(content) > limit:
        raise too_large(f"The inline data at '{param}' is larger than {limit} bytes.", param=param)
    return content


def _data_url_bytes(url: str) -> bytes:
    return decode_data_url(url).content
