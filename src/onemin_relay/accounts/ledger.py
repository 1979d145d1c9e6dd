"""The usage ledger's writer: records are queued on the request path and written in batches by a
background task, so a request never waits on the store. A clean shutdown writes what is queued.

Budgets read spend from the store's running totals plus what this process has queued but not yet
written, so a relay sees its own calls at once; another relay's within `FLUSH_INTERVAL` +
`TOTALS_TTL` (1.5 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque

from onemin_relay.accounts.store import AccountStore
from onemin_relay.accounts.usage import UsageRecord, periods_of
from onemin_relay.observability import RequestRecord
from onemin_relay.state.base import StateUnavailable

log = logging.getLogger("onemin_relay.ledger")

FLUSH_INTERVAL = 0.5  # seconds between two writes of the queue
TOTALS_TTL = 1.0  # seconds a key's spend totals read from the store are reused
_MAX_CACHED_KEYS = 10_000
_BATCH = 1000  # records per write
# While the store is down the queue is held; past this many records the oldest are given up (logged).
_MAX_QUEUED = 200_000


class UsageLedger:
    def __init__(self, store: AccountStore, *, retention: float, sweep_interval: float) -> None:
        self.store = store
        self._retention = retention
        self._sweep_interval = sweep_interval
        self._queue: deque[UsageRecord] = deque()
        self._pending: dict[tuple[str, str], float] = {}  # (key, period) → credits queued, not written
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()  # the writer and an admin read may flush at once
        # key → (read at, periods, the store's totals for them): spend without a round trip per call
        self._totals: dict[str, tuple[float, tuple[str, str], list[float]]] = {}
        self._generation = 0  # flushes so far
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="usage-ledger")

    def on_request_end(self, request: RequestRecord) -> None:
        """The request-end listener: one ledger record for each /v1 call whose caller is known."""
        if request.caller is None or not request.path.startswith("/v1"):
            return
        self.record(
            UsageRecord(
                ts=time.time(),
                key=request.caller,
                endpoint=request.route or request.path,
                model=request.model or "",
                status=request.status,
                tokens_in=request.prompt_tokens or 0,
                tokens_out=request.completion_tokens or 0,
                credits=float(request.credits),
                estimated=request.credits_estimated,
                latency_ms=round((request.duration or 0.0) * 1000, 1),
                upstream_ms=round(request.upstream_wall() * 1000, 1),
                request_id=request.request_id,
            )
        )

    def record(self, record: UsageRecord) -> None:
        """Queue one record (never blocks, never fails the request)."""
        if len(self._queue) >= _MAX_QUEUED:
            dropped = self._queue.popleft()
            self._forget_pending(dropped)
            log.error("usage ledger queue full (store unreachable?): a record was given up")
        self._queue.append(record)
        for period in periods_of(record.ts):
            slot = (record.key, period)
            self._pending[slot] = self._pending.get(slot, 0.0) + record.credits
        if len(self._queue) >= _BATCH:
            self._wake.set()

    async def spent(self, key: str, now: float | None = None) -> tuple[float, float]:
        """Credits `key` spent in the current UTC day and month (written and still queued).

        The store's totals are read at most once per `TOTALS_TTL` per key (what this relay writes is
        added to the copy as it goes), so a budget check usually costs no store round trip."""
        periods = periods_of(time.time() if now is None else now)
        cached = self._totals.get(key)
        if cached is not None and cached[1] == periods and time.monotonic() - cached[0] < TOTALS_TTL:
            stored = cached[2]
        else:
            generation = self._generation
            stored = await self.store.spent(key, periods)
            if generation == self._generation:  # no flush landed meanwhile: the copy is consistent
                if len(self._totals) >= _MAX_CACHED_KEYS:
                    self._totals.clear()
                self._totals[key] = (time.monotonic(), periods, list(stored))
        day, month = (
            total + self._pending.get((key, period), 0.0)
            for total, period in zip(stored, periods, strict=True)
        )
        return day, month

    async def flush(self) -> None:
        """Write everything queued; on a store failure the records stay queued and it raises."""
        async with self._flushing:
            while self._queue:
                batch = [self._queue[index] for index in range(min(_BATCH, len(self._queue)))]
                await self.store.add_usage(batch)
                self._generation += 1
                for _ in batch:
                    record = self._queue.popleft()
                    self._forget_pending(record)
                    self._add_to_totals(record)

    async def aclose(self) -> None:
        """Stop the writer and write what is left (a clean shutdown loses no record)."""
        self._closing = True
        if self._task is not None:
            self._wake.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await self.flush()
        except StateUnavailable as exc:
            log.error("usage ledger: %d records could not be written at shutdown: %s", len(self._queue), exc)

    def _add_to_totals(self, record: UsageRecord) -> None:
        cached = self._totals.get(record.key)
        if cached is None:
            return
        for index, period in enumerate(cached[1]):
            if period in periods_of(record.ts):
                cached[2][index] += record.credits

    def _forget_pending(self, record: UsageRecord) -> None:
        for period in periods_of(record.ts):
            slot = (record.key, period)
            left = self._pending.get(slot, 0.0) - record.credits
            if abs(left) < 1e-9:
                self._pending.pop(slot, None)
            else:
                self._pending[slot] = left

    async def _run(self) -> None:
        next_sweep = time.monotonic()
        failing = False
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FLUSH_INTERVAL):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + self._sweep_interval
                    await self.store.delete_usage_before(time.time() - self._retention)
                if failing:
                    failing = False
                    log.info("usage ledger: store reachable again")
            except StateUnavailable as exc:
                if not failing:
                    failing = True
                    log.warning("usage ledger: store unavailable, %d records held: %s", len(self._queue), exc)
