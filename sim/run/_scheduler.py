"""The deterministic discrete-event scheduler (a `broker.Timers`).

Rules, in the style of SimPy's core:
- The heap holds `(time, seq, timer)`; `seq` grows by one per `call_at`, so events at equal times
  run in scheduling order and the third element is never compared. Nothing depends on `hash()` or
  a clock.
- Cancellation is lazy: `ScheduledCall.cancel()` marks the call and the entry is dropped when it
  reaches the top of the heap. When dead entries outnumber live ones (and there are many), the
  heap is compacted in place, so a workload that cancels most of its timeouts cannot grow it
  without bound.
- A timer that will most likely be cancelled (a request's timeout) can be set with
  `call_at_lazily`: it takes its `seq` at once, so it runs exactly where `call_at` would run it,
  but waits in a list, not the heap, until the clock first reaches the earliest time in that list;
  then every timer in it enters the heap. One cancelled before then costs no heap push or pop.
- `now` is read-only and only moves forward: to the time of each event as it runs, to `until`
  (see `run`), or to the time given to `advance_to`.
- `TieBreaker` (a scenario's `ties`) varies only what the world may vary: the order of its own
  steps at one instant, and whether each runs before or after the broker's timers due then
  (spec 1.5). The broker's timers keep their scheduling order among themselves (spec 1.1).
"""

from __future__ import annotations

import heapq
import itertools
import math
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING

from broker import SplitMix64, Timers

__all__ = ["ScheduledCall", "Scheduler", "SchedulerError", "TieBreaker"]

# Dead heap entries tolerated before compaction is considered; keeps small heaps compaction-free.
_COMPACT_MIN_DEAD = 256
# Module-level aliases: the hot path pays one global lookup instead of a global plus an attribute.
_INF = math.inf
_heappush = heapq.heappush
_heappop = heapq.heappop


class SchedulerError(ValueError):
    """Local misuse of the scheduler: a time in the past, NaN or infinite, or a bad run bound."""


def _released() -> None:
    """Stands in for the callback of a cancelled timer, so its closure can be freed early."""


class ScheduledCall:
    """A scheduled callback; returned by `Scheduler.call_at`. Only the scheduler builds one.

    `cancel()` is idempotent and O(1) (amortized); cancelling a timer that already ran does nothing.
    """

    # Three slots, set where it is scheduled: construction is on the hot path of every event, so
    # there is no `__init__` (a Python frame per timer); `ScheduledCall()` runs only C code.
    __slots__ = ("_callback", "_scheduler", "when")

    when: float
    _callback: Callable[[], None]
    # The owning scheduler while the timer is queued; None once it has run or been cancelled.
    _scheduler: Scheduler | None

    @property
    def cancelled(self) -> bool:
        """True if `cancel()` was called while the timer was still queued."""
        return self._callback is _released

    def cancel(self) -> None:
        scheduler = self._scheduler
        if scheduler is None:
            return
        self._scheduler = None
        self._callback = _released
        scheduler._live -= 1
        dead = len(scheduler._heap) + len(scheduler._lazy) - scheduler._live
        if dead > _COMPACT_MIN_DEAD and dead > scheduler._live:
            scheduler._compact()

    def __repr__(self) -> str:
        state = "cancelled" if self.cancelled else "queued" if self._scheduler else "done"
        return f"<ScheduledCall at {self.when!r} {state}>"


