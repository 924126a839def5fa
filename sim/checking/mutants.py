"""The mutation catalogue: deliberately broken brokers, one per known failure mode (BRIEF.md).

Each mutant is a subclass of `broker.Broker` that reintroduces one bug of the Rust original or
one classic off-by-one, without touching the real code. Each class is a `broker.BrokerFactory`,
so any driver builds one exactly as it builds the reference; this module needs no Hypothesis.
`sim.checking.hunt` runs the lockstep machine against each and reports which check caught it and
how short the shrunk failing example is; every mutant must be caught, and the real broker pass.

`TRACE_SCENARIOS` gives each mutant a directed simulator scenario whose trace shows the bug, so
the trace checker (`model.check_trace`) catches it too; `conform_result` runs it. Three mutants
cannot show in a simulator trace at all (their entry is None): the simulator never stops a
requester (clients cannot crash), never leaves a pool, and never sends a timestamped message;
and the trace has no event for leaving a pool nor fields for timestamps or TTLs.

`CHECK_PRESET` and `CHECK_BOUNDS` record what catches each mutant in `brokerlab check --broker`
(docs/spec.md 11.4): the preset, and small bounds that do it in a second.
"""

from __future__ import annotations

import io
import math
from typing import Any

from broker import Address, Broker, Envelope, RetryPolicy, Rng, Timers
from broker._registry import Actor, Registry
from model import Verdict, check_trace
from model.checker import CheckBounds
from sim.run import simulate
from sim.scenario import Scenario, parse_scenario


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


class PublishBeforePending(Broker[Any]):
    """The seed's `publish_request`: a request to a topic is published, a whole operation whose
    subscribers are woken at its end, before its pending entry exists (spec 5.1). Only a
    subscriber that answers at once, inside the call, can tell: its reply finds no request."""

    def _send(self, env: Envelope[Any], retry: RetryPolicy | None, wait: float | None) -> None:
        if env.kind != "request" or env.to.kind != "topic" or env.corr is None:
            super()._send(env, retry, wait)
            return
        pending = self._pending.pop(env.corr)
        del pending.requester.pending[env.corr]
        try:
            super()._send(env, retry, wait)
            if self._woken:
                self._flush_wakes()  # the publish is over: its subscribers run now
        finally:
            if self._fate[env.corr] == 0:  # registered only now, as the seed does
                self._pending[env.corr] = pending.requester.pending[env.corr] = pending


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

    def __init__(self, timers: Timers, rng: Rng, **kw: Any) -> None:
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

    def __init__(self, timers: Timers, rng: Rng, **kw: Any) -> None:
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


# The catalogue, by name. Each class is a `broker.BrokerFactory`, like `broker.Broker` itself.
MUTANTS: dict[str, type[Broker[Any]]] = {
    "reply_before_pending": ReplyBeforePending,
    "publish_before_pending": PublishBeforePending,
    "leak_pending_on_stop": LeakPendingOnStop,
    "late_reply_delivered": LateReplyDelivered,
    "duplicate_reply_delivered": DuplicateReplyDelivered,
    "round_robin_no_adjust_on_leave": RoundRobinNoAdjustOnLeave,
    "route_collision": RouteCollision,
    "dropped_counted_delivered": DroppedCountedDelivered,
    "future_timestamp_expired": FutureTimestampExpired,
    "capacity_off_by_one": CapacityOffByOne,
    "inclusive_deadline": InclusiveDeadline,
}

# The spec rules each mutant breaks, for the rule-coverage matrix (docs/rule-coverage.md).
MUTANT_RULES: dict[str, tuple[str, ...]] = {
    "reply_before_pending": ("5.1",),
    "publish_before_pending": ("1.6", "3.9", "5.1"),
    "leak_pending_on_stop": ("2.8", "5.8"),
    "late_reply_delivered": ("5.5", "5.6"),
    "duplicate_reply_delivered": ("5.6",),
    "round_robin_no_adjust_on_leave": ("3.2.3",),
    "route_collision": ("2.4",),
    "dropped_counted_delivered": ("7.1", "7.2"),
    "future_timestamp_expired": ("4.7",),
    "capacity_off_by_one": ("4.2", "4.6"),
    "inclusive_deadline": ("5.5",),
}


# Which `brokerlab check --broker NAME --preset P` catches each mutant (docs/spec.md 11.4), and
# small bounds that catch it in a second. route_collision needs two names that collide under
# its lossy hash, and the checker names one actor, `n` (symmetry could not tell the values
# apart anyway): the lockstep test and the vectors catch it.
CHECK_PRESET: dict[str, str | None] = {
    "reply_before_pending": "default",
    "publish_before_pending": "wide",
    "leak_pending_on_stop": "default",
    "late_reply_delivered": "default",
    "duplicate_reply_delivered": "default",
    "round_robin_no_adjust_on_leave": "wide",
    "route_collision": None,
    "dropped_counted_delivered": "wide",
    "future_timestamp_expired": "wide",
    "capacity_off_by_one": "default",
    "inclusive_deadline": "default",
}
CHECK_BOUNDS: dict[str, CheckBounds] = {
    "reply_before_pending": CheckBounds(clients=1, members=1, retry_attempts=1, faults=()),
    "publish_before_pending": CheckBounds(clients=1, members=1, topic=True, faults=()),
    "leak_pending_on_stop": CheckBounds(clients=1, members=1, retry_attempts=1, faults=("crash",)),
    "late_reply_delivered": CheckBounds(clients=1, members=1, retry_attempts=1, faults=()),
    "duplicate_reply_delivered": CheckBounds(
        clients=1, members=1, retry_attempts=1, faults=("duplicate",)
    ),
    "round_robin_no_adjust_on_leave": CheckBounds(
        clients=1, members=3, capacity=None, retry_attempts=1, faults=("leave",)
    ),
    "dropped_counted_delivered": CheckBounds(
        clients=1, members=1, tells=1, backpressure="drop_newest", retry_attempts=1, faults=()
    ),
    "future_timestamp_expired": CheckBounds(
        clients=1, members=1, requests=0, tells=1, ttl=1, retry_attempts=1, faults=()
    ),
    "capacity_off_by_one": CheckBounds(clients=2, members=1, retry_attempts=1, faults=()),
    "inclusive_deadline": CheckBounds(clients=1, members=1, retry_attempts=1, faults=()),
}


