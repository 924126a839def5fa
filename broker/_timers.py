"""The timer service the broker is given (docs/spec.md section 1).

The broker never reads a clock. It asks an injected timer service for the current time and for
callbacks at a later time; the simulator's scheduler is one, a real-time adapter can be another.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class TimerHandle(Protocol):
    """What `Timers.call_at` returns: cancelling is cheap and idempotent."""

    def cancel(self) -> None: ...


class Timers(Protocol):
    """A clock plus one-shot callbacks, as seen by the broker."""

    @property
    def now(self) -> float:
        """The current time (virtual in the simulator)."""
        ...

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        """Run `callback()` at time `when` (>= now); equal times run in scheduling order."""
        ...
