"""The Python API of `sim`: build or load a scenario, run it, read the result as tables.

`Result`'s tables agree with its summary (the same run counted two ways), keeping a trace changes
nothing that is simulated, pandas is needed only by the table methods and says how to get it, and
`python -m sim` is the `brokerlab` command.
"""

from __future__ import annotations

import io
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import sim
from sim import (
    Result,
    RunResult,
    ScenarioError,
    default_scenario,
    load_example,
    load_scenario,
    loads_scenario,
    rows_to_csv,
    rows_to_frame,
    simulate,
    sweep,
    with_values,
)
from sim.run import REQUEST_COLUMNS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def default_run() -> Result:
    return simulate(default_scenario(), keep_trace=True)


def test_the_public_names_are_sorted_and_importable() -> None:
    assert sim.__all__ == sorted(sim.__all__)
    for name in sim.__all__:
        assert not name.startswith("_") and getattr(sim, name) is not None
    assert RunResult is Result  # the old name still works


def test_keeping_the_trace_changes_nothing_simulated(default_run: Result) -> None:
    plain = simulate(default_scenario())
    assert plain.trace_text is None
    assert plain.summary == default_run.summary
    written = io.StringIO()
    both = simulate(default_scenario(), trace=written, keep_trace=True)
    assert both.trace_text == written.getvalue() == default_run.trace_text
    assert default_run.trace_text is not None and default_run.trace_text.count("\n") > 10_000


def test_trace_is_the_lines_after_the_header(default_run: Result) -> None:
    lines = default_run.trace()
    assert default_run.trace_text is not None
    assert len(lines) == default_run.trace_text.count("\n") - 1
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    assert lines[-1]["end"] == "drained"
    assert sum("ev" in line for line in lines) >= default_run.events


@pytest.mark.parametrize("method", ["trace", "requests"])
def test_without_a_kept_trace_the_trace_methods_say_how_to_keep_one(method: str) -> None:
    result = simulate(with_values(default_scenario(), {"until": 5.0}))
    with pytest.raises(ValueError, match=r"simulate\(scenario, keep_trace=True\)"):
        getattr(result, method)()


def test_requests_agree_with_the_summary(default_run: Result) -> None:
    requests = default_run.requests()
    s = default_run.summary
    assert list(requests.columns) == list(REQUEST_COLUMNS)
    assert requests.index.name == "corr"
    assert list(requests.index) == list(range(1, s["requests"]["issued"] + 1))
    counts = requests["outcome"].value_counts().to_dict()
    for kind in ("replied", "timed_out", "cancelled", "failed"):
        assert counts.get(kind, 0) == s["requests"][kind]
    replied = sorted(requests.loc[requests["outcome"] == "replied", "latency"])
    lat = s["latency"]
    assert len(replied) == lat["count"]
    assert replied[-1] == lat["max"]
    assert replied[math.ceil(0.5 * len(replied)) - 1] == lat["p50"]
    assert math.fsum(replied) / len(replied) == pytest.approx(lat["mean"], rel=1e-12)
    assert requests["retries"].sum() <= s["retries"]  # the tells' retries are not requests'


def test_requests_columns_hold_together(default_run: Result) -> None:
    r = default_run.requests()
    assert set(r["requester"]) == {"load"}  # the other client only tells
    assert set(r["target"]) == {"pool:workers"}
    assert (r["deadline"] == r["sent"] + 10.0).all()
    taken = r.dropna(subset=["taken"])
    assert set(taken["served_by"]) == {"workers-1", "workers-2", "workers-3", "workers-4"}
    assert (taken["wait"] >= 0).all() and (taken["wait"] == taken["taken"] - taken["sent"]).all()
    assert (r["latency"] == r["resolved"] - r["sent"]).all()
    replied, timed_out = r[r["outcome"] == "replied"], r[r["outcome"] == "timed_out"]
    assert len(replied) > 1000 and (replied["resolved"] < replied["deadline"]).all()
    assert len(timed_out) > 0 and (timed_out["resolved"] == timed_out["deadline"]).all()
    # Never taken: a send the full pool refused (failed), or one lost with the crashed member.
    never = r[r["taken"].isna()]
    assert len(never) > 0 and set(never["outcome"]) <= {"failed", "timed_out"}
    assert (r["retries"] > 0).any()


def test_requests_of_a_scripted_run_name_actors_by_label() -> None:
    result = simulate(load_example("counterexample"), keep_trace=True)
    rows = result.requests().to_dict("index")
    assert rows == {
        1: {
            "requester": "id:2",
            "target": "pool:p",
            "key": None,
            "sent": 0.0,
            "deadline": 2.0,
            "served_by": "id:1",
            "taken": 0.0,
            "wait": 0.0,
            "outcome": "timed_out",
            "resolved": 2.0,
            "latency": 2.0,
            "retries": 0,
        }
    }


