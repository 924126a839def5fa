"""The model's state: immutable, hashable records (docs/spec.md sections 2 to 7).

Everything is a frozen slotted dataclass, a tuple or a frozenset; nothing iterates by hash
(spec 1.4), so two equal states are equal field by field and hash the same in every process.
Collections keyed by an id are tuples kept in id order (actors, requests); collections whose order
is part of the semantics keep it (pool members in join order, service providers in registration
order, topic subscribers in subscription order, timers in `(when, seq)` order).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

AddressKind = Literal["id", "name", "service", "pool", "topic"]
ADDRESS_KINDS: tuple[AddressKind, ...] = ("id", "name", "service", "pool", "topic")
NAME = re.compile(r"[A-Za-z0-9_.\-/@+]+")  # spec 2.2: actor, service, pool and topic names
_ID = re.compile(r"[1-9][0-9]*")  # spec 2.2: actor ids
Backpressure = Literal["reject", "drop_newest", "drop_oldest", "block"]
StrategyName = Literal[
    "round_robin",
    "random",
    "least_loaded",
    "power_of_two",
    "consistent_hash",
    "broadcast",
    "shared",
]
MsgKind = Literal["tell", "request", "reply"]
OutcomeKind = Literal["replied", "timed_out", "cancelled", "failed"]
TimerKind = Literal["timeout", "park", "retry", "transit"]

BACKPRESSURES: tuple[Backpressure, ...] = ("reject", "drop_newest", "drop_oldest", "block")
STRATEGIES: tuple[StrategyName, ...] = (
    "round_robin",
    "random",
    "least_loaded",
    "power_of_two",
    "consistent_hash",
    "broadcast",
    "shared",
)
# Spec 6.1: the transient errors, by code.
TRANSIENT: frozenset[str] = frozenset({"mailbox_full", "pool_empty", "service_unavailable"})


@dataclass(frozen=True, slots=True)
class Addr:
    """An address `kind:value` (spec 2.1, 2.10: `topic:<name>`)."""

    kind: AddressKind
    value: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"

    @staticmethod
    def parse(text: str) -> Addr | None:
        """Spec 2.2, 2.3: the address a `kind:value` text names, or None if it names none."""
        kind, colon, value = text.partition(":")
        if not colon or kind not in ADDRESS_KINDS:
            return None
        if (_ID if kind == "id" else NAME).fullmatch(value) is None:
            return None
        return Addr(kind, value)


class AnyKey:
    """The type of `ANY_KEY`: a message key the observer does not know (see `ANY_KEY`)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ANY_KEY"


# A message whose key is unknown (traces do not record keys): a `consistent_hash` pool's route
# is then a choice among its live members, like `random`'s (spec 3.6 cannot be checked exactly).
ANY_KEY = AnyKey()


@dataclass(frozen=True, slots=True)
class Retry:
    """A retry policy (spec 6.2). With `jitter = 0` the model's waits are exact; with jitter the
    retry time is the action's nondeterministic input (`retry_at`), checked against the bounds."""

    # The same defaults as the broker's RetryPolicy and the scenario format's `retry` table.
    max_attempts: int = 3
    backoff: float = 0.1
    multiplier: float = 2.0
    max_backoff: float = 5.0
    jitter: float = 0.0

    def wait(self, k: int) -> float:
        """Spec 6.2: the wait before retry `k` (k >= 1). A power past the largest double is
        infinite, so the wait is the cap (0 when `backoff` is 0)."""
        try:
            return min(self.max_backoff, self.backoff * self.multiplier ** (k - 1))
        except OverflowError:
            return min(self.max_backoff, math.inf) if self.backoff else self.backoff


@dataclass(frozen=True, slots=True)
class Msg:
    """One accepted message (spec 4.7, 5.1): `deadline` is exclusive, None for no deadline."""

    id: int
    kind: MsgKind
    sender: int | None
    to: Addr | None
    corr: int | None = None
    deadline: float | None = None
    high: bool = False
    attempt: int = 0
    key: str | AnyKey | None = None  # spec 3.6
    copy_of: int | None = None  # spec 3.7, 3.9: a pool's or a topic's copy of this message
    dup_of: int | None = None  # spec 7.4: a transit duplicate of this message


@dataclass(frozen=True, slots=True)
class InTransit:
    """An accepted message the network delays (spec 7.4): it arrives with `Arrive(msg.id)`."""

    msg: Msg
    retry: Retry | None = None
    wait: float | None = None


@dataclass(frozen=True, slots=True)
class Parked:
    """A message waiting for room in a `block` mailbox (spec 4.4); `timer` is its send timeout."""

    msg: Msg
    timer: int | None


