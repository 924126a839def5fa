"""FastEngine (model/_fast.py) is held to ModelEngine, the reference, step by step (`Shadow`).

Every operation of the traces the simulator writes (the examples, the random scenarios of
tests/test_conform.py with every strategy, backpressure and fault, and Hypothesis' scripted
scenarios, which use every operation) is run on both engines: each step must give the same
result, the same events and the same state, and both engines must ask their `Memory` the same
things in the same order. Seeded random action sequences reach what no trace holds: refusals,
`Arrive`, `Advance`, `Tick`, `Cancel`, messages held in transit, draws that do not fit. Planted
bugs show that `Shadow` notices. Not a test of the spec's rules (the model is their reference):
of the engine's agreement with the model, so it names sections without citing them.
"""

from __future__ import annotations

import io
import math
import random
import time
import tomllib
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from scripts import scripts
from test_conform import random_scenario

import model._conform as conform
import model._fast as fast
from model import check_trace
from model._actions import (
    EVENT_FIELDS,
    Action,
    Advance,
    Arrive,
    Ask,
    Cancel,
    CreatePool,
    Dequeue,
    Done,
    Fire,
    Join,
    Leave,
    Provide,
    Refused,
    Register,
    Reply,
    Restart,
    Stop,
    Subscribe,
    Tell,
    Tick,
    Unregister,
    Unsubscribe,
)
from model._engine import Fallback, ModelEngine, RetryAt, Route, Shadow
from model._fast import FastEngine
from model._semantics import _DEAD_LETTER_REASONS
from model._state import ANY_KEY, STRATEGIES, OutcomeKind, Retry, State
from sim import Scenario, default_scenario, example_names, load_example, parse_scenario, simulate
from sim.checking.mutants import MUTANTS, trace_scenario

Op = tuple[float, Action, Route, RetryAt]


class Recorder:
    """A `Memory` (a dict) that records every call, to compare two engines' calls."""

    def __init__(self) -> None:
        self.ended: dict[int, tuple[int, OutcomeKind]] = {}
        self.calls: list[tuple[Any, ...]] = []

    def remember(self, corr: int, requester: int, outcome: OutcomeKind) -> None:
        self.calls.append(("remember", corr, requester, outcome))
        self.ended[corr] = (requester, outcome)

    def recall(self, corr: int) -> tuple[int, OutcomeKind] | None:
        self.calls.append(("recall", corr))
        return self.ended.get(corr)


# -- the operations of a trace -----------------------------------------------------------------


def trace_of(scenario: Scenario) -> str:
    out = io.StringIO()
    simulate(scenario, trace=out)
    return out.getvalue()


def operations(trace: str, conforming: bool = True) -> list[Op]:
    """Every operation of a trace as `Engine.step`'s arguments: conform's own reading of the
    trace, caught where it applies each action, with the log's draws as the engine contract
    asks for them (model/_engine.py: `Route`, `RetryAt`). A trace that does not conform gives
    its operations up to the first illegal one."""
    ops: list[Op] = []
    checked = conform._Checker._apply

    def spy(self: Any, g: Any, action: Action) -> Any:
        events: list[dict[str, Any]] = g.events

        def route(msg: int) -> str | None:
            line = next((e for e in events if e["ev"] == "route" and e.get("msg") == msg), None)
            return line.get("actor") if line is not None else None

        def retry_at(msg: int) -> float:
            line = next((e for e in events if e["ev"] == "retry" and e.get("msg") == msg), None)
            return line.get("at", math.nan) if line is not None else math.inf

        ops.append((g.op["t"], action, route, retry_at))
        return checked(self, g, action)

    with mock.patch.object(conform._Checker, "_apply", spy):
        # the model's checker, not the fast path: it is the one that calls `_apply`
        verdict = check_trace(io.StringIO(trace), "test", fast=False)
    assert verdict.ok or not conforming, verdict.illegal
    return ops


def shadowed(ops: list[Op], start: State | None = None) -> Shadow:
    """Both engines through `ops` side by side (Shadow checks every step); neither may fall
    back on a conforming trace, and both must ask their memories the same."""
    fast_memory, model_memory = Recorder(), Recorder()
    shadow = Shadow(
        FastEngine(start or State(), fast_memory), ModelEngine(start or State(), model_memory)
    )
    for op in ops:
        shadow.step(*op)
    assert fast_memory.calls == model_memory.calls
    return shadow


