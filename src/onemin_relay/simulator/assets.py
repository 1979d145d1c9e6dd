"""Stored files: the Asset API upload, the public CDN (`/cdn/<key>`) and pre-signed S3 look-alike URLs.

Bytes live in memory only, keyed by generated storage keys; nothing from the request ever becomes a
filesystem path. The total size is bounded: the oldest files are evicted first.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
import secrets
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from urllib.parse import urlsplit

# extension → storage folder of an upload (§6.1: seen working; `.md` and the rest are refused)
UPLOAD_FOLDERS: dict[str, str] = {
    "png": "images",
    "jpg": "images",
    "jpeg": "images",
    "webp": "images",
    "gif": "images",
    "mp3": "audios",
    "mpeg": "audios",
    "mpga": "audios",
    "wav": "audios",
    "m4a": "audios",
    "flac": "audios",
    "ogg": "audios",
    "oga": "audios",
    "opus": "audios",
    "aac": "audios",
    "webm": "audios",
    "mp4": "videos",
    "pdf": "documents",
    "txt": "documents",
    "csv": "documents",
    "doc": "documents",
    "docx": "documents",
    "xls": "documents",
    "xlsx": "documents",
    "ppt": "documents",
    "pptx": "documents",
}
FOLDERS = ("images/", "audios/", "videos/", "documents/")
SIGNED_PREFIX = "/s3/asset.1min.ai/"
SIGNED_LIFETIME = timedelta(days=7)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def extension_of(filename: str) -> str:
    name = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    stem, dot, ext = name.rpartition(".")
    return ext.lower() if dot and stem else ""


def safe_name(filename: str) -> str:
    """The last path segment with URL-unsafe characters replaced, at most 100 characters."""
    name = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    name = _UNSAFE.sub("_", name).strip("._") or "file"
    return name[-100:]


def timestamp_prefix(now: datetime) -> str:
    return now.strftime("%Y_%m_%d_%H_%M_%S_") + f"{now.microsecond // 1000:03d}"


@dataclass
class StoredFile:
    key: str
    data: bytes
    content_type: str
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))

    @cached_property
    def etag(self) -> str:
        """S3's ETag of a single-part upload (hashed once: the CDN serves a file many times)."""
        return f'"{hashlib.md5(self.data, usedforsecurity=False).hexdigest()}"'


class AssetStore:
    """Bytes by storage key, bounded in total size (oldest evicted), plus pre-signed URL signing."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._files: OrderedDict[str, StoredFile] = OrderedDict()
        self._by_uuid: dict[str, str] = {}
        self._total = 0
        self._secret = secrets.token_bytes(32)
        self._speech: OrderedDict[str, str] = OrderedDict()  # sha256(bytes) → text, for header-less pcm

    # --- storing -----------------------------------------------------------------------------------

    def new_key(self, folder: str, name: str) -> str:
        """`<folder>/<YYYY>_<MM>_<DD>_<hh>_<mm>_<ss>_<mmm>_<name>`, unique within the store."""
        now = datetime.now(UTC)
        key = f"{folder}/{timestamp_prefix(now)}_{name}"
        while key in self._files:
            now += timedelta(milliseconds=1)
            key = f"{folder}/{timestamp_prefix(now)}_{name}"
        return key

    def generated_key(self, folder: str, extension: str) -> str:
        """Keys of feature results look like `images/2026_08_17_06_31_44_448_201553.png`."""
        return self.new_key(folder, f"{random.randint(100_000, 999_999)}.{extension}")

    def put(self, key: str, data: bytes, content_type: str) -> StoredFile:
        if key in self._files:
            self._drop(key)
        stored = StoredFile(key, data, content_type)
        self._files[key] = stored
        self._by_uuid[stored.uuid] = key
        self._total += len(data)
        while self._total > self.max_bytes and len(self._files) > 1:
            self._drop(next(iter(self._files)))
        return stored

    def _drop(self, key: str) -> None:
        old = self._files.pop(key)
        self._by_uuid.pop(old.uuid, None)
        self._total -= len(old.data)

    def remember_speech(self, data: bytes, text: str) -> None:
        self._speech[hashlib.sha256(data).hexdigest()] = text
        while len(self._speech) > 10_000:
            self._speech.popitem(last=False)

    def speech_text(self, data: bytes) -> str | None:
        return self._speech.get(hashlib.sha256(data).hexdigest())

    def clear(self) -> None:
        self._files.clear()
        self._by_uuid.clear()
        self._speech.clear()
        self._total = 0

    # --- finding -------------------------------------------------------------------------------------

    def get(self, key: str) -> StoredFile | None:
        return self._files.get(key)

    def by_uuid(self, file_id: str) -> StoredFile | None:
        key = self._by_uuid.get(file_id)
        return self._files.get(key) if key else None

    def resolve(self, reference: object) -> StoredFile | None:
        """A stored file from a key (`images/…`), a `development/`-prefixed key, or a URL ending in a key."""
        if not isinstance(reference, str) or len(reference) > 4096:
            return None
        path = urlsplit(reference).path if "://" in reference else reference.split("?", 1)[0]
        starts = [path.find(folder) for folder in FOLDERS if folder in path]
        return self._files.get(path[min(starts) :]) if starts else None

    # --- URLs ------------------------------------------------------------------------------------------

    def _signature(self, key: str, amz_date: str) -> str:
        return hmac.new(self._secret, f"{key}\n{amz_date}".encode(), hashlib.sha256).hexdigest()

    def signed_url(self, base_url: str, key: str) -> str:
        """A `temporaryUrl` look-alike of S3's pre-signed URL, valid for seven days."""
        now = datetime.now(UTC)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        credential = f"ASIASIMULATOR%2F{now:%Y%m%d}%2Fus-east-1%2Fs3%2Faws4_request"
        return (
            f"{base_url}{SIGNED_PREFIX}{key}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={credential}"
            f"&X-Amz-Date={amz_date}&X-Amz-Expires={int(SIGNED_LIFETIME.total_seconds())}"
            f"&X-Amz-Signature={self._signature(key, amz_date)}&X-Amz-SignedHeaders=host"
        )

    def check_signature(self, key: str, amz_date: str, signature: str) -> bool:
        try:
            signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            return False
        fresh = datetime.now(UTC) - signed_at < SIGNED_LIFETIME
        return fresh and hmac.compare_digest(self._signature(key, amz_date), signature)
