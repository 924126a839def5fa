"""A run's observers: what the broker tells each event to (`broker.Events`), chosen when the
run is built so that an event costs what the run needs and no more.

- No trace: the monitor itself, told each event's fields as arguments (no dict per event), or,
  with monitors off too, `Counted` (the broker then gets no observer at all).
- A trace: `Logged` makes each event's fields (built by `Events`) its trace line;
  `LoggedChecked` does so and then has the monitor check the event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from broker import Events
from sim.run._monitors import Monitor

if TYPE_CHECKING:
    from sim.run._oplog import OpLog
    from sim.run._runner import Simulation


def observer(sim: Simulation) -> Events:
    """The observer of `sim`'s events: its monitor, its trace, both, or neither."""
    if sim.log is None:
        return Counted(sim) if sim.monitor is None else sim.monitor
    return Logged(sim, sim.log) if sim.monitor is None else LoggedChecked(sim.log, sim.monitor)


class Counted(Events):
    """The observer of a run with neither monitors nor trace: counts what reaches it (faults:
    the broker is given no observer then)."""

    __slots__ = ("sim",)

    def __init__(self, sim: Simulation) -> None:
        super().__init__()
        self.sim = sim

    def emit(self, name: str, fields: dict[str, Any]) -> None:
        self.sim.n_events += 1


class Logged(Events):
    """The observer of a traced run without monitors: each event's fields (built by `Events`)
    become its trace line."""

    __slots__ = ("log", "sim")

    def __init__(self, sim: Simulation, log: OpLog) -> None:
        super().__init__()
        self.sim, self.log = sim, log

    def emit(self, name: str, fields: dict[str, Any]) -> None:
        self.log.line("ev", name, fields)
        self.sim.n_events += 1


class LoggedChecked(Events):
    """The observer of a traced run with monitors: each event's fields (built by `Events`)
    become its trace line, then the monitor checks it. The kinds every request has are passed
    on to the monitor as they came, as arguments; the others as their dict (`observe`)."""

    __slots__ = ("log", "monitor")

    def __init__(self, log: OpLog, monitor: Monitor) -> None:
        super().__init__()
        self.log, self.monitor = log, monitor

    def emit(self, name: str, fields: dict[str, Any]) -> None:
        monitor = self.monitor
        monitor.seq = self.log.line("ev", name, fields)
        if name not in _PASSED_ON:
            monitor.observe(name, fields)

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
        Events.send(self, msg, sender, to, kind, corr, deadline, key, dup_of, copy_of)
        self.monitor.send(msg, sender, to, kind, corr, deadline, key, dup_of, copy_of)

    def route(self, msg: int, actor: str) -> None:
        Events.route(self, msg, actor)
        self.monitor.route(msg, actor)

    def enqueue(self, msg: int, actor: str, depth: int) -> None:
        Events.enqueue(self, msg, actor, depth)
        self.monitor.enqueue(msg, actor, depth)

    def dequeue(self, msg: int, actor: str) -> None:
        Events.dequeue(self, msg, actor)
        self.monitor.dequeue(msg, actor)

    def resolve(self, corr: int, outcome: str, requester: str, msg: int | None) -> None:
        Events.resolve(self, corr, outcome, requester, msg)
        self.monitor.resolve(corr, outcome, requester, msg)


# The kinds `LoggedChecked` passes on to the monitor itself, as arguments.
_PASSED_ON = frozenset(("send", "route", "enqueue", "dequeue", "resolve"))
