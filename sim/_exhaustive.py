"""The model checker pointed at a broker: every explored transition replayed on the real thing.

`check_broker(bounds, factory)` runs the model checker (model/checker.py) and, on every transition
it explores, replays the shortest path to it and then the step on a fresh broker (from `factory`,
e.g. a mutant of sim/mutants.py) on a virtual clock, and compares the broker's result, events and
counters with the model's `Effect`, as sim/lockstep.py does for random runs. The first
disagreement is a violation whose counterexample is that path: shortest, by breadth-first search.

`scenario_toml(counterexample)` writes a counterexample as a scenario file whose `[[script]]`
performs the path's actions at their model times, so `brokerlab run FILE --broker NAME`
reproduces the violation in the simulator.
"""

from __future__ import annotations

import json
import random
from typing import Any

import model as m
from broker import BrokerError, RetryPolicy
from model.checker import CheckBounds, Clock, Counterexample, Progress, Report, Step, check
from sim._scheduler import Scheduler
from sim.lockstep import BrokerFactory, default_factory
from sim.mutants import MUTANTS

__all__ = ["Unscriptable", "broker_factory", "check_broker", "scenario_toml"]


class Unscriptable(ValueError):
    """The path holds a step a script cannot perform (a message dropped in transit)."""


def broker_factory(name: str) -> BrokerFactory:
    """`reference` or a name of sim.mutants.MUTANTS; KeyError with the choices otherwise."""
    if name == "reference":
        return default_factory
    if name not in MUTANTS:
        raise KeyError(f"no broker {name!r}: expected reference or one of {', '.join(MUTANTS)}")
    return MUTANTS[name]


class _Driver:
    """One broker on a virtual clock, driven by model actions (relative `Advance`)."""

    def __init__(self, factory: BrokerFactory) -> None:
        self.clock = Scheduler()
        self.seen: list[m.Event] = []
        self.broker = factory(self.clock, random.Random(0), self._listen)

    def _listen(self, name: str, f: dict[str, Any]) -> None:
        self.seen.append(m.as_event(name, f))

    def counters(self) -> tuple[int, ...]:
        b: Any = self.broker
        return (b.sent, b.rejected, b.delivered, b.dead_lettered, b.retries)

    def do(self, a: m.Action) -> tuple[Any, str | None]:
        """Perform `a`; (value, None) or (None, error code)."""
        try:
            return self._call(a), None
        except BrokerError as e:
            return None, e.code

    def _call(self, a: m.Action) -> Any:
        b: Any = self.broker
        if isinstance(a, m.CreatePool):
            return b.create_pool(a.name, a.strategy)
        if isinstance(a, m.Register):
            return b.register(
                a.name, capacity=a.capacity, backpressure=a.backpressure,
                send_timeout=a.send_timeout, services=a.services, pools=a.pools,
            )  # fmt: skip
        if isinstance(a, m.Join | m.Leave):
            return (b.join_pool if isinstance(a, m.Join) else b.leave_pool)(a.pool, a.actor)
        if isinstance(a, m.Provide):
            return b.provide(a.service, a.actor)
        if isinstance(a, m.Stop | m.Restart | m.Unregister | m.Dequeue | m.Done):
            op = {m.Stop: b.stop, m.Restart: b.restart, m.Unregister: b.unregister,
                  m.Dequeue: b.dequeue, m.Done: b.done}[type(a)]  # fmt: skip
            return op(a.actor)
        if isinstance(a, m.Ask):
            if a.drop:
                raise Unscriptable("a drop in transit")
            return b.request(
                a.sender, str(a.to), "ask", timeout=a.timeout,
                priority="high" if a.high else "normal", retry=_policy(a.retry),
            )  # fmt: skip
        if isinstance(a, m.Reply):
            if a.drop:
                raise Unscriptable("a drop in transit")
            return b.reply(a.sender, a.corr, "re")
        if isinstance(a, m.Cancel):
            return b.cancel(a.corr)
        assert isinstance(a, m.Advance), a
        to = self.clock.now + a.to
        self.clock.run(until=to)
        self.clock.now = max(self.clock.now, to)
        return None


def _policy(r: m.Retry | None) -> RetryPolicy | None:
    return None if r is None else RetryPolicy(r.max_attempts, r.backoff, r.multiplier,
                                              r.max_backoff, 0.0)  # fmt: skip


