"""The model's actions, results and events: what `step` takes and what `apply` reports.

Actions carry everything a step needs, including its nondeterminism: the chosen members of
`random` pools (`choices`, actor ids, consumed in routing order, spec 3.3) and whether the network
drops a message (`drop`, spec 7.4). Time only moves through `Advance` (spec 1.1).
"""

from __future__ import annotations

from dataclasses import dataclass

from model._state import Addr, Backpressure, Msg, Retry, StrategyName


@dataclass(frozen=True, slots=True)
class Register:
    """Spec 2.6."""

    name: str | None = None
    capacity: int | None = None
    backpressure: Backpressure = "reject"
    send_timeout: float | None = None
    services: tuple[str, ...] = ()
    pools: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Unregister:
    """Spec 2.7."""

    actor: int


@dataclass(frozen=True, slots=True)
class Stop:
    """Spec 2.8 (a crash)."""

    actor: int


@dataclass(frozen=True, slots=True)
class Restart:
    """Spec 2.8."""

    actor: int


@dataclass(frozen=True, slots=True)
class CreatePool:
    """Spec 2.9, 3.1."""

    name: str
    strategy: StrategyName = "round_robin"


@dataclass(frozen=True, slots=True)
class Join:
    """Spec 2.9, 3.2.2."""

    pool: str
    actor: int


@dataclass(frozen=True, slots=True)
class Leave:
    """Spec 2.9, 3.2.3."""

    pool: str
    actor: int


@dataclass(frozen=True, slots=True)
class Provide:
    """Spec 2.5: `actor` becomes the last provider of `service`."""

    service: str
    actor: int


@dataclass(frozen=True, slots=True)
class Tell:
    """A one-way send (spec 4, 6, 7). `timestamp` defaults to now (spec 4.7)."""

    sender: int | None
    to: Addr
    high: bool = False
    ttl: float | None = None
    timestamp: float | None = None
    retry: Retry | None = None
    send_timeout: float | None = None
    choices: tuple[int, ...] = ()
    drop: bool = False


@dataclass(frozen=True, slots=True)
class Ask:
    """Issue a request (spec 5.1, 5.10)."""

    sender: int
    to: Addr
    timeout: float
    high: bool = False
    retry: Retry | None = None
    send_timeout: float | None = None
    choices: tuple[int, ...] = ()
    drop: bool = False


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer request `corr` (spec 5.4 to 5.6)."""

    sender: int | None
    corr: int
    drop: bool = False


@dataclass(frozen=True, slots=True)
class Cancel:
    """Spec 5.7."""

    corr: int


@dataclass(frozen=True, slots=True)
class Dequeue:
    """The actor takes its next message (spec 4.5, 4.7, 4.8)."""

    actor: int


@dataclass(frozen=True, slots=True)
class Done:
    """The actor finished the message it dequeued last (spec 3.4)."""

    actor: int


@dataclass(frozen=True, slots=True)
class Advance:
    """Move time to `to`, running every timer due at or before it in order (spec 1.1)."""

    to: float
    choices: tuple[int, ...] = ()


Action = (
    Register
    | Unregister
    | Stop
    | Restart
    | CreatePool
    | Join
    | Leave
    | Provide
    | Tell
    | Ask
    | Reply
    | Cancel
    | Dequeue
    | Done
    | Advance
)


@dataclass(frozen=True, slots=True)
class Refused:
    """The operation raised the error with this code and changed nothing (spec 2.6, 8)."""

    code: str


# What an operation returns: an actor id (Register), a message id (Tell, Reply), a correlation
# id (Ask), a bool (Cancel), the dequeued message or None (Dequeue), or the refusal.
Result = int | bool | Msg | Refused | None


@dataclass(frozen=True, slots=True)
class Event:
    """An observable event (spec 9.1), reduced to what the model determines.

    `actor` is the actor's label; `detail` is the kind of a `send`, the reason of a
    `dead_letter`, the error code of a `reject`, the attempt of a `retry`, the outcome of a
    `resolve` and the depth of an `enqueue`.
    """

    name: str
    msg: int | None = None
    actor: str | None = None
    corr: int | None = None
    detail: str | int | None = None


class NeedChoice(Exception):
    """The action ran out of `choices` at a `random` pool with these live members (spec 3.3)."""

    def __init__(self, live: tuple[int, ...]) -> None:
        super().__init__(f"a random pool needs a choice among {live}")
        self.live = live
