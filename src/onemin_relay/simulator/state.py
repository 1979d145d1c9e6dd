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

    def forget_oldest(self) -> int:
        """Drop the oldest message; return its length."""
        return len(self.messages.pop(0))


@dataclass
class PendingResult:
    """An async feature call: PROCESSING for `polls_left` more polls, then `record`."""

    owner: str
    record: dict[str, Any]
    polls_left: int
    size: int  # bytes of the request it answers, standing in for the record's own size


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


class ScriptedAnswers:
    """Answers queued per key hash for its next chat calls (`POST /_sim/answers`), bounded in keys, answers
    per key and characters per answer, so the control API cannot grow without limit."""

    MAX_KEYS = 1000
    MAX_PER_KEY = 100
    MAX_CHARS = 1_000_000

    def __init__(self) -> None:
        self._queues: OrderedDict[str, deque[str]] = OrderedDict()

    def add(self, key_hash: str, answers: list[str]) -> int:
        """Queue `answers`; raises ValueError when a bound would be passed. The queue's length after."""
        if any(len(answer) > self.MAX_CHARS for answer in answers):
            raise ValueError(f"an answer is longer than {self.MAX_CHARS} characters")
        queue = self._queues.setdefault(key_hash, deque())
        if len(queue) + len(answers) > self.MAX_PER_KEY:
            raise ValueError(f"at most {self.MAX_PER_KEY} answers may wait per key")
        queue.extend(answers)
        self._queues.move_to_end(key_hash)
        while len(self._queues) > self.MAX_KEYS:
            self._queues.popitem(last=False)
        return len(queue)

    def next(self, key_hash: str) -> str | None:
        queue = self._queues.get(key_hash)
        if not queue:
            return None
        answer = queue.popleft()
        if not queue:
            del self._queues[key_hash]
        return answer

    def clear(self) -> None:
        self._queues.clear()


class SimulatorState:
    def __init__(self, config: SimulatorConfig) -> None:
        self.initial_config = config
        self.config = config
        self.assets = AssetStore(config.asset_store_bytes)
        self.conversations: OrderedDict[str, Conversation] = OrderedDict()
        self.history_chars = 0  # characters in all conversations' messages
        self.results: OrderedDict[str, PendingResult] = OrderedDict()
        self.results_bytes = 0
        self.ledger = CreditLedger()
        self.limiter = RateLimiter()
        self.faults = FaultBook()
        self.scripted = ScriptedAnswers()
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
        self.history_chars = 0
        self.results.clear()
        self.results_bytes = 0
        self.ledger.clear()
        self.limiter.clear()
        self.faults.clear()
        self.scripted.clear()
        self.log.clear()

    def add_conversation(self, conversation: Conversation) -> None:
        self.conversations[conversation.uuid] = conversation
        while len(self.conversations) > MAX_CONVERSATIONS:
            self.drop_conversation(next(iter(self.conversations)))

    def drop_conversation(self, uuid: str) -> None:
        dropped = self.conversations.pop(uuid)
        self.history_chars -= sum(map(len, dropped.messages))

    def remember(self, conversation: Conversation, prompt: str, answer: str) -> None:
        """Add a turn to `conversation` (unless it was deleted meanwhile), within `MAX_MESSAGES` per
        conversation and `config.history_chars` in all: other conversations' oldest messages go first."""
        if self.conversations.get(conversation.uuid) is not conversation:
            return
        conversation.messages.extend((prompt, answer))
        self.history_chars += len(prompt) + len(answer)
        while len(conversation.messages) > MAX_MESSAGES:
            self.history_chars -= conversation.forget_oldest()
        if self.history_chars <= self.config.history_chars:
            return
        others = [other for other in self.conversations.values() if other is not conversation]
        for victim in (*others, conversation):
            while self.history_chars > self.config.history_chars and victim.messages:
                self.history_chars -= victim.forget_oldest()

    def add_result(self, uuid: str, pending: PendingResult) -> None:
        """Keep `pending` for polling; the oldest go past `MAX_RESULTS` or `config.async_results_bytes`."""
        self.results[uuid] = pending
        self.results_bytes += pending.size
        while len(self.results) > 1 and (
            len(self.results) > MAX_RESULTS or self.results_bytes > self.config.async_results_bytes
        ):
            self.results_bytes -= self.results.popitem(last=False)[1].size


def now_iso() -> str:
    """`2024-09-30T03:47:29.738Z`, the timestamp format of every record."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
