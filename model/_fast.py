"""A fast engine for conform: the model's semantics on a mutable state, changed in place.

`FastEngine` is `ModelEngine` (model/_engine.py) without the immutable records: it keeps the
state conform keeps (spec 10.5: ended requests leave it, dead letters are counted, not kept) as
small mutable objects (actors and pools by id / name in dicts, mailboxes as deques, timers as a
heap with lazy cancellation) and runs the hot operations on them natively, rule by rule as
model/_semantics.py does (each function below names the function and the spec sections it
mirrors). It must agree with `ModelEngine` on every step: result, events and state
(tests/test_fast_engine.py holds it to the model with `Shadow`).

Natively: `Tell`, `Ask`, `Reply`, `Dequeue`, `Done`, `Fire`, `Cancel`, `Arrive`, `Tick` and
`Advance`, with everything they may do: routing to every kind of address and by every pool
strategy (the log's draws asked for through `route` and `retry_at`), every backpressure mode
(parking and its timers included), priorities, TTLs, retries, transit faults, request timeouts,
late / duplicate / orphan replies, topics, broadcast copies and shared queues. Every other
action (the registry's: register, unregister, stop, restart, pools, services, topics) and any
action that already carries choices is delegated: the state is turned into a `State`, run
through `ModelEngine`, and read back (O(state), and rare).

`step` does what `ModelEngine.step` does around the action: the time check (a timer due before
the operation, or no timer due for a `Fire`, is a `Fallback`), the recall of an ended request
for a `Reply` and for a `Fire` of a reply's transit timer, and, at the end, every request the
step ended leaves the state for `memory` (in correlation order, a recalled one again), so the
memory sees the same calls in the same order. The model's `ValueError`s (a choice the strategy
cannot make, a retry time out of range, ...) and a draw the log does not give are a `Fallback`,
after which the engine's state is undefined: build a new one from the model's `State`.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from model._actions import (
    Action,
    Advance,
    Arrive,
    Ask,
    Cancel,
    Dequeue,
    Done,
    Fire,
    Reply,
    Result,
    Tell,
    Tick,
)
from model._engine import Events, Fallback, Memory, ModelEngine, RetryAt, Route
from model._semantics import (
    _ENDED_REASON,
    _FREE,
    _address,
    _check_time,
    _Refuse,
    _RouteFailed,
    checked_retry_at,
    pair_winners,
    retry_window,
    ring_owner,
    send_fields,
)
from model._state import (
    ANY_KEY,
    TRANSIENT,
    ActorState,
    Addr,
    AnyKey,
    Backpressure,
    DeadLetter,
    InTransit,
    Msg,
    MsgKind,
    OutcomeKind,
    Parked,
    PoolState,
    Request,
    Retry,
    ServiceState,
    State,
    StrategyName,
    Timer,
    TimerKind,
    TopicState,
)

_Event = tuple[str, dict[str, Any]]
# A timer as the heap holds it: Timer's fields, (when, seq) first (the state's order, spec 1.1).
_Entry = tuple[
    float, int, TimerKind, int | None, int | None, Msg | None, Retry | None, float | None
]
_Pending = tuple[int, float, float]  # a pending request: requester, issued_at, deadline
_Ended = tuple[int, float, float, OutcomeKind]  # an ended one, and how it ended

# Records are made by setting their slots (a frozen dataclass's `__init__` sets each field
# through `object.__setattr__`, twice as slow): a message is the engine's commonest record.
_new = object.__new__
_MSG_FIELDS = (
    "id", "kind", "sender", "to", "corr", "deadline", "high", "attempt", "key", "copy_of", "dup_of"
)  # fmt: skip
_SET_MSG = tuple(getattr(Msg, name).__set__ for name in _MSG_FIELDS)
# The records this module makes from its tuples, field by field, in their fields' order.
assert tuple(f.name for f in fields(Msg)) == _MSG_FIELDS
assert tuple(f.name for f in fields(Timer)) == (
    "when", "seq", "kind", "corr", "actor", "msg", "retry", "wait"
)  # fmt: skip
assert tuple(f.name for f in fields(Request)) == (
    "corr", "requester", "issued_at", "deadline", "outcome"
)  # fmt: skip


def _msg(
    msg_id: int,
    kind: MsgKind,
    sender: int | None,
    to: Addr | None,
    corr: int | None,
    deadline: float | None,
    high: bool,
    attempt: int,
    key: str | AnyKey | None,
    copy_of: int | None,
    dup_of: int | None,
) -> Msg:
    """`Msg(...)`, every field given (equal to the dataclass's own, hash included)."""
    m: Msg = _new(Msg)
    s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10 = _SET_MSG
    s0(m, msg_id)
    s1(m, kind)
    s2(m, sender)
    s3(m, to)
    s4(m, corr)
    s5(m, deadline)
    s6(m, high)
    s7(m, attempt)
    s8(m, key)
    s9(m, copy_of)
    s10(m, dup_of)
    return m


def _entry(t: Timer) -> _Entry:
    return (t.when, t.seq, t.kind, t.corr, t.actor, t.msg, t.retry, t.wait)


class _Actor:
    """`ActorState`, mutable: the mailbox's two classes as deques, `label` computed once."""

    __slots__ = (
        "alive",
        "backpressure",
        "busy",
        "capacity",
        "high",
        "id",
        "label",
        "name",
        "normal",
        "parked",
        "pools",
        "send_timeout",
        "services",
    )

    def __init__(self, a: ActorState) -> None:
        self.id = a.id
        self.name = a.name
        self.label = a.label
        self.alive = a.alive
        self.capacity = a.capacity
        self.backpressure: Backpressure = a.backpressure
        self.send_timeout = a.send_timeout
        self.high: deque[Msg] = deque(a.high)
        self.normal: deque[Msg] = deque(a.normal)
        self.parked: list[Parked] = list(a.parked)
        self.busy = a.busy
        self.services = a.services  # changed only by delegated actions: kept as tuples
        self.pools = a.pools

    def frozen(self) -> ActorState:
        return ActorState(
            self.id,
            self.name,
            self.alive,
            self.capacity,
            self.backpressure,
            self.send_timeout,
            tuple(self.high),
            tuple(self.normal),
            tuple(self.parked),
            self.busy,
            self.services,
            self.pools,
        )


class _Pool:
    """`PoolState`, mutable: the cursor and the shared queue change in place."""

    __slots__ = ("cursor", "high", "label", "members", "name", "normal", "strategy")

    def __init__(self, p: PoolState) -> None:
        self.name = p.name
        self.label = p.label
        self.strategy: StrategyName = p.strategy
        self.members = p.members  # changed only by delegated actions
        self.cursor = p.cursor
        self.high: deque[Msg] = deque(p.high)
        self.normal: deque[Msg] = deque(p.normal)

    def frozen(self) -> PoolState:
        return PoolState(
            self.name,
            self.strategy,
            self.members,
            self.cursor,
            tuple(self.high),
            tuple(self.normal),
        )


def _load(actor: _Actor) -> int:
    """Spec 3.4: queued messages plus one while working on a dequeued message."""
    return len(actor.high) + len(actor.normal) + (1 if actor.busy else 0)


class FastEngine:
    """`ModelEngine`'s steps on a mutable state (see the module docstring)."""

    def __init__(self, state: State, memory: Memory) -> None:
        self.memory = memory
        self.events: list[_Event] = []
        self.route: Route = _no_route
        self.retry_at: RetryAt = _no_retry_at
        self.id_addrs: dict[int, Addr] = {}
        self._native: dict[type[Any], Callable[[Any], Result]] = {
            Tell: self._tell,
            Ask: self._ask,
            Reply: self._reply,
            Dequeue: self._dequeue,
            Done: self._done,
            Fire: self._fire_next,
            Cancel: self._cancel,
            Arrive: self._arrive_delayed,
            Tick: self._tick,
            Advance: self._advance,
        }
        self._read(state)

    # -- State in, State out (O(state)) ------------------------------------------------------

    def _read(self, s: State) -> None:
        self.now = s.now
        self.actors: dict[int, _Actor] = {a.id: _Actor(a) for a in s.actors}  # by id, in order
        self.names: dict[str, _Actor] = {
            a.name: a for a in self.actors.values() if a.name is not None
        }
        self.services: tuple[ServiceState, ...] = s.services  # only delegated actions change them
        self.topics: dict[str, TopicState] = {t.name: t for t in s.topics}
        self.topic_order = s.topics
        self.pools: dict[str, _Pool] = {p.name: _Pool(p) for p in s.pools}
        self.providers: dict[str, tuple[int, ...]] = {x.name: x.providers for x in s.services}
        # Requests: the pending ones by corr; those ended during the step (or given ended) wait
        # in `ended` until the step's end, when they leave the state for `memory`.
        self.requests: dict[int, _Pending] = {
            r.corr: (r.requester, r.issued_at, r.deadline) for r in s.requests if r.pending
        }
        self.ended: dict[int, _Ended] = {
            r.corr: (r.requester, r.issued_at, r.deadline, r.outcome)
            for r in s.requests
            if r.outcome is not None
        }
        # Timers: a heap of entries, in (when, seq) order, the state's (spec 1.1: a timer goes
        # after every timer due at or before its time, and seqs only grow). A cancelled timer
        # stays in the heap, its seq in `cancelled`, until it reaches the top.
        self.timers: list[_Entry] = [_entry(t) for t in s.timers]
        heapq.heapify(self.timers)
        self.cancelled: set[int] = set()
        self.timeouts: dict[int, int] = {  # spec 5.1: corr -> the seq of its timeout timer
            t.corr: t.seq for t in s.timers if t.kind == "timeout" and t.corr is not None
        }
        self.next_actor = s.next_actor
        self.next_msg = s.next_msg
        self.next_corr = s.next_corr
        self.next_seq = s.next_seq
        self.sent = s.sent
        self.rejected = s.rejected
        self.delivered = s.delivered
        self.dead_lettered = s.dead_lettered
        self.retries = s.retries
        self.dead_letters: tuple[DeadLetter, ...] = s.dead_letters
        self.transit: list[InTransit] = list(s.transit)

    def state(self) -> State:
        requests = [Request(corr, *r) for corr, r in self.requests.items()]
        requests += [Request(corr, *r) for corr, r in self.ended.items()]
        requests.sort(key=_corr)
        timers = sorted(e for e in self.timers if e[1] not in self.cancelled)
        return State(
            now=self.now,
            actors=tuple(a.frozen() for a in self.actors.values()),
            services=self.services,
            pools=tuple(p.frozen() for p in self.pools.values()),
            topics=self.topic_order,
            requests=tuple(requests),
            timers=tuple(Timer(*e) for e in timers),
            next_actor=self.next_actor,
            next_msg=self.next_msg,
            next_corr=self.next_corr,
            next_seq=self.next_seq,
            sent=self.sent,
            rejected=self.rejected,
            delivered=self.delivered,
            dead_lettered=self.dead_lettered,
            retries=self.retries,
            dead_letters=self.dead_letters,
            transit=tuple(self.transit),
        )

    # -- a step (as ModelEngine.step) --------------------------------------------------------

    def step(
        self, t: float, action: Action, route: Route, retry_at: RetryAt
    ) -> tuple[Result, Events]:
        kind = type(action)
        handler = self._native.get(kind)
        if handler is None or (
            kind in _DRAWN and (action.choices or action.retry_at)  # type: ignore[union-attr]
        ):
            return self._delegate(t, action, route, retry_at)
        if t != self.now:  # spec 1.5: time moves on only past timers that fired
            first = self._first()
            if first is not None and first[0] < t:
                raise Fallback("a timer was due before the operation")
            self.now = t
        if kind is Fire:
            first = self._first()
            if first is None or first[0] != t:
                raise Fallback("no timer due at the operation's time")
            msg = first[5]
            if msg is not None and msg.kind == "reply" and msg.corr:
                self._recall(msg.corr)
        elif kind is Reply:
            self._recall(action.corr)  # type: ignore[union-attr]
        events: list[_Event] = []
        self.events = events
        self.route, self.retry_at = route, retry_at
        try:
            result = handler(action)
        except _Refuse as refused:  # raised before any change (spec 2.6)
            result, events = refused.refused(), []
        except ValueError as err:
            raise Fallback(str(err)) from None
        if self.ended:
            for corr in sorted(self.ended):
                r = self.ended[corr]
                self.memory.remember(corr, r[0], r[3])
            self.ended = {}
        if self.dead_letters:
            self.dead_letters = ()
        return result, events

    def _delegate(
        self, t: float, action: Action, route: Route, retry_at: RetryAt
    ) -> tuple[Result, Events]:
        """A rare action: run by the model itself on the state as a `State`, then read back."""
        model = ModelEngine(self.state(), self.memory)
        out = model.step(t, action, route, retry_at)
        self._read(model.state())
        return out

    def _recall(self, corr: int) -> None:
        """ModelEngine._recall: an ended request is back for a reply to it."""
        fate = self.memory.recall(corr)
        if fate is not None and corr not in self.requests and corr not in self.ended:
            self.ended[corr] = (fate[0], 0.0, 0.0, fate[1])

    # -- small parts (_Step's) ---------------------------------------------------------------

    def _actor(self, actor_id: int) -> _Actor:
        found = self.actors.get(actor_id)
        if found is None:
            raise _Refuse("actor_not_found", address=f"id:{actor_id}", within=None)
        return found

    def _first(self) -> _Entry | None:
        """The first live timer (cancelled ones on top are dropped)."""
        heap, cancelled = self.timers, self.cancelled
        while heap:
            seq = heap[0][1]
            if seq in cancelled:
                heapq.heappop(heap)
                cancelled.discard(seq)
                continue
            return heap[0]
        return None

    def _schedule(
        self,
        when: float,
        kind: TimerKind,
        corr: int | None = None,
        actor: int | None = None,
        msg: Msg | None = None,
        retry: Retry | None = None,
        wait: float | None = None,
    ) -> int:
        """Spec 1.1 (`_Step.schedule`): a timer at `when`; its seq."""
        seq = self.next_seq
        self.next_seq = seq + 1
        heapq.heappush(self.timers, (when, seq, kind, corr, actor, msg, retry, wait))
        return seq

    def _send_event(self, msg: Msg) -> None:
        """Spec 9.4 `send` (`send_fields`, the model's own)."""
        sender = self.actors.get(msg.sender) if msg.sender is not None else None
        self.events.append(("send", send_fields(msg, sender.label if sender is not None else None)))

    def _dead_letter(self, msg: Msg, reason: str) -> None:
        """Spec 7.1, 7.5: counted, not kept (spec 10.5)."""
        self.dead_lettered += 1
        self.events.append(("dead_letter", {"msg": msg.id, "reason": reason}))

    def _id_addr(self, actor_id: int) -> Addr:
        """`Addr("id", str(actor_id))`, made once per actor id."""
        addr = self.id_addrs.get(actor_id)
        if addr is None:
            addr = self.id_addrs[actor_id] = Addr("id", str(actor_id))
        return addr

    def _new_msg_id(self) -> int:
        msg = self.next_msg
        self.next_msg = msg + 1
        return msg

    # -- sending (spec 4, 5.1, 6, 7: _tell, _ask, _reply, _send, _arrive) --------------------

    def _tell(self, a: Tell) -> Result:
        """Spec 4.7 (deadline = timestamp + ttl), 6, 7.3 (a refused tell raises)."""
        if a.sender is not None:
            self._actor(a.sender)
        if a.ttl is not None:
            _check_time(a.ttl, "ttl")
        to = _address(a.to)
        if a.send_timeout is not None:
            _check_time(a.send_timeout, "send_timeout")
        deadline = None
        if a.ttl is not None:
            deadline = (a.timestamp if a.timestamp is not None else self.now) + a.ttl
        msg_id = self._new_msg_id()
        msg = _msg(msg_id, "tell", a.sender, to, None, deadline, a.high, 0, a.key, None, None)
        failed = self._send(msg, a.retry, a.send_timeout, a)
        return failed.refused() if failed is not None else msg.id

    def _ask(self, a: Ask) -> Result:
        """Spec 5.1 (pending entry and timer before routing), 5.10 (misuse creates nothing)."""
        _check_time(a.timeout, "timeout")
        to = _address(a.to)
        if a.send_timeout is not None:
            _check_time(a.send_timeout, "send_timeout")
        if not self._actor(a.sender).alive:
            raise _Refuse("actor_not_found", address=f"id:{a.sender}", within=None)
        now = self.now
        corr = self.next_corr
        deadline = now + a.timeout
        self.requests[corr] = (a.sender, now, deadline)
        self.next_corr = corr + 1
        self.timeouts[corr] = self._schedule(deadline, "timeout", corr)
        msg_id = self._new_msg_id()
        msg = _msg(msg_id, "request", a.sender, to, corr, deadline, a.high, 0, a.key, None, None)
        self._send(msg, a.retry, a.send_timeout, a)
        return corr

    def _reply(self, a: Reply) -> Result:
        """Spec 5.4: a reply goes to the requester, not through a mailbox."""
        if a.sender is not None:
            self._actor(a.sender)
        req = self.requests.get(a.corr) or self.ended.get(a.corr)
        to = self._id_addr(req[0]) if req is not None else None
        msg = _msg(
            self._new_msg_id(), "reply", a.sender, to, a.corr, None, False, 0, None, None, None
        )
        self._send(msg, None, None, a)
        return msg.id

    def _send(
        self, msg: Msg, retry: Retry | None, wait: float | None, net: Tell | Ask | Reply
    ) -> _RouteFailed | None:
        """Spec 7.2, 7.4 (`_send`): counted, then duplicated, dropped or delayed as `net` says."""
        self.sent += 1
        self._send_event(msg)
        if net.duplicate is not False and not net.drop:
            m = msg
            dup = _msg(
                self._new_msg_id(), m.kind, m.sender, m.to, m.corr, m.deadline, m.high, 0, m.key,
                m.copy_of, m.id,
            )  # fmt: skip
            self.sent += 1
            self._send_event(dup)
            if net.duplicate is True:
                self.transit.append(InTransit(dup))
            else:
                self._schedule(self.now + net.duplicate, "transit", msg=dup)
        if net.drop:
            self._dead_letter(msg, "dropped_in_transit")
            return None
        if net.delay is True:
            self.transit.append(InTransit(msg, retry, wait))
            return None
        if net.delay is not False and net.delay > 0.0:
            self._schedule(self.now + net.delay, "transit", msg=msg, retry=retry, wait=wait)
            return None
        return self._arrive(msg, retry, wait, True)

    def _arrive(
        self, msg: Msg, retry: Retry | None, wait: float | None, sync: bool
    ) -> _RouteFailed | None:
        """Spec 4.2 to 4.4 (`_arrive`): route, then enqueue, or apply the backpressure."""
        if msg.kind == "reply":
            self._arrive_reply(msg)
            return None
        to = msg.to
        assert to is not None
        if to.kind == "topic":
            self._publish(msg)
            return None
        try:
            target = self._resolve_address(msg)
        except _RouteFailed as failed:
            return self._fail(msg, failed, retry, wait, sync)
        self.events.append(("route", {"msg": msg.id, "actor": target.label}))
        if isinstance(target, _Pool):  # spec 3.8: into the shared queue, unbounded
            self._enqueue_shared(target, msg)
            return None
        actor = target
        if to.kind == "pool":
            pool = self.pools.get(to.value)
            if pool is not None and pool.strategy == "broadcast":  # spec 3.7
                self._send_copies(msg, tuple(m for m in pool.members if m != actor.id))
        if actor.capacity is not None and len(actor.high) + len(actor.normal) >= actor.capacity:
            bp = actor.backpressure
            if bp == "reject":
                full = _RouteFailed("mailbox_full", actor=actor.label, capacity=actor.capacity)
                return self._fail(msg, full, retry, wait, sync)
            if bp == "drop_newest":
                self._dead_letter(msg, "dropped_newest")
                return None
            if bp == "block":
                self._park(actor, msg, wait)
                return None
            # drop_oldest: the oldest message of the lowest class present (normal below high)
            victim = actor.normal.popleft() if actor.normal else actor.high.popleft()
            self._dead_letter(victim, "dropped_oldest")
        self._enqueue(actor, msg)
        return None

    def _enqueue(self, actor: _Actor, msg: Msg) -> None:
        """Spec 4.5: into its priority class, FIFO."""
        (actor.high if msg.high else actor.normal).append(msg)
        depth = len(actor.high) + len(actor.normal)
        self.events.append(("enqueue", {"msg": msg.id, "actor": actor.label, "depth": depth}))

    def _enqueue_shared(self, pool: _Pool, msg: Msg) -> None:
        """Spec 3.8, 4.5: the pool's one queue, two classes, FIFO."""
        (pool.high if msg.high else pool.normal).append(msg)
        depth = len(pool.high) + len(pool.normal)
        self.events.append(("enqueue", {"msg": msg.id, "actor": pool.label, "depth": depth}))

    def _park(self, actor: _Actor, msg: Msg, wait: float | None) -> None:
        """Spec 4.4 `block`: wait for room, at most the send's own timeout, else the mailbox's."""
        wait = wait if wait is not None else actor.send_timeout
        timer = None
        if wait is not None:
            timer = self._schedule(self.now + wait, "park", actor=actor.id, msg=msg)
        actor.parked.append(Parked(msg, timer))
        self.events.append(("park", {"msg": msg.id, "actor": actor.label}))

    def _publish(self, msg: Msg) -> None:
        """Spec 3.9: a live subscriber gets a copy; none: dead-lettered `no_subscribers`."""
        assert msg.to is not None
        topic = self.topics.get(msg.to.value)
        actors = self.actors
        if topic is None or not any(actors[x].alive for x in topic.subscribers):
            self._dead_letter(msg, "no_subscribers")
            return
        self.events.append(("route", {"msg": msg.id, "actor": topic.label}))
        self.delivered += 1
        self._send_copies(msg, topic.subscribers)

    def _send_copies(self, msg: Msg, to: tuple[int, ...]) -> None:
        """Spec 3.7, 3.9: each live actor of `to`, in order, gets its own copy at once."""
        for actor_id in to:
            if not self.actors[actor_id].alive:
                continue
            m = msg  # a copy of a duplicate is a copy (no dup_of)
            copy = _msg(
                self._new_msg_id(), m.kind, m.sender, self._id_addr(actor_id), m.corr, m.deadline,
                m.high, 0, m.key, m.id, None,
            )  # fmt: skip
            self.sent += 1
            self._send_event(copy)
            self._arrive(copy, None, None, False)

    # -- resolution (spec 2.5, 3: _resolve_address, _choose) ---------------------------------

    def _resolve_address(self, msg: Msg) -> _Actor | _Pool:
        """Spec 2.5: the actor a message reaches now (moves round robin's cursor), or a shared
        pool (spec 3.8)."""
        to = msg.to
        assert to is not None
        kind = to.kind
        if kind == "pool":
            pool = self.pools.get(to.value)
            if pool is None:
                raise _RouteFailed("pool_not_found", pool=to.value)
            if pool.strategy == "shared":
                if not any(self.actors[m].alive for m in pool.members):
                    raise _RouteFailed("pool_empty", pool=to.value)
                return pool
            return self.actors[self._choose(pool, msg)]
        if kind == "service":
            for provider in self.providers.get(to.value, ()):
                actor = self.actors[provider]
                if actor.alive:
                    return actor
            raise _RouteFailed("service_unavailable", service=to.value)
        found = self.actors.get(int(to.value)) if kind == "id" else self.names.get(to.value)
        if found is None:
            raise _RouteFailed("actor_not_found", address=str(to), within=None)
        if not found.alive:
            raise _RouteFailed("mailbox_closed", address=str(to))
        return found

    def _choose(self, pool: _Pool, msg: Msg) -> int:
        """Spec 3.1 to 3.7: a live member chosen by the pool's strategy."""
        strategy = pool.strategy
        actors = self.actors
        if strategy == "least_loaded":  # spec 3.4: the least load, the first of equal loads
            best: _Actor | None = None
            least = 0
            for m in pool.members:
                actor = actors[m]
                if actor.alive:
                    load = len(actor.high) + len(actor.normal) + (1 if actor.busy else 0)
                    if best is None or load < least:
                        best, least = actor, load
            if best is None:
                raise _RouteFailed("pool_empty", pool=pool.name)
            return best.id
        members = [actors[m] for m in pool.members]
        live = [m for m in members if m.alive]
        if not live:
            raise _RouteFailed("pool_empty", pool=pool.name)
        if strategy == "round_robin":  # spec 3.2.1
            n = len(members)
            for k in range(n):
                i = (pool.cursor + k) % n
                if members[i].alive:
                    pool.cursor = (i + 1) % n
                    return members[i].id
        if strategy == "random":  # spec 3.3: the choice is the log's
            return self._chosen(pool, msg, tuple(m.id for m in live))
        if strategy == "power_of_two":  # spec 3.5
            return self._chosen(
                pool, msg, pair_winners([m.id for m in live], list(map(_load, live)))
            )
        if strategy == "consistent_hash":  # spec 3.6
            if msg.key is None:
                raise _RouteFailed("route_error", address=f"pool:{pool.name}", reason=_FREE)
            if msg.key is ANY_KEY:
                return self._chosen(pool, msg, tuple(m.id for m in live))
            assert isinstance(msg.key, str)
            return ring_owner(tuple(m.label for m in members), members, msg.key)
        # spec 3.7 broadcast: the original goes to the first live member
        return live[0].id

    def _chosen(self, pool: _Pool, msg: Msg, allowed: tuple[int, ...]) -> int:
        """The member the log routes `msg` to (ModelEngine: the registered actor of that
        label), which must be one the strategy may choose (the model's ValueError)."""
        label = self.route(msg.id)
        found = self._labelled(label) if label is not None else None
        if found is None:
            raise Fallback("no route in the log to a registered actor")
        if found not in allowed:
            raise ValueError(
                f"choice {found} for message {msg.id} is not a member {pool.name} "
                f"({pool.strategy}) may choose: {allowed}"
            )
        return found

    def _labelled(self, label: str) -> int | None:
        """The first registered actor (by id) whose label is `label`. A name has no colon,
        so a label `id:N` names the unnamed actor N, any other the actor of that name."""
        if label.startswith("id:"):
            try:
                found = self.actors.get(int(label[3:]))
            except ValueError:
                return None
            return found.id if found is not None and found.label == label else None
        named = self.names.get(label)
        return named.id if named is not None else None

    # -- failure (spec 5.9, 6.2 to 6.5: _fail, _fail_request, _retry_time) ------------------

    def _fail(
        self,
        msg: Msg,
        failed: _RouteFailed,
        retry: Retry | None,
        wait: float | None,
        sync: bool,
    ) -> _RouteFailed | None:
        """Spec 6.3 to 6.5, 5.9: retry a transient failure before the deadline, else give up."""
        code = failed.code
        if code in TRANSIENT and retry is not None and msg.attempt + 1 < retry.max_attempts:
            at = self._retry_time(msg, retry)
            if msg.deadline is None or at < msg.deadline:  # spec 6.4
                m = msg
                again = _msg(
                    m.id, m.kind, m.sender, m.to, m.corr, m.deadline, m.high, m.attempt + 1,
                    m.key, m.copy_of, m.dup_of,
                )  # fmt: skip
                self.retries += 1
                self.events.append(("retry", {"msg": msg.id, "attempt": again.attempt, "at": at}))
                self._schedule(at, "retry", msg=again, retry=retry, wait=wait)
                return None
        if sync:
            self.rejected += 1
            self.events.append(("reject", {"msg": msg.id, "error": code}))
        else:
            self._dead_letter(msg, code)
        if msg.kind == "request":
            self._fail_request(msg)
            return None
        return failed if sync else None

    def _fail_request(self, msg: Msg) -> None:
        """Spec 5.9, 6.5, 4.4: only the request's own message fails its request."""
        if msg.kind != "request" or msg.copy_of is not None or msg.dup_of is not None:
            return
        assert msg.corr is not None
        if msg.corr in self.requests:
            self._resolve(msg.corr, "failed")

    def _retry_time(self, msg: Msg, retry: Retry) -> float:
        """Spec 6.2 (`_retry_time`): with jitter, the log's `retry_at` says (inf: no retry)."""
        wait = retry.wait(msg.attempt + 1)
        now = self.now
        if not retry.jitter:
            return now + wait
        low, high, slack = retry_window(now, wait, retry.jitter)
        if msg.deadline is not None and low - slack >= msg.deadline:
            return high
        return checked_retry_at(msg, self.retry_at(msg.id), low, high, slack)

    # -- requests (spec 5: _arrive_reply, _resolve, _cancel) ---------------------------------

    def _arrive_reply(self, msg: Msg) -> None:
        """Spec 5.4 to 5.6: resolve the request before its (exclusive) deadline, else
        dead-letter."""
        corr = msg.corr
        assert corr is not None
        req = self.requests.get(corr)
        if req is None:
            ended = self.ended.get(corr)
            if ended is None:
                self._dead_letter(msg, "unknown_correlation")
            else:
                self._dead_letter(msg, _ENDED_REASON[ended[3]])
        elif self.now >= req[2]:
            self._resolve(corr, "timed_out")
            self._dead_letter(msg, "late_reply")
        else:
            self.delivered += 1
            self._resolve(corr, "replied", msg.id)

    def _resolve(self, corr: int, outcome: OutcomeKind, reply: int | None = None) -> None:
        """Spec 5.3: exactly one outcome; the entry and its timer are gone afterwards."""
        req = self.requests.pop(corr)
        self.ended[corr] = (req[0], req[1], req[2], outcome)
        seq = self.timeouts.pop(corr, None)
        if seq is not None:
            self.cancelled.add(seq)
        requester = self.actors.get(req[0])
        label = requester.label if requester is not None else f"id:{req[0]}"
        fields = {"corr": corr, "outcome": outcome, "requester": label, "msg": reply}
        self.events.append(("resolve", fields))

    def _cancel(self, a: Cancel) -> Result:
        """Spec 5.7."""
        if a.corr not in self.requests:
            return False
        self._resolve(a.corr, "cancelled")
        return True

    # -- the actor's side (spec 3.4, 3.8, 4.4, 4.5, 4.7, 4.8: _dequeue, _done) ---------------

    def _dequeue(self, a: Dequeue) -> Result:
        """Spec 4.5 order, 4.4 unpark into the freed slot, 4.7 expiry at dequeue, 4.8 stopped,
        3.8 an empty mailbox pulls from the actor's shared pools."""
        actor = self._actor(a.actor)
        actor.busy = False
        if not actor.alive:
            return None
        while True:
            if actor.high or actor.normal:
                msg = actor.high.popleft() if actor.high else actor.normal.popleft()
                if actor.parked:
                    first = actor.parked.pop(0)
                    if first.timer is not None:
                        self.cancelled.add(first.timer)
                    self._enqueue(actor, first.msg)
            else:
                pulled = self._pull_shared(actor)
                if pulled is None:
                    return None
                msg = pulled
            if msg.deadline is not None and self.now >= msg.deadline:
                self._dead_letter(msg, "expired")
                continue
            actor.busy = True
            self.delivered += 1
            self.events.append(("dequeue", {"msg": msg.id, "actor": actor.label}))
            return msg

    def _pull_shared(self, actor: _Actor) -> Msg | None:
        """Spec 3.8: the oldest message (high first) of the first shared pool, in join order."""
        for name in actor.pools:
            pool = self.pools[name]
            if pool.strategy != "shared" or not (pool.high or pool.normal):
                continue
            return pool.high.popleft() if pool.high else pool.normal.popleft()
        return None

    def _done(self, a: Done) -> Result:
        """Spec 3.4: the actor no longer counts the message it worked on."""
        self._actor(a.actor).busy = False
        return None

    # -- time (spec 1.1, 4.4, 5.5, 6.3, 7.4: _fire_next, _advance, _tick, _fire) -------------

    def _fire_next(self, a: Fire) -> Result:
        """Spec 1.1: the earliest timer runs at its time (`step` checked it is due now)."""
        timer = heapq.heappop(self.timers)  # live: `step` dropped the cancelled on top
        self.now = timer[0]
        self._fire(timer)
        return None

    def _advance(self, a: Advance) -> Result:
        """Spec 1.1: run every timer due at or before `a.to` in (when, seq) order."""
        if not a.to >= self.now:
            raise ValueError(f"cannot advance from {self.now} back to {a.to}")
        while (first := self._first()) is not None and first[0] <= a.to:
            heapq.heappop(self.timers)
            self.now = first[0]
            self._fire(first)
        self.now = a.to
        return None

    def _tick(self, a: Tick) -> Result:
        """Time passes to `a.to`; nothing may fall due strictly before it."""
        if not a.to >= self.now:
            raise ValueError(f"cannot advance from {self.now} back to {a.to}")
        first = self._first()
        if first is not None and first[0] < a.to:
            raise ValueError(f"a timer is due at {first[0]!r}, before {a.to!r}")
        self.now = a.to
        return None

    def _arrive_delayed(self, a: Arrive) -> Result:
        """Spec 7.4: a delayed message reaches the broker, after the send call returned."""
        at = next((i for i, x in enumerate(self.transit) if x.msg.id == a.msg), None)
        if at is None:
            raise ValueError(f"message {a.msg} is not in transit")
        found = self.transit.pop(at)
        self._arrive(found.msg, found.retry, found.wait, False)
        return None

    def _fire(self, timer: _Entry) -> None:
        """A due timer: a request timeout (5.5), a send timeout (4.4, 5.9, 6.5), a retry (6.3)
        or a delayed arrival (7.4)."""
        _when, seq, kind, corr, actor_id, msg, retry, wait = timer
        if kind == "timeout":
            assert corr is not None
            if self.timeouts.get(corr) == seq:
                del self.timeouts[corr]
            if corr in self.requests:
                self._resolve(corr, "timed_out")
        elif kind == "park":
            assert actor_id is not None
            actor = self.actors.get(actor_id)
            if actor is None:  # never so: a stop or unregister cancels its park timers
                raise Fallback(f"a park timer of actor {actor_id}, not registered")
            gone = [p for p in actor.parked if p.timer == seq]
            actor.parked = [p for p in actor.parked if p.timer != seq]
            for p in gone:
                self._dead_letter(p.msg, "send_timeout")
                self._fail_request(p.msg)
        else:
            assert msg is not None
            self._arrive(msg, retry, wait, False)


# The actions that may carry the log's draws (`choices`, `retry_at`): given, they are the model's.
_DRAWN = frozenset({Tell, Ask, Fire, Arrive, Advance})


def _corr(r: Request) -> int:
    return r.corr


def _no_route(msg: int) -> str | None:
    return None


def _no_retry_at(msg: int) -> float:
    return math.inf
