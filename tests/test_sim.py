"""The simulator: determinism, faults under invariants, monitors, and summary vs. trace."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from broker import Broker
from sim import Scenario, default_scenario, parse_scenario, simulate
from sim.checking.mutants import TRACE_SCENARIOS
from sim.run import latency_summary
from sim.run._monitors import Monitor

BASE = """
seed = 3
until = 60.0
[[pool]]
name = "workers"
size = 3
strategy = "round_robin"
capacity = 4
backpressure = "{backpressure}"
service = {{ dist = "exponential", mean = 1.0 }}
speeds = [1.0, 2.0, 0.5]
[[actor]]
name = "db"
services = ["storage"]
service = {{ dist = "constant", value = 0.2 }}
[[client]]
name = "load"
target = "pool:workers"
arrivals = {{ process = "poisson", rate = 2.5 }}
timeout = 4.0
retry = {{ max_attempts = 3, backoff = 0.1, multiplier = 2.0, max_backoff = 1.0, jitter = 0.5 }}
[[client]]
name = "audit"
target = "service:storage"
pattern = "tell"
arrivals = {{ process = "constant", interval = 0.5 }}
[faults]
{faults}
"""


def scenario(faults: str = "", backpressure: str = "reject") -> Scenario:
    import tomllib

    text = BASE.format(faults=faults, backpressure=backpressure)
    return parse_scenario(tomllib.loads(text), "test.toml")


def run_trace(s: Scenario, broker_factory: Any = Broker) -> tuple[Any, list[dict[str, Any]]]:
    out = io.StringIO()
    result = simulate(s, trace=out, broker_factory=broker_factory)
    lines = out.getvalue().splitlines()
    return result, [e for e in map(json.loads, lines[1:]) if "ev" in e]


FAULTS = {
    "drop": ("drop = 0.05", lambda ev: ev["ev"] == "dead_letter"
             and ev["reason"] == "dropped_in_transit"),
    "duplicate": ("duplicate = 0.1", lambda ev: ev["ev"] == "send" and "dup_of" in ev),
    "delay": ('delay = { dist = "uniform", low = 0.0, high = 0.3 }',
              lambda ev: ev["ev"] == "route"),
    "crash": ('crash = [ { actor = "workers-2", at = 10.0, restart_after = 5.0 } ]',
              lambda ev: ev["ev"] == "fault" and ev["kind"] == "restart"),
    "crash_db": ('crash = [ { actor = "db", at = 10.0 } ]',
                 lambda ev: ev["ev"] == "reject" and ev["error"] == "service_unavailable"),
    "slow": ('slow = [ { actor = "workers-1", at = 5.0, until = 30.0, speed = 0.1 } ]',
             lambda ev: ev["ev"] == "fault" and ev["kind"] == "slow" and ev["speed"] == 0.1),
    "hang": ('hang = [ { actor = "workers-3", at = 5.0, until = 20.0 } ]',
             lambda ev: ev["ev"] == "fault" and ev["kind"] == "unhang"),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_every_fault_kind_runs_with_invariants_holding(kind: str) -> None:
    faults, signature = FAULTS[kind]
    result, events = run_trace(scenario(faults))
    assert result.ok, result.violation
    assert any(signature(ev) for ev in events), f"no sign of {kind} in the trace"
    assert result.summary["messages"]["in_flight"] == 0


def test_hang_delays_service_and_crash_loses_the_in_service_request() -> None:
    _, hung = run_trace(scenario('hang = [ { actor = "workers-3", at = 5.0, until = 20.0 } ]'))
    served = [ev["t"] for ev in hung if ev["ev"] == "dequeue" and ev["actor"] == "workers-3"]
    assert served and not any(5.0 < t < 20.0 for t in served)
    result, _ = run_trace(scenario('crash = [ { actor = "db", at = 10.0 } ]'))
    assert result.summary["members"]["db"]["served"] < 30


@pytest.mark.parametrize("backpressure", ["reject", "drop_newest", "drop_oldest", "block"])
def test_backpressure_modes_under_overload(backpressure: str) -> None:
    overload = 'slow = [ { actor = "workers-1", at = 0.0, until = 60.0, speed = 0.05 } ]'
    result, events = run_trace(scenario(overload, backpressure))
    assert result.ok, result.violation
    depths = [ev["depth"] for ev in events if ev["ev"] == "enqueue" and ev["actor"] != "db"]
    assert max(depths) == 4  # capacity reached, never exceeded


def test_summary_agrees_with_the_trace() -> None:
    result, events = run_trace(scenario("duplicate = 0.05\ndrop = 0.02"))
    s = result.summary
    kinds = Counter(ev["ev"] for ev in events)
    assert s["events"] == len(events)
    assert s["end_time"] == events[-1]["t"]
    sends, rejects = kinds["send"], kinds["reject"]
    replied = [ev for ev in events if ev["ev"] == "resolve" and ev["outcome"] == "replied"]
    assert s["messages"]["accepted"] == sends - rejects
    assert s["messages"]["delivered"] == kinds["dequeue"] + len(replied)
    assert s["messages"]["dead_lettered"] == kinds["dead_letter"]
    assert s["messages"]["rejected"] == rejects
    reasons = Counter(ev["reason"] for ev in events if ev["ev"] == "dead_letter")
    assert s["dead_letters"] == dict(reasons)
    outcomes = Counter(ev["outcome"] for ev in events if ev["ev"] == "resolve")
    for k in ("replied", "timed_out", "cancelled", "failed"):
        assert s["requests"][k] == outcomes[k]
    issued_at = {
        ev["corr"]: ev["t"]
        for ev in events
        if ev["ev"] == "send" and ev["kind"] == "request" and "dup_of" not in ev
    }
    assert s["requests"]["issued"] == len(issued_at)
    latencies = sorted(ev["t"] - issued_at[ev["corr"]] for ev in replied)
    assert s["latency"] == latency_summary(latencies)
    served = Counter(ev["actor"] for ev in events if ev["ev"] == "dequeue")
    assert {k: v["served"] for k, v in s["members"].items()} == {k: served[k] for k in s["members"]}


def test_latency_summary_nearest_rank() -> None:
    assert latency_summary([]) == {
        "count": 0, "mean": None, "p50": None, "p90": None, "p99": None, "max": None
    }  # fmt: skip
    got = latency_summary([float(i) for i in range(1, 101)])
    assert (got["p50"], got["p90"], got["p99"], got["max"], got["mean"]) == (
        50.0, 90.0, 99.0, 100.0, 50.5
    )  # fmt: skip


class LateReplyBroker(Broker[Any]):
    """Broken on purpose: times out a second late and hands late replies over (spec 5.5)."""

    def _expire(self, corr: int) -> None:
        pending = self._pending.get(corr)
        if pending is not None and pending.deadline != float("inf"):
            pending.deadline = float("inf")
            self.timers.call_at(
                self.timers.now + 1.0, lambda: super(LateReplyBroker, self)._expire(corr)
            )


def test_monitor_stops_the_run_at_a_broken_invariant() -> None:
    slow = 'slow = [ { actor = "workers-1", at = 0.0, until = 60.0, speed = 0.05 } ]'
    result, events = run_trace(scenario(slow), broker_factory=LateReplyBroker)
    assert not result.ok
    assert result.violation is not None
    assert result.violation.invariant == "exclusive_deadline"
    assert result.violation.seq == events[-1]["seq"]  # the trace ends at the violating event
    assert result.summary["invariants"]["violations"] == [str(result.violation)]
    # Without a trace, the same event is named and the summary is the same (no line to name).
    untraced = simulate(scenario(slow), broker_factory=LateReplyBroker)
    assert untraced.violation is not None and untraced.violation.seq is None
    assert str(untraced.violation) == str(result.violation)
    assert untraced.violation.event == result.violation.event == len(events)
    assert untraced.summary == result.summary


def test_an_untraced_runs_monitor_is_told_its_events_without_dicts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 17: with no trace, the broker tells the monitor each event of a message's life
    as arguments; only the kinds no check reads (here a pool's creation, and the world's
    faults, dicts of the simulator's own) reach `Events.emit` as a dict. The run's figures are
    those of the traced run, which builds every event's dict."""
    built: Counter[str] = Counter()
    emit = Monitor.emit

    def counting(self: Monitor, name: str, fields: dict[str, Any]) -> None:
        built[name] += 1
        emit(self, name, fields)

    monkeypatch.setattr(Monitor, "emit", counting)
    crash = 'crash = [ { actor = "workers-1", at = 5.0, restart_after = 2.0 } ]'
    untraced = simulate(scenario(crash))
    assert untraced.ok and untraced.events > 1000
    assert built == {"create_pool": 1, "fault": 2}
    traced = simulate(scenario(crash), trace=io.StringIO())
    assert traced.summary == untraced.summary