for _name, _cls in MUTANTS.items():
    _cls.brokerlab_name = _name  # type: ignore[attr-defined]  # what a trace header names


def broker_class(name: str) -> type[Broker[Any]]:
    """`reference` (the real `Broker`) or a name of `MUTANTS`; KeyError naming the choices."""
    if name == "reference":
        return Broker
    if name not in MUTANTS:
        raise KeyError(f"no broker {name!r}: expected reference or one of {', '.join(MUTANTS)}")
    return MUTANTS[name]


_CONST = {"dist": "constant", "value": 1.0}


def _one_actor(
    actor: dict[str, Any], client: dict[str, Any], pools: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "seed": 1,
        "until": 6.0,
        "pool": pools or [],
        "actor": [{"name": "db", "service": _CONST, **actor}],
        "client": [
            {"name": "load", "arrivals": {"process": "constant", "interval": 1.0}, **client}
        ],
    }


# Directed scenarios whose simulator trace shows each mutant's bug (None: it cannot show).
TRACE_SCENARIOS: dict[str, dict[str, Any] | None] = {
    # A request refused during the call: its `resolve failed` is lost with the pending entry.
    "reply_before_pending": _one_actor({}, {"target": "name:nobody", "timeout": 2.0}),
    # Subscribers with no service time answer inside the publish: their reply finds no request.
    "publish_before_pending": {
        "seed": 1,
        "until": 3.0,
        "actor": [
            {"name": "sub1", "topics": ["news"], "service": {"dist": "constant", "value": 0.0}},
            {"name": "sub2", "topics": ["news"], "service": {"dist": "constant", "value": 0.0}},
        ],
        "client": [
            {
                "name": "load",
                "target": "topic:news",
                "timeout": 0.5,
                "arrivals": {"process": "constant", "interval": 1.0},
            }
        ],
    },
    "leak_pending_on_stop": None,  # clients (the only requesters) never stop
    # Service 1.0 against a timeout of 0.5: every reply is late, and the mutant swallows it.
    "late_reply_delivered": _one_actor({}, {"target": "name:db", "timeout": 0.5}),
    # A broadcast request: each member replies; the second reply is swallowed.
    "duplicate_reply_delivered": _one_actor(
        {},
        {"target": "pool:all", "timeout": 5.0},
        [{"name": "all", "size": 2, "strategy": "broadcast", "service": _CONST}],
    ),
    "round_robin_no_adjust_on_leave": None,  # the simulator never leaves a pool
    # "a" and "i" collide under the lossy hash: name:a routes to i.
    "route_collision": {
        "seed": 1,
        "until": 3.0,
        "actor": [{"name": "a", "service": _CONST}, {"name": "i", "service": _CONST}],
        "client": [
            {
                "name": "load",
                "target": "name:a",
                "pattern": "tell",
                "arrivals": {"process": "constant", "interval": 1.0},
            }
        ],
    },
    # A full drop_newest mailbox: the dropped message never gets its dead letter.
    "dropped_counted_delivered": _one_actor(
        {"capacity": 1, "backpressure": "drop_newest", "service": {"dist": "constant", "value": 3}},
        {"target": "name:db", "pattern": "tell"},
    ),
    "future_timestamp_expired": None,  # the simulator never sends a timestamped message
    # A full reject mailbox of capacity 1 takes a second message.
    "capacity_off_by_one": _one_actor(
        {"capacity": 1, "service": {"dist": "constant", "value": 3}},
        {"target": "name:db", "pattern": "tell"},
    ),
    # Service time equal to the timeout: the reply comes exactly at the deadline.
    "inclusive_deadline": _one_actor({}, {"target": "name:db", "timeout": 1.0}),
}


def trace_scenario(name: str) -> Scenario | None:
    """The directed scenario that shows mutant `name` in a trace, or None if none can."""
    data = TRACE_SCENARIOS[name]
    return None if data is None else parse_scenario(data, f"mutant {name}")


def conform_result(name: str) -> Verdict | None:
    """Run mutant `name` under the simulator on its directed scenario and check the trace;
    None when the mutant cannot show in a simulator trace."""
    scenario = trace_scenario(name)
    if scenario is None:
        return None
    out = io.StringIO()
    simulate(scenario, trace=out, monitors=False, broker_factory=MUTANTS[name])
    return check_trace(io.StringIO(out.getvalue()), f"mutant {name}")
