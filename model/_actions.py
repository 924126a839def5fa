"""The model's actions, results and events: what `step` takes and what `apply` reports.

Actions carry everything a step needs, including its nondeterminism: the chosen members of
`random`, `power_of_two` and key-less `consistent_hash` pools (`choices`, actor ids, consumed in
routing order, spec 3.3, 3.5, 3.6), the times of jittered retries (`retry_at`, spec 6.2), and what
the network does to a message (`drop`, `delay`, `duplicate`, spec 7.4: `True` leaves the message
or its copy in transit until `Arrive`; a number of seconds schedules its arrival, as a logged run
records it). Time only moves through
`Advance`, or, finer grained, `Fire` (the next timer) and `Tick` (spec 1.1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from model._state import Addr, AnyKey, Backpressure, Msg, Retry, StrategyName


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
    reason: str = "unregistered"


@dataclass(frozen=True, slots=True)
class Stop:
    """Spec 2.8 (a crash)."""

    actor: int
    reason: str = "crashed"


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
class Subscribe:
    """Spec 2.10: `actor` becomes the last subscriber of `topic` (created by its first)."""

    topic: str
    actor: int


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """Spec 2.10: `actor` stops subscribing `topic` (gone with its last subscriber)."""

    topic: str
    actor: int


@dataclass(frozen=True, slots=True)
class Tell:
    """A one-way send (spec 4, 6, 7). `timestamp` defaults to now (spec 4.7)."""

    sender: int | None
    to: Addr | str  # text is parsed by the step (spec 2.3): an invalid one is refused
    high: bool = False
    ttl: float | None = None
    timestamp: float | None = None
    retry: Retry | None = None
    send_timeout: float | None = None
    choices: tuple[int, ...] = ()
    drop: bool = False
    key: str | AnyKey | None = None
    delay: bool | float = False
    duplicate: bool | float = False
    retry_at: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class Ask:
    """Issue a request (spec 5.1, 5.10)."""

    sender: int
    to: Addr | str  # as Tell's
    timeout: float
    high: bool = False
    retry: Retry | None = None
    send_timeout: float | None = None
    choices: tuple[int, ...] = ()
    drop: bool = False
    key: str | AnyKey | None = None
    delay: bool | float = False
    duplicate: bool | float = False
    retry_at: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer request `corr` (spec 5.4 to 5.6)."""

    sender: int | None
    corr: int
    drop: bool = False
    delay: bool | float = False
    duplicate: bool | float = False


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
    retry_at: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class Fire:
    """Run the earliest timer alone, at its time (spec 1.1): `Advance` one timer at a time."""

    choices: tuple[int, ...] = ()
    retry_at: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class Tick:
    """Move time to `to` when no timer is due before it; timers due at `to` wait for `Fire`."""

    to: float


@dataclass(frozen=True, slots=True)
class Arrive:
    """A message the network delayed reaches the broker now (spec 7.4)."""

    msg: int
    choices: tuple[int, ...] = ()
    retry_at: tuple[float, ...] = ()


Action = (
    Register
    | Unregister
    | Stop
    | Restart
    | CreatePool
    | Join
    | Leave
    | Provide
    | Subscribe
    | Unsubscribe
    | Tell
    | Ask
    | Reply
    | Cancel
    | Dequeue
    | Done
    | Advance
    | Fire
    | Tick
    | Arrive
)


@dataclass(frozen=True, slots=True)
class Refused:
    """The operation raised the error with this code and changed nothing (spec 2.6, 8).
    `fields` are the error's fields of spec 8.4, in order; the model leaves the free text
    (`FREE_TEXT`) unworded. `Refused` values compare by their code only; `fields_problem`
    compares another implementation's fields with these."""

    code: str
    fields: tuple[tuple[str, Any], ...] = field(default=(), compare=False)

    def fields_problem(self, got: object) -> str | None:
        """How `got` (an error's fields as logged or raised) differs from these, or None:
        the same names, the same values (types included), and text where the spec leaves
        the wording free (spec 8.4)."""
        want = dict(self.fields)
        if not isinstance(got, Mapping):
            return f"the fields must be an object of {', '.join(want)}, got {got!r}"
        if sorted(got) != sorted(want):
            return f"the fields are {sorted(got)}, spec 8.4 lists {sorted(want)}"
        for key, value in want.items():
            have = got[key]
            if key in FREE_TEXT:
                if not isinstance(have, str):
                    return f"{key!r} must be text, got {have!r}"
            elif have != value or type(have) is not type(value):
                return f"{key!r} is {have!r}, the model's {value!r}"
        return None


