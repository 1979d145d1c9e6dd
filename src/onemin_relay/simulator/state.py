"""Everything the simulator remembers between requests, in memory, reset by `POST /_sim/reset`."""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from onemin_relay.simulator.assets import AssetStore
from onemin_relay.simulator.config import SimulatorConfig
from onemin_relay.simulator.faults import FaultBook
from onemin_relay.simulator.limits import CreditLedger, RateLimiter

MAX_CONVERSATIONS = 10_000
MAX_MESSAGES = 200
MAX_RESULTS = 10_000


@dataclass
class Conversation:
    uuid: str
    owner: str  # key hash
    title: str
    created_at: str
    messages: list[str] = field(default_factory=list)  # user and assistant turns, oldest first

    def remember(self, prompt: str, answer: str) -> None:
        self.messages.extend((prompt, answer))
        del self.messages[:-MAX_MESSAGES]


@dataclass
class PendingResult:
    """An async feature call: PROCESSING for `polls_left` more polls, then `record`."""

    owner: str
    record: dict[str, Any]
    polls_left: int


class RequestLog:
    """The calls received, oldest first, bounded in count and in bytes of bodies kept (oldest go first)."""

    def __init__(self, max_entries: int, max_body_bytes: int) -> None:
        self._entries: deque[dict[str, Any]] = deque()
        self._body_bytes = 0
        self.resize(max_entries, max_body_bytes)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def resize(self, max_entries: int, max_body_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_body_bytes = max_body_bytes
        self._trim()

    def append(self, entry: dict[str, Any]) -> None:
        self._entries.append(entry)
        self._trim()

    def keep_body(self, entry: dict[str, Any], body: Any, size: int) -> None:
        """Log the JSON body `entry`'s call sent (`size` bytes on the wire); older entries make room."""
        entry["json"] = body
        entry["body_bytes"] = size
        self._body_bytes += size
        self._trim()

    def clear(self) -> None:
        self._entries.clear()
        self._body_bytes = 0

    def _trim(self) -> None:
        while self._entries and (
            len(self._entries) > self.max_entries or self._body_bytes > self.max_body_bytes
        ):
            self._body_bytes -= self._entries.popleft()["body_bytes"]


class SimulatorState:
    def __init__(self, config: SimulatorConfig) -> None:
        self.initial_config = config
        self.config = config
        self.assets = AssetStore(config.asset_store_bytes)
        self.conversations: OrderedDict[str, Conversation] = OrderedDict()
        self.results: OrderedDict[str, PendingResult] = OrderedDict()
        self.ledger = CreditLedger()
        self.limiter = RateLimiter()
        self.faults = FaultBook()
        self.log = RequestLog(config.request_log_size, config.request_log_bytes)

    def configure(self, config: SimulatorConfig) -> None:
        self.config = config
        self.assets.max_bytes = config.asset_store_bytes
        self.log.resize(config.request_log_size, config.request_log_bytes)

    def reset(self) -> None:
        """Back to the configuration the app was created with, with nothing stored, armed or logged."""
        self.configure(self.initial_config)
        self.assets.clear()
        self.conversations.clear()
        self.results.clear()
        self.ledger.clear()
        self.limiter.clear()
        self.faults.clear()
        self.log.clear()

    def add_conversation(self, conversation: Conversation) -> None:
        self.conversations[conversation.uuid] = conversation
        while len(self.conversations) > MAX_CONVERSATIONS:
            self.conversations.popitem(last=False)

    def add_result(self, uuid: str, pending: PendingResult) -> None:
        self.results[uuid] = pending
        while len(self.results) > MAX_RESULTS:
            self.results.popitem(last=False)


def now_iso() -> str:
    """`2024-09-30T03:47:29.738Z`, the timestamp format of every record."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