def test_a_run_stopped_by_a_violation_keeps_its_trace_to_the_stop() -> None:
    from sim.checking.mutants import broker_class

    broken = broker_class("late_reply_delivered")
    result = simulate(load_example("counterexample"), keep_trace=True, broker_factory=broken)
    assert not result.ok and result.violation is not None
    assert result.trace()[-1]["end"] == "violation"
    assert result.requests()["outcome"].tolist() == ["timed_out"]


def test_members_is_the_summary_s_members_with_their_pool(default_run: Result) -> None:
    members = default_run.members()
    assert list(members.index) == list(default_run.summary["members"])
    assert list(members.columns) == ["pool", "served", "utilization"]
    for name, figures in default_run.summary["members"].items():
        assert members.loc[name, "served"] == figures["served"]
        assert members.loc[name, "utilization"] == figures["utilization"]
    assert (members.loc[members.index.str.startswith("workers-"), "pool"] == "workers").all()
    assert pd.isna(members.loc["db", "pool"])


def test_summary_frame_is_the_summary_flattened(default_run: Result) -> None:
    frame = default_run.summary_frame()
    s = default_run.summary
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row["requests.replied"] == s["requests"]["replied"]
    assert row["latency.p99"] == s["latency"]["p99"]
    assert row["dead_letters.duplicate_reply"] == s["dead_letters"]["duplicate_reply"]
    assert bool(row["invariants.ok"]) is True
    assert not any(c.startswith("members") for c in frame.columns)
    other = simulate(with_values(default_scenario(), {"seed": 8})).summary_frame()
    both = pd.concat([frame, other], ignore_index=True)
    assert list(both["seed"]) == [7, 8]


def test_sweep_rows_as_a_frame_keep_the_csv_columns() -> None:
    rows = sweep(
        with_values(load_example("pool"), {"until": 30.0}),
        {"pool.workers.size": [2, 3]},
        seeds=2,
    )
    frame = rows_to_frame(rows)
    assert list(frame.columns) == rows_to_csv(rows).splitlines()[0].split(",")
    assert len(frame) == 4
    assert frame["requests_issued"].tolist() == [r["requests_issued"] for r in rows]
    assert frame["utilization.workers-3"].isna().tolist() == [True, True, False, False]


def test_no_pandas_means_a_clear_import_error(
    default_run: Result, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` now fails
    for call in (default_run.requests, default_run.members, default_run.summary_frame):
        with pytest.raises(ImportError, match=r"pip install 'brokerlab\[lab\]'"):
            call()
    with pytest.raises(ImportError, match=r"rows_to_frame\(\) needs pandas"):
        rows_to_frame([])
    assert default_run.trace()[0]["seq"] == 1  # the rest works without it


def test_with_values_changes_keys_and_checks_them() -> None:
    base = default_scenario()
    changed = with_values(base, {"client.load.arrivals.rate": 2.0, "faults.crash.1.at": 50.0})
    assert changed.clients[0].arrivals.to_dict() == {"process": "poisson", "rate": 2.0}
    assert changed.faults.crash[0].at == 50.0
    assert base == default_scenario()  # unchanged
    with pytest.raises(ScenarioError, match=r'pool has no entry "wrkers" \(did you mean'):
        with_values(base, {"pool.wrkers.size": 2})
    with pytest.raises(ScenarioError, match=r'key "size": expected an integer'):
        with_values(base, {"pool.workers.size": 2.5})


def test_loads_scenario_reads_text_as_load_scenario_reads_a_file(tmp_path: Path) -> None:
    text = (ROOT / "sim" / "examples" / "failover.toml").read_text()
    path = tmp_path / "f.toml"
    path.write_text(text)
    assert loads_scenario(text) == load_scenario(path) == load_example("failover")
    with pytest.raises(ScenarioError, match=r"^mine: line 2, column 8: invalid TOML"):
        loads_scenario("until = 1.0\nseed = \n", "mine")
    with pytest.raises(ScenarioError, match=r'^<string>: missing required key "until"'):
        loads_scenario("seed = 1\n")


def test_python_m_sim_is_brokerlab() -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sim", *args], capture_output=True, text=True, timeout=60
        )

    listed = run("example", "--list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].startswith("default ")
    bad = run("example", "nope")
    assert bad.returncode == 2
    assert bad.stderr.startswith('brokerlab example: error: no example "nope"')
