"""The mutation catalogue: deliberately broken brokers, one per known failure mode (BRIEF.md).

Each mutant is a subclass of `broker.Broker` that reintroduces one bug of the Rust original or
one classic off-by-one, without touching the real code. `catalogue_results` runs the lockstep
machine against each and reports which check caught it and how short the shrunk failing example
is; every mutant must be caught, and the real broker must pass.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from hypothesis import settings as Settings

from broker import Address, Broker, Envelope, Listener, RetryPolicy, Timers
from broker._registry import Actor, Registry
from sim.lockstep import BrokerFactory, default_factory, run_lockstep


class ReplyBeforePending(Broker[Any]):
    """The seed's race: a request is routed while its pending entry does not exist yet."""

    def _send(self, env: Envelope[Any], retry: RetryPolicy | None, wait: float | None) -> None:
        pending = self._pending.pop(env.corr, None) if env.corr is not None else None
        pending = pending if env.kind == "request" else None
        if pending is None:
            super()._send(env, retry, wait)
            return
        del pending.requester.pending[pending.corr]
        try:
            super()._send(env, retry, wait)  # routed (and maybe answered) too early
        finally:
            if self._fate[pending.corr] == 0 and pending.corr not in self._pending:
                self._pending[pending.corr] = pending.requester.pending[pending.corr] = pending


class LeakPendingOnStop(Broker[Any]):
    """A stopped requester's pending requests stay behind (and later time out)."""

    def _shut(self, actor: Actor) -> None:
        kept = dict(actor.pending)
        actor.pending.clear()
        super()._shut(actor)
        actor.pending.update(kept)


class LateReplyDelivered(Broker[Any]):
    """A reply to a timed-out request is handed over (counted delivered) instead of dead."""

    def _arrive_reply(self, env: Envelope[Any]) -> None:
        if env.corr is not None and self.outcome(env.corr) == "timed_out":
            self.delivered += 1
            return
        super()._arrive_reply(env)


class DuplicateReplyDelivered(Broker[Any]):
    """A second reply to a replied request is handed over instead of dead-lettered."""

    def _arrive_reply(self, env: Envelope[Any]) -> None:
        if env.corr is not None and self.outcome(env.corr) == "replied":
            self.delivered += 1
            return
        super()._arrive_reply(env)


class _NoAdjustRegistry(Registry):
    def leave(self, name: str, actor: Actor) -> None:
        pool = self.pool(name)
        before = pool.cursor
        super().leave(name, actor)
        # The bug: only wrap the cursor, never shift it down with the members after the leaver.
        remaining = len(pool.members)
        pool.cursor = 0 if remaining == 0 else before % remaining


class RoundRobinNoAdjustOnLeave(Broker[Any]):
    """Round robin's cursor is not moved down when a member before it leaves (spec 3.2.3)."""

    def __init__(self, timers: Timers, rng: random.Random, **kw: Any) -> None:
        super().__init__(timers, rng, **kw)
        self.registry = _NoAdjustRegistry(rng)


class _LossyNames(dict[str, Actor]):
    """Names stored under a lossy hash; the uniqueness check still sees the exact names."""

    def __init__(self) -> None:
        super().__init__()
        self.exact: set[str] = set()

    @staticmethod
    def _key(name: str) -> str:
        return str(sum(map(ord, name)) % 8)

    def __contains__(self, name: object) -> bool:
        return name in self.exact

    def __setitem__(self, name: str, actor: Actor) -> None:
        self.exact.add(name)
        super().__setitem__(self._key(name), actor)  # silently overwrites a colliding route

    def __delitem__(self, name: str) -> None:
        self.exact.discard(name)
        super().pop(self._key(name), None)

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(self._key(name), default) if name in self.exact else default


class RouteCollision(Broker[Any]):
    """`name:` routes keyed by `sum(map(ord, name)) % 8` (spec 2.4's lossy hash)."""

    def __init__(self, timers: Timers, rng: random.Random, **kw: Any) -> None:
        super().__init__(timers, rng, **kw)
        self.registry.names = _LossyNames()


