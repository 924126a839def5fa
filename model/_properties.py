"""The checker's properties: always (per transition), sometimes (paired witnesses), eventually.

Every always-property is checked on each explored transition (before-state, step, effect), as the
lockstep test checks the broker after each operation; each has at least one paired
sometimes-property, a transition that must be reachable under the bounds, so that no always
passes vacuously. The eventually-properties are obligations (a pending request, a message in
flight) with the step that discharges them; model/checker.py checks them on the strongly
connected components of the state graph.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from model._actions import Action, Advance, Ask, Dequeue, Event, Reply, Stop, Tell
from model._menu import POOL, SERVICE, CheckBounds, Step
from model._semantics import Effect
from model._state import ActorState, Addr, Msg, Request, State

ALWAYS: dict[str, str] = {
    "routing": "every route goes to a live member of the pool / the first live provider",
    "correlation": "a request is replied only by a reply to its own correlation id",
    "one_outcome": "every request resolves once; timed out at, replied before its deadline",
    "conservation": "accepted = delivered + dead-lettered + in flight, on every step",
    "no_leak": "no request stays pending for a stopped or unregistered requester",
    "capacity": "no mailbox holds more than its capacity",
    "expiry": "a message is dequeued only before its deadline, and expires only at or after it",
    "dequeue_order": "a dequeue takes the oldest high message, else the oldest normal one",
}


@dataclass(frozen=True, slots=True)
class Sometimes:
    """A witness that must be reachable: `pair` is the always-property it keeps honest."""

    pair: str
    text: str
    needs: Callable[[CheckBounds], bool]


def _total(b: CheckBounds) -> int:
    return b.clients * b.requests


def _fills(b: CheckBounds) -> bool:
    """Some mailbox can be full when one more message arrives (the service's first provider
    gets every message sent to `service:s`)."""
    return b.capacity is not None and b.sends > b.capacity


SOMETIMES: dict[str, Sometimes] = {
    "reply_delivered": Sometimes("correlation", "a reply is delivered", lambda b: _total(b) >= 1),
    "duplicate_reply_dead_lettered": Sometimes(
        "correlation",
        "a second reply is dead-lettered",
        lambda b: (
            ("duplicate" in b.faults or (b.strategy == "broadcast" and b.members >= 2))
            and _total(b) >= 1
        ),
    ),
    "failover": Sometimes(
        "routing",
        "a service request skips a stopped provider",
        lambda b: "crash" in b.faults and b.members >= 2 and _total(b) >= 1,
    ),
    "request_times_out": Sometimes("one_outcome", "a request times out", lambda b: _total(b) >= 1),
    "late_reply_dead_lettered": Sometimes(
        "one_outcome", "a late reply is dead-lettered", lambda b: _total(b) >= 1
    ),
    "retry_succeeds": Sometimes(
        "conservation",
        "a retried message is enqueued",
        lambda b: b.retry_attempts >= 2 and b.backpressure == "reject" and _fills(b),
    ),
    "message_dropped": Sometimes(
        "conservation",
        "a message is dropped by a full mailbox (drop_newest, drop_oldest)",
        lambda b: b.backpressure in ("drop_newest", "drop_oldest") and _fills(b),
    ),
    "requester_stop_cancels": Sometimes(
        "no_leak",
        "a stopped requester's request is cancelled",
        lambda b: "crash" in b.faults and _total(b) >= 1,
    ),
    "mailbox_fills": Sometimes(
        "capacity",
        "a mailbox fills to capacity",
        lambda b: b.capacity is not None and b.sends >= b.capacity,
    ),
    "message_parked": Sometimes(
        "capacity",
        "a message is parked by a full mailbox (block)",
        lambda b: b.backpressure == "block" and _fills(b),
    ),
    "ttl_expires": Sometimes(
        "expiry",
        "a one-way message with a TTL expires at dequeue",
        lambda b: b.ttl is not None and b.tells >= 1,
    ),
    "ttl_delivered": Sometimes(
        "expiry",
        "a one-way message with a TTL is dequeued before its deadline",
        lambda b: b.ttl is not None and b.tells >= 1,
    ),
    "high_overtakes": Sometimes(
        "dequeue_order",
        "a high message is dequeued while a normal one sent before it waits",
        lambda b: (
            b.priority
            and b.sends >= 2
            and (b.capacity is None or b.capacity >= 2 or b.strategy == "shared")
        ),
    ),
}
EVENTUALLY: dict[str, str] = {
    "eventually_resolved": "under weak fairness every request is resolved",
    "eventually_terminal": "under weak fairness every accepted message is delivered or "
    "dead-lettered",
}

# The spec rules each property checks (every one also checks spec 11.3's own wording), for the
# rule-coverage matrix (docs/rule-coverage.md).
PROPERTY_RULES: dict[str, tuple[str, ...]] = {
    "routing": ("2.5", "3.1", "3.2.1", "3.4", "11.3"),
    "correlation": ("5.4", "5.6", "11.3"),
    "one_outcome": ("5.3", "5.5", "11.3"),
    "conservation": ("7.1", "7.2", "11.3"),
    "no_leak": ("2.8", "5.8", "11.3"),
    "capacity": ("4.6", "11.3"),
    "expiry": ("4.7", "11.3"),
    "dequeue_order": ("4.5", "11.3"),
    "eventually_resolved": ("5.3", "11.3"),
    "eventually_terminal": ("7.1", "11.3"),
}


def _actor(s: State, label: str | None) -> ActorState | None:
    """The actor an event names: `id:N`, or its name (spec 9.4)."""
    assert label is not None
    if label.startswith("id:"):
        return s.actor(int(label[3:]))
    return next((a for a in s.actors if a.name == label), None)


def _messages(before: State, step: Step, events: tuple[Event, ...]) -> dict[int, Msg]:
    """The messages a step may route: the one an `Ask` or `Tell` creates, those awaiting a
    retry, and the copies it sends (a topic's or a broadcast's, spec 3.7, 3.9), addressed as
    their `send` events say."""
    out = {t.msg.id: t.msg for t in before.timers if t.msg is not None}
    n = before.next_msg
    for action in step:
        if isinstance(action, Ask | Tell):
            to = action.to if isinstance(action.to, Addr) else Addr.parse(action.to)
            if isinstance(action, Ask):
                out[n] = Msg(n, "request", action.sender, to, before.next_corr)
            else:
                out[n] = Msg(n, "tell", action.sender, to)
    for e in events:
        fields = dict(e.fields)
        if e.name == "send" and e.msg is not None and fields.get("copy_of") is not None:
            out[e.msg] = Msg(e.msg, fields["kind"], None, Addr.parse(fields["to"]), e.corr)
    return out


def _routing(before: State, e: Event, to: Addr, seen: set[str]) -> str | None:
    """Spec 2.5, 3: whether the `route` event `e` of a message to `to` goes where it may."""
    pool = before.pool(POOL)
    if e.actor == f"pool:{POOL}":  # spec 3.8: a shared pool's queue takes it
        if to != Addr("pool", POOL) or pool is None or pool.strategy != "shared":
            return f"message {e.msg} to {to} routed to the queue of {e.actor}"
        if not any(_alive(before, m) for m in pool.members):
            return f"message {e.msg} routed to {e.actor}, which has no live member"
        return None
    actor = _actor(before, e.actor)
    if actor is None or not actor.alive:
        return f"message {e.msg} routed to {e.actor}, not a live actor"
    if to.kind == "pool" and (pool is None or actor.id not in pool.members):
        return f"message {e.msg} routed to {e.actor}, not in {to}"
    named = to.kind == "name" and to.value != actor.name
    if (to.kind == "id" and to.value != str(actor.id)) or named:
        return f"message {e.msg} to {to} routed to {e.actor}"
    if to.kind == "service":
        service = before.service(SERVICE)
        live = [p for p in service.providers if _alive(before, p)] if service else []
        if not live or live[0] != actor.id:
            return f"message {e.msg} routed to {e.actor}, not {live[:1]}"
        if service is not None and live[0] != service.providers[0]:
            seen.add("failover")
    return None


def check_transition(before: State, step: Step, effect: Effect) -> tuple[list[str], set[str]]:
    """The always-properties `step` breaks (as 'name: detail') and the witnesses it shows."""
    bad: list[str] = []
    seen: set[str] = set()
    after, events = effect.state, effect.events
    action: Action = step[-1]
    msgs: dict[int, Msg] | None = None  # built at the first route (most steps route nothing)
    for e in events:
        if e.name == "route" and e.actor is not None and e.actor.startswith("topic:"):
            topic = before.topic(e.actor[6:])
            if topic is None or not any(_alive(before, a) for a in topic.subscribers):
                bad.append(f"routing: message {e.msg} delivered to {e.actor}, no live subscriber")
        elif e.name == "route":
            assert e.msg is not None
            if msgs is None:
                msgs = _messages(before, step, events)
            to = msgs[e.msg].to
            assert to is not None
            problem = _routing(before, e, to, seen)
            if problem is not None:
                bad.append(f"routing: {problem}")
            if e.msg in msgs and msgs[e.msg].attempt > 0:
                seen.add("retry_succeeds")
        elif e.name == "resolve":
            assert e.corr is not None
            req = before.request(e.corr)
            if req is None and e.corr >= before.next_corr:  # issued by this very step
                req = after.request(e.corr)
                req = None if req is None else Request(req.corr, req.requester, 0.0, req.deadline)
            if req is None or not req.pending:
                bad.append(f"one_outcome: request {e.corr} resolved {e.detail}, not pending")
                continue
            now = after.now
            if e.detail == "replied":
                seen.add("reply_delivered")
                own = isinstance(action, Reply) and action.corr == e.corr
                replies = [e.msg for e in events if e.name == "send" and e.detail == "reply"]
                if not own or not replies or e.msg != replies[-1]:
                    bad.append(f"correlation: request {e.corr} replied by message {e.msg}")
                if req.deadline <= now:
                    bad.append(f"one_outcome: request {e.corr} replied at its deadline or later")
            elif e.detail == "timed_out":
                seen.add("request_times_out")
                if req.deadline > now:
                    bad.append(f"one_outcome: request {e.corr} timed out before its deadline")
            elif e.detail == "cancelled" and isinstance(action, Stop):
                seen.add("requester_stop_cancels")
        elif e.name == "dead_letter":
            if e.detail == "late_reply":
                seen.add("late_reply_dead_lettered")
            elif e.detail == "duplicate_reply":
                seen.add("duplicate_reply_dead_lettered")
            elif e.detail in ("dropped_newest", "dropped_oldest"):
                seen.add("message_dropped")
        elif e.name == "park":
            seen.add("message_parked")
    if isinstance(action, Dequeue):
        bad += _dequeue(before, after, action.actor, events, seen)
    resolved = [e.corr for e in events if e.name == "resolve" and e.corr is not None]
    if len(resolved) != len(set(resolved)):
        bad.append(f"one_outcome: resolved twice in one step: {sorted(resolved)}")
    if after.requests is not before.requests:  # the same records: no outcome changed
        for r in before.requests:
            now_r = after.request(r.corr)
            if r.outcome is not None and (now_r is None or now_r.outcome != r.outcome):
                bad.append(f"one_outcome: request {r.corr} changed outcome after {r.outcome}")
    bad += _conservation(before, after, events)
    for r in after.requests:
        if r.pending and not _alive(after, r.requester):
            bad.append(f"no_leak: request {r.corr} pending for stopped actor {r.requester}")
    for a in after.actors:
        if a.capacity is not None:
            size = len(a.high) + len(a.normal)  # `a.size` without a property call: hot
            if size > a.capacity:
                bad.append(f"capacity: actor {a.id} holds {size} > {a.capacity}")
            elif size == a.capacity:
                seen.add("mailbox_fills")
    return bad, seen


def _alive(s: State, actor_id: int) -> bool:
    a = s.actor(actor_id)
    return a is not None and a.alive


def _queued(s: State) -> dict[int, Msg]:
    """Every message waiting in `s`: in a mailbox, parked, or in a shared pool's queue."""
    out = {m.id: m for a in s.actors for m in a.queue}
    out |= {p.msg.id: p.msg for a in s.actors for p in a.parked}
    out |= {m.id: m for p in s.pools for m in p.queue}
    return out


