"""Multipart uploads for images, audio and files: bounded while streaming, always cleaned up.

The body is parsed as it arrives (Starlette's parser spools each file to a SpooledTemporaryFile: memory up
to 1 MB, then an anonymous temporary file). A declared Content-Length over the cap is refused before
anything is read, the bytes are counted as they arrive, and a file part is refused as soon as it passes its
own limit; the form (and so every spooled file) is closed when the request is done, whatever happened.
"""

from __future__ import annotations

import math
import mimetypes
import re
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import IO

from starlette.datastructures import FormData, Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request

from onemin_relay.errors import OpenAIError, invalid_request, too_large
from onemin_relay.translate.media import extension_of
from onemin_relay.upstream.client import Asset, OneMinClient
from onemin_relay.upstream.errors import UpstreamError

# Room for the text fields and multipart framing around the files themselves.
# A form field's number as JSON writes one: Python's own parsing would also take `1_000`, `٣` or `inf`.
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_FORM_OVERHEAD = 256 * 1024
_MAX_FIELD_BYTES = 192 * 1024  # a 32,000-character prompt in UTF-8, with room to spare
_MAX_FIELDS = 64
_SNIFF_BYTES = 64
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_SAFE_EXTENSION = re.compile(r"[a-z0-9]{1,16}")


@dataclass(frozen=True)
class MediaType:
    extension: str  # without the dot
    mime_type: str


IMAGE_TYPES = {
    "png": MediaType("png", "image/png"),
    "jpeg": MediaType("jpg", "image/jpeg"),
    "webp": MediaType("webp", "image/webp"),
    "gif": MediaType("gif", "image/gif"),
}
# OpenAI's accepted audio formats, as the extension 1min.ai's Asset API takes for each (reference §6.1).
AUDIO_EXTENSIONS = {
    "flac": MediaType("flac", "audio/flac"),
    "mp3": MediaType("mp3", "audio/mpeg"),
    "mpeg": MediaType("mp3", "audio/mpeg"),
    "mpga": MediaType("mp3", "audio/mpeg"),
    "mp4": MediaType("mp4", "audio/mp4"),
    "m4a": MediaType("m4a", "audio/mp4"),
    "ogg": MediaType("ogg", "audio/ogg"),
    "oga": MediaType("ogg", "audio/ogg"),
    "wav": MediaType("wav", "audio/wav"),
    "webm": MediaType("webm", "audio/webm"),
}


class UploadForm:
    """A parsed multipart form with typed accessors that answer 400s naming the field."""

    def __init__(self, form: FormData) -> None:
        self.form = form

    def text(self, name: str) -> str | None:
        """A text field; None when absent or empty."""
        value = self.form.get(name)
        if value is not None and not isinstance(value, str):
            raise invalid_request(f"Invalid type for '{name}': expected a string, got a file.", param=name)
        return value or None

    def required_text(self, name: str) -> str:
        value = self.text(name)
        if value is None or not value.strip():
            raise _missing(name)
        return value

    def integer(self, name: str) -> int | None:
        value = self.text(name)
        if value is None:
            return None
        if not _INTEGER.fullmatch(value.strip()) or len(value) > 100:
            raise invalid_request(
                f"Invalid type for '{name}': expected an integer, got {value[:40]!r}.",
                param=name,
                code="invalid_type",
            )
        return int(value.strip())

    def number(self, name: str) -> float | None:
        value = self.text(name)
        if value is None:
            return None
        number = float(value.strip()) if _NUMBER.fullmatch(value.strip()) else math.nan
        if not math.isfinite(number):
            raise invalid_request(
                f"Invalid type for '{name}': expected a number, got {value[:40]!r}.",
                param=name,
                code="invalid_type",
            )
        return number

    def choice(self, name: str, allowed: tuple[str, ...], default: str | None) -> str | None:
        value = self.text(name)
        if value is None:
            return default
        if value not in allowed:
            shown = ", ".join(f"'{item}'" for item in allowed)
            raise invalid_request(
                f"Invalid value for '{name}': {value[:40]!r}. Supported values are: {shown}.",
                param=name,
                code="invalid_value",
            )
        return value

    def texts(self, name: str) -> list[str]:
        """Every value of a repeated field, sent as `name[]` (the SDKs) or `name`."""
        values = [*self.form.getlist(f"{name}[]"), *self.form.getlist(name)]
        if any(not isinstance(value, str) for value in values):
            raise invalid_request(f"Invalid type for '{name}': expected strings, got a file.", param=name)
        return [value for value in values if isinstance(value, str)]

    def files(self, name: str) -> list[UploadFile]:
        """Every file sent as `name` or `name[]`; a text value there is a 400."""
        values = [*self.form.getlist(name), *self.form.getlist(f"{name}[]")]
        if any(not isinstance(value, UploadFile) for value in values):
            raise invalid_request(
                f"Invalid type for '{name}': expected a file upload (multipart part with a filename).",
                param=name,
            )
        return [value for value in values if isinstance(value, UploadFile)]

    def file(self, name: str) -> UploadFile | None:
        """The one file sent as `name`, or None."""
        files = self.files(name)
        if len(files) > 1:
            raise invalid_request(f"Only one file may be sent as '{name}'.", param=name)
        return files[0] if files else None

    def required_file(self, name: str) -> UploadFile:
        """The one file sent as `name`; absent or empty is a 400 (nothing upstream could use)."""
        upload = self.file(name)
        if upload is None:
            raise _missing(name)
        if not upload.size:
            raise invalid_request(
                f"Invalid file for '{name}': the file is empty.", param=name, code="empty_file"
            )
        return upload


