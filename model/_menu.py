"""The model checker's closed world: a fixed cast of actors and what each may do next.

`CheckBounds` fixes the cast (C clients, one pool of N identical members which also provide one
service and, with `topic`, subscribe to one topic, in join order) and caps what grows (requests
per client, replies per request). A checker state is a model `State` plus the actors' own memory
(`Env`): which requests each member has taken and not yet answered. `successors` lists, for one
such state, every action the environment may take, each as one *step*: a tuple of model actions
run back to back. Two kinds of step are longer than one action: the enrolment of a member
(`Join`, `Provide`, and `Subscribe` with `topic`), and a request *answered at once* (`Ask`,
`Dequeue`, `Reply`): an idle subscriber woken by the request dequeues it and replies inside the
call (spec 1.6), which a driver replays as one call (`answered_at_once`).

Times in the actions are *relative*: the checker keeps every state shifted so that `now = 0`
(model/_abstraction.py), and `Advance(1.0)` means "one tick passes".
"""

from __future__ import annotations

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
    Provide,
    Register,
    Reply,
    Restart,
    Stop,
    Subscribe,
)
from model._semantics import Effect, apply
from model._state import Addr, Backpressure, Msg, Retry, State, StrategyName

POOL, SERVICE, TOPIC = "p", "s", "t"
FAULTS: tuple[str, ...] = ("cancel", "crash", "drop", "duplicate", "leave")
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

    def validate(self) -> CheckBounds:
        """Self, or `BoundsError` naming the first bad value."""
        ints = {"clients": (self.clients, 1, 4), "members": (self.members, 1, 4)}
        ints |= {"requests": (self.requests, 0, 4), "timeout": (self.timeout, 1, 8)}
        ints |= {"retry_attempts": (self.retry_attempts, 1, 4)}
        for key, (value, low, high) in ints.items():
            if not low <= value <= high:
                raise BoundsError(f"{key} = {value}: expected {low} to {high}")
        if self.capacity is not None and not 1 <= self.capacity <= 4:
            raise BoundsError(f"capacity = {self.capacity}: expected 1 to 4, or unbounded")
        if self.backpressure not in ("reject", "drop_newest", "drop_oldest", "block"):
            raise BoundsError(f"backpressure = {self.backpressure!r}: not a backpressure")
        if self.strategy not in ("round_robin", "least_loaded"):
            raise BoundsError(
                f"strategy = {self.strategy!r}: the checker explores round_robin and "
                "least_loaded (random's choices would multiply every route)"
            )
        unknown = sorted(set(self.faults) - set(FAULTS))
        if unknown:
            raise BoundsError(f"faults {unknown}: expected some of {', '.join(FAULTS)}")
        return self

    @property
    def retry(self) -> Retry | None:
        if self.retry_attempts <= 1:
            return None
        return Retry(self.retry_attempts, 1.0, 1.0, 1.0)

    def to_dict(self) -> dict[str, object]:
        return {
            "clients": self.clients,
            "members": self.members,
            "requests_per_client": self.requests,
            "capacity": self.capacity,
            "backpressure": self.backpressure,
            "strategy": self.strategy,
            "timeout": self.timeout,
            "retry_attempts": self.retry_attempts,
            "faults": sorted(self.faults),
            "topic": self.topic,
        }


# Named sets of bounds (`brokerlab check --preset NAME`): each runs every bounds it lists.
PRESETS: dict[str, tuple[CheckBounds, ...]] = {
    "default": (CheckBounds(),),
}


@dataclass(frozen=True, slots=True)
class Env:
    """The actors' memory, beside the broker's state.

    `enrolled`: set-up is over (every member joined and provides the service). `held`: requests
    a member took and may still answer, as (member, corr, replies sent so far).
    """

    enrolled: bool = False
    held: tuple[tuple[int, int, int], ...] = ()

    def encode(self, r: dict[int, int]) -> tuple[object, ...]:
        """The memory under the actor renaming `r` (model/_abstraction.py): a key part."""
        return (self.enrolled, tuple(sorted((r[m], c, n) for m, c, n in self.held)))

    def member_sig(self, m: int) -> tuple[object, ...]:
        """What member `m` remembers, unchanged by a renaming (a symmetry signature part)."""
        return tuple(sorted((c, n) for mm, c, n in self.held if mm == m))

    def client_sig(self, c: int) -> tuple[object, ...]:
        """What client `c` remembers, unchanged by a renaming (a symmetry signature part)."""
        return ()