# Spec 8.4's fields whose wording each implementation chooses: never compared, only typed.
FREE_TEXT = ("expected", "reason")


# What an operation returns: an actor id (Register), a message id (Tell, Reply), a correlation
# id (Ask), a bool (Cancel), the dequeued message or None (Dequeue), or the refusal.
Result = int | bool | Msg | Refused | None


@dataclass(frozen=True, slots=True)
class Event:
    """An observable event (spec 9.1), as the model determines it.

    Two events are equal when their reduced form is: `actor` is the actor's label; `detail` is
    the kind of a `send`, the reason of a `dead_letter`, the error code of a `reject`, the
    attempt of a `retry`, the outcome of a `resolve`, the depth of an `enqueue` and the topic
    of a `subscribe` or `unsubscribe` (spec 2.10). `fields` holds every field of the event
    (spec 9.4; lists as tuples), compared separately (`same`): some, such as deadlines, are only
    comparable on one clock, which the model checker's relative time is not (spec 11.2).
    """

    name: str
    msg: int | None = None
    actor: str | None = None
    corr: int | None = None
    detail: str | int | None = None
    fields: tuple[tuple[str, Any], ...] = field(default=(), compare=False, repr=False)

    def same(self, other: Event) -> bool:
        """Equal, every field included."""
        return self == other and self.fields == other.fields


# Spec 9.4 as data: per event kind, each field with the type of its value; a field whose name
# ends in "?" is present only when it applies. Types: "label" (an actor's label, text), "text",
# "int" (an integer, never a bool), "num" (a number), "texts" (a list of text); a trailing "|null"
# allows null. tests/test_spec_tables.py checks this table against the spec's.
EVENT_FIELDS: dict[str, dict[str, str]] = {
    "register": {"actor": "label", "name": "text|null", "addresses": "texts",
                 "capacity": "int|null", "backpressure": "text", "send_timeout": "num|null"},
    "unregister": {"actor": "label", "reason": "text"},
    "stop": {"actor": "label", "reason": "text"},
    "start": {"actor": "label"},
    "create_pool": {"pool": "text", "strategy": "text"},
    "join": {"pool": "text", "actor": "label"},
    "leave": {"pool": "text", "actor": "label"},
    "provide": {"service": "text", "actor": "label"},
    "subscribe": {"topic": "text", "actor": "label"},
    "unsubscribe": {"topic": "text", "actor": "label"},
    "send": {"msg": "int", "from": "label|null", "to": "text|null", "kind": "text",
             "corr?": "int", "deadline?": "num", "key?": "text", "dup_of?": "int",
             "copy_of?": "int"},
    "reject": {"msg": "int", "error": "text"},
    "route": {"msg": "int", "actor": "label"},
    "enqueue": {"msg": "int", "actor": "label", "depth": "int"},
    "park": {"msg": "int", "actor": "label"},
    "dequeue": {"msg": "int", "actor": "label"},
    "dead_letter": {"msg": "int", "reason": "text"},
    "retry": {"msg": "int", "attempt": "int", "at": "num"},
    "resolve": {"corr": "int", "outcome": "text", "requester": "label", "msg": "int|null"},
}  # fmt: skip


def _typed(value: object, kind: str) -> bool:
    base, _, null = kind.partition("|")
    if value is None:
        return bool(null)
    if base in ("label", "text"):
        return isinstance(value, str)
    if base == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if base == "num":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def event_problem(name: str, f: Mapping[str, Any]) -> str | None:
    """Why `f` is not a well-formed `name` event (spec 9.4: its fields, each of its type), or
    None. Which optional fields must be present is the model's to say, not this check's."""
    schema = EVENT_FIELDS.get(name)
    if schema is None:
        return f"unknown event kind {name!r}"
    given = set(f) - {"t", "seq", "ev"}
    for key, kind in schema.items():
        field_name = key.rstrip("?")
        if field_name not in f:
            if not key.endswith("?"):
                return f"the field {field_name!r} of a {name} event is missing"
            continue
        given.discard(field_name)
        if not _typed(f[field_name], kind):
            return f"{field_name!r} of a {name} event is a {kind}, not {f[field_name]!r}"
    if given:
        return f"a {name} event has no field {sorted(given)[0]!r}"
    return None