class Scheduler:
    """A virtual clock and a queue of one-shot callbacks; satisfies `broker.Timers`.

    >>> s = Scheduler()
    >>> out: list[str] = []
    >>> _ = s.call_at(2.0, lambda: out.append("b"))
    >>> _ = s.call_at(1.0, lambda: out.append("a"))
    >>> s.run()
    2
    >>> out, s.now
    (['a', 'b'], 2.0)
    >>> s.advance_to(5.0), s.now
    (0, 5.0)
    """

    __slots__ = ("_heap", "_lazy", "_lazy_min", "_live", "_now", "_seq")

    _now: float
    _heap: list[tuple[float, int, ScheduledCall]]
    # Timers set with `call_at_lazily`, in the order they were set, and the earliest time among
    # them (never later than it: a cancelled timer's time may linger until the list is emptied).
    _lazy: list[tuple[float, int, ScheduledCall]]
    _lazy_min: float
    _live: int
    _seq: itertools.count[int]

    def __init__(self, now: float = 0.0) -> None:
        if not 0.0 <= now < math.inf:
            raise SchedulerError(f"start time must be finite and >= 0, got {now!r}")
        self._now = now
        self._heap = []
        self._lazy = []
        self._lazy_min = _INF
        self._live = 0
        self._seq = itertools.count()

    if TYPE_CHECKING:

        @property
        def now(self) -> float:
            """The current virtual time; it never goes backwards."""
            ...

    else:
        # Read by every operation and most events: a read-only property whose getter is C code,
        # so a read runs no Python frame.
        now = property(
            operator.attrgetter("_now"), doc="The current virtual time; it never goes backwards."
        )

    def call_at(self, when: float, callback: Callable[[], None]) -> ScheduledCall:
        """Run `callback()` at virtual time `when`, which must be finite and >= `now`."""
        if not self._now <= when < _INF:  # also rejects NaN: every comparison with it is False
            raise SchedulerError(
                f"cannot schedule at {when!r}: time must be finite and >= now ({self._now!r})"
            )
        timer = ScheduledCall()
        timer.when, timer._callback, timer._scheduler = when, callback, self
        _heappush(self._heap, (when, next(self._seq), timer))
        self._live += 1
        return timer

    def call_at_lazily(self, when: float, callback: Callable[[], None]) -> ScheduledCall:
        """`call_at` for a timer that will most likely be cancelled before `when`: it runs in
        the same place `call_at` would run it (see the rules above)."""
        if not self._now <= when < _INF:
            raise SchedulerError(
                f"cannot schedule at {when!r}: time must be finite and >= now ({self._now!r})"
            )
        timer = ScheduledCall()
        timer.when, timer._callback, timer._scheduler = when, callback, self
        self._lazy.append((when, next(self._seq), timer))
        if when < self._lazy_min:
            self._lazy_min = when
        self._live += 1
        return timer

    def _unlazy(self) -> None:
        """The clock reached the earliest lazy time: every live lazy timer enters the heap."""
        heap = self._heap
        for entry in self._lazy:
            if entry[2]._scheduler is not None:
                _heappush(heap, entry)
        self._lazy.clear()
        self._lazy_min = _INF

    def _compact(self) -> None:
        """Drop cancelled entries from the heap and the lazy list."""
        # In place: a `run` loop in progress holds a reference to this very list.
        heap = self._heap
        heap[:] = [entry for entry in heap if entry[2]._scheduler is not None]
        heapq.heapify(heap)
        self._lazy[:] = [entry for entry in self._lazy if entry[2]._scheduler is not None]
        self._lazy_min = min((entry[0] for entry in self._lazy), default=_INF)

    def call_later(self, delay: float, callback: Callable[[], None]) -> ScheduledCall:
        """Run `callback()` after `delay` (finite, >= 0) units of virtual time."""
        # call_at inlined: this is the simulator's most frequent call.
        when = self._now + delay
        if not (0.0 <= delay < _INF and when < _INF):
            raise SchedulerError(f"cannot schedule after delay {delay!r}: must be finite and >= 0")
        timer = ScheduledCall()
        timer.when, timer._callback, timer._scheduler = when, callback, self
        _heappush(self._heap, (when, next(self._seq), timer))
        self._live += 1
        return timer

    def step(self) -> bool:
        """Run the next live event; return False (and change nothing) if there is none."""
        return self.run(max_events=1) == 1

    def run(self, until: float | None = None, max_events: int | None = None) -> int:
        """Run events in (time, seq) order; return how many ran.

        Stops when no live event is left, when the next one is later than `until`, or after
        `max_events` events. If it stopped because of `until` while live events remain (all later
        than `until`), `now` is set to `until`: the interval up to `until` has been simulated. If
        the queue ran dry, `now` stays at the time of the last event, so a drained run reports when
        its last event happened. A callback's exception propagates; its event counts as consumed.
        """
        if until is not None and not self._now <= until < math.inf:
            raise SchedulerError(
                f"cannot run until {until!r}: must be finite and >= now ({self._now!r})"
            )
        if max_events is not None and max_events < 0:
            raise SchedulerError(f"max_events must be >= 0, got {max_events!r}")
        limit = _INF if until is None else until
        budget = -1 if max_events is None else max_events
        heap = self._heap
        count = 0
        while count != budget:
            if self._lazy_min <= (heap[0][0] if heap else _INF):
                self._unlazy()
            if not heap:
                break
            entry = _heappop(heap)
            when, _, timer = entry
            if timer._scheduler is None:  # cancelled
                continue
            if when > limit:
                _heappush(heap, entry)  # once per run: cheaper than peeking at every event
                break
            timer._scheduler = None
            self._live -= 1
            self._now = when
            timer._callback()
            count += 1
        if until is not None and count != budget and self._live:
            self._now = until
        return count

    def advance_to(self, when: float) -> int:
        """Run every event due at or before `when`, then set `now` to `when`; return how many ran.

        Unlike `run(until=...)`, which leaves a drained clock at its last event, this always ends
        at `when` (a driver stepping time by hand, like trio's `MockClock.jump`). `when` must be
        finite and >= `now`: time never goes backwards.
        """
        count = self.run(until=when)
        self._now = when
        return count

    @property
    def pending(self) -> int:
        """The number of live (queued, not cancelled) events."""
        return self._live

    def peek(self) -> float | None:
        """The time of the next live event, or None if there is none."""
        heap = self._heap
        if self._lazy_min <= (heap[0][0] if heap else _INF):
            self._unlazy()
        while heap and heap[0][2]._scheduler is None:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    @property
    def broker_timers(self) -> Timers:
        """What the broker schedules its timers on: this scheduler itself (a `TieBreaker` gives
        the broker a view of its own)."""
        return self

    def __repr__(self) -> str:
        return f"<{type(self).__name__} now={self._now!r} pending={self._live}>"


