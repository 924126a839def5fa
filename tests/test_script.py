"""`[[script]]` steps (docs/scenario-format.md): exact, timed broker operations that replay
model-checker counterexamples in the simulator."""

from __future__ import annotations

import io
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from broker import Broker
from sim import Scenario, ScenarioError, Simulation, parse_scenario, simulate
from sim.checking.mutants import LateReplyDelivered, LeakPendingOnStop
from sim.cli import main

LATE_REPLY = """
until = 10.0
[[script]]
at = 0.0
do = "register"
name = "client"
[[script]]
at = 0.0
do = "register"
name = "server"
[[script]]
at = 1.0
do = "request"
from = "client"
to = "name:server"
timeout = 2.5
[[script]]
at = 2.0
do = "deliver"
actor = "server"
[[script]]
at = 4.0
do = "reply"
from = "server"
corr = 1
"""


def load(text: str) -> Scenario:
    return parse_scenario(tomllib.loads(text), "script.toml")


def run(s: Scenario, factory: Any = Broker) -> tuple[Any, list[dict[str, Any]]]:
    out = io.StringIO()
    result = simulate(s, trace=out, broker_factory=factory)
    return result, [e for e in map(json.loads, out.getvalue().splitlines()[1:]) if "ev" in e]


def test_script_runs_its_steps_at_their_times() -> None:
    result, events = run(load(LATE_REPLY))
    assert result.ok, result.violation
    timeline = [(e["t"], e["ev"]) for e in events if e["ev"] != "register"]
    assert timeline == [
        (1.0, "send"), (1.0, "route"), (1.0, "enqueue"), (2.0, "dequeue"),
        (3.5, "resolve"), (4.0, "send"), (4.0, "dead_letter"),
    ]  # fmt: skip
    assert events[-1]["reason"] == "late_reply"
    assert result.summary["script_errors"] == []


def test_a_counterexample_script_reproduces_the_mutants_violation() -> None:
    result, _ = run(load(LATE_REPLY), LateReplyDelivered)
    assert result.violation is not None
    assert result.violation.t == 4.0  # at the reply step, as the checker found it
    # The mutant hands the late reply over without a word: the step's counters disagree.
    assert result.violation.invariant == "counters"


# The same client, server and request (deadline 6.0 here), then the client stops.
LEAK = (
    LATE_REPLY[: LATE_REPLY.index("[[script]]\nat = 2.0")].replace("timeout = 2.5", "timeout = 5.0")
    + '[[script]]\nat = 2.0\ndo = "stop"\nactor = "client"\n'
)


def test_settled_check_catches_a_leaked_pending_entry() -> None:
    assert run(load(LEAK))[0].ok
    result, _ = run(load(LEAK), LeakPendingOnStop)
    assert result.violation is not None
    assert (result.violation.invariant, result.violation.t) == ("no_leak", 2.0)


def test_script_errors_are_reported_not_fatal() -> None:
    text = LATE_REPLY + '[[script]]\nat = 5.0\ndo = "join"\npool = "nope"\nactor = "server"\n'
    result, _ = run(load(text))
    assert result.ok
    assert result.summary["script_errors"] == [
        "step 6 (join at t=5.0): pool_not_found: no pool nope"
    ]


def test_every_action_kind_runs() -> None:
    steps: list[dict[str, Any]] = [
        {"at": 0.0, "do": "create_pool", "pool": "p", "strategy": "round_robin"},
        {"at": 0.0, "do": "register", "name": "a", "capacity": 2,
         "backpressure": "drop_oldest", "pools": ["p"], "services": ["s"]},
        {"at": 0.0, "do": "register"},
        {"at": 0.1, "do": "provide", "service": "t", "actor": 2},
        {"at": 0.2, "do": "send", "to": "pool:p", "payload": "x", "priority": "high", "ttl": 3.0},
        {"at": 0.3, "do": "send", "from": "a", "to": "service:t", "key": "k", "timestamp": 0.0},
        {"at": 0.4, "do": "request", "from": "id:2", "to": "name:a", "timeout": 1.0,
         "retry": {"max_attempts": 2}},
        {"at": 0.5, "do": "deliver", "actor": "a"},
        {"at": 0.6, "do": "done", "actor": "a"},
        {"at": 0.7, "do": "cancel", "corr": 1},
        {"at": 0.8, "do": "leave", "pool": "p", "actor": "a"},
        {"at": 0.9, "do": "join", "pool": "p", "actor": "a"},
        {"at": 1.0, "do": "stop", "actor": 2},
        {"at": 1.1, "do": "restart", "actor": 2},
        {"at": 1.2, "do": "unregister", "actor": "a"},
    ]  # fmt: skip
    s = parse_scenario({"until": 5.0, "script": steps}, "dict")
    assert parse_scenario(s.to_dict(), "round trip") == s
    result = Simulation(s).run()
    assert result.ok, result.violation
    assert result.summary["script_errors"] == []
    assert result.summary["requests"]["cancelled"] == 1


@pytest.mark.parametrize(
    ("step", "needle"),
    [
        ('{ at = 0.0, do = "fly" }', '"fly" is not one of'),
        ('{ at = 0.0, do = "deliver" }', 'missing required key "actor"'),
        ('{ at = 0.0, do = "deliver", actor = "a", extra = 1 }', 'unknown key "extra"'),
        ('{ at = -1.0, do = "cancel", corr = 1 }', 'key "at"'),
        ('{ at = 0.0, do = "send", to = "nowhere" }', "is not an address"),
        ('{ at = 0.0, do = "request", from = "a", to = "name:b", timeout = 0 }', '"timeout"'),
        ('{ at = 0.0, do = "deliver", actor = true }', "actor name or id"),
        ('{ at = 0.0, do = "deliver", actor = 0 }', ">= 1"),
        ('{ at = 0.0, do = "send", to = "name:a", payload = [1] }', "string or a number"),
        ('{ at = 0.0, do = "register", pools = [1] }', "array of names"),
        ('{ at = 0.0, do = "create_pool", pool = "p", strategy = "rr" }', "is not one of"),
        ("3", "expected a table"),
    ],
)
def test_bad_script_steps_name_the_step_and_key(step: str, needle: str) -> None:
    with pytest.raises(ScenarioError) as err:
        load(f"until = 1.0\nscript = [ {step} ]\n")
    assert "script.toml: [[script]] #1" in str(err.value) and needle in str(err.value)


def test_cli_runs_a_script_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "late.toml"
    path.write_text(LATE_REPLY)
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "late_reply" in out
    # The summary counts the script's requests, and draws no member table for a run whose
    # actors are the script's own (no pool of the simulator's).
    assert "requests  issued 1  replied 0  timed out 1" in out
    assert "member" not in out and "utilization" not in out


def test_the_documented_example_is_the_late_reply_script() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "scenario-format.md").read_text()
    section = doc[doc.index("## `[[script]]`") :]
    example = section[section.index("```toml\n") + 8 : section.index("```\n", 10)]
    assert load(example) == load(LATE_REPLY)


def test_a_timer_due_at_a_steps_time_fires_before_the_step() -> None:
    """As in the model, time advances (firing due timers) before the next action: a reply
    scripted exactly at the deadline finds the request already timed out."""
    text = LATE_REPLY.replace("at = 4.0", "at = 3.5")
    _, events = run(load(text))
    tail = [(e["t"], e["ev"], e.get("outcome") or e.get("reason")) for e in events[-3:]]
    assert tail == [(3.5, "resolve", "timed_out"), (3.5, "send", None),
                    (3.5, "dead_letter", "late_reply")]  # fmt: skip
