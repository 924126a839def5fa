"""The model checker's closed world: a fixed cast of actors and what each may do next.

`CheckBounds` fixes the cast (C clients, one pool of N identical members which also provide one
service and, with `topic`, subscribe to one topic, in join order; with `named`, member 1 also
has a name) and caps what grows (requests and one-way sends per client, replies per request).
A checker state is a model `State` plus the actors' own memory (`Env`): which requests each
member has taken and not yet answered, how many one-way sends each client has made. `successors`
lists, for one such state, every action the environment may take, each as one *step*: a tuple of
model actions run back to back. Two kinds of step are longer than one action: the enrolment of a
member (`Join`, `Provide`, and `Subscribe` with `topic`), and a request *answered at once*
(`Ask`, `Dequeue`, `Reply`): an idle subscriber woken by the request dequeues it and replies
inside the call (spec 1.6), which a driver replays as one call (`answered_at_once`).

Nondeterministic routing (`random`, `power_of_two`, and `consistent_hash` with a key nobody
knows, spec 3.3, 3.5, 3.6) is explored, not sampled: when an action runs out of `choices`, `apply`
raises `NeedChoice` and the step branches on every member the strategy may choose, as often as
the step routes (a tick may fire several retries).

Times in the actions are *relative*: the checker keeps every state shifted so that `now = 0`
(model/_abstraction.py), and `Advance(1.0)` means "one tick passes"; a `Tell`'s `timestamp` of
-1.0 means "one tick ago" (`model.checker.concrete` makes both absolute).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

from model._actions import (
    Action,
    Advance,
    Ask,
    Cancel,
    CreatePool,
    Dequeue,
    Done,
    Join,
    Leave,
    NeedChoice,
    Provide,
    Register,
    Reply,
    Restart,
    Stop,
    Subscribe,
    Tell,
)
from model._semantics import Effect, apply
from model._state import (
    ANY_KEY,
    BACKPRESSURES,
    STRATEGIES,
    Addr,
    AnyKey,
    Backpressure,
    Msg,
    Retry,
    State,
    StrategyName,
)

POOL, SERVICE, TOPIC, NAME = "p", "s", "t", "n"
FAULTS: tuple[str, ...] = ("cancel", "crash", "drop", "duplicate", "leave")
# Strategies whose choice depends on load, so finishing work (`Done`) is worth exploring (spec
# 3.4, 3.5), and `shared`, whose members take work when idle (3.8).
LOADED: tuple[StrategyName, ...] = ("least_loaded", "power_of_two", "shared")
# A one-way send with a TTL is stamped one tick ago, now (the default) or one tick ahead (4.7).
STAMPS: tuple[float | None, ...] = (-1.0, None, 1.0)
Step = tuple[Action, ...]


class BoundsError(ValueError):
    """Bounds the checker cannot explore: the message says which value and why."""


@dataclass(frozen=True, slots=True)
class CheckBounds:
    """The explicit, reported bounds of one model check (docs/spec.md section 11)."""

    clients: int = 2
    members: int = 2
    requests: int = 1  # per client
    capacity: int | None = 1  # of every member's mailbox; None = unbounded
    backpressure: Backpressure = "reject"
    strategy: StrategyName = "round_robin"
    timeout: int = 2  # ticks; the deadline is exclusive (spec 5.5)
    retry_attempts: int = 2  # 1 = no retries; retries wait one tick (spec 6.2)
    faults: tuple[str, ...] = ("cancel", "crash", "duplicate")
    topic: bool = False  # members subscribe to topic `t`; clients may publish requests there
    tells: int = 0  # one-way sends per client (any client, stopped ones too: spec 5.10)
    ttl: int | None = None  # ticks; tells carry it and a timestamp of STAMPS (spec 4.7)
    named: bool = False  # member 1 registers as `n`; clients may also send to `name:n`
    priority: bool = False  # every send may also be `high` (spec 4.5)

    def validate(self) -> CheckBounds:
        """Self, or `BoundsError` naming the first bad value."""
        ints = {"clients": (self.clients, 1, 4), "members": (self.members, 1, 4)}
        ints |= {"requests": (self.requests, 0, 4), "timeout": (self.timeout, 1, 8)}
        ints |= {"retry_attempts": (self.retry_attempts, 1, 4), "tells": (self.tells, 0, 4)}
        for key, (value, low, high) in ints.items():
            if not low <= value <= high:
                raise BoundsError(f"{key} = {value}: expected {low} to {high}")
        if self.capacity is not None and not 1 <= self.capacity <= 4:
            raise BoundsError(f"capacity = {self.capacity}: expected 1 to 4, or unbounded")
        if self.backpressure not in BACKPRESSURES:
            raise BoundsError(
                f"backpressure = {self.backpressure!r}: expected one of {', '.join(BACKPRESSURES)}"
            )
        if self.strategy not in STRATEGIES:
            raise BoundsError(
                f"strategy = {self.strategy!r}: expected one of {', '.join(STRATEGIES)}"
            )
        unknown = sorted(set(self.faults) - set(FAULTS))
        if unknown:
            raise BoundsError(f"faults {unknown}: expected some of {', '.join(FAULTS)}")
        if self.ttl is not None and not 1 <= self.ttl <= 8:
            raise BoundsError(f"ttl = {self.ttl}: expected 1 to 8 ticks, or none")
        if self.ttl is not None and self.tells == 0:
            raise BoundsError(f"ttl = {self.ttl}: a TTL is a one-way send's, but tells = 0")
        return self

    @property
    def retry(self) -> Retry | None:
        if self.retry_attempts <= 1:
            return None
        return Retry(self.retry_attempts, 1.0, 1.0, 1.0)

    @property
    def sends(self) -> int:
        """Messages the clients may send in all: requests and one-way sends."""
        return self.clients * (self.requests + self.tells)

    def to_dict(self) -> dict[str, object]:
        return {
            "clients": self.clients,
            "members": self.members,
            "requests_per_client": self.requests,
            "tells_per_client": self.tells,
            "ttl": self.ttl,
            "capacity": self.capacity,
            "backpressure": self.backpressure,
            "strategy": self.strategy,
            "timeout": self.timeout,
            "retry_attempts": self.retry_attempts,
            "faults": sorted(self.faults),
            "topic": self.topic,
            "named": self.named,
            "priority": self.priority,
        }


def _small(strategy: StrategyName, backpressure: Backpressure) -> CheckBounds:
    """One client and two members, one request and one tell (TTL 1), every feature on, no
    faults: hundreds to a few thousand states. A key nobody knows is not retried, so that
    `consistent_hash` can be replayed on a broker (sim/checking/exhaustive.py)."""
    return CheckBounds(
        clients=1, requests=1, tells=1, ttl=1, named=True, priority=True, faults=(), timeout=1,
        strategy=strategy, backpressure=backpressure,
        retry_attempts=1 if strategy == "consistent_hash" else 2,
    )  # fmt: skip


# Named sets of bounds (`brokerlab check --preset NAME`): each runs every bounds it lists, in order.
PRESETS: dict[str, tuple[CheckBounds, ...]] = {
    "default": (CheckBounds(),),
    # Three members under every strategy, each with the faults and features it can afford (the
    # preset runs in minutes). First, what the default cannot reach: a topic's requests answered
    # at once (1.6, 5.1); round robin's rotation across a leave (3.2.3) with a drop_oldest
    # mailbox (4.4) and tells stamped around now (4.7). Each mutant `check --broker` catches
    # only here falls in the first two, so a broker run stops early (sim/checking/mutants.py).
    "wide": (
        CheckBounds(members=3, clients=1, topic=True, faults=("crash",)),
        CheckBounds(
            members=3,
            clients=1,
            tells=1,
            ttl=1,
            priority=True,
            backpressure="drop_oldest",
            retry_attempts=1,
            faults=("cancel", "leave"),
        ),
        CheckBounds(members=3, requests=2, timeout=1, retry_attempts=1, faults=()),
        CheckBounds(
            members=3,
            strategy="least_loaded",
            backpressure="drop_newest",
            retry_attempts=1,
            faults=("cancel", "duplicate", "leave"),
        ),
        CheckBounds(members=3, strategy="random", faults=("crash",)),
        CheckBounds(members=3, strategy="power_of_two", faults=("crash",)),
        CheckBounds(
            members=3, strategy="consistent_hash", named=True, retry_attempts=1, faults=("leave",)
        ),
        CheckBounds(
            members=3,
            strategy="broadcast",
            backpressure="block",
            retry_attempts=1,
            faults=("cancel",),
        ),
        CheckBounds(
            members=3,
            clients=1,
            requests=2,
            strategy="shared",
            priority=True,
            backpressure="block",
            retry_attempts=1,
            faults=("cancel", "crash"),
        ),
    ),
    # Every strategy with every backpressure mode, tiny, for CI.
    "exhaustive-small": tuple(_small(s, p) for s in STRATEGIES for p in BACKPRESSURES),
}


@dataclass(frozen=True, slots=True)
class Env:
    """The actors' memory, beside the broker's state.

    `enrolled`: set-up is over (every member joined and provides the service). `held`: requests
    a member took and may still answer, as (member, corr, replies sent so far). `told`: the
    one-way sends each client made, as (client, count), for clients that made any.
    """

    enrolled: bool = False
    held: tuple[tuple[int, int, int], ...] = ()
    told: tuple[tuple[int, int], ...] = ()

    def encode(self, r: dict[int, int]) -> tuple[object, ...]:
        """The memory under the actor renaming `r` (model/_abstraction.py): a key part."""
        held = tuple(sorted((r[m], c, n) for m, c, n in self.held))
        if not self.told:
            return (self.enrolled, held)
        return (self.enrolled, held, tuple(sorted((r[c], n) for c, n in self.told)))

    def member_sig(self, m: int) -> tuple[object, ...]:
        """What member `m` remembers, unchanged by a renaming (a symmetry signature part)."""
        return tuple(sorted((c, n) for mm, c, n in self.held if mm == m))

    def client_sig(self, c: int) -> tuple[object, ...]:
        """What client `c` remembers, unchanged by a renaming (a symmetry signature part)."""
        return (self.tells_by(c),) if self.told else ()

    def tells_by(self, c: int) -> int:
        return next((n for cc, n in self.told if cc == c), 0)


def members(b: CheckBounds) -> tuple[int, ...]:
    return tuple(range(1, b.members + 1))


def clients(b: CheckBounds) -> tuple[int, ...]:
    return tuple(range(b.members + 1, b.members + b.clients + 1))


def setup(b: CheckBounds) -> tuple[Step, ...]:
    """The fixed start: the pool, then the members (ids 1..N; 1 is `n` if `named`), then the
    clients."""
    steps: list[Step] = [(CreatePool(POOL, b.strategy),)]
    steps += [
        (Register(NAME if b.named and m == 1 else None, b.capacity, b.backpressure),)
        for m in members(b)
    ]
    steps += [(Register(),) for _ in clients(b)]
    return tuple(steps)


def answered_at_once(step: Step) -> tuple[int, int] | None:
    """(member, corr) if `step` is a request answered at once (`Ask`, `Dequeue`, `Reply`):
    the driver performs the request, and the member's dequeue and reply inside it, when the
    request wakes the member (spec 1.6)."""
    if len(step) == 3 and isinstance(step[0], Ask) and isinstance(step[2], Reply):
        sender = step[2].sender
        assert sender is not None
        return sender, step[2].corr
    return None


def successors(s: State, env: Env, b: CheckBounds) -> list[tuple[Step, State, Env, Effect]]:
    """Every step from (s, env) that changes something, with its outcome: one per choice of
    every nondeterministic route it makes (see the module docstring).

    The effect returned is the last action's; an enrolment's `Join` has no events worth
    checking (it only appends to the membership).
    """
    out = []
    for offered in _menu(s, env, b):
        for step, merged in _runs(s, offered):
            state = merged.state
            new_env = _remember(env, step, merged, b)
            if merged.events or new_env != env or state != s:  # the cheap tests first
                out.append((step, state, new_env, merged))
    return out


def _runs(s: State, step: Step) -> list[tuple[Step, Effect]]:
    """`step` run from `s` once per sequence of legal choices (`_choices`), each with its
    actions' events merged into the last one's effect. Most steps are one action that needs no
    choice: they take one `apply` and nothing else (the checker's hottest path)."""
    if len(step) == 1:
        try:
            return [(step, apply(s, step[0]))]
        except NeedChoice:
            pass
    out = []
    for chosen, effects in _choices(s, step):
        last = effects[-1]
        events = last.events if len(effects) == 1 else tuple(e for f in effects for e in f.events)
        out.append((chosen, Effect(last.state, last.result, events)))
    return out


def _choices(s: State, step: Step) -> Iterator[tuple[Step, list[Effect]]]:
    """`step` run from `s` once per sequence of legal choices its actions need, each action
    carrying its own (spec 3.3, 3.5, 3.6), in the order the strategy lists the members."""
    if not step:
        yield (), []
        return
    first, rest = step[0], step[1:]
    for action, effect in _chosen(s, first):
        for tail, effects in _choices(effect.state, rest):
            yield (action, *tail), [effect, *effects]


def _chosen(s: State, action: Action) -> Iterator[tuple[Action, Effect]]:
    """`action` with each sequence of choices that lets it run, and its effect."""
    try:
        effect = apply(s, action)
    except NeedChoice as need:
        assert isinstance(action, Ask | Tell | Advance), action  # the menu's routing actions
        for member in need.live:
            yield from _chosen(s, replace(action, choices=(*action.choices, member)))
        return
    yield action, effect


def _targets(b: CheckBounds) -> tuple[Addr, ...]:
    targets: tuple[Addr, ...] = (Addr("pool", POOL), Addr("service", SERVICE))
    if b.topic:
        targets += (Addr("topic", TOPIC),)
    if b.named:
        targets += (Addr("name", NAME),)
    return targets


def _key(b: CheckBounds, to: Addr) -> AnyKey | None:
    """A key nobody knows for a consistent_hash pool: it may reach any live member (3.6)."""
    return ANY_KEY if b.strategy == "consistent_hash" and to.kind == "pool" else None


@dataclass(frozen=True, slots=True)
class _Fixed:
    """The steps of the menu that do not depend on the state, built once per bounds (the menu
    is asked for at every state): by client, its requests and one-way sends; by actor, the
    one-action steps that name it."""

    asks: Mapping[int, tuple[Step, ...]]
    topic_ask: Mapping[int, Ask]
    tells: Mapping[int, tuple[Step, ...]]
    dequeue: Mapping[int, Step]
    done: Mapping[int, Step]
    stop: Mapping[int, Step]
    restart: Mapping[int, Step]
    leave: Mapping[int, Step]
    join: Mapping[int, Step]
    advance: Step


@functools.lru_cache(maxsize=32)
def _fixed(b: CheckBounds) -> _Fixed:
    drops = (False, True) if "drop" in b.faults else (False,)
    highs = (False, True) if b.priority else (False,)
    ttl = None if b.ttl is None else float(b.ttl)
    stamps = STAMPS if ttl is not None else (None,)
    targets = _targets(b)
    timeout = float(b.timeout)
    asks = {
        c: tuple(
            (Ask(c, to, timeout, high, b.retry, drop=drop, key=_key(b, to)),)
            for to in targets
            for high in highs
            for drop in drops
        )
        for c in clients(b)
    }
    tells = {
        c: tuple(
            (Tell(c, to, high, ttl, stamp, b.retry, drop=drop, key=_key(b, to)),)
            for to in targets
            for high in highs
            for stamp in stamps
            for drop in drops
        )
        for c in clients(b)
    }
    actors = (*members(b), *clients(b))
    return _Fixed(
        asks=asks,
        topic_ask={c: Ask(c, Addr("topic", TOPIC), timeout, retry=b.retry) for c in clients(b)},
        tells=tells,
        dequeue={m: (Dequeue(m),) for m in members(b)},
        done={m: (Done(m),) for m in members(b)},
        stop={a: (Stop(a),) for a in actors},
        restart={a: (Restart(a),) for a in actors},
        leave={m: (Leave(POOL, m),) for m in members(b)},
        join={m: (Join(POOL, m),) for m in members(b)},
        advance=(Advance(1.0),),
    )


def _sends(s: State, env: Env, b: CheckBounds, fixed: _Fixed) -> list[Step]:
    """The clients' requests (to live clients, spec 5.10) and one-way sends."""
    steps: list[Step] = []
    for c in clients(b):
        actor = s.actor(c)
        assert actor is not None
        issued = sum(1 for r in s.requests if r.requester == c)
        if actor.alive and issued < b.requests:
            steps += fixed.asks[c]
            if b.topic:  # an idle, empty subscriber answers at once (spec 1.6, 5.1)
                ask = fixed.topic_ask[c]
                for m in members(b):
                    sub = s.actor(m)
                    if sub is not None and sub.alive and not sub.busy and not sub.size:
                        steps.append((ask, Dequeue(m), Reply(m, s.next_corr)))
        if env.tells_by(c) < b.tells:
            steps += fixed.tells[c]
    return steps


def _menu(s: State, env: Env, b: CheckBounds) -> list[Step]:
    if not env.enrolled:  # set-up: members enrol in any order (spec 3.2.2, 2.5, 2.10)
        pool = s.pool(POOL)
        assert pool is not None
        return [
            (Join(POOL, m), Provide(SERVICE, m), *([Subscribe(TOPIC, m)] if b.topic else []))
            for m in members(b)
            if m not in pool.members
        ]
    fixed = _fixed(b)
    steps = _sends(s, env, b, fixed)
    faults = b.faults
    shared = [p.name for p in s.pools if p.strategy == "shared" and p.queue]
    for m in members(b):
        actor = s.actor(m)
        assert actor is not None
        if actor.alive and (actor.size or any(p in actor.pools for p in shared)):
            steps.append(fixed.dequeue[m])  # spec 3.8: an empty mailbox pulls from the pool
        if actor.busy and b.strategy in LOADED:
            steps.append(fixed.done[m])
    drops = (False, True) if "drop" in faults else (False,)
    for member, corr, _ in env.held:
        for drop in drops:
            steps.append((Reply(member, corr, drop),))
    if "cancel" in faults:
        steps += [(Cancel(corr),) for corr in s.pending()]
    if "crash" in faults:
        for a in s.actors:
            steps.append(fixed.stop[a.id] if a.alive else fixed.restart[a.id])
    if "leave" in faults:
        pool = s.pool(POOL)
        assert pool is not None
        for m in members(b):
            steps.append(fixed.leave[m] if m in pool.members else fixed.join[m])
    steps.append(fixed.advance)
    return steps


def _remember(env: Env, step: Step, effect: Effect, b: CheckBounds) -> Env:
    """The actors' memory after `step`: what a member took, answered or lost by crashing, and
    the one-way sends a client made."""
    action = step[-1]
    if isinstance(action, Join | Provide | Subscribe) and not env.enrolled:
        pool = effect.state.pool(POOL)
        assert pool is not None
        return replace(env, enrolled=len(pool.members) == b.members)
    if isinstance(action, Tell):
        assert action.sender is not None
        told = dict(env.told)
        told[action.sender] = told.get(action.sender, 0) + 1
        return replace(env, told=tuple(sorted(told.items())))
    held = env.held
    if isinstance(action, Dequeue) and isinstance(effect.result, Msg):
        msg = effect.result
        if msg.kind == "request" and msg.corr is not None:
            held = tuple(sorted((*held, (action.actor, msg.corr, 0))))
    elif isinstance(action, Reply):
        most = 2 if "duplicate" in b.faults else 1
        hit = (action.sender, action.corr)
        held = tuple((m, c, n + 1) if (m, c) == hit else (m, c, n) for m, c, n in held)
        held = tuple(h for h in held if h[2] < most)
    elif isinstance(action, Stop):
        held = tuple(h for h in held if h[0] != action.actor)  # a crash forgets the work
    return replace(env, held=held) if held != env.held else env