def as_event(name: str, f: Mapping[str, Any]) -> Event:
    """A broker event (`listener(name, fields)`, a trace line, or the model's own) as an `Event`.

    The one translation between the broker's vocabulary (docs/trace-format.md) and the model's,
    used by the model itself, the trace checker, the lockstep test and the exhaustive broker
    check. Raises `KeyError` for a missing field and `ValueError` for an unknown event kind.
    """
    items = [(k, tuple(v) if isinstance(v, list) else v) for k, v in f.items() if k not in _LINE]
    return _reduced(name, f, tuple(sorted(items)))


def own_event(name: str, fields: dict[str, Any]) -> Event:
    """`as_event` of fields that are exactly the event's (no trace-line keys, lists given as
    tuples): how the model makes its own events, without `as_event`'s cleaning."""
    return _reduced(name, fields, tuple(sorted(fields.items())))


def _reduced(name: str, f: Mapping[str, Any], full: tuple[tuple[str, Any], ...]) -> Event:
    reduced = _REDUCED.get(name)
    if reduced is None:
        raise ValueError(f"unknown event kind {name!r}")
    return reduced(name, f, full)


_LINE = frozenset({"t", "seq", "ev"})  # a trace line's keys that are not its event's fields
_Reduce = Callable[[str, Mapping[str, Any], tuple[tuple[str, Any], ...]], Event]
# Per event kind, its reduced form (see `Event`): Event(name, msg, actor, corr, detail, fields).
_REDUCED: dict[str, _Reduce] = {
    "register": lambda n, f, fs: Event(n, None, f["actor"], None, None, fs),
    "unregister": lambda n, f, fs: Event(n, None, f["actor"], None, None, fs),
    "stop": lambda n, f, fs: Event(n, None, f["actor"], None, None, fs),
    "start": lambda n, f, fs: Event(n, None, f["actor"], None, None, fs),
    "send": lambda n, f, fs: Event(n, f["msg"], None, f.get("corr"), f["kind"], fs),
    "reject": lambda n, f, fs: Event(n, f["msg"], None, None, f["error"], fs),
    "route": lambda n, f, fs: Event(n, f["msg"], f["actor"], None, None, fs),
    "park": lambda n, f, fs: Event(n, f["msg"], f["actor"], None, None, fs),
    "dequeue": lambda n, f, fs: Event(n, f["msg"], f["actor"], None, None, fs),
    "enqueue": lambda n, f, fs: Event(n, f["msg"], f["actor"], None, f["depth"], fs),
    "dead_letter": lambda n, f, fs: Event(n, f["msg"], None, None, f["reason"], fs),
    "retry": lambda n, f, fs: Event(n, f["msg"], None, None, f["attempt"], fs),
    "resolve": lambda n, f, fs: Event(n, f["msg"], f["requester"], f["corr"], f["outcome"], fs),
    "create_pool": lambda n, f, fs: Event(n, None, None, None, f"{f['pool']}:{f['strategy']}", fs),
    "join": lambda n, f, fs: Event(n, None, f["actor"], None, f["pool"], fs),
    "leave": lambda n, f, fs: Event(n, None, f["actor"], None, f["pool"], fs),
    "provide": lambda n, f, fs: Event(n, None, f["actor"], None, f["service"], fs),
    "subscribe": lambda n, f, fs: Event(n, None, f["actor"], None, f["topic"], fs),
    "unsubscribe": lambda n, f, fs: Event(n, None, f["actor"], None, f["topic"], fs),
}  # fmt: skip


class NeedChoice(Exception):
    """The action ran out of `choices` at a pool that chooses nondeterministically (`random`,
    `power_of_two`, key-less `consistent_hash`): `live` are the members it may choose (spec 3.3,
    3.5, 3.6), `msg` the message being routed."""

    def __init__(self, live: tuple[int, ...], msg: int | None = None) -> None:
        super().__init__(f"message {msg} needs a choice among {live}")
        self.live = live
        self.msg = msg


class NeedRetryAt(Exception):
    """The action ran out of `retry_at` at a jittered retry of `msg` (spec 6.2): the broker may
    retry at any time in `[low, high]`."""

    def __init__(self, msg: int, low: float, high: float) -> None:
        super().__init__(f"message {msg} needs a retry time in [{low!r}, {high!r}]")
        self.msg, self.low, self.high = msg, low, high