def no_route(msg: int) -> str | None:
    return None


def no_retry(msg: int) -> float:
    return math.inf


_OPS: dict[str, list[Op]] = {}


def default_ops() -> list[Op]:
    if "default" not in _OPS:
        _OPS["default"] = operations(trace_of(default_scenario()))
    return _OPS["default"]


# -- traces ------------------------------------------------------------------------------------


def test_every_operation_of_the_default_scenario() -> None:
    ops = default_ops()
    assert len(ops) > 6000
    shadow = shadowed(ops)
    assert shadow.steps == len(ops)
    assert shadow.state().sent > 1000


@pytest.mark.parametrize("name", [n for n in example_names() if n != "default"])
def test_every_operation_of_every_example(name: str) -> None:
    shadowed(operations(trace_of(load_example(name))))


def test_random_scenarios_with_every_strategy_backpressure_and_fault() -> None:
    """The 40 first random scenarios of tests/test_conform.py: every strategy among them,
    bounded and blocking mailboxes, jittered retries, transit drops, delays and duplicates,
    crashes and restarts."""
    seen: set[str] = set()
    for seed in range(40):
        scenario = random_scenario(seed)
        seen.update(p.strategy for p in scenario.pools)
        shadowed(operations(trace_of(scenario)))
    assert seen == set(STRATEGIES)


@pytest.mark.slow
def test_more_random_scenarios() -> None:
    for seed in range(40, 400):
        shadowed(operations(trace_of(random_scenario(seed))))


