"""Messages in flight and request outcomes (docs/spec.md sections 4 and 5)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from broker._address import Address
from broker.errors import BrokerError

P = TypeVar("P")
Kind = Literal["tell", "request", "reply"]
OutcomeKind = Literal["replied", "timed_out", "cancelled", "failed"]
Priority = Literal["normal", "high"]
PRIORITIES: tuple[Priority, ...] = ("normal", "high")


class Envelope(Generic[P]):
    """One message as the broker carries it. Identity matters (ids are unique), so there is no
    value equality. A plain slotted class: one is built per message, by `new_envelope` in the
    broker, so its constructor is lean."""

    __slots__ = (
        "attempt", "copy_of", "corr", "deadline", "dup_of", "high", "key", "kind", "msg",
        "payload", "sender", "to",
    )  # fmt: skip

    def __init__(
        self,
        msg: int,
        sender: int | None,
        to: Address,
        kind: Kind,
        payload: P,
        corr: int | None = None,
        deadline: float | None = None,  # exclusive: expired once now >= deadline (spec 4.7)
        high: bool = False,
        key: str | None = None,
        dup_of: int | None = None,
        copy_of: int | None = None,
    ) -> None:
        self.msg = msg
        self.sender = sender
        self.to = to
        self.kind = kind
        self.payload = payload
        self.corr = corr
        self.deadline = deadline
        self.high = high
        self.key = key
        self.attempt = 0
        self.dup_of = dup_of
        self.copy_of = copy_of

    def __repr__(self) -> str:
        return f"Envelope(msg={self.msg}, kind={self.kind!r}, to={self.to}, corr={self.corr})"


_new = object.__new__  # `Envelope()` would run its `__init__`


def new_envelope(
    msg: int,
    sender: int | None,
    to: Address,
    kind: Kind,
    payload: P,
    corr: int | None = None,
    deadline: float | None = None,
    high: bool = False,
    key: str | None = None,
    dup_of: int | None = None,
    copy_of: int | None = None,
) -> Envelope[P]:
    """`Envelope(...)`, as the broker builds one per message: a class whose `__init__` is Python
    code is called through a C-level frame of its own on CPython 3.11, this function is not.
    The same fields, set alike (tests/test_sans_io.py holds the two together)."""
    env: Envelope[P] = _new(Envelope)
    env.msg = msg
    env.sender = sender
    env.to = to
    env.kind = kind
    env.payload = payload
    env.corr = corr
    env.deadline = deadline
    env.high = high
    env.key = key
    env.attempt = 0
    env.dup_of = dup_of
    env.copy_of = copy_of
    return env


@dataclass(frozen=True, slots=True)
class Outcome(Generic[P]):
    """How a request ended: exactly one per request (spec 5.3)."""

    corr: int
    kind: OutcomeKind
    requester: int
    issued_at: float
    resolved_at: float
    reply: P | None = None
    reply_msg: int | None = None
    # Why no reply came (spec 8.4): RequestTimeout (timed_out), NoResponse (cancelled), the
    # delivery error (failed: PoolEmpty, SendTimeout, ...); None when replied.
    error: BrokerError | None = None

    @property
    def latency(self) -> float:
        """Time from issue to resolution."""
        return self.resolved_at - self.issued_at


@dataclass(frozen=True, slots=True)
class Stats:
    """A snapshot of a broker's counters (spec 7.2, 9.2): what a driver or a monitor reads.

    `accepted = sent - rejected`, and every accepted message is delivered, dead-lettered or
    still in flight: `accepted == delivered + dead_lettered + in_flight`.
    """

    sent: int
    rejected: int
    delivered: int
    dead_lettered: int
    retries: int
    dead_letters: Mapping[str, int]  # by reason, reasons with a count only
    outcomes: Mapping[OutcomeKind, int]  # every outcome, zeros included
    # What is registered now (spec 9.2): actors (live or stopped), members per pool (in creation
    # order) and subscribers per topic (topics with a subscriber, in order of the first).
    actors: int = 0
    pools: Mapping[str, int] = field(default_factory=dict)
    topics: Mapping[str, int] = field(default_factory=dict)

    @property
    def accepted(self) -> int:
        # rule 7.2, 9.2: accepted = sent - rejected
        return self.sent - self.rejected

    @property
    def in_flight(self) -> int:
        # rule 7.2, 9.2: accepted = delivered + dead + in flight
        return self.accepted - self.delivered - self.dead_lettered

    def counters(self) -> tuple[int, int, int, int, int]:
        """(sent, rejected, delivered, dead_lettered, retries), the model's order."""
        return (self.sent, self.rejected, self.delivered, self.dead_lettered, self.retries)