def _compare(
    factory: BrokerFactory, path: tuple[Step, ...], step: Step, effect: m.Effect
) -> str | None:
    driver = _Driver(factory)
    try:
        for earlier in path:
            for action in earlier:
                driver.do(action)
        before = driver.counters()
        driver.seen = []
        value: Any = None
        error: str | None = None
        for action in step:
            value, error = driver.do(action)
    except Unscriptable:
        return None  # a drop: the broker cannot be told to lose a message
    except Exception as crash:  # a broker that crashes disagrees with any model
        return f"crash: {type(crash).__name__}: {crash}"
    label = ", ".join(f"{type(a).__name__}" for a in step)
    refused = effect.result.code if isinstance(effect.result, m.Refused) else None
    if error != refused:
        return f"result: {label}: broker {error or 'succeeded'}, model {refused or 'succeeded'}"
    want: Any = effect.result.id if isinstance(effect.result, m.Msg) else effect.result
    got: Any = getattr(value, "msg", value) if value is not None else None
    if refused is None and got != want:
        return f"result: {label}: broker returned {got!r}, model {want!r}"
    if driver.seen != list(effect.events):
        return f"events: {label}:\n broker {driver.seen}\n model  {list(effect.events)}"
    s = effect.state
    moved = tuple(x - y for x, y in zip(driver.counters(), before, strict=True))
    model_moved = (s.sent, s.rejected, s.delivered, s.dead_lettered, s.retries)
    if moved != model_moved:
        return f"counters: {label}: broker moved {moved}, model {model_moved}"
    return None


def check_broker(
    bounds: CheckBounds | None = None,
    factory: BrokerFactory = default_factory,
    *,
    symmetry: bool = True,
    progress: Progress | None = None,
    clock: Clock | None = None,
) -> Report:
    """`model.checker.check`, with every transition also replayed on `factory`'s broker."""

    def on_transition(path: tuple[Step, ...], step: Step, effect: m.Effect) -> str | None:
        return _compare(factory, path, step, effect)

    return check(
        bounds, symmetry=symmetry, on_transition=on_transition, progress=progress, clock=clock
    )


_SCRIPTED = {
    m.Stop: "stop", m.Restart: "restart", m.Unregister: "unregister", m.Dequeue: "deliver",
    m.Done: "done",
}  # fmt: skip


def _script_step(at: float, a: m.Action) -> dict[str, Any] | None:
    if isinstance(a, m.Advance):
        return None
    out: dict[str, Any] = {"at": at}
    if isinstance(a, m.CreatePool):
        out |= {"do": "create_pool", "pool": a.name, "strategy": a.strategy}
    elif isinstance(a, m.Register):
        out["do"] = "register"
        if a.name is not None:
            out["name"] = a.name
        if a.capacity is not None:
            out |= {"capacity": a.capacity, "backpressure": a.backpressure}
        if a.send_timeout is not None:
            out["send_timeout"] = a.send_timeout
    elif isinstance(a, m.Join | m.Leave):
        out |= {"do": "join" if isinstance(a, m.Join) else "leave", "pool": a.pool}
        out["actor"] = a.actor
    elif isinstance(a, m.Provide):
        out |= {"do": "provide", "service": a.service, "actor": a.actor}
    elif type(a) in _SCRIPTED:
        out |= {"do": _SCRIPTED[type(a)], "actor": a.actor}  # type: ignore[union-attr]
    elif isinstance(a, m.Ask):
        if a.drop:
            raise Unscriptable("a request dropped in transit cannot be scripted")
        out |= {"do": "request", "from": a.sender, "to": str(a.to), "timeout": a.timeout}
        if a.high:
            out["priority"] = "high"
        if a.retry is not None:
            r = a.retry
            out["retry"] = {"max_attempts": r.max_attempts, "backoff": r.backoff,
                            "multiplier": r.multiplier, "max_backoff": r.max_backoff,
                            "jitter": 0.0}  # fmt: skip
    elif isinstance(a, m.Reply):
        if a.drop:
            raise Unscriptable("a reply dropped in transit cannot be scripted")
        out |= {"do": "reply", "corr": a.corr}
        if a.sender is not None:
            out["from"] = a.sender
    elif isinstance(a, m.Cancel):
        out |= {"do": "cancel", "corr": a.corr}
    else:
        raise Unscriptable(f"{a} has no script step")
    return out


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value)


def scenario_toml(
    ce: Counterexample, broker: str = "reference", bounds: CheckBounds | None = None
) -> str:
    """`ce` as a scenario file: a `[[script]]` of its actions at their model times.

    Raises `Unscriptable` if the path drops a message in transit (a script cannot).
    """
    timed = ce.actions()
    end = timed[-1][0] if timed else 0.0
    lines = [
        "# A counterexample found by `brokerlab check` (docs/spec.md section 11).",
        f"# property: {ce.violated}",
        *(f"# {line}" for line in ce.detail.splitlines()),
        f"# broker: {broker}; the violation is at t={end!r}, step {len(timed)} of the path.",
        f"# replay: brokerlab run THIS_FILE --broker {broker}",
    ]
    if bounds is not None:
        lines.append(f"# bounds: {json.dumps(bounds.to_dict(), sort_keys=True)}")
    lines += ["", f"until = {_toml(end + 1.0)}", "seed = 1"]
    for at, action in timed:
        step = _script_step(at, action)
        if step is None:
            continue
        lines += ["", "[[script]]"]
        lines += [f"{k} = {_toml(v)}" for k, v in step.items()]
    return "\n".join(lines) + "\n"
