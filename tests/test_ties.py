"""Ties (docs/scenario-format.md, "Ties"): a seeded order of the world's same-time steps."""

from __future__ import annotations

import io
import json
from functools import partial

import pytest

from model import check_trace
from sim import loads_scenario, simulate
from sim.run import Scheduler, TieBreaker, replay
from sim.scenario import ScenarioError

# Constant arrivals and service times: many steps at one instant, and replies at deadlines.
TIED = """
seed = 1
until = 20.0
{ties}
[[pool]]
name = "w"
size = 2
strategy = "least_loaded"
capacity = 2
service = {{ dist = "constant", value = 1.0 }}
[[client]]
name = "a"
target = "pool:w"
arrivals = {{ process = "constant", interval = 0.5 }}
timeout = 1.5
[[client]]
name = "b"
target = "pool:w"
arrivals = {{ process = "constant", interval = 1.0 }}
timeout = 2.0
retry = {{ max_attempts = 2, backoff = 0.5, multiplier = 1.0 }}
"""


def trace_of(ties: str) -> str:
    out = io.StringIO()
    result = simulate(loads_scenario(TIED.format(ties=ties)), trace=out)
    assert result.ok, result.summary
    return out.getvalue()


def test_tie_seeds_vary_the_order_and_every_order_conforms_and_replays() -> None:
    traces = {k: trace_of(f"ties = {k}") for k in range(6)}
    assert len(set(traces.values())) == 6  # each seed gives its own interleaving
    assert trace_of("ties = 4") == traces[4]  # and the same seed the same one
    for text in traces.values():
        verdict = check_trace(text.splitlines(), "tied")
        assert verdict.ok, verdict
        assert replay(io.StringIO(text), "tied") is None
        header = json.loads(text.splitlines()[0])
        assert "ties" in header["scenario"]


def test_no_ties_key_is_the_scheduling_order_and_leaves_the_header_alone() -> None:
    text = trace_of("")
    assert "ties" not in json.loads(text.splitlines()[0])["scenario"]
    assert len({text, trace_of("ties = 0")}) == 2


def test_broker_timers_keep_their_order_and_world_steps_go_around_them() -> None:
    seen: set[str] = set()
    for seed in range(40):
        s = TieBreaker(seed)
        out: list[str] = []
        for name in "abcd":
            s.call_at(1.0, partial(out.append, name))
        for name in "XYZ":
            s.broker_timers.call_at(1.0, partial(out.append, name))
        s.call_at(0.5, partial(out.append, "first"))
        s.run()
        order = "".join(out[1:])
        assert out[0] == "first"  # time order is never varied
        assert "XYZ" in order  # the broker's timers: one block, in the order they were set
        assert sorted(order.replace("XYZ", "")) == list("abcd")
        seen.add(order)
    assert len(seen) > 10
    plain = Scheduler()
    assert plain.broker_timers is plain


@pytest.mark.parametrize(
    ("value", "message"),
    [("-1", 'key "ties": must be >= 0'), ('"x"', 'key "ties": expected an integer')],
)
def test_a_bad_ties_value_is_refused_naming_the_key(value: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        loads_scenario(TIED.format(ties=f"ties = {value}"), "t.toml")
