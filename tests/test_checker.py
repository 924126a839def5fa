"""The model checker (docs/spec.md section 11): verdicts, symmetry, counterexamples that replay."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import pytest

from broker import Broker
from model._properties import SOMETIMES
from model.checker import BoundsError, CheckBounds, check
from sim import Simulation, load_scenario, simulate
from sim.checking.exhaustive import check_broker, scenario_toml
from sim.checking.mutants import MUTANTS, broker_class
from sim.checking.refinement import refinement
from sim.cli import main

SMALL = CheckBounds(clients=2, members=2, requests=1, faults=("crash", "duplicate"))
# Small enough to explore fully with every transition replayed on a broker, twice.
TINY = CheckBounds(clients=1, members=2, requests=1, retry_attempts=1, faults=("crash",))
# The bounds that reach each mutant the checker catches (spec 11.4).
CATCH: dict[str, CheckBounds] = {
    "reply_before_pending": SMALL,
    "leak_pending_on_stop": SMALL,
    "late_reply_delivered": SMALL,
    "duplicate_reply_delivered": SMALL,
    "round_robin_no_adjust_on_leave": CheckBounds(
        clients=2, members=3, capacity=None, retry_attempts=1, faults=("leave",)
    ),
    "dropped_counted_delivered": CheckBounds(
        clients=2, members=2, backpressure="drop_newest", faults=()
    ),
    "capacity_off_by_one": SMALL,
    "inclusive_deadline": SMALL,
    # A subscriber that answers inside the publish (spec 1.6) finds no request (spec 5.1).
    "publish_before_pending": CheckBounds(clients=1, members=2, topic=True, faults=()),
    # A tell stamped a tick ahead, taken at once (spec 4.7).
    "future_timestamp_expired": CheckBounds(
        clients=1, members=1, requests=0, tells=1, ttl=1, retry_attempts=1, faults=()
    ),
}
# Out of reach of the bounds: route_collision needs two names that collide, the checker names
# one actor.
UNREACHABLE = {"route_collision"}


def test_every_mutant_is_classified() -> None:
    assert set(CATCH) | UNREACHABLE == set(MUTANTS)


@pytest.mark.slow
def test_spec_11_the_model_holds_every_property_on_small_bounds() -> None:
    report = check(SMALL)
    assert report.ok, [p.to_dict() for p in report.violations()]
    verdicts = {p.name: p.verdict for p in report.properties}
    ruled_out = {name for name, sm in SOMETIMES.items() if not sm.needs(SMALL)}  # no tells here
    assert all(v == "n/a" for k, v in verdicts.items() if k in ruled_out), verdicts
    assert all(v in ("holds", "reached") for k, v in verdicts.items() if k not in ruled_out)
    assert report.states > 1000 and report.depth > 5


def test_spec_11_sometimes_properties_are_not_vacuous() -> None:
    """Spec 11.3: a sometimes-property the bounds rule out is n/a, one they allow is reached."""
    report = check(CheckBounds(clients=1, members=1, faults=()))
    verdicts = {p.name: p.verdict for p in report.properties if p.kind == "sometimes"}
    assert verdicts["reply_delivered"] == "reached"
    assert verdicts["failover"] == "n/a"  # no crashes: no failover to witness


def test_spec_11_symmetry_cuts_by_the_factorials_and_keeps_verdicts() -> None:
    """Spec 11.4: one state per orbit of interchangeable actors, the same verdicts."""
    bounds = CheckBounds(clients=2, members=2, requests=1, retry_attempts=1, faults=())
    on, off = check(bounds), check(bounds, symmetry=False)
    assert on.ok and off.ok
    assert off.states >= 2 * on.states  # at least 2! (the members)
    assert [p.verdict for p in on.properties] == [p.verdict for p in off.properties]


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_spec_11_symmetry_never_hides_a_mutant(name: str) -> None:
    bounds = CATCH.get(name, TINY)
    on = check_broker(bounds, broker_class(name))
    off = check_broker(bounds, broker_class(name), symmetry=False)
    assert on.ok == off.ok
    assert on.ok == off.ok
    if name in CATCH:
        assert not on.ok


def _replay(path: Path, name: str) -> tuple[float | None, str]:
    scenario = load_scenario(str(path))
    trace = io.StringIO()
    result = simulate(scenario, trace=trace, broker_factory=MUTANTS[name])
    return (None if result.violation is None else result.violation.t), trace.getvalue()


@pytest.mark.parametrize("name", sorted(CATCH))
def test_spec_11_counterexamples_replay_in_the_simulator(name: str, tmp_path: Path) -> None:
    """Checker finds it, writes the file, the simulator reproduces it at the same time: by an
    online monitor, or (where no monitor can see the bug) by the trace failing conformance."""
    report = check_broker(CATCH[name], broker_class(name))
    assert not report.ok
    ce = next(p.counterexample for p in report.violations() if p.counterexample is not None)
    assert ce is not None
    path = tmp_path / f"{name}.toml"
    path.write_text(scenario_toml(ce, name, CATCH[name]))
    t, trace = _replay(path, name)
    if t == ce.time:  # an online monitor sees it at the very step
        assert main(["run", str(path), "--broker", name, "--quiet"]) == 1
        return
    from model import check_trace

    reference = io.StringIO()
    simulate(load_scenario(str(path)), trace=reference)
    assert check_trace(io.StringIO(reference.getvalue()), "reference").ok  # the script is fine
    verdict = check_trace(io.StringIO(trace), name)
    if verdict.illegal is not None:
        return
    # Found by the refinement check before it shows in any event: the simulated broker's state
    # at the end of the script does not map onto the model's after replaying the same log.
    sim = Simulation(load_scenario(str(path)), broker_factory=MUTANTS[name])
    sim.run()
    assert isinstance(sim.core, Broker) and verdict.state is not None
    problem = refinement(sim.core, verdict.state)
    assert problem is not None, f"{name}: no monitor, conform or refinement check saw it"


def test_the_reference_broker_agrees_with_the_model_on_small_bounds() -> None:
    assert check_broker(TINY, broker_class("reference")).ok


def test_topics_and_answers_at_once_are_explored_and_agree() -> None:
    """Spec 11.1 with `topic`: requests to `topic:t`, some answered at once inside the call
    (spec 1.6); the reference agrees with the model on every transition, and the bounds reach
    a reply delivered and a duplicate reply dead-lettered."""
    bounds = CheckBounds(clients=1, members=2, topic=True, faults=("crash", "duplicate"))
    report = check_broker(bounds, broker_class("reference"))
    assert report.ok, [p.to_dict() for p in report.violations()]
    plain = check(replace(bounds, topic=False))
    assert report.states > plain.states  # the topic adds states, it does not replace any
    verdicts = {p.name: p.verdict for p in report.properties}
    assert verdicts["reply_delivered"] == "reached", verdicts


def test_cli_check_json_and_exit_codes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    args = ["check", "--clients", "1", "--members", "2", "--faults", "crash"]
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    keys = {"states", "transitions", "depth", "seconds", "states_per_second", "properties"}
    assert keys <= set(report)
    assert main(["check", "--members", "9"]) == 2
    assert main(["check", "--clients", "1", "--faults", "none", "--topic", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bounds"]["topic"] is True
    assert main(["check", "--faults", "meteor"]) == 2
    graph = tmp_path / "g.dot"
    assert main([*args, "--graph", str(graph)]) == 0
    assert graph.read_text().startswith("digraph")
    assert main([*args, "--graph", str(tmp_path / "g.graphml")]) == 0
    out = tmp_path / "ce.toml"
    bad = ["check", "--broker", "capacity_off_by_one", "--faults", "none", "--out", str(out)]
    assert main(bad) == 1
    assert "[[script]]" in out.read_text()
    assert main(["run", str(out), "--broker", "nonesuch"]) == 2


def test_bad_bounds_are_refused() -> None:
    """Spec 11.1: bounds outside the explored world are refused, not silently changed."""
    with pytest.raises(BoundsError, match="strategy"):
        check(CheckBounds(strategy="fastest"))  # type: ignore[arg-type]


@pytest.mark.slow
def test_spec_11_default_bounds_hold() -> None:
    """The default bounds (their speed is `make bench`'s row, not asserted here)."""
    assert check().ok


@pytest.mark.slow
def test_spec_11_larger_bounds_hold() -> None:
    bounds = CheckBounds(clients=2, members=3, requests=1, faults=("cancel", "crash"))
    assert check(bounds).ok