def _missing(name: str) -> OpenAIError:
    return invalid_request(
        f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter"
    )


async def _capped(stream: AsyncIterator[bytes], cap: int, limit_text: str) -> AsyncGenerator[bytes, None]:
    received = 0
    async for chunk in stream:
        received += len(chunk)
        if received > cap:
            raise too_large(limit_text)
        yield chunk


@asynccontextmanager
async def multipart_form(
    request: Request, *, max_file_bytes: int, max_files: int = 1
) -> AsyncIterator[UploadForm]:
    """Parse a multipart/form-data body (files up to `max_file_bytes` each) and close it afterwards."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise invalid_request(
            "This endpoint expects a multipart/form-data body "
            "(Content-Type: multipart/form-data; boundary=…)."
        )
    limit_text = f"The upload exceeds the {max_file_bytes} byte limit for this endpoint."
    cap = max_file_bytes * max_files + _FORM_OVERHEAD
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > cap:
        raise too_large(limit_text)
    parser = _WholePartsParser(
        request.headers,
        _capped(request.stream(), cap, limit_text),
        max_file_bytes=max_file_bytes,
        limit_text=limit_text,
        max_files=max_files,
        max_fields=_MAX_FIELDS,
        max_part_size=_MAX_FIELD_BYTES,
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise invalid_request(f"The multipart body could not be parsed: {exc.message}") from None
    except ClientDisconnect:
        raise invalid_request("The client closed the connection before sending the whole body.") from None
    try:
        yield UploadForm(form)
    finally:
        await form.close()


class _WholePartsParser(MultiPartParser):
    """Starlette's parser, counting each file part as it arrives and refusing a body that ends inside a part.

    A file part is refused (413 naming its field) as soon as it passes `max_file_bytes`, not after the whole
    body has been spooled. Starlette leaves a part the body ended inside out of the form but keeps its
    spooled file open; here it is closed and the request refused, instead of being served as if the part
    had never been sent.
    """

    def __init__(
        self,
        headers: Headers,
        stream: AsyncGenerator[bytes, None],
        *,
        max_file_bytes: int,
        limit_text: str,
        max_files: int,
        max_fields: int,
        max_part_size: int,
    ) -> None:
        super().__init__(
            headers, stream, max_files=max_files, max_fields=max_fields, max_part_size=max_part_size
        )
        self._max_file_bytes = max_file_bytes
        self._limit_text = limit_text
        self._part_bytes = 0

    def on_part_begin(self) -> None:
        super().on_part_begin()
        self._part_bytes = 0

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current_part.file is not None:
            self._part_bytes += end - start
            if self._part_bytes > self._max_file_bytes:
                raise too_large(self._limit_text, param=self._current_part.field_name.removesuffix("[]"))
        super().on_part_data(data, start, end)

    async def parse(self) -> FormData:
        form = await super().parse()
        kept = {id(value.file) for _, value in form.multi_items() if isinstance(value, UploadFile)}
        unfinished = [file for file in self._files_to_close_on_error if id(file) not in kept]
        for file in unfinished:
            file.close()
        if unfinished:
            await form.close()
            raise MultiPartException("the body ended in the middle of a file part")
        return form


async def _head(upload: UploadFile) -> bytes:
    head = await upload.read(_SNIFF_BYTES)
    await upload.seek(0)
    return head


def image_kind(head: bytes) -> str | None:
    """png, jpeg, webp or gif from a file's first bytes; None for anything else."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    return None