def _dequeue(
    before: State, after: State, actor: int, events: tuple[Event, ...], seen: set[str]
) -> list[str]:
    """Spec 4.5, 4.7, 3.8 on one `Dequeue`: expired messages are dead-lettered and skipped,
    the message handed over is the first of its queue (own mailbox first, high before normal,
    FIFO) that has not expired, and its deadline is still ahead."""
    bad: list[str] = []
    now = after.now
    waiting = _queued(before)
    for e in events:
        msg = waiting.get(e.msg) if e.msg is not None else None
        if msg is None:
            continue
        late = msg.deadline is not None and now >= msg.deadline
        if e.name == "dead_letter" and e.detail == "expired":
            if not late:
                bad.append(f"expiry: message {msg.id} expired before its deadline {msg.deadline}")
            elif msg.kind == "tell":
                seen.add("ttl_expires")
        elif e.name == "dequeue":
            if late:
                bad.append(f"expiry: message {msg.id} dequeued at {now}, deadline {msg.deadline}")
            elif msg.kind == "tell" and msg.deadline is not None:
                seen.add("ttl_delivered")
            bad += _order(before, after, actor, msg, seen)
    return bad


def _order(before: State, after: State, actor: int, msg: Msg, seen: set[str]) -> list[str]:
    """Everything queued ahead of `msg` (the actor's own mailbox first, then the shared
    queue it came from) left in the same step: it expired."""
    own, now = before.actor(actor), after.actor(actor)
    assert own is not None and now is not None
    queues = [own.queue, *(p.queue for p in before.pools if msg in p.queue)]
    left = {m.id for m in now.queue} | {m.id for p in after.pools for m in p.queue}
    for queue in queues:
        ahead = queue[: queue.index(msg)] if msg in queue else queue
        skipped = [m.id for m in ahead if m.id in left]
        if skipped:
            return [f"dequeue_order: message {msg.id} dequeued while {skipped} waited ahead of it"]
        if msg in queue:
            if msg.high and any(not m.high and m.id < msg.id and m.id in left for m in queue):
                seen.add("high_overtakes")
            break
    return []