class DroppedCountedDelivered(Broker[Any]):
    """Messages dropped by backpressure are counted as delivered, not dead-lettered."""

    def _dead_letter(self, env: Envelope[Any], reason: str, actor: Actor | None = None) -> None:
        if reason in ("dropped_newest", "dropped_oldest"):
            self.delivered += 1
            return
        super()._dead_letter(env, reason, actor)


class FutureTimestampExpired(Broker[Any]):
    """Expiry from the message's age with abs(): a future timestamp looks old (spec 4.7)."""

    def send(self, sender: int | None, to: Address | str, payload: Any, **kw: Any) -> int:
        stamp = kw.get("timestamp")
        if stamp is not None:
            now = self.timers.now
            kw["timestamp"] = now - abs(now - stamp)
        return super().send(sender, to, payload, **kw)


class CapacityOffByOne(Broker[Any]):
    """A bounded mailbox admits one message more than its capacity (spec 4.2, 4.6)."""

    def register(self, name: str | None = None, **kw: Any) -> int:
        if kw.get("capacity") is not None:
            actor = super().register(name, **kw)
            self.registry.actor(actor).mailbox.capacity = kw["capacity"] + 1
            return actor
        return super().register(name, **kw)


class InclusiveDeadline(Broker[Any]):
    """The deadline is treated as inclusive: the timer fires just after it, a reply at it wins."""

    def request(self, sender: int, to: Address | str, payload: Any, **kw: Any) -> int:
        corr = super().request(sender, to, payload, **kw)
        pending = self._pending.get(corr)
        if pending is not None and pending.timer is not None:
            pending.timer.cancel()
            after = math.nextafter(pending.deadline, math.inf)
            pending.timer = self.timers.call_at(after, lambda: self._expire(corr))
        return corr

    def _arrive_reply(self, env: Envelope[Any]) -> None:
        pending = self._pending.get(env.corr)  # type: ignore[arg-type]
        if pending is not None and self.timers.now == pending.deadline:
            self.delivered += 1
            self._resolve(pending, "replied", env)
            return
        super()._arrive_reply(env)


def _factory(cls: type[Broker[Any]]) -> BrokerFactory:
    def make(timers: Timers, rng: random.Random, listener: Listener) -> Broker[Any]:
        return cls(timers, rng, listener=listener)

    make.__name__ = cls.__name__
    return make


MUTANTS: dict[str, BrokerFactory] = {
    "reply_before_pending": _factory(ReplyBeforePending),
    "leak_pending_on_stop": _factory(LeakPendingOnStop),
    "late_reply_delivered": _factory(LateReplyDelivered),
    "duplicate_reply_delivered": _factory(DuplicateReplyDelivered),
    "round_robin_no_adjust_on_leave": _factory(RoundRobinNoAdjustOnLeave),
    "route_collision": _factory(RouteCollision),
    "dropped_counted_delivered": _factory(DroppedCountedDelivered),
    "future_timestamp_expired": _factory(FutureTimestampExpired),
    "capacity_off_by_one": _factory(CapacityOffByOne),
    "inclusive_deadline": _factory(InclusiveDeadline),
}


@dataclass(frozen=True, slots=True)
class Row:
    """One line of `brokerlab mutants`: `caught_by` is None for a surviving mutant."""

    mutant: str
    caught_by: str | None
    steps: int | None
    message: str = ""


def catalogue_results(
    names: Iterable[str] | None = None,
    settings: Settings | None = None,
    on_row: Callable[[Row], None] | None = None,
) -> list[Row]:
    """Run the lockstep machine against each mutant (all by default), in catalogue order.

    Returns one `Row` per mutant: the check that caught it and the number of steps of the
    shrunk failing example, or `caught_by=None` if it survived.
    """
    rows = []
    for name in MUTANTS if names is None else names:
        failure = run_lockstep(MUTANTS[name], settings)
        row = (
            Row(name, None, None)
            if failure is None
            else Row(name, failure.check, failure.steps, failure.message)
        )
        if on_row is not None:
            on_row(row)
        rows.append(row)
    return rows


def reference_passes(settings: Settings | None = None) -> bool:
    """The real broker under the same machine: no failure."""
    return run_lockstep(default_factory, settings) is None
