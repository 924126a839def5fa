"""The timer service the broker is given (docs/spec.md section 1).

The broker never reads a clock. It asks an injected timer service for the current time and for
callbacks at a later time; the simulator's scheduler is one, a real-time adapter can be another.

A timer service may also offer `call_at_lazily(when, callback)`, with `call_at`'s contract, for a
timer that will most likely be cancelled before it is due: the broker sets a request's timeout
with it when it is there, so that a service can defer the bookkeeping of timers that never run
(the simulator's scheduler does). Without it, the broker uses `call_at`.
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
