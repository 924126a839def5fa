"""The model checker pointed at a broker: every explored transition replayed on the real thing.

`check_broker(bounds, factory)` runs the model checker (model/checker.py) and, on every transition
it explores, replays the shortest path to it and then the step on a fresh broker (from `factory`,
e.g. a mutant of sim/checking/mutants.py) on a virtual clock, through sim/checking/bridge.py,
and compares the broker's result, events and counters with the model's `Effect`, as
sim/checking/lockstep.py does for random runs. The first disagreement is a violation whose
counterexample is that path: shortest, by breadth-first search.

`scenario_toml(counterexample)` writes a counterexample as a scenario file whose `[[script]]`
performs the path's actions at their model times, so `brokerlab run FILE --broker NAME`
reproduces the violation in the simulator.
"""

from __future__ import annotations

import json
from typing import Any

import model as m
from broker import Broker, BrokerError, BrokerFactory, SplitMix64
from model.checker import (
    CheckBounds,
    Clock,
    Counterexample,
    Progress,
    Report,
    Step,
    answered_at_once,
    check,
)
from sim.checking.bridge import Unscriptable, disagreement, model_counters, perform, script_step
from sim.checking.refinement import refinement
from sim.run import Scheduler

__all__ = ["check_broker", "scenario_toml"]


class _Driver:
    """One broker on a virtual clock, driven by the checker's steps (whose `Advance` is
    relative: the checker abstracts absolute time away, spec 11)."""

    def __init__(self, factory: BrokerFactory) -> None:
        self.clock = Scheduler()
        self.seen: list[m.Event] = []
        self.answer: tuple[int, int] | None = None  # (member, corr) to answer at once
        self.broker = factory(self.clock, SplitMix64(0), listener=self._listen, wake=self._woken)

    def _listen(self, name: str, f: dict[str, Any]) -> None:
        self.seen.append(m.as_event(name, f))

    def _woken(self, actor: int) -> None:
        """Spec 1.6: the member a step answers at once takes the request and replies, inside
        the call that woke it."""
        if self.answer is not None and self.answer[0] == actor:
            member, corr = self.answer
            self.answer = None
            self.do(m.Dequeue(member))
            self.do(m.Reply(member, corr))

    def step(self, step: Step) -> tuple[Any, BrokerError | None]:
        """Perform a step; the result of its last action (of its request, answered at once)."""
        self.answer = answered_at_once(step)
        if self.answer is not None:
            try:
                return self.do(step[0])
            finally:
                self.answer = None
        value: Any = None
        error: BrokerError | None = None
        for action in step:
            value, error = self.do(action)
        return value, error

    def do(self, a: m.Action) -> tuple[Any, BrokerError | None]:
        """Perform `a`; (value, None) or (None, the error raised)."""
        if isinstance(a, m.Advance):
            a = m.Advance(self.clock.now + a.to)
        try:
            return perform(self.broker, a, type(a).__name__.lower(), self.clock), None
        except BrokerError as e:
            return None, e


def _compare(
    factory: BrokerFactory,
    path: tuple[Step, ...],
    before_state: m.State,
    step: Step,
    effect: m.Effect,
) -> str | None:
    driver = _Driver(factory)
    try:
        for earlier in path:
            driver.step(earlier)
        before = driver.broker.stats().counters()
        driver.seen = []
        value, error = driver.step(step)
    except Unscriptable:
        return None  # a drop: the broker cannot be told to lose a message
    except Exception as crash:  # a broker that crashes disagrees with any model
        return f"crash: {type(crash).__name__}: {crash}"
    code, fields = (None, None) if error is None else (error.code, error.fields)
    at_once = answered_at_once(step)
    if at_once is None:
        problem = disagreement(step[-1], value, code, effect.result, fields)
    else:  # the call was the request: it returns the correlation id the reply answers
        problem = disagreement(step[0], value, code, at_once[1], fields)
    if problem is not None:
        return f"result: {problem}"
    label = ", ".join(f"{type(a).__name__}" for a in step)
    if driver.seen != list(effect.events):
        return f"events: {label}:\n broker {driver.seen}\n model  {list(effect.events)}"
    after = driver.broker.stats().counters()
    moved = tuple(x - y for x, y in zip(after, before, strict=True))
    model_moved = tuple(
        x - y
        for x, y in zip(model_counters(effect.state), model_counters(before_state), strict=True)
    )
    if moved != model_moved:
        return f"counters: {label}: broker moved {moved}, model {model_moved}"
    if isinstance(driver.broker, Broker):  # the reference and its mutants: compare states too
        problem = refinement(driver.broker, effect.state, relative=True)
        if problem is not None:
            return f"refinement: {label}: {problem}"
    return None


def check_broker(
    bounds: CheckBounds | None = None,
    factory: BrokerFactory = Broker,
    *,
    symmetry: bool = True,
    progress: Progress | None = None,
    clock: Clock | None = None,
) -> Report:
    """`model.checker.check`, with every transition also replayed on `factory`'s broker."""

    def on_transition(
        path: tuple[Step, ...], before: m.State, step: Step, effect: m.Effect
    ) -> str | None:
        return _compare(factory, path, before, step, effect)

    return check(
        bounds, symmetry=symmetry, on_transition=on_transition, progress=progress, clock=clock
    )


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
    end = ce.time
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
    now = 0.0
    for step in ce.steps:
        at_once = answered_at_once(step)
        for action in step[:1] if at_once else step:
            if isinstance(action, m.Advance):
                now += action.to  # time moves by the steps' `at`
                continue
            table = script_step(now, action)
            if at_once is not None:  # the member dequeues and replies inside the request
                table["answered_by"] = at_once[0]
            lines += ["", "[[script]]"]
            lines += [f"{k} = {_toml(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"
