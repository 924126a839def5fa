"""The one bridge between model actions, broker calls and script steps (sim/checking/bridge.py)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import model as m
from broker import Broker, RetryPolicy
from sim.checking.bridge import Unscriptable, action_of, perform, policy, script_step
from sim.run import Scheduler
from sim.scenario import ACTIONS, RetrySpec, parse_scenario

NAMES = st.sampled_from(["a", "b", "p", "s"])
ACTORS = st.integers(1, 5)
TIMES = st.sampled_from([0.5, 1.0, 2.5])
RETRIES = st.none() | st.builds(
    m.Retry,
    st.integers(1, 4),
    st.sampled_from([0.0, 0.1, 0.5]),
    st.sampled_from([1.0, 2.0]),
    st.sampled_from([1.0, 5.0]),
    st.sampled_from([0.0, 0.25]),
)
ADDRS = st.builds(m.Addr, st.sampled_from(["name", "service", "pool"]), NAMES) | ACTORS.map(
    lambda i: m.Addr("id", str(i))
)
KEYS = st.none() | st.sampled_from(["k1", "k2"])

SCRIPTABLE: st.SearchStrategy[m.Action] = st.one_of(
    st.builds(
        m.Register,
        st.none() | NAMES,
        st.none() | st.integers(1, 3),
        st.sampled_from(m.BACKPRESSURES),
        st.none(),
        st.lists(NAMES, max_size=2, unique=True).map(tuple),
        st.lists(NAMES, max_size=2, unique=True).map(tuple),
    ).filter(lambda r: r.capacity is not None or r.backpressure == "reject"),
    st.builds(m.Unregister, ACTORS),
    st.builds(m.Stop, ACTORS),
    st.builds(m.Restart, ACTORS),
    st.builds(m.CreatePool, NAMES, st.sampled_from(m.STRATEGIES)),
    st.builds(m.Join, NAMES, ACTORS),
    st.builds(m.Leave, NAMES, ACTORS),
    st.builds(m.Provide, NAMES, ACTORS),
    st.builds(
        m.Tell,
        st.none() | ACTORS,
        ADDRS,
        st.booleans(),
        st.none() | TIMES,
        st.none() | TIMES,
        RETRIES,
        st.none() | TIMES,
        key=KEYS,
    ),
    st.builds(m.Ask, ACTORS, ADDRS, TIMES, st.booleans(), RETRIES, st.none() | TIMES, key=KEYS),
    st.builds(m.Reply, st.none() | ACTORS, ACTORS),
    st.builds(m.Cancel, ACTORS),
    st.builds(m.Dequeue, ACTORS),
    st.builds(m.Done, ACTORS),
)


def _by_id(ref: int | str) -> int:
    assert isinstance(ref, int), ref
    return ref


@given(at=TIMES, action=SCRIPTABLE)
def test_a_scripted_action_reads_back_as_itself(at: float, action: m.Action) -> None:
    """model action -> script table -> the scenario loader -> model action is the identity."""
    table = script_step(at, action)
    scenario = parse_scenario({"until": 10.0, "script": [table]}, "bridge")
    (step,) = scenario.script
    assert step.at == at
    back, payload = action_of(step, _by_id)
    assert back == action
    assert payload is None


def test_every_script_step_kind_has_a_model_action() -> None:
    seen = set()
    for do in ACTIONS:
        required: dict[str, Any] = {
            "actor": 1, "pool": "p", "service": "s", "to": "name:a", "from": 1, "timeout": 1.0,
            "corr": 1, "topic": "t",
        }  # fmt: skip
        keys = {k.rstrip("!") for k in ACTIONS[do] if k.endswith("!")}
        table = {"at": 0.0, "do": do, **{k: required[k] for k in keys}}
        (step,) = parse_scenario({"until": 1.0, "script": [table]}, "bridge").script
        action, _ = action_of(step, _by_id)
        assert script_step(0.0, action)["do"] == do
        seen.add(type(action))
    assert len(seen) == len(ACTIONS)


@pytest.mark.parametrize(
    "action",
    [
        m.Advance(1.0),
        m.Fire(),
        m.Tick(1.0),
        m.Arrive(1),
        m.Tell(None, m.Addr("name", "a"), drop=True),
        m.Tell(None, m.Addr("name", "a"), delay=True),
        m.Reply(None, 1, duplicate=True),
    ],
)
def test_time_and_losses_are_not_broker_calls(action: m.Action) -> None:
    broker: Broker[Any] = Broker(Scheduler(), random.Random(0))
    broker.register("a")
    with pytest.raises(Unscriptable):
        perform(broker, action)
    with pytest.raises(Unscriptable):
        script_step(0.0, action)


def test_perform_returns_what_the_broker_returns() -> None:
    broker: Broker[Any] = Broker(Scheduler(), random.Random(0))
    a = perform(broker, m.Register("a"))
    assert perform(broker, m.Tell(None, m.Addr("name", "a")), "hello") == 1
    env = perform(broker, m.Dequeue(a))
    assert (env.msg, env.payload) == (1, "hello")


def test_the_three_retry_policies_share_their_defaults() -> None:
    assert policy(m.Retry()) == RetryPolicy() == policy(RetrySpec())
    assert policy(None) is None


def test_advance_moves_the_clock_it_is_given() -> None:
    clock = Scheduler()
    broker: Broker[Any] = Broker(clock, random.Random(0))
    client, server = perform(broker, m.Register()), perform(broker, m.Register("s"))
    perform(broker, m.Ask(client, m.Addr("name", "s"), 2.0))
    assert perform(broker, m.Advance(2.0), clock=clock) is None  # the model's result too
    assert (clock.now, broker.outcome(1)) == (2.0, "timed_out")
    assert server == 2
