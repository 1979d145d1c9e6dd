"""Background removal of expired files and records, on every backend, without ever blocking requests."""

from __future__ import annotations

import asyncio
import logging
import time

from onemin_relay.config import Settings
from onemin_relay.state.base import StateStore, StateUnavailable

log = logging.getLogger("onemin_relay.state")


async def run_retention(state: StateStore, settings: Settings) -> None:
    """Sweep every RETENTION_SWEEP_INTERVAL seconds until cancelled. A failed sweep (backend down,
    any bug) is logged and retried at the next interval: the task must outlive any error, but not
    a cancellation, even one a library swallowed."""
    task = asyncio.current_task()
    while True:
        try:
            now = time.time()
            removed = await state.delete_expired_files(now) + await state.delete_expired_records(now)
        except StateUnavailable as exc:
            log.warning("file retention sweep skipped, will retry: %s", exc)
        except Exception:
            log.exception("file retention sweep failed, will retry")
        else:
            if removed:
                log.info("retention removed %d expired record(s)", removed)
        # On Python 3.11, asyncio.wait_for (which redis-py uses for its socket timeouts) returns the
        # result instead of raising when the task is cancelled just as the awaited call finishes: the
        # cancellation is lost and this loop would sweep forever, hanging the relay's shutdown. The
        # request stays counted on the task, so honour it here.
        if task is not None and task.cancelling():
            raise asyncio.CancelledError
        await asyncio.sleep(settings.retention_sweep_interval)
