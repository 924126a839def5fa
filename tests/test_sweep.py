"""Sweeps, probes and plots (sim.lab) and the `sweep`/`plot` commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from matplotlib.figure import Figure

from sim import Scenario, parse_scenario, simulate
from sim import lab as probes  # the probes are in sim.lab
from sim.cli import main
from sim.lab import plots
from sim.lab._sweep import (
    ROW_FIELDS,
    SweepError,
    parse_value,
    parse_vary,
    rows_to_csv,
    rows_to_json,
    set_path,
    sweep,
)

TOML = """
seed = 5
until = 60.0
[[pool]]
name = "workers"
size = 3
strategy = "random"
service = { dist = "exponential", mean = 1.0 }
[[client]]
name = "load"
target = "pool:workers"
arrivals = { process = "poisson", rate = 2.0 }
timeout = 50.0
keys = { dist = "zipf", n = 20, s = 1.0 }
[faults]
crash = [ { actor = "workers-2", at = 20.0, restart_after = 10.0 } ]
"""


def scenario() -> Scenario:
    import tomllib

    return parse_scenario(tomllib.loads(TOML), "sweep.toml")


@pytest.fixture
def toml(tmp_path: Path) -> Path:
    path = tmp_path / "pool.toml"
    path.write_text(TOML)
    return path


# -- keys and values --------------------------------------------------------------------------


def test_parse_value_reads_toml_scalars_and_bare_strings() -> None:
    assert [parse_value(t) for t in ("4", "4.0", "false", "shared", '"4"', "1e3")] == [
        4, 4.0, False, "shared", "4", 1000.0,
    ]  # fmt: skip
    assert parse_vary("until=10, 20") == ("until", [10, 20])
    for bad in ("until", "=1", "until="):
        with pytest.raises(SweepError, match="KEY=V1,V2"):
            parse_vary(bad)


def test_set_path_selects_array_entries_by_name_or_position() -> None:
    data: dict[str, Any] = scenario().to_dict()
    set_path(data, "pool.workers.strategy", "shared")
    set_path(data, "client.load.arrivals.rate", 3.0)
    set_path(data, "faults.crash.1.at", 5.0)
    set_path(data, "pool.workers.capacity", 8)  # absent from the normalized form: created
    s = parse_scenario(data)
    assert s.pools[0].strategy == "shared" and s.pools[0].capacity == 8
    assert s.clients[0].arrivals.rate == 3.0  # type: ignore[union-attr]
    assert s.faults.crash[0].at == 5.0


@pytest.mark.parametrize(
    ("vary", "message"),
    [
        ({"pool.wrkers.strategy": ["random"]}, 'no entry "wrkers" (did you mean "workers"?)'),
        ({"pool.workers.strategi": ["random"]}, 'did you mean "strategy"?'),
        ({"pool.workers.strategy": ["rnd"]}, '"rnd" is not one of'),
        ({"pool.workers.size": [2.0]}, "expected an integer"),
        ({"until.x": [1]}, '"until" is a value, not a table'),
        ({"faults.crash.2.at": [1.0]}, 'no entry "2"'),
        ({"client.load.arrivals.rat": [1.0]}, 'did you mean "arrivals.rate"?'),
        ({"pool.workers": [1]}, "name a key of the entry"),
        ({"seed": [1, 2]}, "use --seeds"),
        ({"until": []}, "non-empty list"),
    ],
)
def test_bad_keys_and_values_are_named(vary: dict[str, list[Any]], message: str) -> None:
    with pytest.raises(SweepError, match=None) as err:
        sweep(scenario(), vary)
    assert message in str(err.value)
    key = next(iter(vary))
    assert key in str(err.value) or "arrivals.rat" in str(err.value)


# -- runs and rows ----------------------------------------------------------------------------

VARY = {"pool.workers.strategy": ["random", "shared"], "client.load.arrivals.rate": [1.0, 2.5]}


def test_rows_follow_the_cross_product_then_seeds() -> None:
    rows = sweep(scenario(), VARY, seeds=2)
    order = [(r["pool.workers.strategy"], r["client.load.arrivals.rate"], r["seed"]) for r in rows]
    assert order == [(s, x, k) for s in VARY["pool.workers.strategy"]
                     for x in VARY["client.load.arrivals.rate"] for k in (5, 6)]  # fmt: skip
    first = rows[0]
    assert list(first)[:3] == [*VARY, "seed"]
    assert set(ROW_FIELDS) <= set(first)
    assert {k for k in first if k.startswith("utilization.")} == {
        "utilization.workers-1", "utilization.workers-2", "utilization.workers-3",
    }  # fmt: skip
    assert first["offered_load"] == pytest.approx(1.0 / 3)
    assert all(r["invariants_ok"] for r in rows)


def test_a_row_agrees_with_a_plain_run() -> None:
    (row,) = sweep(scenario(), {"pool.workers.strategy": ["shared"]})
    import dataclasses

    pools = (dataclasses.replace(scenario().pools[0], strategy="shared"),)
    s = simulate(dataclasses.replace(scenario(), pools=pools)).summary
    assert row["latency_p99"] == s["latency"]["p99"]
    assert row["requests_timed_out"] == s["requests"]["timed_out"]
    assert row["dead_letters"] == s["messages"]["dead_lettered"]
    assert row["throughput"] == s["requests"]["replied"] / s["end_time"]


def test_output_is_byte_identical_whatever_the_number_of_jobs() -> None:
    one = sweep(scenario(), VARY, seeds=2, jobs=1)
    two = sweep(scenario(), VARY, seeds=2, jobs=2)
    assert rows_to_json(one) == rows_to_json(two)
    assert rows_to_csv(one) == rows_to_csv(two)


def test_csv_has_a_fixed_column_order_and_json_is_canonical() -> None:
    rows = sweep(scenario(), {"pool.workers.size": [2, 3]})
    header = rows_to_csv(rows).splitlines()[0].split(",")
    assert header[:2] == ["pool.workers.size", "seed"]
    assert header[2 : 2 + len(ROW_FIELDS)] == list(ROW_FIELDS)
    assert header[2 + len(ROW_FIELDS) :] == [
        "utilization.workers-1", "utilization.workers-2", "utilization.workers-3",
    ]  # fmt: skip
    assert rows_to_csv(rows).splitlines()[1].endswith(",")  # size 2 has no workers-3
    text = rows_to_json(rows)
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


def test_progress_is_reported_per_run() -> None:
    seen: list[tuple[int, int]] = []
    sweep(scenario(), {"until": [10.0, 20.0]}, progress=lambda d, n: seen.append((d, n)))
    assert seen == [(1, 2), (2, 2)]


# -- the commands -----------------------------------------------------------------------------


def test_sweep_command_writes_json_and_csv(toml: Path, tmp_path: Path) -> None:
    args = ["sweep", str(toml), "--vary", "pool.workers.strategy=random,shared", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "a.json"), "--jobs", "2", "--seeds", "2"]) == 0
    assert main([*args, "--out", str(tmp_path / "b.json"), "--seeds", "2"]) == 0
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert main([*args, "--out", str(tmp_path / "c.csv")]) == 0
    assert (tmp_path / "c.csv").read_text().startswith("pool.workers.strategy,seed,")


def test_sweep_command_prints_one_line_per_run(
    toml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sweep", str(toml), "--vary", "until=10,20"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("until=10  seed=5  latency mean")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--vary", "pool.wrkers.size=2"], 'did you mean "workers"?'),
        (["--vary", "faults.drop=2"], 'key "drop": must be between 0 and 1'),
        (["--vary", "until"], "expected KEY=V1,V2"),
        (["--vary", "until=1", "--vary", "until=2"], "given twice"),
        (["--out", "rows.txt"], "must end in .json or .csv"),
    ],
)
def test_sweep_command_errors_exit_2_with_one_line(
    toml: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sweep", str(toml), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_plot_command_infers_the_kind(
    toml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows, trace = tmp_path / "rows.json", tmp_path / "t.jsonl"
    vary = [
        "--vary",
        "pool.workers.strategy=random,shared",
        "--vary",
        "client.load.arrivals.rate=1,2",
    ]
    assert main(["sweep", str(toml), *vary, "--out", str(rows), "--quiet"]) == 0
    assert main(["run", str(toml), "--until", "5", "--trace", str(trace), "--quiet"]) == 0
    assert main(["plot", str(rows), "-o", str(tmp_path / "a.png")]) == 0
    assert main(["plot", str(rows), "-o", str(tmp_path / "b.png"), "--kind", "utilization"]) == 0
    assert main(["plot", str(trace), "-o", str(tmp_path / "c.png")]) == 0
    out = capsys.readouterr().out
    assert "(latency)" in out and "(utilization)" in out and "(sequence)" in out
    for name in "abc":
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (None, ["-o", "x.png"], "cannot read"),
        ("[1, 2]", ["-o", "x.png"], "neither sweep rows"),
        ("[]", ["-o", "x.png"], "no rows to plot"),
        ('[{"seed": 1, "offered_load": 0.5}]', ["-o", "x.jpg"], "must end in .png, .svg or .pdf"),
        ('[{"seed": 1, "offered_load": 0.5}]', ["-o", "x.png", "--kind", "sequence"], "a trace"),
    ],
)
def test_plot_command_errors_exit_2(
    tmp_path: Path, make: str | None, args: list[str], message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    path = tmp_path / "in.json"
    if make is not None:
        path.write_text(make)
    args = [a if not a.endswith(("png", "jpg")) else str(tmp_path / a) for a in args]
    assert main(["plot", str(path), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


# -- probes and figures ----------------------------------------------------------------------


def test_depth_sampling_does_not_change_the_run() -> None:
    series = probes.depth_series(scenario(), 0.5)
    assert series.result.summary == simulate(scenario(), monitors=False).summary
    assert series.times == tuple(k * 0.5 for k in range(121))
    assert set(series.depths) == {"workers-1", "workers-2", "workers-3"}
    crashed = series.depths["workers-2"]
    assert all(d == 0 for t, d in zip(series.times, crashed, strict=True) if 20.0 < t < 30.0)
    assert isinstance(plots.depth_over_time(series), Figure)


def test_windows_count_every_outcome() -> None:
    w = probes.window_series(scenario(), 5.0)
    req = w.result.summary["requests"]
    assert sum(w.replied) == req["replied"] and sum(w.timed_out) == req["timed_out"]
    assert len(w.starts) == len(w.replied) == len(w.mean_latency)
    assert isinstance(plots.crash_effect({"random": w}, [(20.0, 30.0)]), Figure)


def test_wait_times_and_events_come_from_the_broker() -> None:
    result, waits = probes.wait_times(scenario())
    assert min(waits) == 0.0 and len(waits) <= result.summary["requests"]["issued"]
    _, events = probes.record_events(scenario(), kinds={"resolve"})
    assert {e["ev"] for e in events} == {"resolve"}
    outcomes = ("replied", "timed_out", "cancelled", "failed")
    assert len(events) == sum(result.summary["requests"][k] for k in outcomes)


def test_sequence_diagram_has_a_lane_per_actor() -> None:
    import dataclasses

    short = dataclasses.replace(scenario(), until=25.0)
    fig = plots.sequence_diagram(probes.trace_events(short), limit=400)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels[:3] == ["workers-1", "workers-2", "workers-3"] and "load" in labels


def test_theory_overlay_and_utilization_figures() -> None:
    rows = sweep(scenario(), VARY)
    fig = plots.latency_vs_load(rows)
    assert len(fig.axes) == 2
    # shared and random have closed forms: one dashed theory line each on the left.
    dashed = [ln for ln in fig.axes[0].get_lines() if ln.get_linestyle() == "--"]
    assert len(dashed) == 2
    assert isinstance(plots.utilization_by_member(rows), Figure)
    assert plots.theory_response("random", 4, 2.0, 0.5) == pytest.approx(4.0)
    assert plots.theory_response("shared", 4, 1.0, 1.0) is None


@pytest.mark.parametrize("jobs", [0, 257, 100_000])
def test_jobs_out_of_range_is_refused_before_any_process_starts(jobs: int) -> None:
    """`--jobs 100000` would start a process per run; the cap is named in the message."""
    with pytest.raises(SweepError, match=r"jobs must be an integer in \[1, 256\]"):
        sweep(scenario(), {"pool.workers.size": [1]}, jobs=jobs)