def _warm_up(calls: int = 16) -> None:
    """CPython 3.11 specializes a function's bytecode (its attribute reads and writes, its
    comparisons) only once the function has been *called* a few times (8); a loop inside one
    call does not count. `run`, the event loop, is called a couple of times per simulation, so
    every event would go through the generic, slower instructions: it is called here, on an
    empty scheduler, until CPython has specialized it."""
    for _ in range(calls):
        Scheduler().run()


_warm_up()


# A TieBreaker's sequence numbers: a 16-bit key above a 40-bit counter. The world's steps draw
# their key; the broker's timers all take the middle one, so among themselves they keep their
# order, and a world step at the same instant runs before them (key below) or after (above).
_KEY_SHIFT = 40
_BROKER_KEY = 1 << 15


class TieBreaker(Scheduler):
    """A scheduler that breaks ties between the world's same-time steps with seeded draws.

    Steps at different times run in time order as always. At one instant, the world's steps
    (arrivals, services ending, faults, script steps) run in an order drawn from a SplitMix64
    stream seeded with `seed`, each before or after the block of broker timers due then, which
    keep the order they were set in. The same seed gives the same order: a scenario records it
    (`ties = N`), so a failing order replays.

    >>> s = TieBreaker(3)
    >>> out: list[str] = []
    >>> for name in "abcdef":
    ...     _ = s.call_at(1.0, lambda name=name: out.append(name))
    >>> for name in "XYZ":
    ...     _ = s.broker_timers.call_at(1.0, lambda name=name: out.append(name))
    >>> _ = s.run()
    >>> "".join(out)
    'daeXYZcfb'
    """

    __slots__ = ("_rng", "_view")

    def __init__(self, seed: int, now: float = 0.0) -> None:
        super().__init__(now)
        self._rng = SplitMix64(seed)
        self._view = _BrokerTimers(self)

    def call_at(self, when: float, callback: Callable[[], None]) -> ScheduledCall:
        return self._push(when, callback, self._rng.randrange(1 << 16))

    def call_at_lazily(self, when: float, callback: Callable[[], None]) -> ScheduledCall:
        return self._push(when, callback, self._rng.randrange(1 << 16), lazy=True)

    def call_later(self, delay: float, callback: Callable[[], None]) -> ScheduledCall:
        if not 0.0 <= delay < _INF:
            raise SchedulerError(f"cannot schedule after delay {delay!r}: must be finite and >= 0")
        return self.call_at(self._now + delay, callback)

    def _push(
        self, when: float, callback: Callable[[], None], key: int, lazy: bool = False
    ) -> ScheduledCall:
        if not self._now <= when < _INF:
            raise SchedulerError(
                f"cannot schedule at {when!r}: time must be finite and >= now ({self._now!r})"
            )
        timer = ScheduledCall()
        timer.when, timer._callback, timer._scheduler = when, callback, self
        entry = (when, key << _KEY_SHIFT | next(self._seq), timer)
        if lazy:
            self._lazy.append(entry)
            self._lazy_min = min(self._lazy_min, when)
        else:
            _heappush(self._heap, entry)
        self._live += 1
        return timer

    @property
    def broker_timers(self) -> Timers:
        return self._view


class _BrokerTimers:
    """The broker's view of a `TieBreaker`: its timers all take the middle key."""

    __slots__ = ("_clock",)

    def __init__(self, clock: TieBreaker) -> None:
        self._clock = clock

    @property
    def now(self) -> float:
        return self._clock.now

    def call_at(self, when: float, callback: Callable[[], None]) -> ScheduledCall:
        return self._clock._push(when, callback, _BROKER_KEY)

    def call_at_lazily(self, when: float, callback: Callable[[], None]) -> ScheduledCall:
        return self._clock._push(when, callback, _BROKER_KEY, lazy=True)
