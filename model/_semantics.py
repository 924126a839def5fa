"""The transition function: docs/spec.md as code. `apply(state, action)` is the whole semantics.

How a step is computed: `apply` opens a `_Step` (the state being built, the events emitted so far,
the `random` choices not yet consumed), runs the action's handler, and returns the new state with
the handler's result and events. Handlers validate everything before changing anything, so a
`Refused` result leaves the state as it was (spec 2.6) -- except a send refused by routing or
backpressure, which spec 7.3 counts as sent and rejected.

The life of a message, as in the broker: send -> (dropped in transit) -> arrive -> route ->
enqueue / park / drop / fail (retry, reject or dead letter) -> dequeue (or expire). A message to a
topic is delivered to the topic itself on arrival, and each live subscriber gets its own copy
(spec 3.9), which lives on as any message.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol, TypeVar, cast

from model._actions import (
    Action,
    Advance,
    Arrive,
    Ask,
    Cancel,
    CreatePool,
    Dequeue,
    Done,
    Event,
    Fire,
    Join,
    Leave,
    NeedChoice,
    NeedRetryAt,
    Provide,
    Refused,
    Register,
    Reply,
    Restart,
    Result,
    Stop,
    Subscribe,
    Tell,
    Tick,
    Unregister,
    Unsubscribe,
    own_event,
)
from model._state import (
    ANY_KEY,
    BACKPRESSURES,
    NAME,
    STRATEGIES,
    TRANSIENT,
    ActorState,
    Addr,
    DeadLetter,
    InTransit,
    Msg,
    OutcomeKind,
    Parked,
    PoolState,
    Request,
    Retry,
    ServiceState,
    State,
    Timer,
    TopicState,
)

# Spec 7.5: every reason a message may be dead-lettered for, the error codes of 6.5 included.
_DEAD_LETTER_REASONS = frozenset(
    {
        "actor_stopped",
        "dropped_newest",
        "dropped_oldest",
        "send_timeout",
        "expired",
        "late_reply",
        "duplicate_reply",
        "orphan_reply",
        "unknown_correlation",
        "dropped_in_transit",
        "no_subscribers",
        "mailbox_full",
        "pool_empty",
        "service_unavailable",
        "actor_not_found",
        "mailbox_closed",
        "pool_not_found",
        "route_error",
    }
)

# Spec 5.6: why a reply to an ended request is dead-lettered, by how the request ended.
_ENDED_REASON: dict[OutcomeKind, str] = {
    "replied": "duplicate_reply",
    "timed_out": "late_reply",
    "cancelled": "orphan_reply",
    "failed": "orphan_reply",
}


@dataclass(frozen=True, slots=True)
class Effect:
    """What one action did: the next state, the operation's result and the events, in order."""

    state: State
    result: Result
    events: tuple[Event, ...]


class _Coded(Exception):
    """A failure named by its error code and the fields of spec 8.4 (in the spec's order)."""

    def __init__(self, code: str, **fields: Any) -> None:
        super().__init__(code)
        self.code = code
        self.fields: tuple[tuple[str, Any], ...] = tuple(fields.items())

    def refused(self) -> Refused:
        return Refused(self.code, self.fields)


# A field of spec 8.4 that is free text (`expected`, `reason`): a port words it as it likes.
_FREE = "..."


class _Refuse(_Coded):
    """The operation is refused and changes nothing (spec 2.6, 8): `apply` returns `Refused`."""


_R = TypeVar("_R")
_set = object.__setattr__  # how a fresh record is filled before it escapes (see `_Step`)


def _copier(cls: type[_R]) -> Callable[[_R], _R]:
    """A function that makes a field-for-field copy of a `cls` record (a frozen slotted
    dataclass), to be changed in place before anyone else sees it. It is written out field by
    field, as `dataclasses` writes `__init__`: a copy is the model's most frequent operation."""
    lines = [f"    _set(new, {f.name!r}, old.{f.name})" for f in fields(cast(Any, cls))]
    namespace: dict[str, Any] = {"_new": object.__new__, "_set": _set, "cls": cls}
    exec("\n".join(["def copy(old):", "    new = _new(cls)", *lines, "    return new"]), namespace)
    return cast(Callable[[_R], _R], namespace["copy"])


_COPIERS: dict[type, Callable[[Any], Any]] = {}
_copy_state = _copier(State)


def _replace(record: _R, **changes: Any) -> _R:
    """`dataclasses.replace` for the model's records (frozen, every field an init argument),
    without its per-call checks: a new record of the same type, `changes` applied."""
    copy = _COPIERS.get(type(record))
    if copy is None:
        copy = _COPIERS[type(record)] = _copier(type(record))
    new = copy(record)
    for name, value in changes.items():
        _set(new, name, value)
    return cast(_R, new)


def send_fields(msg: Msg, sender: str | None) -> dict[str, Any]:
    """Spec 9.4 `send`'s fields (the sender's label given): the optional ones only where they
    apply."""
    fields: dict[str, Any] = {
        "msg": msg.id,
        "from": sender,
        "to": f"{msg.to.kind}:{msg.to.value}" if msg.to is not None else None,
        "kind": msg.kind,
    }
    if msg.corr is not None:
        fields["corr"] = msg.corr
    if msg.kind == "request":
        fields["deadline"] = msg.deadline
    if isinstance(msg.key, str):
        fields["key"] = msg.key
    if msg.dup_of is not None:
        fields["dup_of"] = msg.dup_of
    if msg.copy_of is not None:
        fields["copy_of"] = msg.copy_of
    return fields


def _when(timer: Timer) -> float:
    return timer.when