@dataclass(frozen=True, slots=True)
class ActorState:
    """One registered actor (spec 2.6, 2.8, 4): its mailbox, registrations and liveness."""

    id: int
    name: str | None = None
    alive: bool = True
    capacity: int | None = None
    backpressure: Backpressure = "reject"
    send_timeout: float | None = None
    high: tuple[Msg, ...] = ()
    normal: tuple[Msg, ...] = ()
    parked: tuple[Parked, ...] = ()
    busy: bool = False
    services: tuple[str, ...] = ()
    pools: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """How events name the actor: its name, else `id:N`."""
        return self.name if self.name is not None else f"id:{self.id}"

    @property
    def size(self) -> int:
        return len(self.high) + len(self.normal)

    @property
    def load(self) -> int:
        """Spec 3.4: queued messages plus one while working on a dequeued message."""
        return self.size + (1 if self.busy else 0)

    @property
    def full(self) -> bool:
        return self.capacity is not None and self.size >= self.capacity

    @property
    def queue(self) -> tuple[Msg, ...]:
        """The mailbox in dequeue order (spec 4.5)."""
        return self.high + self.normal


@dataclass(frozen=True, slots=True)
class PoolState:
    """A pool (spec 3): members in join order, round robin's cursor, a shared pool's queue."""

    name: str
    strategy: StrategyName
    members: tuple[int, ...] = ()
    cursor: int = 0
    high: tuple[Msg, ...] = ()  # spec 3.8: the shared queue, two classes
    normal: tuple[Msg, ...] = ()

    @property
    def label(self) -> str:
        """How events name a shared pool's queue (spec 3.8)."""
        return f"pool:{self.name}"

    @property
    def queue(self) -> tuple[Msg, ...]:
        return self.high + self.normal


@dataclass(frozen=True, slots=True)
class ServiceState:
    """A service's providers in the order they registered (spec 2.5)."""

    name: str
    providers: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class TopicState:
    """A topic (spec 2.10): its subscribers in subscription order, never empty (a topic exists
    while it has a subscriber)."""

    name: str
    subscribers: tuple[int, ...] = ()

    @property
    def label(self) -> str:
        """How a `route` event names the topic (spec 3.9)."""
        return f"topic:{self.name}"


@dataclass(frozen=True, slots=True)
class Request:
    """A request's record (spec 5.1, 5.3): pending while `outcome` is None."""

    corr: int
    requester: int
    issued_at: float
    deadline: float
    outcome: OutcomeKind | None = None

    @property
    def pending(self) -> bool:
        return self.outcome is None


@dataclass(frozen=True, slots=True)
class Timer:
    """Future work (spec 1.1): runs at `when`; equal times run in `seq` (scheduling) order.

    `timeout` ends request `corr`; `park` is `msg`'s send timeout in `actor`'s mailbox; `retry`
    routes `msg` again under `retry` (with the send's own send timeout `wait`).
    """

    when: float
    seq: int
    kind: TimerKind
    corr: int | None = None
    actor: int | None = None
    msg: Msg | None = None
    retry: Retry | None = None
    wait: float | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A dead-lettered message and its reason (spec 7.5)."""

    msg: int
    reason: str


@dataclass(frozen=True, slots=True)
class State:
    """The whole broker as the spec sees it. The initial state is `State()`."""

    now: float = 0.0
    actors: tuple[ActorState, ...] = ()  # registered actors, by id
    services: tuple[ServiceState, ...] = ()  # in order of first provision
    pools: tuple[PoolState, ...] = ()  # in creation order
    topics: tuple[TopicState, ...] = ()  # spec 2.10: in order of first subscription
    requests: tuple[Request, ...] = ()  # every request ever issued, by corr
    timers: tuple[Timer, ...] = ()  # live timers, in (when, seq) order
    next_actor: int = 1  # spec 1.3: three counters from 1
    next_msg: int = 1
    next_corr: int = 1
    next_seq: int = 0
    sent: int = 0  # spec 7.2 counters
    rejected: int = 0
    delivered: int = 0
    dead_lettered: int = 0
    retries: int = 0
    dead_letters: tuple[DeadLetter, ...] = ()
    transit: tuple[InTransit, ...] = ()  # spec 7.4: delayed messages, by id

    @property
    def accepted(self) -> int:
        return self.sent - self.rejected

    @property
    def in_flight(self) -> int:
        """Spec 7.1, counted from where messages are (queued, parked, awaiting a retry)."""
        n = len(self.transit)
        for a in self.actors:
            n += len(a.high) + len(a.normal) + len(a.parked)
        for p in self.pools:
            n += len(p.high) + len(p.normal)
        for t in self.timers:
            if t.kind == "retry" or t.kind == "transit":
                n += 1
        return n

    def actor(self, actor_id: int) -> ActorState | None:
        for a in self.actors:
            if a.id == actor_id:
                return a
        return None

    def pool(self, name: str) -> PoolState | None:
        for p in self.pools:
            if p.name == name:
                return p
        return None

    def topic(self, name: str) -> TopicState | None:
        for t in self.topics:
            if t.name == name:
                return t
        return None

    def service(self, name: str) -> ServiceState | None:
        for s in self.services:
            if s.name == name:
                return s
        return None

    def request(self, corr: int) -> Request | None:
        for r in self.requests:
            if r.corr == corr:
                return r
        return None

    def pending(self) -> tuple[int, ...]:
        """Correlation ids of the pending requests, ascending."""
        return tuple(r.corr for r in self.requests if r.pending)
