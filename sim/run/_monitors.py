"""Online invariant monitors over the event stream (docs/trace-format.md, spec 4.6, 5, 7).

The monitor keeps only what is still open (messages in flight, pending requests), so its memory
follows the in-flight set, not the length of the run. A violation raises `InvariantViolation`
naming the event; the simulator ends the run there.
"""

from __future__ import annotations

from typing import Any

from broker import Events, Stats
from sim.run._scheduler import Scheduler


class InvariantViolation(Exception):
    """An invariant broke at the run's `event`-th broker event (counted from 1), at time `t`;
    `seq` is that event's line in the trace when one is written (None otherwise). The message
    names the event, not the line, so a run says the same with a trace and without."""

    def __init__(
        self, event: int, t: float, invariant: str, detail: str, seq: int | None = None
    ) -> None:
        super().__init__(f"event {event} (t={t!r}): {invariant}: {detail}")
        self.event, self.t, self.invariant, self.detail = event, t, invariant, detail
        self.seq = seq

    @property
    def where(self) -> str:
        """Where it broke, for a person: the event, and the trace line if there is a trace."""
        line = f", trace seq {self.seq}" if self.seq is not None else ""
        return f"event {self.event}{line} (t={self.t!r})"


class Monitor(Events):
    """Checks conservation, one outcome per request, exclusive deadlines, capacity (online).

    The broker tells it each event through the `Events` method of its kind, with the fields as
    arguments: no dict is built when no trace is written. Each method runs once per event, so
    each check is a dict operation or a comparison, and the event's time is read only where a
    check needs it (the scheduler's `_now`). The kinds it does not check reach `emit`, which
    counts them.
    """

    __slots__ = (
        "capacity",
        "clock",
        "dead_lettered",
        "delivered",
        "event",
        "last_msg",
        "live",
        "pending",
        "rejected",
        "sent",
        "seq",
        "stopped",
    )

    def __init__(self, capacity: dict[str, int | None], clock: Scheduler) -> None:
        super().__init__()
        self.capacity = capacity
        self.clock = clock
        # The trace line of the last event observed (None: no trace), set by the runner.
        self.seq: int | None = None
        self.live: dict[int, str] = {}  # msg -> kind, for messages sent and not yet terminal
        # corr -> (deadline, requester label), while pending
        self.pending: dict[int, tuple[float, str | None]] = {}
        self.stopped: set[str] = set()  # labels of stopped or unregistered actors
        self.last_msg = 0
        self.event = 0  # the events observed so far: the run's event count
        self.sent = self.rejected = self.delivered = self.dead_lettered = 0

    def emit(self, name: str, fields: dict[str, Any]) -> None:
        """A kind no check reads (a pool, a service, a topic, a fault): counted."""
        self.event += 1

    # -- the checks, by kind: the hot ones first ---------------------------------------------

    def send(
        self,
        msg: int,
        sender: str | None,
        to: str | None,
        kind: str,
        corr: int | None,
        deadline: float | None,
        key: str | None,
        dup_of: int | None,
        copy_of: int | None,
    ) -> None:
        self.event += 1
        if msg <= self.last_msg:
            self._fail("unique_ids", f"message id {msg} reused")
        self.last_msg = msg
        self.live[msg] = kind
        self.sent += 1
        if kind == "request" and dup_of is None and copy_of is None:
            # a request's send has its corr and deadline
            self.pending[corr] = (deadline, sender)  # type: ignore[index, assignment]

    def route(self, msg: int, actor: str) -> None:
        self.event += 1
        # delivered to the topic (spec 3.9, 7.1); a slice, not `startswith`, which CPython 3.11
        # parses its arguments for at every call (once per message here)
        if actor[:6] == "topic:":
            self._close(msg, "route")
            self.delivered += 1
        elif msg not in self.live:
            self._not_in_flight(msg, "route")

    def enqueue(self, msg: int, actor: str, depth: int) -> None:
        self.event += 1
        if msg not in self.live:
            self._not_in_flight(msg, "enqueue")
        cap = self.capacity.get(actor)
        if cap is not None and depth > cap:
            self._fail("capacity", f"{actor} holds {depth} > capacity {cap}")

    def dequeue(self, msg: int, actor: str) -> None:
        self.event += 1
        if self.live.pop(msg, None) is None:  # `_close`, inline
            self._not_in_flight(msg, "dequeue")
        self.delivered += 1

    def resolve(self, corr: int, outcome: str, requester: str, msg: int | None) -> None:
        self.event += 1
        entry = self.pending.pop(corr, None)
        if entry is None:
            self._fail("one_outcome", f"request {corr} resolved {outcome} but it is not pending")
            return
        deadline = entry[0]
        if outcome == "replied":
            # the scheduler's slot, as the world reads it (sim/run/_world.py): once per request
            if self.clock._now >= deadline:
                self._fail("exclusive_deadline", f"request {corr} replied at its deadline")
            # the reply, in flight, ends here (a message not in flight is no reply either)
            if self.live.pop(msg, None) != "reply":  # type: ignore[arg-type]  # None: no reply
                self._fail("correlation", f"request {corr} replied by a non-reply {msg}")
            self.delivered += 1
        elif outcome == "timed_out" and self.clock._now < deadline:
            self._fail("exclusive_deadline", f"request {corr} timed out before {deadline!r}")

    def dead_letter(self, msg: int, reason: str) -> None:
        self.event += 1
        self._close(msg, "dead_letter")
        self.dead_lettered += 1

    def reject(self, msg: int, error: str) -> None:
        self.event += 1
        self._close(msg, "reject")
        self.rejected += 1

    def park(self, msg: int, actor: str) -> None:
        self.event += 1
        if msg not in self.live:
            self._not_in_flight(msg, "park")

    def retry(self, msg: int, attempt: int, at: float) -> None:
        self.event += 1
        if msg not in self.live:
            self._not_in_flight(msg, "retry")

    def stop(self, actor: str, reason: str) -> None:
        self.event += 1
        self.stopped.add(actor)

    def unregister(self, actor: str, reason: str) -> None:
        self.event += 1
        self.stopped.add(actor)

    def start(self, actor: str) -> None:
        self.event += 1
        self.stopped.discard(actor)

    def register(
        self,
        actor: str,
        name: str | None,
        addresses: list[str],
        capacity: int | None,
        backpressure: str,
        send_timeout: float | None,
    ) -> None:
        self.event += 1
        self.stopped.discard(actor)

    def _close(self, msg: int, ev: str) -> None:
        if self.live.pop(msg, None) is None:
            self._not_in_flight(msg, ev)

    def _not_in_flight(self, msg: int, ev: str) -> None:
        self._fail("conservation", f"{ev} of message {msg}, which is not in flight")

    def settled(self, t: float, stats: Stats) -> None:
        """After an operation and everything it caused: no request is left pending for a
        requester that stopped or went away (spec 2.7, 5.8), and the broker's counts agree with
        its events (spec 7.2)."""
        for corr, (_, requester) in self.pending.items():
            if requester in self.stopped:
                self._fail("no_leak", f"request {corr} pending for stopped {requester}")
        self._agree(t, stats)

    def finish(self, t: float, stats: Stats, queued_ok: bool = False) -> None:
        """End-of-run checks: nothing in flight or pending, and the broker's counts agree.

        With `queued_ok` (scripted runs, whose actors have no worker), messages still queued
        or parked at the end are allowed: nobody was scripted to take them.
        """
        if self.live and not queued_ok:
            first = min(self.live)
            self._fail("drained", f"{len(self.live)} messages still in flight (first: {first})")
        if self.pending:
            first = min(self.pending)
            self._fail("no_leak", f"{len(self.pending)} requests still pending (first: {first})")
        self._agree(t, stats)

    def _agree(self, t: float, stats: Stats) -> None:
        counters = {
            "sent": stats.sent,
            "rejected": stats.rejected,
            "delivered": stats.delivered,
            "dead_lettered": stats.dead_lettered,
        }
        mine = {
            "sent": self.sent,
            "rejected": self.rejected,
            "delivered": self.delivered,
            "dead_lettered": self.dead_lettered,
        }
        if mine != counters:
            self._fail("counters", f"broker counts {counters} but the events show {mine}")

    def _fail(self, invariant: str, detail: str) -> None:
        raise InvariantViolation(self.event, self.clock.now, invariant, detail, self.seq)