@settings(
    max_examples=250, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(scripts())
def test_every_operation_of_a_scripted_scenario(text: str) -> None:
    """Scripts use every operation, refused ones included (tests/scripts.py)."""
    shadowed(operations(trace_of(parse_scenario(tomllib.loads(text), "script.toml"))))


@pytest.mark.slow
@settings(
    max_examples=2000, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(scripts())
def test_many_scripted_scenarios(text: str) -> None:
    shadowed(operations(trace_of(parse_scenario(tomllib.loads(text), "script.toml"))))


@pytest.mark.parametrize("name", [n for n in sorted(MUTANTS) if trace_scenario(n) is not None])
def test_the_operations_of_a_mutant_brokers_trace(name: str) -> None:
    """A trace that does not conform: both engines agree up to its illegal operation, which
    either both run alike or both leave to the model."""
    scenario = trace_scenario(name)
    assert scenario is not None
    out = io.StringIO()
    simulate(scenario, trace=out, monitors=False, broker_factory=MUTANTS[name])
    ops = operations(out.getvalue(), conforming=False)
    shadow = Shadow(FastEngine(State(), Recorder()), ModelEngine(State(), Recorder()))
    for i, op in enumerate(ops):
        try:
            shadow.step(*op)
        except Fallback as err:
            assert i == len(ops) - 1 and "the engine left the step" not in str(err)


def test_an_engine_started_from_any_state_of_a_run_goes_on_as_the_model() -> None:
    """Construction reads a State as it is (`state()` gives it back) and the run goes on."""
    ops = default_ops()
    model = ModelEngine(State(), Recorder())
    for i, op in enumerate(ops[:3000]):
        model.step(*op)
        if i % 499 == 0:
            assert FastEngine(model.state(), Recorder()).state() == model.state()
    start = model.state()
    assert start.requests and start.timers
    shadowed(ops[3000:3500], start)


def test_a_state_with_ended_requests_and_dead_letters_is_read_as_given() -> None:
    """ModelEngine keeps a given state's ended requests and dead letters until its first step
    (then they leave it, the requests for the memory): so does FastEngine."""
    from model._semantics import apply

    s = State()
    for action in (
        Register("a"),
        Register("b"),
        Ask(1, "name:b", 1.0),
        Ask(1, "name:b", 5.0),
        Tell(None, "name:nobody"),
        Tell(None, "name:b", drop=True),
        Cancel(2),
    ):
        s = apply(s, action).state
    assert s.dead_letters and any(not r.pending for r in s.requests)
    assert FastEngine(s, Recorder()).state() == s
    fast_memory, model_memory = Recorder(), Recorder()
    shadow = Shadow(FastEngine(s, fast_memory), ModelEngine(s, model_memory))
    shadow.step(0.0, Dequeue(2), no_route, no_retry)
    shadow.step(0.0, Reply(2, 2), no_route, no_retry)  # to the cancelled one
    shadow.step(1.0, Fire(), no_route, no_retry)  # request 1 times out
    assert fast_memory.calls == model_memory.calls
    assert [c[1] for c in fast_memory.calls if c[0] == "remember"] == [2, 2, 1]


@pytest.mark.parametrize(
    ("t", "action", "label"),
    [
        (2.0, Dequeue(1), None),  # the timeout at 1.0 did not fire first
        (0.5, Fire(), None),  # no timer is due at 0.5
        (0.0, Advance(-1.0), None),  # time does not go back
        (0.0, Tick(-1.0), None),
        (0.0, Tick(2.0), None),  # past the timeout at 1.0
        (0.0, Arrive(99), None),  # not in transit
        (0.0, Tell(None, "pool:r"), "id:x"),  # a random route to no actor
        (0.0, Tell(None, "pool:r"), "nobody"),
        (0.0, Tell(None, "pool:r"), "b"),  # not a member
        (0.0, Tell(None, "name:a", retry=Retry(3, 1.0, jitter=0.5)), "0.1"),  # too soon
    ],
)
def test_what_the_model_cannot_run_falls_back(t: float, action: Action, label: str | None) -> None:
    """The model's ValueErrors (sections 1.5, 3.3, 6.2, 7.4), and draws the log does not give,
    are a Fallback of both engines."""
    from model._semantics import apply

    s = State()
    for setup in (CreatePool("r", "random"), Register("a", 1), Register("b"), Join("r", 1)):
        s = apply(s, setup).state
    s = apply(s, Tell(None, "name:a")).state  # a's mailbox is full
    s = apply(s, Ask(2, "name:b", 1.0)).state

    def route(msg: int) -> str | None:
        return label

    def retry_at(msg: int) -> float:
        return float(label) if label is not None else math.inf

    shadow = Shadow(FastEngine(s, Recorder()), ModelEngine(s, Recorder()))
    with pytest.raises(Fallback) as raised:
        shadow.step(t, action, route, retry_at)
    assert "the engine left the step" not in str(raised.value)


# -- what FastEngine runs itself ---------------------------------------------------------------


def test_the_hot_operations_are_not_delegated() -> None:
    delegated: list[str] = []
    original = FastEngine._delegate

    def spy(self: FastEngine, t: float, action: Action, route: Route, at: RetryAt) -> Any:
        delegated.append(type(action).__name__)
        return original(self, t, action, route, at)

    with mock.patch.object(FastEngine, "_delegate", spy):
        engine = FastEngine(State(), Recorder())
        for op in default_ops():
            engine.step(*op)
    assert set(delegated) == {"CreatePool", "Register", "Stop", "Restart"}
    assert len(delegated) == 10


def test_least_loaded_ties_to_the_last_member_is_caught() -> None:
    """A planted bug: least_loaded breaks ties to the last member, not the first (section 3.4).
    Shadow names the first step where the engine parts from the model."""
    choose = FastEngine._choose

    def last_of_equal_loads(self: FastEngine, pool: Any, msg: Any) -> int:
        if pool.strategy != "least_loaded":
            return choose(self, pool, msg)
        live = [self.actors[m] for m in pool.members if self.actors[m].alive]
        least = min(map(fast._load, live), default=None)
        tied = [a for a in live if fast._load(a) == least]
        return tied[-1].id if tied else choose(self, pool, msg)

    with (
        mock.patch.object(FastEngine, "_choose", last_of_equal_loads),
        pytest.raises(AssertionError, match=r"step \d+ \((Ask|Tell)\(") as raised,
    ):
        shadowed(default_ops())
    assert "the model's" in str(raised.value) or "states differ" in str(raised.value)


def test_a_wrong_dead_letter_count_is_caught() -> None:
    """Another: a dropped message not counted (section 7.1) shows in the state, not the
    events."""

    def uncounted(self: FastEngine, msg: Any, reason: str) -> None:
        self.events.append(("dead_letter", {"msg": msg.id, "reason": reason}))

    ops = operations(trace_of(random_scenario(3)))
    with (
        mock.patch.object(FastEngine, "_dead_letter", uncounted),
        pytest.raises(AssertionError, match="states differ"),
    ):
        shadowed(ops)


@pytest.mark.slow
def test_fast_engine_is_several_times_faster() -> None:
    """CPU time, best of 5, over the default scenario's operations (the README's numbers
    come from sim/bench-like runs: FastEngine about 1/6 of ModelEngine)."""

    def cost(make: Any) -> float:
        best = math.inf
        for _ in range(5):
            engine = make(State(), Recorder())
            start = time.process_time()
            for op in default_ops():
                engine.step(*op)
            best = min(best, time.process_time() - start)
        return best

    assert cost(FastEngine) * 3 < cost(ModelEngine)


# -- random action sequences -------------------------------------------------------------------
#
# What no trace holds: actions the broker refuses, `Arrive` of messages held in transit
# (`delay=True`, `duplicate=True`), `Advance` and `Tick`, `Cancel`, choices that name no member
# or one the strategy may not choose, retry times out of range. Plain seeded draws, not
# Hypothesis: its search dwells on variations of a few sequences where this wants many.

POOLS = tuple(f"p-{s}" for s in STRATEGIES)
NAMES = ("a", "b", "c", "d", "e")
ADDRESSES = (
    *(f"name:{n}" for n in NAMES),
    *(f"pool:{p}" for p in POOLS),
    *(f"pool:{p}" for p in POOLS),
    "id:1",
    "id:6",
    "id:9",
    "name:nobody",
    "pool:nopool",
    "service:svc",
    "service:nosvc",
    "topic:news",
    "topic:ops",
    "topic:none",
    "bad address",
)
JITTERED = Retry(3, 0.5, jitter=0.5)
RETRIES = (None, None, Retry(3, 0.5), Retry(4, 0.25, 2.0, 1.0), JITTERED)
TIMES = (None, None, None, None, 0.5, 2.0, -1.0)
NET = (False, False, False, False, False, True, 0.5, 1.5)
KEYS = (None, "k1", "k2", "k3", "k4", ANY_KEY)
ACTORS = (1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 9)  # 9: never registered
CORRS = (*range(1, 13), 99)


def _register(r: random.Random) -> Register:
    return Register(
        r.choice((*NAMES, None)),
        r.choice((None, None, 1, 2)),
        r.choice(("reject", "drop_newest", "drop_oldest", "block")),
        r.choice((None, 1.0)),
        r.choice(((), ("svc",))),
        tuple(r.sample(POOLS, r.choice((0, 1, 1, 2)))),
    )


def _send(r: random.Random) -> Action:
    drop, delay, duplicate = r.random() < 0.1, r.choice(NET), r.choice(NET)
    to, high, key = r.choice(ADDRESSES), r.random() < 0.3, r.choice(KEYS)
    retry, send_timeout = r.choice(RETRIES), r.choice(TIMES)
    if r.random() < 0.5:
        sender = r.choice((None, *ACTORS))
        ttl, timestamp = r.choice(TIMES), r.choice((None, None, 0.0))
        return Tell(
            sender, to, high, ttl, timestamp, retry, send_timeout,
            drop=drop, key=key, delay=delay, duplicate=duplicate,
        )  # fmt: skip
    timeout = r.choice((1.0, 1.0, 3.0, 0.0))
    return Ask(
        r.choice(ACTORS), to, timeout, high, retry, send_timeout,
        drop=drop, key=key, delay=delay, duplicate=duplicate,
    )  # fmt: skip


# The actions, by weight: mail and time mostly, the registry now and then.
MENU: tuple[tuple[int, Callable[[random.Random], Action]], ...] = (
    (10, _send),
    (3, lambda r: Reply(r.choice((None, *ACTORS)), r.choice(CORRS), r.random() < 0.1,
                        r.choice(NET), r.choice(NET))),
    (6, lambda r: Dequeue(r.choice(ACTORS))),
    (2, lambda r: Done(r.choice(ACTORS))),
    (5, lambda r: Fire()),
    (1, lambda r: Cancel(r.choice(CORRS))),
    (2, lambda r: Arrive(r.randrange(100))),  # an index into the transit
    (1, lambda r: Tick(r.choice((0.0, 0.5, 1.0)))),  # times from now
    (1, lambda r: Advance(r.choice((0.0, 0.5, 2.0)))),
    (1, lambda r: Stop(r.choice(ACTORS))),
    (1, lambda r: Restart(r.choice(ACTORS))),
    (1, lambda r: Unregister(r.choice(ACTORS))),
    (1, _register),
    (1, lambda r: Join(r.choice(POOLS), r.choice(ACTORS))),
    (1, lambda r: Leave(r.choice(POOLS), r.choice(ACTORS))),
    (1, lambda r: Provide(r.choice(("svc", "alt")), r.choice(ACTORS))),
    (1, lambda r: Subscribe(r.choice(("news", "ops")), r.choice(ACTORS))),
    (1, lambda r: Unsubscribe(r.choice(("news", "ops")), r.choice(ACTORS))),
)  # fmt: skip


def fuzz(seed: int, steps: int = 80) -> Counter[str]:
    """Random actions on both engines under Shadow, each at a time a log could show it (a
    `Fire` when its timer is due). The log's draws are made up: `route` names a registered
    actor, a member or not, now and then one not registered; `retry_at` falls in the range of a
    first or second retry, or says none. What the steps did is counted, to show what they
    reached. A Fallback of both engines ends the run (their states are then undefined); the
    engine alone may not fall back."""
    r = random.Random(seed)
    fast_memory, model_memory = Recorder(), Recorder()
    shadow = Shadow(FastEngine(State(), fast_memory), ModelEngine(State(), model_memory))
    seen: Counter[str] = Counter()
    before = [State()]  # the state before the step

    def route(msg: int) -> str | None:
        members = {m for p in before[0].pools for m in p.members}
        labels = [a.label for a in before[0].actors if a.id in members and a.alive]
        if not labels or (msg + seed) % 10 == 0:
            return "nobody" if (msg + seed) % 20 == 0 else "a"
        return labels[(msg * 31 + seed) % len(labels)]

    def retry_at(msg: int) -> float:  # the jittered policy's: the lowest, the highest or none
        s = before[0]
        timer = next((t for t in s.timers if t.msg is not None and t.msg.id == msg), None)
        at, attempt = (timer.when, timer.msg.attempt) if timer and timer.msg else (s.now, 0)
        wait = JITTERED.wait(attempt + 1)
        return (math.inf, at + wait / 2, at + wait, at + wait * 0.7)[(msg + seed) % 4]

    prelude: list[Action] = [CreatePool(p, s) for p, s in zip(POOLS, STRATEGIES, strict=True)]
    prelude += [_register(r) for _ in range(r.randint(3, 5))]
    prelude += [Subscribe(r.choice(("news", "ops")), r.randint(1, 3)) for _ in range(2)]
    weights = [w for w, _ in MENU]
    for i in range(len(prelude) + steps):
        action = prelude[i] if i < len(prelude) else r.choices(MENU, weights)[0][1](r)
        s = shadow.reference.state()
        due = s.timers[0].when if s.timers else math.inf
        t = min(s.now + r.choice((0.0, 0.0, 0.0, 0.25, 1.0)), due)
        if isinstance(action, Fire):
            if not s.timers:
                continue
            t = due
        elif isinstance(action, Advance):
            action = Advance(t + action.to)
        elif isinstance(action, Tick):
            action = Tick(min(t + action.to, due))
        elif isinstance(action, Arrive):
            if not s.transit:
                continue
            action = Arrive(s.transit[action.msg % len(s.transit)].msg.id)
        before[0] = replace(s, now=t)
        try:
            result, events = shadow.step(t, action, route, retry_at)
        except Fallback as err:
            assert "the engine left the step" not in str(err)
            seen[f"fallback {str(err)[:30]}"] += 1
            break
        name = type(action).__name__
        seen[f"{name} {result.code if isinstance(result, Refused) else type(result).__name__}"] += 1
        for kind, fields in events:
            seen[kind] += 1
            if kind in ("dead_letter", "resolve"):
                seen[f"{kind} {fields.get('reason') or fields.get('outcome')}"] += 1
    assert fast_memory.calls == model_memory.calls
    return seen


def test_random_action_sequences() -> None:
    """300 sequences of 80 random actions; they reach every event, every dead letter reason
    and every outcome a step can have (the counts show it)."""
    seen: Counter[str] = Counter()
    for seed in range(300):
        seen += fuzz(seed)
    for kind in EVENT_FIELDS:
        assert seen[kind], kind
    for reason in sorted(_DEAD_LETTER_REASONS):  # section 7.5: every reason
        assert seen[f"dead_letter {reason}"], reason
    for outcome in ("replied", "timed_out", "cancelled", "failed"):
        assert seen[f"resolve {outcome}"], outcome
    assert seen["Dequeue Msg"] > 100 and seen["Arrive NoneType"] > 100, seen


@pytest.mark.slow
def test_many_random_action_sequences() -> None:
    for seed in range(300, 5000):
        fuzz(seed, 150)
