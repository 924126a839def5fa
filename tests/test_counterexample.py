"""Counterexamples as numbered steps (docs/spec.md 11.4): `brokerlab check` prints the path
step by step (time, actor, action, events in words) after the property table and ends at the
broken property; `--json` gives the same as data; an eventually-violation is a marked lasso.

The CLI tests use `main` only, so they run (and fail) against a checker that prints reprs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import model.checker as checker
from model import Addr, Ask, CreatePool, Register, Stop
from model._abstraction import Keys, normalize
from model._menu import Env, setup, successors
from model.checker import CheckBounds, Counterexample, check, format_counterexample
from sim.cli import main

# Small bounds that catch each mutant in a fraction of a second (spec 11.4).
SMALL = ["--clients", "1", "--members", "1", "--retries", "1", "--faults", "none"]
STEP = re.compile(r"^ +(\d+)\. t=(\S+) +(.+?)  +(\S.*)$")


def _check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["check", *args])
    return code, capsys.readouterr().out


def _steps(text: str) -> list[tuple[int, str, str, str]]:
    """(number, time, actor, action) of every numbered step line."""
    out = []
    for line in text.splitlines():
        found = STEP.match(line)
        if found:
            n, t, actor, action = found.groups()
            out.append((int(n), t, actor.strip(), action))
    return out


def test_late_reply_counterexample_is_numbered_steps_after_the_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out = _check(capsys, "--broker", "late_reply_delivered", *SMALL)
    assert code == 1
    assert "Event(" not in out and "Reply(" not in out, "no dataclass reprs"
    lines = out.splitlines()
    row = next(i for i, line in enumerate(lines) if re.match(r"  always +events +VIOLATED", line))
    assert lines[row + 1].strip().startswith("counterexample: 9 steps to t=2, below")
    table = [
        i for i, line in enumerate(lines) if re.match("  (always|sometimes|eventually) ", line)
    ]
    start = lines.index("counterexample for events: 9 steps, t=0 to t=2")
    assert len(table) == 24 and start > max(table), "the counterexample comes after the table"
    assert lines[start + 1] == "  actors: member 1 = id:1, client 1 = id:2"
    steps = _steps(out)
    assert [n for n, *_ in steps] == list(range(1, 10))
    assert steps[4] == (5, "0", "client 1", "requests pool:p (timeout 2)")
    assert steps[5] == (6, "0", "member 1", "takes its next message")
    assert steps[7] == (8, "2", "clock", "time passes to t=2")
    assert steps[8] == (9, "2", "member 1", "replies to request 1")
    body = "\n".join(lines[start:])
    # The events each step caused, one per line, in words.
    assert "send msg 1: request from client 1 to pool:p (corr 1, deadline t=2)" in body
    assert "\n                       resolve request 1: timed_out (requester client 1)\n" in body
    # The last step: the broker's events, then the model's, the first difference marked.
    last = body[body.index("    9. t=2") :].splitlines()
    assert last[1].strip() == "broker: send msg 2: reply from member 1 to client 1 (corr 1)"
    assert last[2].strip() == "(nothing more)   <- differs"
    assert last[3].strip().startswith("model: send msg 2: reply from member 1")
    assert last[4].strip() == "dead_letter msg 2: late_reply   <- differs"
    assert last[5] == (
        "violated at step 9 (t=2): events: Reply: the broker's event 2 is missing, the "
        "model's is dead_letter msg 2: late_reply"
    )
    assert lines[-1] == "verdict: 1 VIOLATED"


def test_late_reply_counterexample_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _check(capsys, "--broker", "late_reply_delivered", *SMALL, "--json")
    assert code == 1
    bad = [p for p in json.loads(out)["properties"] if p["verdict"] == "violated"]
    assert [p["name"] for p in bad] == ["events"]
    ce = bad[0]["counterexample"]
    assert ce["length"] == 10 and ce["time"] == 2.0  # the summary it had before, in actions
    assert ce["actors"] == {"member 1": "id:1", "client 1": "id:2"}
    steps = ce["steps"]
    assert [s["index"] for s in steps] == list(range(1, 10))
    for s in steps:
        assert set(s) == {"index", "t", "actor", "actor_id", "action", "actions", "events"}
        assert all("ev" in e for e in s["events"])
    ask = steps[4]
    assert (ask["t"], ask["actor"], ask["actor_id"]) == (0.0, "client 1", 2)
    assert ask["action"] == "requests pool:p (timeout 2)"
    assert ask["actions"] == [{"action": "ask", "sender": 2, "to": "pool:p", "timeout": 2.0}]
    assert [e["ev"] for e in ask["events"]] == ["send", "route", "enqueue"]
    assert ask["events"][0] == {
        "ev": "send", "msg": 1, "from": "id:2", "to": "pool:p", "kind": "request", "corr": 1,
        "deadline": 2.0,
    }  # fmt: skip
    assert steps[7]["actions"] == [{"action": "advance", "to": 2.0}]
    assert ce["loop"] is None
    broken = ce["broken"]
    assert broken["property"] == "events" and broken["step"] == 9
    assert broken["message"].startswith("events: Reply: the broker's event 2 is missing")
    assert [e["ev"] for e in broken["broker_events"]] == ["send"]
    assert broken["model_events"] == steps[-1]["events"]
    assert broken["model_events"][1] == {"ev": "dead_letter", "msg": 2, "reason": "late_reply"}


def test_capacity_off_by_one_counterexample(capsys: pytest.CaptureFixture[str]) -> None:
    """A second mutant: a full mailbox takes the message it must refuse (capacity_off_by_one)."""
    args = ["--broker", "capacity_off_by_one", "--clients", "2", "--members", "1"]
    code, out = _check(capsys, *args, "--retries", "1", "--faults", "none")
    assert code == 1
    steps = _steps(out)
    assert steps[-2:] == [
        (6, "0", "client 1", "requests pool:p (timeout 2)"),
        (7, "0", "client 2", "requests pool:p (timeout 2)"),
    ]
    tail = out[out.index("    7. t=0") :].splitlines()
    assert tail[3].strip() == "enqueue msg 2 at member 1 (depth 2)   <- differs"
    assert tail[6].strip() == "reject msg 2: mailbox_full   <- differs"
    assert tail[7].strip() == "resolve request 2: failed (requester client 2)"
    assert tail[8].startswith("violated at step 7 (t=0): events: Ask: the broker's event 3")
    code, out = _check(capsys, *args, "--retries", "1", "--faults", "none", "--json")
    ce = next(p for p in json.loads(out)["properties"] if "counterexample" in p)["counterexample"]
    enqueue = {"ev": "enqueue", "msg": 2, "actor": "id:1", "depth": 2}
    assert ce["broken"]["broker_events"][2] == enqueue
    assert ce["broken"]["model_events"][2] == {"ev": "reject", "msg": 2, "error": "mailbox_full"}


def test_an_out_file_still_replays(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "ce.toml"
    code, _ = _check(capsys, "--broker", "late_reply_delivered", *SMALL, "--out", str(out))
    assert code == 1
    text = out.read_text()
    assert "#     9. t=2   member 1  replies to request 1" in text  # the steps, as comments
    assert "step 9 of the path (10 actions)" in text
    assert main(["run", str(out), "--broker", "late_reply_delivered", "--quiet"]) == 1
    assert main(["run", str(out), "--quiet"]) == 0  # the reference follows the same script


# -- eventually: the lasso ------------------------------------------------------------------

LIVE = CheckBounds(clients=1, members=1, retry_attempts=1, faults=("crash",))


@pytest.fixture
def unfair(monkeypatch: pytest.MonkeyPatch) -> None:
    """A checker for which nothing ever discharges an obligation: every component a run can
    stay in with an obligation open is an eventually-violation (the model has none, spec
    11.3), so the lasso is built from a real state graph."""
    monkeypatch.setattr(checker, "discharged", lambda obls, steps: frozenset())


def _key_after(steps: tuple[checker.Step, ...], keys: Keys) -> list[object]:
    """The search's key after each step past set-up (the search's own replay)."""
    s = checker.State()
    for step in setup(LIVE):
        for action in step:
            s = checker.apply(s, action).state
    s, env = normalize(s), Env()
    out: list[object] = []
    for want in steps[len(setup(LIVE)) :]:
        found = [(a, e) for step, a, e, _ in successors(s, env, LIVE) if step == want]
        assert found, want
        after, env = found[0]
        s = after if after.now == 0.0 else normalize(after)
        out.append(keys.key(s, env))
    return out


def test_an_eventually_violation_is_a_lasso_that_closes(unfair: None) -> None:
    report = check(LIVE)
    bad = {p.name: p.counterexample for p in report.violations()}
    assert set(bad) == {"eventually_resolved", "eventually_terminal"}
    for ce in bad.values():
        assert ce is not None and ce.loop is not None and ce.loop > 0
        keys = _key_after(ce.steps, Keys(LIVE, True))
        assert keys[-1] == keys[-1 - ce.loop], "the loop ends in the state it started from"
        assert len(set(keys[-ce.loop :])) == ce.loop, "a simple cycle"


def test_a_lasso_is_printed_with_its_loop_marked(unfair: None) -> None:
    ce = check(LIVE).violations()[0].counterexample
    assert ce is not None and ce.loop
    text = format_counterexample(ce)
    lines = text.splitlines()
    n = len(ce.steps)
    first = n - ce.loop + 1
    mark = lines.index(f"  -- loop: steps {first} to {n} repeat forever --")
    assert re.match(rf" +{first}\. t=", lines[mark + 1])
    assert f"  -- back to the state after step {first - 1}; the loop repeats forever --" in lines
    assert lines[-1].startswith(f"violated at step {n} ")
    assert "stays open forever" in lines[-1]
    data = ce.to_dict()
    assert data["loop"] == {"first_step": first, "last_step": n}
    assert len(data["steps"]) == n


def test_a_run_that_stays_forever_is_marked() -> None:
    """A hand-built eventually-violation whose run stays in its last state (no step)."""
    ask = Ask(2, Addr("name", "w"), 2.0)
    steps = ((Register("w"),), (Register(),), (ask,), (Stop(1),))
    ce = Counterexample("eventually_terminal", "eventually_terminal: message 1 open", steps, 0)
    text = format_counterexample(ce)
    assert "actors: actor 1 = w, actor 2 = id:2" in text
    assert "    3. t=0   actor 2   requests name:w (timeout 2)" in text
    assert "    4. t=0   actor 1   crashes" in text
    assert text.splitlines()[-2] == (
        "  -- from here no step changes anything: the run stays here forever --"
    )
    assert ce.to_dict()["loop"] == {"stays_at_step": 4}


def test_set_up_and_anonymous_steps_are_named() -> None:
    steps = ((CreatePool("p", "random"),), (Register(capacity=2, backpressure="block"),))
    text = format_counterexample(Counterexample("capacity", "capacity: full", steps))
    assert "    1. t=0   set-up    creates pool p (random)" in text
    assert "    2. t=0   actor 1   registers (capacity 2, block)" in text