class _Step:
    """The state under construction during one `apply`; never escapes it.

    `s` is the state as it stands: the `State` given while nothing changed; at the first
    change, a fresh copy that `update` fills in place (it is frozen only to the outside: no
    one else sees it before `apply` returns it), so a step makes one new `State`, not one per
    change."""

    __slots__ = ("choices", "events", "fresh", "retry_at", "s")

    def __init__(self, state: State, choices: tuple[int, ...], retry_at: tuple[float, ...]) -> None:
        self.s = state
        self.fresh = False
        self.events: list[Event] = []
        self.choices = list(choices)
        self.retry_at = list(retry_at)

    def emit(self, kind: str, /, **fields: Any) -> None:
        """An event, with every field of its kind (docs/spec.md 9.4; a list as a tuple)."""
        self.events.append(own_event(kind, fields))

    def label(self, actor_id: int | None) -> str | None:
        """How events name a registered actor (None: none, or not registered)."""
        found = self.s.actor(actor_id) if actor_id is not None else None
        return found.label if found is not None else None

    def send_event(self, msg: Msg) -> None:
        self.events.append(own_event("send", send_fields(msg, self.label(msg.sender))))

    def update(self, **changes: Any) -> None:
        if not self.fresh:
            self.s, self.fresh = _copy_state(self.s), True
        for name, value in changes.items():
            _set(self.s, name, value)

    def actor(self, actor_id: int) -> ActorState:
        for found in self.s.actors:  # `State.actor`, inlined: the model's commonest look-up
            if found.id == actor_id:
                return found
        raise _Refuse("actor_not_found", address=f"id:{actor_id}", within=None)

    # The `put_` methods put a changed record in place of the one it changes (always there).

    def put_actor(self, actor: ActorState) -> None:
        actors = self.s.actors
        for i, a in enumerate(actors):  # a loop, not `next(...)`: nearly every step comes here
            if a.id == actor.id:
                self.update(actors=(*actors[:i], actor, *actors[i + 1 :]))
                return
        raise AssertionError(f"no actor {actor.id} to put")

    def put_pool(self, pool: PoolState) -> None:
        pools = self.s.pools
        for i, p in enumerate(pools):
            if p.name == pool.name:
                self.update(pools=(*pools[:i], pool, *pools[i + 1 :]))
                return
        raise AssertionError(f"no pool {pool.name} to put")

    def put_topic(self, topic: TopicState) -> None:
        self.update(topics=tuple(topic if t.name == topic.name else t for t in self.s.topics))

    def put_request(self, req: Request) -> None:
        self.update(requests=tuple(req if r.corr == req.corr else r for r in self.s.requests))

    def schedule(self, when: float, kind: Any, **fields: Any) -> int:
        """Spec 1.1: a timer at `when`, after every timer already due at or before `when`."""
        seq = self.s.next_seq
        timer = Timer(when, seq, kind, **fields)
        timers = self.s.timers
        at = bisect.bisect_right(timers, when, key=_when)
        self.update(timers=(*timers[:at], timer, *timers[at:]), next_seq=seq + 1)
        return seq

    def cancel_timer(self, seq: int) -> None:
        self.update(timers=tuple(t for t in self.s.timers if t.seq != seq))

    def dead_letter(self, msg: Msg, reason: str) -> None:
        """Spec 7.1, 7.5: one terminal state with one reason."""
        assert reason in _DEAD_LETTER_REASONS, reason
        self.update(
            dead_lettered=self.s.dead_lettered + 1,
            dead_letters=(*self.s.dead_letters, DeadLetter(msg.id, reason)),
        )
        self.emit("dead_letter", msg=msg.id, reason=reason)

    def new_msg_id(self) -> int:
        msg = self.s.next_msg
        self.update(next_msg=msg + 1)
        return msg


# -- checks (spec 2.2, 4.1, 4.3, 8.3) --------------------------------------------------------


def _check_name(value: str) -> None:
    """Spec 2.2: a name is one or more of `A-Z a-z 0-9 _ . - / @ +`."""
    if NAME.fullmatch(value) is None:
        raise _Refuse("invalid_address", value=value, expected=_FREE)


def _address(to: Addr | str) -> Addr:
    """Spec 2.2, 2.3: the address of a `kind:value` text (an `Addr` is taken as given)."""
    if isinstance(to, Addr):
        return to
    parsed = _parse_address(to)
    if parsed is None:
        raise _Refuse("invalid_address", value=to, expected=_FREE)
    return parsed


# A run sends to a few addresses many times: each text is parsed once (an `Addr` is a value).
_parse_address = functools.lru_cache(maxsize=256)(Addr.parse)