async def image_type(upload: UploadFile, param: str) -> MediaType:
    """The image's real type, read from its first bytes; anything but PNG/JPEG/WebP/GIF is a 400."""
    kind = image_kind(await _head(upload))
    if kind is None:
        raise invalid_request(
            f"Invalid file for '{param}': expected a PNG, JPEG, WebP or GIF image.",
            param=param,
            code="invalid_image_format",
        )
    return IMAGE_TYPES[kind]


def _audio_kind(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"
    if head[4:8] == b"ftyp":
        return "m4a"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    return None


async def audio_type(upload: UploadFile, param: str) -> MediaType:
    """The audio's type from its extension when OpenAI accepts it, else from its first bytes; else a 400."""
    extension = _extension(upload.filename)
    kind = extension if extension in AUDIO_EXTENSIONS else _audio_kind(await _head(upload))
    if kind is None:
        shown = ", ".join(sorted(AUDIO_EXTENSIONS))
        raise invalid_request(
            f"Invalid file format for '{param}'. Supported formats: {shown}.",
            param=param,
            code="invalid_value",
        )
    return AUDIO_EXTENSIONS[kind]


def _extension(filename: str | None) -> str:
    """The lower-case extension of a client-given name; '' when it has none that could name a type."""
    extension = extension_of(filename or "")
    return extension if _SAFE_EXTENSION.fullmatch(extension) else ""


def safe_filename(filename: str, *, extension: str) -> str:
    """A name for the Asset API: the last path segment of a client-given name in safe characters, ending in
    `extension` (the type the relay settled on). The stem is tamed on its own: `отчёт.pdf` → `upload.pdf`."""
    base = PureWindowsPath(PurePosixPath(filename).name).name
    own = _extension(base)
    stem = base[: -len(own) - 1] if own else base
    return f"{_SAFE_NAME.sub('_', stem).strip('._')[:100] or 'upload'}.{extension}"


def file_type(upload: UploadFile) -> MediaType:
    """A general file's extension and MIME type; 1min.ai needs a real extension to accept it."""
    extension = _extension(upload.filename)
    if not extension:
        raise invalid_request(
            "Invalid file for 'file': the filename needs an extension that names its type (e.g. report.pdf).",
            param="file",
            code="invalid_value",
        )
    declared = (upload.content_type or "").split(";", 1)[0].strip().lower()
    guessed = mimetypes.guess_type(f"x.{extension}")[0]
    usable_declared = declared if declared and declared != "application/octet-stream" else None
    return MediaType(extension, guessed or usable_declared or "application/octet-stream")


async def store_asset(
    upstream: OneMinClient,
    api_key: str,
    content: bytes | IO[bytes],
    filename: str,
    media: MediaType,
    param: str,
) -> Asset:
    """Send bytes or a spooled upload to 1min.ai's Asset API; a file it refuses is a 400 naming the field."""
    try:
        return await upstream.upload_asset(api_key, filename, content, media.mime_type)
    except UpstreamError as exc:
        if exc.status in (400, 413, 415, 422):
            raise invalid_request(
                f"1min.ai refused the file sent as '{param}': {exc.message}",
                param=param,
                code="unsupported_file",
            ) from None
        raise