def members(b: CheckBounds) -> tuple[int, ...]:
    return tuple(range(1, b.members + 1))


def clients(b: CheckBounds) -> tuple[int, ...]:
    return tuple(range(b.members + 1, b.members + b.clients + 1))


def setup(b: CheckBounds) -> tuple[Step, ...]:
    """The fixed start: the pool, then the members (ids 1..N), then the clients."""
    steps: list[Step] = [(CreatePool(POOL, b.strategy),)]
    steps += [(Register(None, b.capacity, b.backpressure),) for _ in members(b)]
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
    """Every step from (s, env) that changes something, with its outcome.

    The effect returned is the last action's; an enrolment's `Join` has no events worth
    checking (it only appends to the membership).
    """
    out = []
    for step in _menu(s, env, b):
        state, effects = s, []
        for action in step:
            effect = apply(state, action)
            effects.append(effect)
            state = effect.state
        merged = Effect(state, effects[-1].result, tuple(e for f in effects for e in f.events))
        new_env = _remember(env, step, merged, b)
        if state != s or merged.events or new_env != env:
            out.append((step, state, new_env, merged))
    return out


def _menu(s: State, env: Env, b: CheckBounds) -> list[Step]:
    if not env.enrolled:  # set-up: members enrol in any order (spec 3.2.2, 2.5, 2.10)
        pool = s.pool(POOL)
        assert pool is not None
        return [
            (Join(POOL, m), Provide(SERVICE, m), *([Subscribe(TOPIC, m)] if b.topic else []))
            for m in members(b)
            if m not in pool.members
        ]
    steps: list[Step] = []
    faults = set(b.faults)
    drops = (False, True) if "drop" in faults else (False,)
    targets: tuple[Addr, ...] = (Addr("pool", POOL), Addr("service", SERVICE))
    if b.topic:
        targets += (Addr("topic", TOPIC),)
    for c in clients(b):
        actor = s.actor(c)
        assert actor is not None
        issued = sum(1 for r in s.requests if r.requester == c)
        if actor.alive and issued < b.requests:
            for to in targets:
                for drop in drops:
                    steps.append((Ask(c, to, float(b.timeout), retry=b.retry, drop=drop),))
            if b.topic:  # an idle, empty subscriber answers at once (spec 1.6, 5.1)
                ask = Ask(c, Addr("topic", TOPIC), float(b.timeout), retry=b.retry)
                for m in members(b):
                    sub = s.actor(m)
                    if sub is not None and sub.alive and not sub.busy and not sub.size:
                        steps.append((ask, Dequeue(m), Reply(m, s.next_corr)))
    for m in members(b):
        actor = s.actor(m)
        assert actor is not None
        if actor.alive and actor.size:
            steps.append((Dequeue(m),))
        if actor.busy and b.strategy == "least_loaded":
            steps.append((Done(m),))
    for member, corr, _ in env.held:
        for drop in drops:
            steps.append((Reply(member, corr, drop),))
    if "cancel" in faults:
        steps += [(Cancel(corr),) for corr in s.pending()]
    if "crash" in faults:
        for a in s.actors:
            steps.append((Stop(a.id),) if a.alive else (Restart(a.id),))
    if "leave" in faults:
        pool = s.pool(POOL)
        assert pool is not None
        for m in members(b):
            steps.append((Leave(POOL, m),) if m in pool.members else (Join(POOL, m),))
    steps.append((Advance(1.0),))
    return steps


def _remember(env: Env, step: Step, effect: Effect, b: CheckBounds) -> Env:
    """The actors' memory after `step`: what a member took, answered or lost by crashing."""
    action = step[-1]
    if isinstance(action, Join | Provide | Subscribe) and not env.enrolled:
        pool = effect.state.pool(POOL)
        assert pool is not None
        return replace(env, enrolled=len(pool.members) == b.members)
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