# The spec 7.2 counter each event kind moves (a `route` to a topic and a `replied` resolve move
# `delivered` too: spec 3.9, 5.4, 7.1).
_COUNTER = {"send": 0, "reject": 1, "dequeue": 2, "dead_letter": 3}


def _conservation(before: State, after: State, events: tuple[Event, ...]) -> list[str]:
    """Spec 7.2 on one step: the counters move by what the events show, and what was accepted
    is delivered, dead-lettered or still in flight."""
    want = [0, 0, 0, 0]  # sent, rejected, delivered, dead_lettered
    for e in events:
        i = _COUNTER.get(e.name)
        if i is not None:
            want[i] += 1
        elif (e.name == "resolve" and e.detail == "replied") or (
            e.name == "route" and e.actor is not None and e.actor.startswith("topic:")
        ):
            want[2] += 1
    got = [
        after.sent - before.sent,
        after.rejected - before.rejected,
        after.delivered - before.delivered,
        after.dead_lettered - before.dead_lettered,
    ]
    if got != want:
        names = ("sent", "rejected", "delivered", "dead_lettered")
        return [
            f"conservation: counters moved by {dict(zip(names, got, strict=True))}, "
            f"the events show {dict(zip(names, want, strict=True))}"
        ]
    accepted = got[0] - got[1]
    terminal = got[2] + got[3]
    more = _in_flight_change(before, after)
    if accepted != terminal + more:
        return [f"conservation: {accepted} accepted != {terminal} terminal + {more} more in flight"]
    return []


