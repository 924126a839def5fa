"""What a broker tells its observer: one method per event kind (docs/spec.md 9.1, 9.4).

The broker calls these methods with each event's fields as arguments, so an observer that
reads only a few of them (the simulator's monitors) is told without a dict being built. The
base class builds the fields as the spec's 9.4 table lays them out (the form a trace writes and
the model reads) and hands them to `emit(name, fields)`, which calls the `listener` given, if
any: `Events(listener)` is how a plain `listener(name, fields)` hears a broker.

An `Events` is a listener too: called as `events(name, fields)`, it passes the fields to the
kind's method (`observe`), so a driver that speaks dicts (a port's adapter) can still feed one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Listener = Callable[[str, dict[str, Any]], None]


class Events:
    """A broker's observer; see the module docstring. Override the methods you read."""

    __slots__ = ("listener",)

    def __init__(self, listener: Listener | None = None) -> None:
        self.listener = listener

    def emit(self, name: str, fields: dict[str, Any]) -> None:
        """Every event the base methods build, as its name and its fields (spec 9.4)."""
        if self.listener is not None:
            self.listener(name, fields)

    def observe(self, name: str, fields: dict[str, Any]) -> None:
        """One event given as a dict: to its kind's method, or to `emit` for a kind the broker
        does not emit (the simulator's `fault`)."""
        keys = FIELDS.get(name)
        if keys is None:
            self.emit(name, fields)
        else:
            getattr(self, name)(*map(fields.get, keys))

    __call__ = observe

    # -- the registry (spec 2) ---------------------------------------------------------------

    def register(
        self,
        actor: str,
        name: str | None,
        addresses: list[str],
        capacity: int | None,
        backpressure: str,
        send_timeout: float | None,
    ) -> None:
        fields = {
            "actor": actor,
            "name": name,
            "addresses": addresses,
            "capacity": capacity,
            "backpressure": backpressure,
            "send_timeout": send_timeout,
        }
        self.emit("register", fields)

    def unregister(self, actor: str, reason: str) -> None:
        self.emit("unregister", {"actor": actor, "reason": reason})

    def stop(self, actor: str, reason: str) -> None:
        self.emit("stop", {"actor": actor, "reason": reason})

    def start(self, actor: str) -> None:
        self.emit("start", {"actor": actor})

    def create_pool(self, pool: str, strategy: str) -> None:
        self.emit("create_pool", {"pool": pool, "strategy": strategy})

    def join(self, pool: str, actor: str) -> None:
        self.emit("join", {"pool": pool, "actor": actor})

    def leave(self, pool: str, actor: str) -> None:
        self.emit("leave", {"pool": pool, "actor": actor})

    def provide(self, service: str, actor: str) -> None:
        self.emit("provide", {"service": service, "actor": actor})

    def subscribe(self, topic: str, actor: str) -> None:
        self.emit("subscribe", {"topic": topic, "actor": actor})

    def unsubscribe(self, topic: str, actor: str) -> None:
        self.emit("unsubscribe", {"topic": topic, "actor": actor})

    # -- a message's life (spec 4 to 7): the hot kinds -----------------------------------------

    def send(
        self,
        msg: int,
        sender: str | None,
        to: str | None,
        kind: str,
        corr: int | None,
        deadline: float | None,
        key: str | None,
        dup_of: int | None,
        copy_of: int | None,
    ) -> None:
        """`sender` is the sender's label, `to` the address's text: None for a reply to a
        never-issued corr (5.4)."""
        # rule 9.4: the send event's fields; the optional ones only where they apply
        fields: dict[str, Any] = {
            "msg": msg,
            "from": sender,
            "to": to,
            "kind": kind,
        }
        if corr is not None:
            fields["corr"] = corr
        if kind == "request":
            # rule 9.4: a request's send carries its deadline
            fields["deadline"] = deadline
        if key is not None:
            fields["key"] = key
        if dup_of is not None:
            fields["dup_of"] = dup_of
        if copy_of is not None:
            fields["copy_of"] = copy_of
        self.emit("send", fields)

    def route(self, msg: int, actor: str) -> None:
        self.emit("route", {"msg": msg, "actor": actor})

    def enqueue(self, msg: int, actor: str, depth: int) -> None:
        self.emit("enqueue", {"msg": msg, "actor": actor, "depth": depth})

    def dequeue(self, msg: int, actor: str) -> None:
        self.emit("dequeue", {"msg": msg, "actor": actor})

    def park(self, msg: int, actor: str) -> None:
        self.emit("park", {"msg": msg, "actor": actor})

    def retry(self, msg: int, attempt: int, at: float) -> None:
        self.emit("retry", {"msg": msg, "attempt": attempt, "at": at})

    def reject(self, msg: int, error: str) -> None:
        self.emit("reject", {"msg": msg, "error": error})

    def dead_letter(self, msg: int, reason: str) -> None:
        self.emit("dead_letter", {"msg": msg, "reason": reason})

    def resolve(self, corr: int, outcome: str, requester: str, msg: int | None) -> None:
        """`msg` is the reply that ended the request, None for any other outcome."""
        self.emit("resolve", {"corr": corr, "outcome": outcome, "requester": requester, "msg": msg})


# Each kind's fields in the order of its method's arguments: spec 9.4's table (tests/
# test_spec_tables.py holds it against the model's). A field that only some events of a kind
# have (`send`'s corr, deadline, key, dup_of, copy_of) is None when absent.
FIELDS: dict[str, tuple[str, ...]] = {
    "register": ("actor", "name", "addresses", "capacity", "backpressure", "send_timeout"),
    "unregister": ("actor", "reason"),
    "stop": ("actor", "reason"),
    "start": ("actor",),
    "create_pool": ("pool", "strategy"),
    "join": ("pool", "actor"),
    "leave": ("pool", "actor"),
    "provide": ("service", "actor"),
    "subscribe": ("topic", "actor"),
    "unsubscribe": ("topic", "actor"),
    "send": ("msg", "from", "to", "kind", "corr", "deadline", "key", "dup_of", "copy_of"),
    "reject": ("msg", "error"),
    "route": ("msg", "actor"),
    "enqueue": ("msg", "actor", "depth"),
    "park": ("msg", "actor"),
    "dequeue": ("msg", "actor"),
    "dead_letter": ("msg", "reason"),
    "retry": ("msg", "attempt", "at"),
    "resolve": ("corr", "outcome", "requester", "msg"),
}
