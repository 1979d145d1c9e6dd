"""The state interface every backend implements. STUB: agreed shape; the state helper owns this file."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal


class StateUnavailable(Exception):
    """The configured backend cannot be reached; features that need state answer 503."""


@dataclass(frozen=True)
class FileRecord:
    id: str  # "file-…"
    owner: str  # key_hash() of the caller's key: the namespace
    filename: str
    bytes: int
    purpose: str
    created_at: int  # unix seconds
    expires_at: int  # unix seconds; retention removes the record after this
    asset_path: str  # 1min.ai fileContent.path
    asset_uuid: str  # 1min.ai fileContent.uuid
    mime_type: str


class StateStore(ABC):
    @abstractmethod
    async def put_file(self, record: FileRecord) -> None: ...

    @abstractmethod
    async def get_file(self, owner: str, file_id: str) -> FileRecord | None: ...

    @abstractmethod
    async def list_files(
        self,
        owner: str,
        *,
        purpose: str | None = None,
        limit: int = 10000,
        after: str | None = None,
        order: Literal["asc", "desc"] = "desc",
    ) -> tuple[list[FileRecord], bool]:
        """Files of one owner, ordered by created_at (then id), starting after the file id `after`.
        Returns (page, has_more)."""

    @abstractmethod
    async def delete_file(self, owner: str, file_id: str) -> bool: ...

    @abstractmethod
    async def delete_expired_files(self, now: float) -> int:
        """Remove every record whose expires_at <= now; return how many went."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise StateUnavailable when the backend cannot be reached."""

    @abstractmethod
    async def aclose(self) -> None: ...
