"""Everything the simulator remembers between requests, in memory, reset by `POST /_sim/reset`."""

from __future__ import annotations

from collections import OrderedDict, deque
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
        self.log: deque[dict[str, Any]] = deque(maxlen=config.request_log_size)

    def configure(self, config: SimulatorConfig) -> None:
        self.config = config
        self.assets.max_bytes = config.asset_store_bytes
        if self.log.maxlen != config.request_log_size:
            self.log = deque(self.log, maxlen=config.request_log_size)

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
