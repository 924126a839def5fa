"""The model checker pointed at a broker: every explored transition replayed on the real thing.

`check_broker(bounds, factory)` runs the model checker (model/checker.py) and, on every transition
it explores, replays the shortest path to it and then the step on a fresh broker (from `factory`,
e.g. a mutant of sim/checking/mutants.py) on a virtual clock, through sim/checking/bridge.py,
and compares the broker's result, events and counters with the model's `Effect`, as
sim/checking/lockstep.py does for random runs. The first disagreement is a violation whose
counterexample is that path: shortest, by breadth-first search; an events disagreement carries
the broker's events, which the printout shows beside the model's.

Nondeterministic routes are the model's choices, and the broker is made to take them: the
reference and its mutants draw from a stream that plays back the draws which choose the model's
member (`random`: its index among the live members; `power_of_two`: the member and the one live
member it beats, which every other member beats too, spec 3.3, 3.5), and a `consistent_hash`
message with a key nobody knows is sent with a key the model routes to the chosen member (3.6).
A port draws its own numbers, and a retried message keeps its key, so `steering_problem` refuses
those bounds (`BoundsError`) rather than report the broker's other choice as a disagreement.

`scenario_toml(counterexample)` writes a counterexample as a scenario file whose `[[script]]`
performs the path's actions at their model times, so `brokerlab run FILE --broker NAME`
reproduces the violation in the simulator (whose broker makes its own random choices).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import model as m
from broker import Broker, BrokerError, BrokerFactory, SplitMix64
from model.checker import (
    BoundsError,
    CheckBounds,
    Clock,
    Complaint,
    Counterexample,
    Progress,
    Report,
    Step,
    answered_at_once,
    check,
    first_difference,
    format_counterexample,
)
from sim.checking.bridge import Unscriptable, disagreement, model_counters, perform, script_step
from sim.checking.refinement import refinement
from sim.run import Scheduler
from sim.scenario import value_toml

__all__ = ["check_broker", "scenario_toml", "steering_problem"]

# The strategies whose route is a choice the model makes (spec 3.3, 3.5, 3.6).
CHOOSING: tuple[m.StrategyName, ...] = ("random", "power_of_two", "consistent_hash")


class _Steered:
    """A random stream that plays back the draws it is given (spec 1.2's `below`), then, if the
    broker asks for more than the model's choices need, SplitMix64's: the broker then goes its
    own way, and the comparison says where."""

    def __init__(self) -> None:
        self.draws: list[int] = []
        self.rest = SplitMix64(0)

    def randrange(self, n: int, /) -> int:
        if self.draws and self.draws[0] < n:
            return self.draws.pop(0)
        self.draws = []
        return self.rest.randrange(n)

    def random(self) -> float:
        return self.rest.random()


def _choosing_pool(s: m.State) -> m.PoolState:
    pools = [p for p in s.pools if p.strategy in CHOOSING]
    assert len(pools) == 1, "the checker's world has one pool"
    return pools[0]


def _draws(s: m.State, a: m.Action) -> list[int]:
    """The broker's draws that make the routes of `a` (absolute time) from `s` the members its
    `choices` name, in routing order."""
    made: tuple[int, ...] = getattr(a, "choices", ())
    if not made:
        return []
    assert isinstance(a, m.Ask | m.Tell | m.Advance)
    pool = _choosing_pool(s)
    live = [x for x in pool.members if (actor := s.actor(x)) is not None and actor.alive]
    out: list[int] = []
    for k, chosen in enumerate(made):
        try:
            m.apply(s, replace(a, choices=made[:k]))
        except m.NeedChoice as need:
            allowed = need.live
        else:  # pragma: no cover - the checker gives no choice a route does not need
            raise AssertionError(f"{a} routes without choice {k}")
        if pool.strategy == "random":  # spec 3.3: live[randrange(len(live))]
            out.append(live.index(chosen))
        elif pool.strategy == "power_of_two" and len(live) > 1:  # spec 3.5: i, then j - (j > i)
            loser = next(x for x in live if x not in allowed)
            i, j = live.index(chosen), live.index(loser)
            out += [i, j - 1 if j > i else j]
    return out


def _keyed(s: m.State, a: m.Action) -> m.Action:
    """`a` with a key nobody knows replaced by one the model routes to its chosen member."""
    if not isinstance(a, m.Ask | m.Tell) or not isinstance(a.key, m.AnyKey):
        return a
    if not a.choices:  # it never routes (no live member): any key fails alike
        return replace(a, key="k0")
    assert len(a.choices) == 1, "a key-less message routes once (steering_problem)"
    want = s.actor(a.choices[0])
    assert want is not None
    for n in range(10_000):
        keyed = replace(a, key=f"k{n}", choices=())
        if any(e.name == "route" and e.actor == want.label for e in m.apply(s, keyed).events):
            return keyed
    raise AssertionError(f"no key routes to {want.label}")  # pragma: no cover


def steering_problem(bounds: CheckBounds, factory: BrokerFactory) -> str | None:
    """Why the broker cannot be made to take the model's routing choices under `bounds`, or
    None (see the module docstring)."""
    own = isinstance(factory, type) and issubclass(factory, Broker)
    if bounds.strategy in ("random", "power_of_two") and not own:
        return (
            f"strategy = {bounds.strategy!r}: this broker draws its own random numbers (spec "
            "1.2), so it cannot be made to take each of the model's choices; only the "
            "reference and its mutants can be checked with it"
        )
    if bounds.strategy == "consistent_hash" and bounds.retry_attempts > 1:
        return (
            "strategy = 'consistent_hash' with retries: a retried message keeps its key, so "
            "the broker's second route is not the model's free choice; use --retries 1"
        )
    return None


class _Driver:
    """One broker on a virtual clock, driven by the checker's steps (whose `Advance` is
    relative: the checker abstracts absolute time away, spec 11)."""

    def __init__(self, factory: BrokerFactory, steer: bool, draws: bool = False) -> None:
        self.clock = Scheduler()
        self.seen: list[m.Event] = []
        self.answer: tuple[int, int] | None = None  # (member, corr) to answer at once
        # With steering, the model along the same path: it says which key or draws make each
        # choice; the draws are played back to the reference or a mutant (a port has its own).
        self.model: m.State | None = m.State() if steer else None
        self.steered = _Steered() if draws else None
        rng = self.steered or SplitMix64(0)
        self.broker = factory(self.clock, rng, listener=self._listen, wake=self._woken)

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
        """Perform `a` (relative times made absolute); (value, None) or (None, the error)."""
        if isinstance(a, m.Advance):
            a = m.Advance(self.clock.now + a.to, a.choices)
        elif isinstance(a, m.Tell) and a.timestamp is not None:
            a = replace(a, timestamp=self.clock.now + a.timestamp)
        if self.model is not None:
            if self.steered is not None:
                self.steered.draws = _draws(self.model, a)
            a = _keyed(self.model, a)
            self.model = m.apply(self.model, a).state
        try:
            return perform(self.broker, a, type(a).__name__.lower(), self.clock), None
        except BrokerError as e:
            return None, e


def _compare(
    factory: BrokerFactory,
    steer: tuple[bool, bool],
    path: tuple[Step, ...],
    before_state: m.State,
    step: Step,
    effect: m.Effect,
) -> str | Complaint | None:
    driver = _Driver(factory, *steer)
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
        where = first_difference(driver.seen, effect.events)
        return Complaint(f"events: {label}: the broker's {where}", tuple(driver.seen))
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
    max_states: int | None = None,
) -> Report:
    """`model.checker.check`, with every transition also replayed on `factory`'s broker.

    Raises `BoundsError` for bad bounds, and for bounds whose choices the broker cannot be
    made to take (`steering_problem`)."""
    b = (bounds or CheckBounds()).validate()
    problem = steering_problem(b, factory)
    if problem is not None:
        raise BoundsError(problem)
    steer = (b.strategy in CHOOSING, b.strategy in ("random", "power_of_two"))

    def on_transition(
        path: tuple[Step, ...], before: m.State, step: Step, effect: m.Effect
    ) -> str | Complaint | None:
        return _compare(factory, steer, path, before, step, effect)

    return check(
        b, symmetry=symmetry, on_transition=on_transition, progress=progress, clock=clock,
        max_states=max_states,
    )  # fmt: skip


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
        "#",
        *(f"# {line}".rstrip() for line in format_counterexample(ce).splitlines()),
        "#",
        f"# broker: {broker}; the violation is at t={end!r}, step {len(ce.steps)} of the path "
        f"({len(timed)} actions).",
        f"# replay: brokerlab run THIS_FILE --broker {broker}",
    ]
    if bounds is not None:
        lines.append(f"# bounds: {json.dumps(bounds.to_dict(), sort_keys=True)}")
    lines += ["", f"until = {value_toml(end + 1.0)}", "seed = 1"]
    now = 0.0
    for step in ce.steps:
        at_once = answered_at_once(step)
        for action in step[:1] if at_once else step:
            if isinstance(action, m.Advance):
                now += action.to  # time moves by the steps' `at`
                continue
            if isinstance(action, m.Tell) and action.timestamp is not None:
                action = replace(action, timestamp=now + action.timestamp)  # relative, as `at`
            table = script_step(now, action)
            if at_once is not None:  # the member dequeues and replies inside the request
                table["answered_by"] = at_once[0]
            lines += ["", "[[script]]"]
            lines += [f"{k} = {value_toml(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"
