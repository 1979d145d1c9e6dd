"""One typed error for every way 1min.ai can fail (see reference §13)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class UpstreamError(Exception):
    """A failed 1min.ai call, whatever shape the failure came in.

    status: HTTP status from upstream (200 for an SSE `error` event or an `aiRecord.status` of FAILED;
            0 when no response arrived at all: connect error, timeout, dropped connection).
    code: upstream code (`UNAUTHORIZED`, `UNSUPPORTED_MODEL`, `RATE_LIMITED`, …) or a relay-chosen one
          (`CONNECT_ERROR`, `TIMEOUT`, `STREAM_ERROR`, `FAILED`, `INVALID_RESPONSE`).
    """

    status: int
    code: str
    message: str
    details: Any = None
    retry_after: float | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(f"{self.status} {self.code}: {self.message}")