def _in_flight_change(before: State, after: State) -> int:
    """`after.in_flight - before.in_flight`, counted only where the step changed something:
    `apply` keeps every record it did not touch (the same object), so an actor or pool that is
    the same object holds the same messages. Hot: every explored transition runs it."""
    if len(before.actors) != len(after.actors) or len(before.pools) != len(after.pools):
        return after.in_flight - before.in_flight
    n = len(after.transit) - len(before.transit)
    for a, b in zip(before.actors, after.actors, strict=True):
        if a is not b:
            n += len(b.high) + len(b.normal) + len(b.parked)
            n -= len(a.high) + len(a.normal) + len(a.parked)
    for p, q in zip(before.pools, after.pools, strict=True):
        if p is not q:
            n += len(q.high) + len(q.normal) - len(p.high) - len(p.normal)
    if before.timers is not after.timers:
        for t in after.timers:
            if t.kind == "retry" or t.kind == "transit":
                n += 1
        for t in before.timers:
            if t.kind == "retry" or t.kind == "transit":
                n -= 1
    return n


# What discharges an obligation: any one of these actions, or time passing (None).
Discharge = tuple[Action, ...] | None


def obligations(s: State) -> dict[tuple[str, int], Discharge]:
    """Open obligations: ('request', corr) and ('message', id), each with the actions that
    discharge it (None: time passing, `Advance`): a message in a shared pool's queue is taken
    by the dequeue of any live member (spec 3.8)."""
    out: dict[tuple[str, int], Discharge] = {("request", c): None for c in s.pending()}
    for a in s.actors:
        for m in a.queue:
            out["message", m.id] = (Dequeue(a.id),)
        for p in a.parked:
            out["message", p.msg.id] = (Dequeue(a.id),) if p.timer is None else None
    for pool in s.pools:
        if pool.queue:
            takers = tuple(Dequeue(m) for m in pool.members if _alive(s, m))
            for m in pool.queue:
                out["message", m.id] = takers
    for t in s.timers:
        if t.kind in ("retry", "transit") and t.msg is not None:
            out["message", t.msg.id] = None
    return out


def discharged(obls: dict[tuple[str, int], Discharge], steps: list[Step]) -> frozenset[Any]:
    """The obligations one of whose discharging actions is among `steps` (the enabled ones)."""
    actions = {s[-1] for s in steps}
    tick = any(isinstance(a, Advance) for a in actions)
    return frozenset(
        o
        for o, acts in obls.items()
        if (tick if acts is None else any(act in actions for act in acts))
    )
