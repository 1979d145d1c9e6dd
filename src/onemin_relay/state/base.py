"""The state interface every backend implements, and the small pieces the backends share."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import json
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

Order = Literal["asc", "desc"]


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

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | builtins.bytes) -> FileRecord:
        return cls(**json.loads(text))


class StateStore(ABC):
    @abstractmethod
    async def put_file(self, record: FileRecord) -> None: ...

    @abstractmethod
    async def get_file(self, owner: str, file_id: str) -> FileRecord | None:
        """The owner's file, or None if it does not exist, belongs to someone else or has expired."""

    @abstractmethod
    async def list_files(
        self,
        owner: str,
        *,
        purpose: str | None = None,
        limit: int = 10000,
        after: str | None = None,
        order: Order = "desc",
    ) -> tuple[list[FileRecord], bool]:
        """Files of one owner, ordered by created_at (then id), starting after the file id `after`.
        Returns (page, has_more). An `after` that names no file of this owner gives an empty page."""

    @abstractmethod
    async def delete_file(self, owner: str, file_id: str) -> bool: ...

    @abstractmethod
    async def delete_expired_files(self, now: float) -> int:
        """Remove every record whose expires_at <= now; return how many went."""

    # Records: small JSON documents of one kind (e.g. "response") kept for an owner until `expires_at`.
    # Other features keep what outlives a request here, without a table or key layout of their own.

    @abstractmethod
    async def put_record(self, kind: str, owner: str, record_id: str, value: str, expires_at: int) -> None:
        """Keep `value` (JSON text) under (kind, owner, record_id) until `expires_at` (unix seconds),
        replacing what was there."""

    @abstractmethod
    async def get_record(self, kind: str, owner: str, record_id: str) -> str | None:
        """The value, or None if there is none for this owner or it has expired."""

    @abstractmethod
    async def delete_record(self, kind: str, owner: str, record_id: str) -> bool: ...

    @abstractmethod
    async def delete_expired_records(self, now: float) -> int:
        """Remove every record whose expires_at <= now (where the backend does not do it by itself)."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise StateUnavailable when the backend cannot be reached."""

    @abstractmethod
    async def aclose(self) -> None: ...


@contextlib.contextmanager
def unavailable_on(errors: tuple[type[BaseException], ...], backend: str) -> Iterator[None]:
    """Turn a backend's connection errors into StateUnavailable (the app answers 503)."""
    try:
        yield
    except errors as exc:
        raise StateUnavailable(f"{backend} is unavailable: {exc or type(exc).__name__}") from exc


async def page_of_files(
    ordered_ids: Sequence[str],
    load: Callable[[Sequence[str]], Awaitable[Sequence[FileRecord | None]]],
    *,
    now: float,
    purpose: str | None,
    limit: int,
    after: str | None,
) -> tuple[list[FileRecord], bool]:
    """One page for backends that keep an ordered id index beside the records (Redis, memcached).

    Records are loaded in batches from just after `after`; ids whose record is gone (deleted, evicted,
    expired) or has another purpose are skipped."""
    start = 0
    if after is not None:
        try:
            start = ordered_ids.index(after) + 1
        except ValueError:
            return [], False
    page: list[FileRecord] = []
    batch = max(16, min(limit + 1, 500))
    for offset in range(start, len(ordered_ids), batch):
        for record in await load(ordered_ids[offset : offset + batch]):
            if record is None or record.expires_at <= now:
                continue
            if purpose is not None and record.purpose != purpose:
                continue
            if len(page) == limit:
                return page, True
            page.append(record)
    return page, False


async def answers_ping(store: StateStore, within: float = 1.0) -> bool:
    """Whether the store answers a ping within `within` seconds (readiness checks, metrics)."""
    try:
        async with asyncio.timeout(within):
            await store.ping()
    except (StateUnavailable, TimeoutError, OSError):
        return False
    return True
