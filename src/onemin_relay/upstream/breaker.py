"""Circuit breakers for 1min.ai, so an outage fails fast instead of stacking timeouts.

One circuit per name the client gives (one per 1min.ai endpoint, one per asset host).

Closed: calls go through; `failures` consecutive failed attempts (no answer at all — connect error,
timeout, dropped connection — or an HTTP 5xx) open the circuit. Open: for `cooldown` seconds every call
fails at once with a 503 `CIRCUIT_OPEN` carrying `Retry-After`, before anything is sent. Half-open: after
the cool-down one call goes through as a probe (the others still fail fast); its success closes the
circuit, its failure opens it for another cool-down. Any answer below 500 (a 4xx, a 429) is a success:
the endpoint is up.

Nothing here repeats a call: failing fast happens before sending, so the no-double-billing rule of the
client's retries is untouched. State is per process (each worker trips on its own).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum

from onemin_relay.upstream.errors import UpstreamError

CIRCUIT_OPEN = "CIRCUIT_OPEN"
_PROBE_WAIT = 1.0  # what a call turned away during a probe is told to wait


class CircuitState(IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass
class _Circuit:
    failures: int = 0
    opened_at: float | None = None  # None: closed
    probing: bool = False


class Verdict:
    """What one attempt tells its circuit; an attempt that ends without one (cancelled, refused before
    sending) tells nothing, and a probe slot it held is freed."""

    def __init__(self) -> None:
        self.outcome: bool | None = None

    def succeeded(self) -> None:
        self.outcome = True

    def failed(self) -> None:
        self.outcome = False


class Circuits:
    """The breakers of every upstream endpoint, by name. `failures` 0 turns them off."""

    def __init__(self, failures: int, cooldown: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._threshold = failures
        self._cooldown = cooldown
        self._clock = clock
        self._circuits: dict[str, _Circuit] = {}

    @contextmanager
    def attempt(self, name: str) -> Iterator[Verdict]:
        """Around one attempt on the circuit `name`: raises CIRCUIT_OPEN instead of letting it start when
        the circuit is open; the block reports the outcome on the verdict it is given."""
        verdict = Verdict()
        if not self._threshold:
            yield verdict
            return
        circuit = self._circuits.setdefault(name, _Circuit())
        probe = self._admit(circuit)
        try:
            yield verdict
        finally:
            if probe:
                circuit.probing = False
            if verdict.outcome is True:
                circuit.failures, circuit.opened_at = 0, None
            elif verdict.outcome is False:
                circuit.failures += 1
                if probe or circuit.failures >= self._threshold:
                    circuit.opened_at = self._clock()

    def _admit(self, circuit: _Circuit) -> bool:
        """Whether this attempt is the half-open probe; raises when it may not go at all."""
        if circuit.opened_at is None:
            return False
        remaining = circuit.opened_at + self._cooldown - self._clock()
        if remaining > 0:
            raise _open_error(remaining)
        if circuit.probing:
            raise _open_error(_PROBE_WAIT)
        circuit.probing = True
        return True

    def state(self, name: str) -> CircuitState:
        circuit = self._circuits.get(name)
        if circuit is None or circuit.opened_at is None:
            return CircuitState.CLOSED
        if circuit.probing or self._clock() >= circuit.opened_at + self._cooldown:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def states(self) -> dict[str, CircuitState]:
        return {name: self.state(name) for name in self._circuits}

    def retry_after(self, name: str) -> float:
        """Seconds until circuit `name` lets a probe through (0 when it would now)."""
        circuit = self._circuits.get(name)
        if circuit is None or circuit.opened_at is None:
            return 0.0
        return max(0.0, circuit.opened_at + self._cooldown - self._clock())


def _open_error(wait: float) -> UpstreamError:
    seconds = max(1, math.ceil(wait))
    return UpstreamError(
        503,
        CIRCUIT_OPEN,
        f"1min.ai failed repeatedly; the relay stops calling it for {seconds} s before trying again.",
        retry_after=float(seconds),
    )
