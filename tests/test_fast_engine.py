"""FastEngine (model/_fast.py) is held to ModelEngine, the reference, step by step (`Shadow`).

Every operation of the traces the simulator writes (the examples, the random scenarios of
tests/test_conform.py with every strategy, backpressure and fault, and Hypothesis' scripted
scenarios, which use every operation) is run on both engines: each step must give the same
result, the same events and the same state, and both engines must ask their `Memory` the same
things in the same order. Hypothesis also draws action sequences directly, to reach what no
trace holds: refusals, `Arrive`, `Advance`, `Tick`, messages held in transit, choices that do
not fit. A planted bug shows that `Shadow` notices.
"""

from __future__ import annotations

import io
import math
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scripts import scripts
from test_conform import random_scenario

import model._conform as conform
import model._fast as fast
from model import check_trace
from model._actions import (
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
from model._state import ANY_KEY, STRATEGIES, OutcomeKind, Retry, State
from sim import Scenario, default_scenario, example_names, load_example, parse_scenario, simulate

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


def operations(trace: str) -> list[Op]:
    """Every operation of a (conforming) trace as `Engine.step`'s arguments: conform's own
    reading of the trace, caught where it applies each action, with the log's draws as the
    engine contract asks for them (model/_engine.py: `Route`, `RetryAt`)."""
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
        verdict = check_trace(io.StringIO(trace), "test")
    assert verdict.ok, verdict.illegal
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
    """Spec 3, 4.4, 6, 7.4: the 40 first random scenarios of tests/test_conform.py (every
    strategy among them, bounded and blocking mailboxes, jittered retries, transit drops,
    delays and duplicates, crashes and restarts)."""
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
    max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
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
    """A planted bug: least_loaded breaks ties to the last member, not the first (spec 3.4).
    Shadow names the first step where the engine parts from the model."""

    def last_of_equal_loads(live: list[Any], key: Any) -> Any:
        return min(reversed(live), key=key)

    with (
        mock.patch.object(fast, "min", last_of_equal_loads, create=True),
        pytest.raises(AssertionError, match=r"step \d+ \((Ask|Tell)\("),
    ):
        shadowed(default_ops())


def test_a_wrong_dead_letter_count_is_caught() -> None:
    """Another: a dropped message not counted (spec 7.1) shows in the state, not the events."""

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


# -- drawn action sequences --------------------------------------------------------------------

POOLS = {s: f"p-{s}" for s in STRATEGIES}
NAMES = ("a", "b", "c", "d", "e")
LABELS = (*NAMES, "id:6", "id:7", "nobody")
ADDRESSES = (
    *(f"name:{n}" for n in NAMES),
    *(f"pool:{p}" for p in POOLS.values()),
    "id:1",
    "id:6",
    "id:9",
    "name:nobody",
    "pool:nopool",
    "service:svc",
    "service:nosvc",
    "topic:news",
    "topic:none",
    "bad address",
)
RETRIES = (None, Retry(3, 0.5), Retry(4, 0.25, 2.0, 1.0), Retry(3, 0.5, jitter=0.5))
TIMES = (None, None, 0.5, 2.0, -1.0)
NET = st.sampled_from((False, False, False, True, 0.5, 1.5))
actors = st.integers(0, 8)
corrs = st.integers(0, 12)


def registrations() -> st.SearchStrategy[Register]:
    return st.builds(
        Register,
        name=st.sampled_from((*NAMES, None)),
        capacity=st.sampled_from((None, 1, 2)),
        backpressure=st.sampled_from(("reject", "drop_newest", "drop_oldest", "block")),
        send_timeout=st.sampled_from((None, 1.0)),
        services=st.sampled_from(((), ("svc",))),
        pools=st.lists(st.sampled_from(tuple(POOLS.values())), max_size=2, unique=True).map(tuple),
    )


def sends() -> st.SearchStrategy[Action]:
    common: dict[str, Any] = {
        "to": st.sampled_from(ADDRESSES),
        "high": st.booleans(),
        "retry": st.sampled_from(RETRIES),
        "send_timeout": st.sampled_from(TIMES),
        "drop": st.sampled_from((False, False, False, True)),
        "key": st.sampled_from((None, "k1", "k2", "k3", ANY_KEY)),
        "delay": NET,
        "duplicate": NET,
    }
    tell = st.builds(
        Tell,
        sender=st.sampled_from((None, 1, 2, 6, 9)),
        ttl=st.sampled_from(TIMES),
        timestamp=st.sampled_from((None, 0.0)),
        **common,
    )
    ask = st.builds(Ask, sender=actors, timeout=st.sampled_from((1.0, 3.0, 0.0)), **common)
    return st.one_of(tell, ask)


def actions() -> st.SearchStrategy[Action]:
    replies = st.builds(
        Reply, st.sampled_from((None, 1, 2, 9)), corrs, st.booleans(), NET, NET
    )  # sender, corr, drop, delay, duplicate
    return st.one_of(
        sends(),
        sends(),
        replies,
        st.builds(Dequeue, actors),
        st.builds(Dequeue, actors),
        st.builds(Done, actors),
        st.builds(Cancel, corrs),
        st.just(Fire()),
        st.just(Fire()),
        st.builds(Arrive, st.integers(1, 30)),
        st.builds(Tick, st.sampled_from((0.0, 0.5, 1.0))),
        st.builds(Advance, st.sampled_from((0.0, 0.5, 2.0))),
        st.builds(Stop, actors),
        st.builds(Restart, actors),
        st.builds(Unregister, actors),
        registrations(),
        st.builds(Join, st.sampled_from(tuple(POOLS.values())), actors),
        st.builds(Leave, st.sampled_from(tuple(POOLS.values())), actors),
        st.builds(Provide, st.just("svc"), actors),
        st.builds(Subscribe, st.sampled_from(("news", "ops")), actors),
        st.builds(Unsubscribe, st.sampled_from(("news", "ops")), actors),
    )  # fmt: skip


@contextmanager
def _no_engine_fallback() -> Iterator[None]:
    """A Fallback of both engines ends the run (the states are then undefined); the engine
    alone may not fall back where the model does not."""
    try:
        yield
    except Fallback as err:
        assert "the engine left the step" not in str(err)


@settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    st.lists(registrations(), min_size=2, max_size=5),
    st.lists(st.tuples(st.sampled_from((0.0, 0.0, 0.25, 1.0)), actions()), max_size=40),
    st.integers(0, 1000),
)
def test_drawn_actions(
    prelude: list[Register], steps: list[tuple[float, Action]], seed: int
) -> None:
    """Any action, at any time a log could show it (a `Fire` when its timer is due), with
    draws that are a function of the message (`route` names a label, maybe one of no member;
    `retry_at` is in the jitter's range, after it, or `inf`)."""

    def route(msg: int) -> str | None:
        return LABELS[(msg * 7 + seed) % len(LABELS)]

    now = [0.0]  # the operation's time

    def retry_at(msg: int) -> float:  # in the range of a first or a second retry, or none
        return now[0] + (math.inf, 0.3, 0.45, 0.6)[(msg + seed) % 4]

    never = [(0.0, CreatePool(name, s)) for s, name in POOLS.items()]
    setup = [*never, *((0.0, r) for r in prelude), (0.0, Subscribe("news", 1))]
    fast_memory, model_memory = Recorder(), Recorder()
    shadow = Shadow(FastEngine(State(), fast_memory), ModelEngine(State(), model_memory))
    with _no_engine_fallback():
        for gap, action in [*setup, *steps]:
            s = shadow.reference.state()
            due = s.timers[0].when if s.timers else math.inf
            if isinstance(action, Fire):
                if not s.timers:
                    continue
                t = due
            else:
                t = min(s.now + gap, due)
            if isinstance(action, Advance | Tick):
                action = type(action)(s.now + action.to)
            now[0] = t
            shadow.step(t, action, route, retry_at)
    assert fast_memory.calls == model_memory.calls