def _check_time(value: float | None, field: str) -> None:
    """Spec 8.3: a timeout / TTL is a finite number > 0."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise _Refuse("invalid_config", field=field, value=value, expected=_FREE)


# -- registry (spec 2) -----------------------------------------------------------------------


def _register(st: _Step, a: Register) -> Result:
    """Spec 2.6 (every check before any change), 4.1, 4.3."""
    _check_time(a.send_timeout, "send_timeout")
    if a.capacity is not None and a.capacity < 1:
        raise _Refuse("invalid_config", field="capacity", value=a.capacity, expected=_FREE)
    if a.backpressure not in BACKPRESSURES:
        raise _Refuse("invalid_config", field="backpressure", value=a.backpressure, expected=_FREE)
    if a.name is not None:
        _check_name(a.name)
        if any(x.name == a.name for x in st.s.actors):
            raise _Refuse("duplicate_registration", address=f"name:{a.name}", within=None)
    for s in a.services:
        _check_name(s)
    for p in a.pools:
        if st.s.pool(p) is None:
            raise _Refuse("pool_not_found", pool=p)
    for kind, names in (("service", a.services), ("pool", a.pools)):
        for i, name in enumerate(names):
            if name in names[:i]:
                address = f"{kind}:{name}"
                raise _Refuse("duplicate_registration", address=address, within="the registration")
    actor = ActorState(st.s.next_actor, a.name, True, a.capacity, a.backpressure, a.send_timeout)
    st.update(actors=(*st.s.actors, actor), next_actor=actor.id + 1)
    for s in a.services:
        _add_provider(st, s, actor.id)
    for p in a.pools:
        _add_member(st, p, actor.id)
    addresses = [f"id:{actor.id}", *([f"name:{a.name}"] if a.name is not None else [])]
    addresses += [f"service:{x}" for x in a.services] + [f"pool:{x}" for x in a.pools]
    st.emit(
        "register",
        actor=actor.label,
        name=a.name,
        addresses=tuple(addresses),
        capacity=a.capacity,
        backpressure=a.backpressure,
        send_timeout=a.send_timeout,
    )
    return actor.id


def _add_provider(st: _Step, service: str, actor_id: int) -> None:
    old = st.s.service(service)
    if old is None:
        st.update(services=(*st.s.services, ServiceState(service, (actor_id,))))
    else:
        new = _replace(old, providers=(*old.providers, actor_id))
        st.update(services=tuple(new if s.name == service else s for s in st.s.services))
    actor = st.actor(actor_id)
    st.put_actor(_replace(actor, services=(*actor.services, service)))


def _add_member(st: _Step, pool_name: str, actor_id: int) -> None:
    """Spec 3.2.2: a joiner is appended to the membership."""
    pool = st.s.pool(pool_name)
    assert pool is not None
    st.put_pool(_replace(pool, members=(*pool.members, actor_id)))
    actor = st.actor(actor_id)
    st.put_actor(_replace(actor, pools=(*actor.pools, pool_name)))


def _remove_member(st: _Step, pool: PoolState, actor_id: int) -> None:
    """Spec 3.2.3: later members move down; a cursor past the leaver moves with them."""
    j = pool.members.index(actor_id)
    members = pool.members[:j] + pool.members[j + 1 :]
    cursor = pool.cursor - 1 if j < pool.cursor else pool.cursor
    cursor = cursor % len(members) if members else 0
    st.put_pool(_replace(pool, members=members, cursor=cursor))
    actor = st.actor(actor_id)
    st.put_actor(_replace(actor, pools=tuple(p for p in actor.pools if p != pool.name)))


def _unregister(st: _Step, a: Unregister) -> Result:
    """Spec 2.7: mail dead-lettered, requests cancelled, every registration removed (its
    name, services, pools and, silently, its topics: 2.10)."""
    actor = st.actor(a.actor)
    st.emit("unregister", actor=actor.label, reason=a.reason)
    if actor.alive:
        _shut(st, actor)
    for p in actor.pools:
        pool = st.s.pool(p)
        assert pool is not None
        _remove_member(st, pool, actor.id)
    services = tuple(
        _replace(s, providers=tuple(x for x in s.providers if x != actor.id)) for s in st.s.services
    )
    st.update(
        services=services,
        topics=_without_subscriber(st.s.topics, actor.id),
        actors=tuple(x for x in st.s.actors if x.id != actor.id),
    )
    return None


def _stop(st: _Step, a: Stop) -> Result:
    """Spec 2.8: as 2.7 for mail and requests, registrations kept; idempotent."""
    actor = st.actor(a.actor)
    if actor.alive:
        st.emit("stop", actor=actor.label, reason=a.reason)
        _shut(st, actor)
    return None


def _shut(st: _Step, actor: ActorState) -> None:
    """Spec 2.7, 5.8: queued then parked mail dead-lettered `actor_stopped`, requests cancelled."""
    st.put_actor(_replace(actor, alive=False, busy=False, high=(), normal=(), parked=()))
    for msg in actor.queue:
        st.dead_letter(msg, "actor_stopped")
    for parked in actor.parked:
        if parked.timer is not None:
            st.cancel_timer(parked.timer)
        st.dead_letter(parked.msg, "actor_stopped")
    for req in st.s.requests:
        if req.pending and req.requester == actor.id:
            _resolve(st, req.corr, "cancelled")
    for p in actor.pools:
        _drain_if_unserved(st, p)


def _restart(st: _Step, a: Restart) -> Result:
    """Spec 2.8: live again, with the (already emptied) mailbox; idempotent."""
    actor = st.actor(a.actor)
    if not actor.alive:
        st.put_actor(_replace(actor, alive=True))
        st.emit("start", actor=actor.label)
    return None


def _create_pool(st: _Step, a: CreatePool) -> Result:
    """Spec 2.9, 3.1."""
    _check_name(a.name)
    if a.strategy not in STRATEGIES:
        raise _Refuse("invalid_config", field="strategy", value=a.strategy, expected=_FREE)
    if st.s.pool(a.name) is not None:
        raise _Refuse("duplicate_registration", address=f"pool:{a.name}", within=None)
    st.update(pools=(*st.s.pools, PoolState(a.name, a.strategy)))
    st.emit("create_pool", pool=a.name, strategy=a.strategy)
    return None


def _join(st: _Step, a: Join) -> Result:
    """Spec 2.9, 3.2.2."""
    st.actor(a.actor)
    pool = st.s.pool(a.pool)
    if pool is None:
        raise _Refuse("pool_not_found", pool=a.pool)
    if a.actor in pool.members:
        raise _Refuse("duplicate_registration", address=f"id:{a.actor}", within=f"pool:{a.pool}")
    _add_member(st, a.pool, a.actor)
    st.emit("join", pool=a.pool, actor=st.actor(a.actor).label)
    return None


def _leave(st: _Step, a: Leave) -> Result:
    """Spec 2.9, 3.2.3."""
    st.actor(a.actor)
    pool = st.s.pool(a.pool)
    if pool is None:
        raise _Refuse("pool_not_found", pool=a.pool)
    if a.actor not in pool.members:
        raise _Refuse("actor_not_found", address=f"id:{a.actor}", within=f"pool:{a.pool}")
    _remove_member(st, pool, a.actor)
    st.emit("leave", pool=a.pool, actor=st.actor(a.actor).label)
    _drain_if_unserved(st, a.pool)
    return None


def _provide(st: _Step, a: Provide) -> Result:
    """Spec 2.5: providers are ordered by when they registered."""
    actor = st.actor(a.actor)
    _check_name(a.service)
    if a.service in actor.services:
        within = f"service:{a.service}"
        raise _Refuse("duplicate_registration", address=f"id:{a.actor}", within=within)
    _add_provider(st, a.service, a.actor)
    st.emit("provide", service=a.service, actor=actor.label)
    return None


# -- topics (spec 2.10) ----------------------------------------------------------------------


def _subscribe(st: _Step, a: Subscribe) -> Result:
    """Spec 2.10: checks in order (the actor, the name, not yet subscribed); a stopped actor
    may subscribe. The first subscriber makes the topic exist; later ones join at the end."""
    actor = st.actor(a.actor)
    _check_name(a.topic)
    topic = st.s.topic(a.topic)
    if topic is None:
        st.update(topics=(*st.s.topics, TopicState(a.topic, (a.actor,))))
    elif a.actor in topic.subscribers:
        within = f"topic:{a.topic}"
        raise _Refuse("duplicate_registration", address=f"id:{a.actor}", within=within)
    else:
        st.put_topic(_replace(topic, subscribers=(*topic.subscribers, a.actor)))
    st.emit("subscribe", topic=a.topic, actor=actor.label)
    return None


def _unsubscribe(st: _Step, a: Unsubscribe) -> Result:
    """Spec 2.10: checks in order (the actor, the name, subscribed); the topic is gone with its
    last subscriber."""
    actor = st.actor(a.actor)
    _check_name(a.topic)
    topic = st.s.topic(a.topic)
    if topic is None or a.actor not in topic.subscribers:
        raise _Refuse("actor_not_found", address=f"id:{a.actor}", within=f"topic:{a.topic}")
    st.update(topics=_without_subscriber(st.s.topics, a.actor, a.topic))
    st.emit("unsubscribe", topic=a.topic, actor=actor.label)
    return None


def _without_subscriber(
    topics: tuple[TopicState, ...], actor_id: int, only: str | None = None
) -> tuple[TopicState, ...]:
    """Spec 2.7, 2.10: the topics with `actor_id` no longer subscribed (to `only`, else to any);
    a topic left without a subscriber no longer exists. The order of the rest is kept."""
    out: list[TopicState] = []
    for t in topics:
        if actor_id in t.subscribers and (only is None or t.name == only):
            t = _replace(t, subscribers=tuple(x for x in t.subscribers if x != actor_id))
        if t.subscribers:
            out.append(t)
    return tuple(out)


# -- resolution (spec 2.5, 3) ----------------------------------------------------------------


class _RouteFailed(_Coded):
    """Routing an accepted message failed (spec 3, 6): retried if transient, else rejected or
    dead-lettered by the caller. Kept apart from `_Refuse` so one is never caught as the other."""


def _resolve_address(st: _Step, msg: Msg) -> ActorState | PoolState:
    """Spec 2.5: the actor a message reaches now (moves round robin's cursor), or a shared
    pool, whose queue takes the message (spec 3.8). A topic is never resolved (`_publish`)."""
    to = msg.to
    assert to is not None and to.kind != "topic"
    if to.kind == "pool":
        pool = st.s.pool(to.value)
        if pool is None:
            raise _RouteFailed("pool_not_found", pool=to.value)
        if pool.strategy == "shared":
            if not any(st.actor(m).alive for m in pool.members):
                raise _RouteFailed("pool_empty", pool=to.value)
            return pool
        return st.actor(_choose(st, pool, msg))
    if to.kind == "service":
        service = st.s.service(to.value)
        for provider in service.providers if service is not None else ():
            actor = st.actor(provider)
            if actor.alive:
                return actor
        raise _RouteFailed("service_unavailable", service=to.value)
    if to.kind == "id":
        found = st.s.actor(int(to.value))
    else:
        found = next((a for a in st.s.actors if a.name == to.value), None)
    if found is None:
        raise _RouteFailed("actor_not_found", address=str(to), within=None)
    if not found.alive:
        raise _RouteFailed("mailbox_closed", address=str(to))
    return found


def _choose(st: _Step, pool: PoolState, msg: Msg) -> int:
    """Spec 3.1 to 3.7: a live member chosen by the pool's strategy."""
    members = [st.actor(m) for m in pool.members]
    live = tuple(m.id for m in members if m.alive)
    if not live:
        raise _RouteFailed("pool_empty", pool=pool.name)
    if pool.strategy == "round_robin":  # spec 3.2.1
        n = len(members)
        for k in range(n):
            i = (pool.cursor + k) % n
            if members[i].alive:
                st.put_pool(_replace(pool, cursor=(i + 1) % n))
                return members[i].id
    if pool.strategy == "random":  # spec 3.3: the choice is the action's
        return _chosen(st, pool, msg, live)
    if pool.strategy == "power_of_two":  # spec 3.5: the winner of the drawn pair is the choice
        alive = [m for m in members if m.alive]
        return _chosen(st, pool, msg, pair_winners([m.id for m in alive], list(map(_load, alive))))
    if pool.strategy == "consistent_hash":  # spec 3.6
        if msg.key is None:
            raise _RouteFailed("route_error", address=f"pool:{pool.name}", reason=_FREE)
        if msg.key is ANY_KEY:
            return _chosen(st, pool, msg, live)
        assert isinstance(msg.key, str)
        return ring_owner(tuple(m.label for m in members), members, msg.key)
    if pool.strategy == "broadcast":  # spec 3.7: the original goes to the first live member
        return live[0]
    # spec 3.4 least_loaded: min() keeps the first of equal loads, i.e. membership order
    return min([m for m in members if m.alive], key=_load).id


def _load(actor: ActorState) -> int:
    """Spec 3.4 (`ActorState.load`, without its properties' calls)."""
    return len(actor.high) + len(actor.normal) + (1 if actor.busy else 0)


def _chosen(st: _Step, pool: PoolState, msg: Msg, allowed: tuple[int, ...]) -> int:
    """The action's next choice, which must be one of `allowed`."""
    if not st.choices:
        raise NeedChoice(allowed, msg.id)
    chosen = st.choices.pop(0)
    if chosen not in allowed:
        raise ValueError(
            f"choice {chosen} for message {msg.id} is not a member {pool.name} "
            f"({pool.strategy}) may choose: {allowed}"
        )
    return chosen


def pair_winners(ids: list[int], loads: list[int]) -> tuple[int, ...]:
    """Spec 3.5: of the live members (`ids`, with their `loads`), those that win some pair of
    distinct live members (the smaller load, ties to the earlier), so exactly the members some
    pair of draws can choose. (FastEngine calls it too.)"""
    if len(ids) == 1:
        return (ids[0],)
    return tuple(
        a
        for i, a in enumerate(ids)
        if any(
            loads[i] < loads[j] or (loads[i] == loads[j] and i < j)
            for j in range(len(ids))
            if j != i
        )
    )


def _point(text: str) -> int:
    """Spec 3.6: the first 8 bytes, big-endian, of BLAKE2b-64 of the UTF-8 text."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


@functools.lru_cache(maxsize=64)
def _ring(labels: tuple[str, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Spec 3.6: 64 points per member label, ordered by (point, label, v); each point's owner."""
    points = sorted(
        (_point(f"{lab}#{v}"), lab, v, i) for i, lab in enumerate(labels) for v in range(64)
    )
    return tuple(p[0] for p in points), tuple(p[3] for p in points)


class Member(Protocol):
    """What routing reads of a pool member: `ActorState`, or FastEngine's mutable actor."""

    @property
    def id(self) -> int: ...

    @property
    def alive(self) -> bool: ...


def ring_owner(labels: tuple[str, ...], members: Sequence[Member], key: str) -> int:
    """Spec 3.6: the owner of the first point at or after the key's, wrapping, that is live.
    (FastEngine calls it too.)"""
    points, owners = _ring(labels)
    start = bisect.bisect_left(points, _point(key))
    for k in range(len(points)):
        owner = members[owners[(start + k) % len(points)]]
        if owner.alive:
            return owner.id
    raise AssertionError("no live member")  # the caller checked there is one


# -- sending (spec 4, 5.1, 6, 7) -------------------------------------------------------------


def _send(
    st: _Step, msg: Msg, retry: Retry | None, wait: float | None, net: Tell | Ask | Reply
) -> _RouteFailed | None:
    """Count and hand a message to the network (spec 7.2, 7.4); the error if refused.

    The network may duplicate it (the copy is always delayed), then drop or delay it. A delay
    of `True` puts the message in transit until an `Arrive`; a number of seconds schedules its
    arrival as a `transit` timer (how a logged run says it, docs/trace-format.md)."""
    st.update(sent=st.s.sent + 1)
    st.send_event(msg)
    if net.duplicate is not False and not net.drop:
        dup = _replace(msg, id=st.new_msg_id(), attempt=0, dup_of=msg.id)
        st.update(sent=st.s.sent + 1)
        st.send_event(dup)
        if net.duplicate is True:
            st.update(transit=(*st.s.transit, InTransit(dup)))
        else:
            st.schedule(st.s.now + net.duplicate, "transit", msg=dup)
    if net.drop:
        st.dead_letter(msg, "dropped_in_transit")
        return None
    if net.delay is True:
        st.update(transit=(*st.s.transit, InTransit(msg, retry, wait)))
        return None
    if net.delay is not False and net.delay > 0.0:
        st.schedule(st.s.now + net.delay, "transit", msg=msg, retry=retry, wait=wait)
        return None
    return _arrive(st, msg, retry, wait, sync=True)


def _arrive(
    st: _Step, msg: Msg, retry: Retry | None, wait: float | None, sync: bool
) -> _RouteFailed | None:
    """Spec 4.2 to 4.4: route, then enqueue, or apply the full mailbox's backpressure."""
    if msg.kind == "reply":
        _arrive_reply(st, msg)
        return None
    assert msg.to is not None
    if msg.to.kind == "topic":
        _publish(st, msg)
        return None
    try:
        target = _resolve_address(st, msg)
    except _RouteFailed as failed:
        return _fail(st, msg, failed, retry, wait, sync)
    st.emit("route", msg=msg.id, actor=target.label)
    if isinstance(target, PoolState):  # spec 3.8: into the shared queue, unbounded
        _enqueue_shared(st, target, msg)
        return None
    actor = target
    pool = st.s.pool(msg.to.value) if msg.to.kind == "pool" else None
    if pool is not None and pool.strategy == "broadcast":  # spec 3.7: the others get copies
        _send_copies(st, msg, tuple(m for m in pool.members if m != actor.id))
        actor = st.actor(actor.id)
    if actor.full:
        if actor.backpressure == "reject":
            full = _RouteFailed("mailbox_full", actor=actor.label, capacity=actor.capacity)
            return _fail(st, msg, full, retry, wait, sync)
        if actor.backpressure == "drop_newest":
            st.dead_letter(msg, "dropped_newest")
            return None
        if actor.backpressure == "block":
            _park(st, actor, msg, wait)
            return None
        # drop_oldest: the oldest message of the lowest class present (normal below high)
        if actor.normal:
            victim, actor = actor.normal[0], _replace(actor, normal=actor.normal[1:])
        else:
            victim, actor = actor.high[0], _replace(actor, high=actor.high[1:])
        st.put_actor(actor)
        st.dead_letter(victim, "dropped_oldest")
    _enqueue(st, st.actor(actor.id), msg)
    return None


def _publish(st: _Step, msg: Msg) -> None:
    """Spec 3.9: a message to a topic never fails to route (never retried or rejected). Without
    a live subscriber (an unknown topic, or every subscriber stopped) it is dead-lettered
    `no_subscribers`, which does not end a request (5.9). Otherwise it is routed to the topic
    and delivered there, and every live subscriber, in subscription order, gets a copy."""
    assert msg.to is not None
    topic = st.s.topic(msg.to.value)
    if topic is None or not any(st.actor(x).alive for x in topic.subscribers):
        st.dead_letter(msg, "no_subscribers")
        return
    st.emit("route", msg=msg.id, actor=topic.label)
    st.update(delivered=st.s.delivered + 1)
    _send_copies(st, msg, topic.subscribers)


def _send_copies(st: _Step, msg: Msg, to: tuple[int, ...]) -> None:
    """Spec 3.7, 3.9: each live actor of `to`, in order, is sent its own copy of `msg` at once:
    a new message id, addressed to the actor's `id:`, naming `msg` in `copy_of`, with the same
    kind, sender, priority, key, correlation id and deadline. Each copy is counted sent, gets
    its `send` event, then arrives: never transit-faulted or retried, and never refused (it is
    not the call's own message, so a failed delivery dead-letters it, 6.5)."""
    for actor_id in to:
        if not st.actor(actor_id).alive:
            continue
        copy = _replace(msg, id=st.new_msg_id(), to=Addr("id", str(actor_id)), attempt=0)
        copy = _replace(copy, copy_of=msg.id, dup_of=None)  # a copy of a duplicate is a copy
        st.update(sent=st.s.sent + 1)
        st.send_event(copy)
        _arrive(st, copy, None, None, sync=False)


def _enqueue_shared(st: _Step, pool: PoolState, msg: Msg) -> None:
    """Spec 3.8, 4.5: the pool's one queue, two classes, FIFO."""
    if msg.high:
        pool = _replace(pool, high=(*pool.high, msg))
    else:
        pool = _replace(pool, normal=(*pool.normal, msg))
    st.put_pool(pool)
    st.emit("enqueue", msg=msg.id, actor=pool.label, depth=len(pool.high) + len(pool.normal))


def _drain_if_unserved(st: _Step, pool_name: str) -> None:
    """Spec 3.8: a shared queue dies with its last live member."""
    pool = st.s.pool(pool_name)
    assert pool is not None
    if pool.strategy != "shared" or any(st.actor(m).alive for m in pool.members):
        return
    st.put_pool(_replace(pool, high=(), normal=()))
    for msg in pool.queue:
        st.dead_letter(msg, "actor_stopped")


def _enqueue(st: _Step, actor: ActorState, msg: Msg) -> None:
    """Spec 4.5: into its priority class, FIFO."""
    if msg.high:
        actor = _replace(actor, high=(*actor.high, msg))
    else:
        actor = _replace(actor, normal=(*actor.normal, msg))
    st.put_actor(actor)
    st.emit("enqueue", msg=msg.id, actor=actor.label, depth=actor.size)


def _park(st: _Step, actor: ActorState, msg: Msg, wait: float | None) -> None:
    """Spec 4.4 `block`: wait for room, at most the send's own timeout, else the mailbox's."""
    wait = wait if wait is not None else actor.send_timeout
    timer = None
    if wait is not None:
        timer = st.schedule(st.s.now + wait, "park", actor=actor.id, msg=msg)
    actor = st.actor(actor.id)
    st.put_actor(_replace(actor, parked=(*actor.parked, Parked(msg, timer))))
    st.emit("park", msg=msg.id, actor=actor.label)


def _fail(
    st: _Step, msg: Msg, failed: _RouteFailed, retry: Retry | None, wait: float | None, sync: bool
) -> _RouteFailed | None:
    """Spec 6.3 to 6.5, 5.9: retry a transient failure before the deadline, else give up."""
    code = failed.code
    if code in TRANSIENT and retry is not None and msg.attempt + 1 < retry.max_attempts:
        at = _retry_time(st, msg, retry)
        if msg.deadline is None or at < msg.deadline:  # spec 6.4
            again = _replace(msg, attempt=msg.attempt + 1)
            st.update(retries=st.s.retries + 1)
            st.emit("retry", msg=msg.id, attempt=again.attempt, at=at)
            st.schedule(at, "retry", msg=again, retry=retry, wait=wait)
            return None
    if sync:
        st.update(rejected=st.s.rejected + 1)
        st.emit("reject", msg=msg.id, error=code)
    else:
        st.dead_letter(msg, code)
    if msg.kind == "request":
        _fail_request(st, msg)
        return None
    return failed if sync else None


def _fail_request(st: _Step, msg: Msg) -> None:
    """Spec 5.9, 6.5, 4.4: a request message that failed to be delivered (its delivery failed,
    or its send timeout expired while parked) ends its request `failed`, if still pending. Only
    the request's own message does: a copy (3.7, 3.9) or a transit duplicate (7.4) that cannot
    be delivered is dead-lettered and changes nothing else."""
    if msg.kind != "request" or msg.copy_of is not None or msg.dup_of is not None:
        return
    assert msg.corr is not None
    req = st.s.request(msg.corr)
    if req is not None and req.pending:
        _resolve(st, req.corr, "failed")


def _retry_time(st: _Step, msg: Msg, retry: Retry) -> float:
    """Spec 6.2: when retry `attempt + 1` runs; with jitter, the action's `retry_at` says.

    The time is drawn before the deadline is checked (6.4). When every draw falls at or after
    the deadline no choice is needed (there is no retry); when some do and some do not, the
    choice `math.inf` says the draw fell at or after it (a log shows no `retry`)."""
    wait = retry.wait(msg.attempt + 1)
    if not retry.jitter:
        return st.s.now + wait
    low, high, slack = retry_window(st.s.now, wait, retry.jitter)
    if msg.deadline is not None and low - slack >= msg.deadline:
        return high
    if not st.retry_at:
        raise NeedRetryAt(msg.id, low, high)
    return checked_retry_at(msg, st.retry_at.pop(0), low, high, slack)


def retry_window(now: float, wait: float, jitter: float) -> tuple[float, float, float]:
    """Spec 6.2: the earliest and latest time of a jittered retry `wait` after `now`, and the
    slack the broker's rounding needs (it computes now + wait * (1 - jitter * u))."""
    low, high = now + wait * (1.0 - jitter), now + wait
    return low, high, 1e-9 * max(1.0, abs(high))


def checked_retry_at(msg: Msg, at: float, low: float, high: float, slack: float) -> float:
    """A jittered retry's time as given (`math.inf`: at or after the deadline, spec 6.4),
    checked against the window; `ValueError` if no draw could give it. (FastEngine calls it
    too.)"""
    deadline = msg.deadline
    if at == math.inf:
        if deadline is None or high + slack < deadline:
            raise ValueError(
                f"message {msg.id} is retried: every retry time in [{low!r}, {high!r}] is "
                f"before its deadline {deadline!r}"
            )
        return at
    if not low - slack <= at <= high + slack:
        raise ValueError(f"retry of message {msg.id} at {at!r} is outside [{low!r}, {high!r}]")
    return at


def _arrive_reply(st: _Step, msg: Msg) -> None:
    """Spec 5.4 to 5.6: resolve the request before its (exclusive) deadline, else dead-letter."""
    assert msg.corr is not None
    req = st.s.request(msg.corr)
    if req is None:
        st.dead_letter(msg, "unknown_correlation")
    elif req.outcome is not None:
        st.dead_letter(msg, _ENDED_REASON[req.outcome])
    elif st.s.now >= req.deadline:
        _resolve(st, req.corr, "timed_out")
        st.dead_letter(msg, "late_reply")
    else:
        st.update(delivered=st.s.delivered + 1)
        _resolve(st, req.corr, "replied", reply=msg.id)


def _resolve(st: _Step, corr: int, outcome: OutcomeKind, reply: int | None = None) -> None:
    """Spec 5.3: exactly one outcome; the entry and its timer are gone afterwards."""
    req = st.s.request(corr)
    assert req is not None and req.pending
    st.put_request(_replace(req, outcome=outcome))
    st.update(timers=tuple(t for t in st.s.timers if not (t.kind == "timeout" and t.corr == corr)))
    requester = st.s.actor(req.requester)
    label = requester.label if requester is not None else f"id:{req.requester}"
    st.emit("resolve", corr=corr, outcome=outcome, requester=label, msg=reply)


def _tell(st: _Step, a: Tell) -> Result:
    """Spec 4.7 (deadline = timestamp + ttl), 6, 7.3 (a refused tell raises)."""
    if a.sender is not None:
        st.actor(a.sender)
    _check_time(a.ttl, "ttl")
    to = _address(a.to)
    _check_time(a.send_timeout, "send_timeout")
    deadline = None
    if a.ttl is not None:
        deadline = (a.timestamp if a.timestamp is not None else st.s.now) + a.ttl
    msg = Msg(st.new_msg_id(), "tell", a.sender, to, None, deadline, a.high, key=a.key)
    failed = _send(st, msg, a.retry, a.send_timeout, a)
    return failed.refused() if failed is not None else msg.id


def _ask(st: _Step, a: Ask) -> Result:
    """Spec 5.1 (pending entry and timer before routing), 5.10 (misuse creates nothing)."""
    _check_time(a.timeout, "timeout")
    to = _address(a.to)
    _check_time(a.send_timeout, "send_timeout")
    # A stopped requester would leave a pending entry without a live requester (spec 2.8, 5.8).
    if not st.actor(a.sender).alive:
        raise _Refuse("actor_not_found", address=f"id:{a.sender}", within=None)
    now = st.s.now
    corr = st.s.next_corr
    req = Request(corr, a.sender, now, now + a.timeout)
    st.update(requests=(*st.s.requests, req), next_corr=corr + 1)
    st.schedule(req.deadline, "timeout", corr=corr)
    msg = Msg(st.new_msg_id(), "request", a.sender, to, corr, req.deadline, a.high, key=a.key)
    _send(st, msg, a.retry, a.send_timeout, a)
    return corr


def _reply(st: _Step, a: Reply) -> Result:
    """Spec 5.4: a reply goes to the requester, not through a mailbox."""
    if a.sender is not None:
        st.actor(a.sender)
    req = st.s.request(a.corr)
    to = Addr("id", str(req.requester)) if req is not None else None
    msg = Msg(st.new_msg_id(), "reply", a.sender, to, a.corr)
    _send(st, msg, None, None, a)
    return msg.id


def _cancel(st: _Step, a: Cancel) -> Result:
    """Spec 5.7."""
    req = st.s.request(a.corr)
    if req is None or not req.pending:
        return False
    _resolve(st, a.corr, "cancelled")
    return True


# -- the actor's side (spec 3.4, 4.4, 4.5, 4.7, 4.8) -----------------------------------------


def _dequeue(st: _Step, a: Dequeue) -> Result:
    """Spec 4.5 order, 4.4 unpark into the freed slot, 4.7 expiry at dequeue, 4.8 stopped,
    3.8 an empty mailbox pulls from the actor's shared pools."""
    actor = _replace(st.actor(a.actor), busy=False)
    st.put_actor(actor)
    if not actor.alive:
        return None
    while True:
        actor = st.actor(a.actor)
        if actor.queue:
            msg = actor.queue[0]
            if actor.high:
                actor = _replace(actor, high=actor.high[1:])
            else:
                actor = _replace(actor, normal=actor.normal[1:])
            st.put_actor(actor)
            if actor.parked:
                first = actor.parked[0]
                st.put_actor(_replace(actor, parked=actor.parked[1:]))
                if first.timer is not None:
                    st.cancel_timer(first.timer)
                _enqueue(st, st.actor(actor.id), first.msg)
        else:
            pulled = _pull_shared(st, actor)
            if pulled is None:
                return None
            msg = pulled
        if msg.deadline is not None and st.s.now >= msg.deadline:
            st.dead_letter(msg, "expired")
            continue
        actor = st.actor(a.actor)
        st.put_actor(_replace(actor, busy=True))
        st.update(delivered=st.s.delivered + 1)
        st.emit("dequeue", msg=msg.id, actor=actor.label)
        return msg


def _pull_shared(st: _Step, actor: ActorState) -> Msg | None:
    """Spec 3.8: the oldest message (high first) of the first shared pool, in join order."""
    for name in actor.pools:
        pool = st.s.pool(name)
        assert pool is not None
        if pool.strategy != "shared" or not pool.queue:
            continue
        msg = pool.queue[0]
        if pool.high:
            st.put_pool(_replace(pool, high=pool.high[1:]))
        else:
            st.put_pool(_replace(pool, normal=pool.normal[1:]))
        return msg
    return None


def _done(st: _Step, a: Done) -> Result:
    """Spec 3.4: the actor no longer counts the message it worked on."""
    st.put_actor(_replace(st.actor(a.actor), busy=False))
    return None


# -- time (spec 1.1, 4.4, 5.5, 6.3) ----------------------------------------------------------


def _advance(st: _Step, a: Advance) -> Result:
    """Spec 1.1: run every timer due at or before `a.to` in (when, seq) order, then sit at it."""
    if not a.to >= st.s.now:
        raise ValueError(f"cannot advance from {st.s.now} back to {a.to}")
    while st.s.timers and st.s.timers[0].when <= a.to:
        timer = st.s.timers[0]
        st.update(timers=st.s.timers[1:], now=timer.when)
        _fire(st, timer)
    st.update(now=a.to)
    return None


def _fire_next(st: _Step, a: Fire) -> Result:
    """Spec 1.1, one timer at a time: the earliest (by `when`, then `seq`) runs at its time."""
    if not st.s.timers:
        raise ValueError("no timer to fire")
    timer = st.s.timers[0]
    if timer.when < st.s.now:
        raise ValueError(f"timer due at {timer.when!r} is behind now {st.s.now!r}")
    st.update(timers=st.s.timers[1:], now=timer.when)
    _fire(st, timer)
    return None


def _tick(st: _Step, a: Tick) -> Result:
    """Time passes to `a.to`; nothing may fall due strictly before it."""
    if not a.to >= st.s.now:
        raise ValueError(f"cannot advance from {st.s.now} back to {a.to}")
    if st.s.timers and st.s.timers[0].when < a.to:
        raise ValueError(f"a timer is due at {st.s.timers[0].when!r}, before {a.to!r}")
    st.update(now=a.to)
    return None


def _arrive_delayed(st: _Step, a: Arrive) -> Result:
    """Spec 7.4: a delayed message reaches the broker, after the send call returned."""
    found = next((x for x in st.s.transit if x.msg.id == a.msg), None)
    if found is None:
        raise ValueError(f"message {a.msg} is not in transit")
    st.update(transit=tuple(x for x in st.s.transit if x.msg.id != a.msg))
    _arrive(st, found.msg, found.retry, found.wait, sync=False)
    return None


def _fire(st: _Step, timer: Timer) -> None:
    """A due timer: a request timeout (5.5), a send timeout (4.4: the parked message is
    dead-lettered, and a request's own message fails its request, 5.9, 6.5), a retry (6.3) or a
    delayed arrival (7.4)."""
    if timer.kind == "timeout":
        assert timer.corr is not None
        req = st.s.request(timer.corr)
        if req is not None and req.pending:
            _resolve(st, timer.corr, "timed_out")
    elif timer.kind == "park":
        assert timer.actor is not None
        actor = st.actor(timer.actor)
        kept = tuple(p for p in actor.parked if p.timer != timer.seq)
        gone = [p for p in actor.parked if p.timer == timer.seq]
        st.put_actor(_replace(actor, parked=kept))
        for p in gone:
            st.dead_letter(p.msg, "send_timeout")
            _fail_request(st, p.msg)
    else:
        assert timer.msg is not None
        _arrive(st, timer.msg, timer.retry, timer.wait, sync=False)


_HANDLERS: dict[type[Any], Callable[[_Step, Any], Result]] = {
    Register: _register,
    Unregister: _unregister,
    Stop: _stop,
    Restart: _restart,
    CreatePool: _create_pool,
    Join: _join,
    Leave: _leave,
    Provide: _provide,
    Subscribe: _subscribe,
    Unsubscribe: _unsubscribe,
    Tell: _tell,
    Ask: _ask,
    Reply: _reply,
    Cancel: _cancel,
    Dequeue: _dequeue,
    Done: _done,
    Advance: _advance,
    Fire: _fire_next,
    Tick: _tick,
    Arrive: _arrive_delayed,
}


def apply(state: State, action: Action) -> Effect:
    """Run `action` on `state` (every rule of docs/spec.md sections 2 to 7).

    Raises `NeedChoice` when a pool needs a choice the action did not carry (spec 3.3, 3.5,
    3.6), `NeedRetryAt` when a jittered retry needs its time (spec 6.2), and `ValueError` for an
    action no implementation could perform (time going backwards, a choice the strategy cannot
    make, a retry time outside the jitter's bounds, an arrival of a message not in transit).

    >>> from model import Register, Tell, Dequeue, Addr
    >>> s = apply(State(), Register("w")).state
    >>> s = apply(s, Tell(None, Addr("name", "w"))).state
    >>> apply(s, Dequeue(1)).result.id
    1
    """
    st = _Step(state, getattr(action, "choices", ()), getattr(action, "retry_at", ()))
    try:
        result = _HANDLERS[type(action)](st, action)
    except _Refuse as refused:
        return Effect(state, refused.refused(), ())
    return Effect(st.s, result, tuple(st.events))


def step(state: State, action: Action) -> State:
    """The successor of `state` under `action` (see `apply`)."""
    return apply(state, action).state
