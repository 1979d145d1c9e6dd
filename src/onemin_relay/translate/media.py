"""Inline media in chat requests: `data:` URLs, base64 file data, and which documents 1min.ai reads."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

# Documents 1min.ai chat takes in `attachments.files` (reference §6.1), by extension.
DOCUMENT_TYPES = {
    "pdf": "application/pdf",
    "txt": "text/plain",
    "csv": "text/csv",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt": "application/vnd.ms-powerpoint",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
IMAGE_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "gif", "webp"})

_DATA_URL = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[\w.+-]+=[^;,]*)*)(?P<b64>;base64)?,", re.I
)
_WHITESPACE = re.compile(r"\s+")


class InvalidMedia(ValueError):
    """Inline media that cannot be decoded; the message says why, for a 400."""


@dataclass(frozen=True)
class DataURL:
    mime_type: str
    content: bytes


def is_data_url(url: str) -> bool:
    return url[:5].lower() == "data:"


def decode_data_url(url: str) -> DataURL:
    """`data:image/png;base64,…` → its media type and bytes (only base64 data URLs carry binary media)."""
    match = _DATA_URL.match(url)
    if match is None or not match.group("b64"):
        raise InvalidMedia("expected a base64 data URL such as 'data:image/png;base64,…'")
    return DataURL(
        (match.group("mime") or "application/octet-stream").lower(), decode_base64(url[match.end() :])
    )


def decode_base64(data: str) -> bytes:
    """Strict base64 (standard or URL-safe alphabet, whitespace ignored); InvalidMedia when corrupt."""
    compact = _WHITESPACE.sub("", data).replace("-", "+").replace("_", "/")
    compact += "=" * (-len(compact) % 4)
    try:
        content = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidMedia("the base64 data is corrupt") from None
    if not content:
        raise InvalidMedia("the data is empty")
    return content


def decoded_size(data: str) -> int:
    """Bytes the base64 text decodes to (an upper bound, computed without decoding)."""
    return (len(data) * 3) // 4


def extension_of(filename: str) -> str:
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = name.rpartition(".")
    return ext.lower() if dot and stem else ""
