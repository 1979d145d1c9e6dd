"""The pooled async 1min.ai client. STUB: signatures agreed; bodies to be written (upstream helper)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import IO, Any, Literal

import httpx

from onemin_relay.config import Settings


@dataclass(frozen=True)
class Asset:
    """What the Asset API returned for one upload."""

    path: str  # fileContent.path (= asset.key): for attachments.images, imageUrl, audioUrl, maskUrl
    uuid: str  # fileContent.uuid: for attachments.files
    name: str
    size: int
    mime_type: str


@dataclass(frozen=True)
class StreamEvent:
    """One event of a chat stream, already decoded."""

    kind: Literal["content", "result", "done", "error"]
    text: str = ""  # the delta for `content`, the message for `error`
    record: dict[str, Any] | None = None  # the aiRecord for `result`


class OneMinClient:
    def __init__(self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    async def chat(self, api_key: str, payload: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def chat_stream(
        self, api_key: str, payload: dict[str, Any]
    ) -> AbstractAsyncContextManager[AsyncIterator[StreamEvent]]:
        raise NotImplementedError

    async def feature(self, api_key: str, payload: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def get_result(self, api_key: str, uuid: str) -> dict[str, Any] | None:
        raise NotImplementedError

    async def upload_asset(
        self, api_key: str, filename: str, content: bytes | IO[bytes], content_type: str
    ) -> Asset:
        raise NotImplementedError

    async def models(self, feature: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def asset_url(self, key: str) -> str:
        raise NotImplementedError

    async def download(self, key_or_url: str, *, max_bytes: int) -> tuple[bytes, str]:
        raise NotImplementedError

    def stream_download(self, key_or_url: str) -> AbstractAsyncContextManager[tuple[str, AsyncIterator[bytes]]]:
        raise NotImplementedError