def test_same_seed_same_trace_in_process() -> None:
    a, b = io.StringIO(), io.StringIO()
    simulate(scenario("duplicate = 0.05"), trace=a)
    simulate(scenario("duplicate = 0.05"), trace=b)
    assert a.getvalue() == b.getvalue()
    c = io.StringIO()
    import dataclasses

    simulate(dataclasses.replace(scenario("duplicate = 0.05"), seed=4), trace=c)
    assert c.getvalue() != a.getvalue()


def test_byte_identical_across_processes_and_hash_seeds(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(textwrap.dedent(BASE.format(faults="duplicate = 0.05", backpressure="block")))
    digests = []
    for hashseed in ("0", "1", "987654321"):
        out = tmp_path / f"trace-{hashseed}.jsonl"
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        subprocess.run(
            [sys.executable, "-m", "sim.cli", "run", str(path), "--trace", str(out), "--quiet"],
            check=True,
            env=env,
        )
        digests.append(out.read_bytes())
    assert digests[0] == digests[1] == digests[2]
    assert len(digests[0]) > 10_000


def test_default_scenario_runs_clean() -> None:
    result = simulate(default_scenario())
    assert result.ok
    s = result.summary
    assert s["requests"]["issued"] > 1000 and s["requests"]["replied"] > 0
    assert s["dead_letters"].get("duplicate_reply", 0) > 0


def test_hard_stop_ends_a_run_that_cannot_drain_as_undrained_not_a_violation() -> None:
    hung = 'hang = [ { actor = "db", at = 1.0, until = 1000000.0 } ]'
    result, events = run_trace(scenario(hung))
    assert result.violation is None and not result.ok
    assert result.status == result.summary["status"] == "undrained"
    # the hard stop is 10 * until + 1000
    assert result.undrained == "1 event still scheduled at the hard stop t=1600.0"
    assert result.summary["invariants"] == {"ok": True, "violations": []}
    assert events[-1]["t"] <= 1600.0
    out = io.StringIO()
    simulate(scenario(hung), trace=out)
    assert json.loads(out.getvalue().splitlines()[-1])["end"] == "hard_stop"
    assert simulate(scenario()).summary["status"] == "ok"


SMALL_UNDRAINED = """
seed = 1
until = 10.0
[[pool]]
name = "w"
size = 1
{pool}
service = {{ dist = "exponential", mean = {mean} }}
[[client]]
name = "c"
target = "pool:w"
arrivals = {{ process = "poisson", rate = 1.0 }}
timeout = {timeout}
[faults]
{faults}
"""


@pytest.mark.parametrize(
    ("pool", "mean", "timeout", "faults"),
    [  # the three: valid scenarios that are cut off, not broken
        ("", 0.5, 5000.0, "drop = 0.3"),  # a dropped request times out after the hard stop
        ("", 0.5, 5.0, 'crash = [ { actor = "w-1", at = 5000.0 } ]'),  # a fault scheduled late
        ("", 200.0, 1e6, ""),  # an unbounded mailbox at 200x overload cannot drain by 1100
    ],
    ids=["long-timeout-with-drops", "late-crash", "overloaded-unbounded-mailbox"],
)
def test_valid_scenarios_cut_off_at_the_hard_stop_exit_4(
    tmp_path: Path, pool: str, mean: float, timeout: float, faults: str
) -> None:
    path = tmp_path / "s.toml"
    path.write_text(SMALL_UNDRAINED.format(pool=pool, mean=mean, timeout=timeout, faults=faults))
    done = subprocess.run(
        [sys.executable, "-m", "sim", "run", str(path), "--quiet", "--trace",
         str(tmp_path / "t.jsonl")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 4, done.stderr
    assert "brokerlab run: undrained:" in done.stderr and "no invariant broke" in done.stderr
    assert "Traceback" not in done.stderr
    checked = subprocess.run(
        [sys.executable, "-m", "sim", "conform", str(tmp_path / "t.jsonl")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_progress_is_reported_through_the_arrival_window() -> None:
    seen: list[tuple[float, float]] = []
    simulate(scenario(), progress=lambda now, until: seen.append((now, until)))
    assert len(seen) == 100
    assert seen[0] == (0.6, 60.0) and seen[-1] == (60.0, 60.0)


CLOSED = """
seed = 5
until = 50.0
[[pool]]
name = "workers"
size = 2
strategy = "random"
service = {{ dist = "constant", value = 1.0 }}
[[client]]
name = "users"
target = "pool:workers"
arrivals = {{ process = "closed", concurrency = {n}, think = 0.0 }}
timeout = 100.0
"""


def test_closed_loop_keeps_exactly_its_concurrency_in_flight() -> None:
    import tomllib

    for n in (1, 3):
        s = parse_scenario(tomllib.loads(CLOSED.format(n=n)), "closed.toml")
        result, events = run_trace(s)
        assert result.ok
        open_requests = 0
        peak = 0
        for ev in events:
            if ev["ev"] == "send" and ev["kind"] == "request":
                open_requests += 1
                peak = max(peak, open_requests)
            elif ev["ev"] == "resolve":
                open_requests -= 1
        assert peak == n
        # Constant service of 1.0 on 2 workers: one user is served back to back.
        if n == 1:
            assert result.summary["requests"]["replied"] == 50


def test_constant_arrivals_and_counts() -> None:
    import tomllib

    text = CLOSED.format(n=1).replace(
        'arrivals = { process = "closed", concurrency = 1, think = 0.0 }',
        'arrivals = { process = "constant", interval = 2.0 }\ncount = 7',
    )
    result, events = run_trace(parse_scenario(tomllib.loads(text), "c.toml"))
    sends = [ev["t"] for ev in events if ev["ev"] == "send" and ev["kind"] == "request"]
    assert sends == [2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0]
    assert result.summary["requests"]["issued"] == 7


# The sha256 of the default scenario's trace. A change that moves it changes what every existing
# trace replays to: do it on purpose (a new trace format, a spec change), say so in the commit,
# and update the pin. The sim/ restructuring (issue 10) kept it byte for byte; trace format 2
# (the operation/effect log, issue 11) moved it, and so did the broker's portable stream
# (SplitMix64, spec 1.2).
DEFAULT_TRACE_SHA256 = "b625779afb43d9fadc47b7862523e94106506fb30aa8e44a9aa79dba84a9280f"


def test_the_default_scenarios_trace_is_pinned() -> None:
    out = io.StringIO()
    simulate(default_scenario(), trace=out)
    digest = hashlib.sha256(out.getvalue().encode("utf-8")).hexdigest()
    assert digest == DEFAULT_TRACE_SHA256


def test_spec_1_6_subscribers_with_no_service_time_answer_inside_the_publish() -> None:
    """A request to a topic whose subscribers serve in zero time: each woken subscriber takes
    its copy and replies inside the request call (spec 1.6), so the first reply ends it at the
    very instant it was issued and the second is a duplicate (spec 3.9). The trace writes the
    nested operations right after the request's own lines, and the model replays them."""
    from model import check_trace

    scenario = parse_scenario(TRACE_SCENARIOS["publish_before_pending"] or {}, "topic")
    out = io.StringIO()
    result = simulate(scenario, trace=out)
    assert result.ok
    lines = [json.loads(line) for line in out.getvalue().splitlines()[1:]]
    first = next(i for i, x in enumerate(lines) if x.get("op") == "request")
    group = [f"op:{x['op']}" if "op" in x else x.get("ev") for x in lines[first:]]
    assert group[:9] == ["op:request", "send", "route", "send", "route", "enqueue", "send",
                         "route", "enqueue"]  # fmt: skip
    # the first subscriber: takes its copy, replies (the request ends), finds nothing more
    assert group[9:15] == ["op:dequeue", "dequeue", "op:reply", "send", "resolve", "op:dequeue"]
    # the second: the same, and its reply is a duplicate
    assert group[15:21] == [
        "op:dequeue",
        "dequeue",
        "op:reply",
        "send",
        "dead_letter",
        "op:dequeue",
    ]
    resolve = next(x for x in lines if x.get("ev") == "resolve")
    assert resolve["outcome"] == "replied" and resolve["t"] == lines[first]["t"]
    reasons = [x["reason"] for x in lines if x.get("ev") == "dead_letter"]
    assert reasons.count("duplicate_reply") == result.summary["requests"]["issued"]
    assert check_trace(io.StringIO(out.getvalue())).ok
