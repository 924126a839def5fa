"""Figures (sim.lab.plots) and `brokerlab plot`: inputs (JSON or CSV rows, traces), outputs
(PNG, SVG, PDF), the latency figure's theory and legend, and the sequence diagram's choice of
events, notes and violation mark. The figures are read as objects (axes limits, artists and
their gids, legend texts), never as pixels; every figure is drawn by Agg."""

from __future__ import annotations

import io
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from matplotlib.figure import Figure
from scripts import small_pool

from sim import parse_scenario, rows_to_csv, simulate
from sim.checking.mutants import broker_class
from sim.cli import main
from sim.lab import SweepError, plots, rows_from_csv

TOML = small_pool(4, 10.0)
MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "svg": b"<?xml", "pdf": b"%PDF-"}
STRATEGY = "pool.w.strategy"


def trace_lines(broker: str = "reference") -> list[dict[str, Any]]:
    """A small run's trace, its header left out (as `brokerlab plot` reads it)."""
    out = io.StringIO()
    simulate(parse_scenario(tomllib.loads(TOML), "p.toml"), trace=out,
             broker_factory=broker_class(broker))  # fmt: skip
    return [json.loads(line) for line in out.getvalue().splitlines()[1:]]


def rows(latency: dict[str, list[float]], loads: list[float]) -> list[dict[str, Any]]:
    """Sweep rows of a 4-member pool (mean service 1) per strategy and load, two seeds each:
    the mean latency given, +-0.5 between the seeds."""
    out = []
    for strategy, means in latency.items():
        for load, mean in zip(loads, means, strict=True):
            for seed, delta in ((1, -0.5), (2, 0.5)):
                out.append({
                    STRATEGY: strategy, "seed": seed, "offered_load": load, "servers": 4,
                    "service_mean": 1.0, "latency_mean": mean + delta,
                    "latency_p50": mean, "latency_p90": 2 * mean, "latency_p99": 3 * mean,
                    "invariants_ok": True, "utilization.w-1": load, "utilization.w-2": None,
                })  # fmt: skip
    return out


def gids(fig: Figure) -> list[str]:
    return [a.get_gid() for a in fig.axes[0].get_children() if a.get_gid()]


def seqs_drawn(fig: Figure) -> set[int]:
    """The `seq` of every event the sequence diagram drew (gids `<ev>-<seq>`)."""
    return {int(g.rpartition("-")[2]) for g in gids(fig) if g.rpartition("-")[2].isdigit()}


def legend_texts(fig: Figure) -> list[str]:
    assert len(fig.legends) == 1
    return [t.get_text() for t in fig.legends[0].get_texts()]


# -- rows as CSV ------------------------------------------------------------------------------


def test_csv_rows_read_back_as_written() -> None:
    data = rows({"random": [2.0, 3.0], "shared": [1.0, 1.5]}, [0.5, 0.75])
    data[0]["latency_p99"] = None
    back = rows_from_csv(rows_to_csv(data))
    assert len(back) == len(data)
    for original, read in zip(data, back, strict=True):
        assert {k: read[k] for k in original} == original  # types too: 4, 0.5, True, None
        assert all(read[k] is None for k in read.keys() - original.keys())  # absent columns


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b\n1,2\n", "rows.csv: not sweep rows: line 1 has no `seed` column"),
        ("k,seed\nx,1\ny\n", "rows.csv:3: 1 cells, but the header has 2 columns"),
        ("", "no `seed` column"),
    ],
)
def test_csv_that_is_not_rows_is_refused_by_name(text: str, message: str) -> None:
    with pytest.raises(SweepError) as err:
        rows_from_csv(text, "rows.csv")
    assert message in str(err.value)


def test_plot_reads_the_csv_a_sweep_writes(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text(TOML)
    csv_rows, json_rows = tmp_path / "rows.csv", tmp_path / "rows.json"
    sweep = ["sweep", str(tmp_path / "p.toml"), "--vary", "pool.workers.strategy=random,shared",
             "--vary", "client.load.arrivals.rate=1,2", "--quiet"]  # fmt: skip
    assert main([*sweep, "--out", str(csv_rows)]) == 0
    assert main([*sweep, "--out", str(json_rows)]) == 0
    assert rows_from_csv(csv_rows.read_text()) == json.loads(json_rows.read_text())
    for kind in ("latency", "utilization"):
        out = tmp_path / f"{kind}.png"
        assert main(["plot", str(csv_rows), "-o", str(out), "--kind", kind]) == 0
        assert out.read_bytes()[:8] == MAGIC["png"]


# -- output formats ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf", "SVG"])
def test_the_extension_chooses_the_format(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(rows({"random": [2.0, 3.0]}, [0.5, 0.75])))
    out = tmp_path / f"fig.{fmt}"
    assert main(["plot", str(path), "-o", str(out)]) == 0
    assert out.read_bytes().startswith(MAGIC[fmt.lower()])
    if fmt.lower() == "svg":
        assert b"<svg" in out.read_bytes()[:1000]


@pytest.mark.parametrize("name", ["fig.jpg", "fig", "fig.png.txt"])
def test_another_extension_exits_2_naming_the_file(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(rows({"random": [2.0]}, [0.5])))
    assert main(["plot", str(path), "-o", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert name in err and "must end in .png, .svg or .pdf" in err and "Traceback" not in err
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize("fmt", ["svg", "pdf", "png"])
def test_a_saved_figure_is_the_same_bytes_every_time(tmp_path: Path, fmt: str) -> None:
    """No creation date, and SVG ids from a fixed salt (matplotlib's default is uuid4)."""
    fig = plots.latency_vs_load(rows({"random": [2.0, 3.0]}, [0.5, 0.75]))
    a, b = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt}"
    assert plots.save_figure(fig, str(a)) == fmt
    plots.save_figure(fig, str(b))
    assert a.read_bytes() == b.read_bytes()


def test_save_figure_refuses_other_formats(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"x\.eps'.*\.png, \.svg or \.pdf"):
        plots.save_figure(Figure(), str(tmp_path / "x.eps"))


# -- the latency figure -----------------------------------------------------------------------

LOADS = [0.5, 0.9, 0.98]  # theory for `random` (4 members): 2, 10, 50


def test_theory_is_clipped_to_the_measured_range() -> None:
    fig = plots.latency_vs_load(rows({"random": [2.0, 6.0, 9.0]}, LOADS))
    mean_ax = fig.axes[0]
    (theory,) = [ln for ln in mean_ax.get_lines() if ln.get_linestyle() == "--"]
    bottom, top = mean_ax.get_ylim()
    assert max(theory.get_ydata()) > 45  # the theory climbs far above the data...
    assert 9.5 <= top < 12  # ...but the axis ends just above the highest seed (9.5)
    assert 0 <= bottom <= 1.5  # and just below the lowest (1.5)


def test_theory_clipping_on_a_log_scale() -> None:
    fig = plots.latency_vs_load(rows({"random": [2.0, 6.0, 9.0]}, LOADS), log_mean=True)
    bottom, top = fig.axes[0].get_ylim()
    assert fig.axes[0].get_yscale() == "log"
    assert 9.5 <= top < 15 and 1.0 < bottom <= 1.5


def test_latency_says_it_counts_replied_requests() -> None:
    fig = plots.latency_vs_load(rows({"random": [2.0, 3.0]}, [0.5, 0.75]))
    for ax in fig.axes:
        assert "replied requests" in ax.get_ylabel()


def test_one_legend_names_the_strategies_for_both_panels() -> None:
    fig = plots.latency_vs_load(rows({"random": [2.0, 3.0], "shared": [1.0, 1.2]}, [0.5, 0.75]))
    mean_ax, pct_ax = fig.axes
    assert legend_texts(fig) == ["random", "shared", "theory (no timeouts)"]
    assert fig.legends[0].get_title().get_text() == STRATEGY
    assert mean_ax.get_legend() is None  # not on one panel only
    assert [t.get_text() for t in pct_ax.get_legend().get_texts()] == ["p50", "p90", "p99"]
    plain = plots.latency_vs_load(rows({"random": [2.0]}, [0.5]), theory_overlay=False)
    assert legend_texts(plain) == ["random"]
    assert plain.axes[0].get_title() == "Mean latency"


# -- the sequence diagram ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def lines() -> list[dict[str, Any]]:
    return trace_lines()


def test_the_first_events_are_drawn_and_the_cut_is_said(lines: list[dict[str, Any]]) -> None:
    events = [e for e in lines if "ev" in e and e["ev"] != "register"]
    fig = plots.sequence_diagram(lines, limit=10)
    assert seqs_drawn(fig) <= {e["seq"] for e in events[:10]}
    assert {e["seq"] for e in events[:10] if e["ev"] in ("route", "dequeue")} <= seqs_drawn(fig)
    assert f"first 10 of {len(events)} events" in fig.get_suptitle()
    assert "--window" in fig.get_suptitle()
    whole = plots.sequence_diagram(lines, limit=len(events))
    assert "first" not in whole.get_suptitle()


def test_a_window_draws_only_its_events(lines: list[dict[str, Any]]) -> None:
    fig = plots.sequence_diagram(lines, window=(2.0, 4.0), limit=1000)
    at = {e["seq"]: e["t"] for e in lines}
    drawn = seqs_drawn(fig)
    assert drawn and all(2.0 <= at[s] <= 4.0 for s in drawn)
    assert any(e["t"] < 2.0 for e in lines) and any(e["t"] > 4.0 for e in lines)
    bottom, top = fig.axes[0].get_ylim()
    assert top < 2.0 < 4.0 < bottom  # time downwards, the window with a margin
    assert "in t=2..4" in fig.get_suptitle()


def test_a_correlation_id_draws_only_its_events(lines: list[dict[str, Any]]) -> None:
    fig = plots.sequence_diagram(lines, corr=3)
    by_seq = {e["seq"]: e for e in lines}
    request = next(e for e in lines if e.get("ev") == "send" and e.get("corr") == 3)
    reply = next(e for e in lines if e.get("ev") == "resolve" and e["corr"] == 3)
    drawn = [by_seq[s] for s in seqs_drawn(fig)]
    assert {e["ev"] for e in drawn} >= {"route", "dequeue", "resolve"}
    assert all(e.get("msg") in (request["msg"], reply["msg"]) for e in drawn)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert set(labels) == {"load", next(e["actor"] for e in drawn if e["ev"] == "dequeue")}
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert f"request #{request['msg']} corr 3" in texts  # the request arrow's label
    assert "replied corr 3" in texts  # the reply's, at the requester
    assert "of correlation id 3" in fig.get_suptitle()


def test_nothing_to_draw_is_an_error_that_says_why(lines: list[dict[str, Any]]) -> None:
    with pytest.raises(ValueError, match="no events to draw of correlation id 999"):
        plots.sequence_diagram(lines, corr=999)
    with pytest.raises(ValueError, match=r"in t=500\.\.600 \(the events span t=0 to"):
        plots.sequence_diagram(lines, window=(500.0, 600.0))


def test_a_legend_says_which_mark_is_which(lines: list[dict[str, Any]]) -> None:
    texts = legend_texts(plots.sequence_diagram(lines, limit=1000))
    assert "enqueue" in texts and "dequeue (delivered)" in texts
    assert any(t.startswith("message") for t in texts) and any(t.startswith("reply") for t in texts)
    assert not any("violation" in t for t in texts)  # this run drained


@pytest.fixture(scope="module")
def broken() -> list[dict[str, Any]]:
    """A run a monitor stopped: `reply_before_pending` leaks pending requests (end: violation)."""
    found = trace_lines("reply_before_pending")
    assert found[-1]["end"] == "violation"
    return found


def test_the_violation_is_marked_where_it_happened(broken: list[dict[str, Any]]) -> None:
    stop = broken[-1]["t"]
    fig = plots.sequence_diagram(broken, limit=10_000)
    (line,) = [ln for ln in fig.axes[0].get_lines() if ln.get_gid() == "violation"]
    assert list(line.get_ydata()) == [stop, stop]
    assert "violation" in "".join(t.get_text() for t in fig.axes[0].texts)
    assert "the run stopped (violation)" in legend_texts(fig)


def test_a_violation_beyond_the_events_drawn_is_named(broken: list[dict[str, Any]]) -> None:
    fig = plots.sequence_diagram(broken, limit=10)
    assert "violation" not in [ln.get_gid() for ln in fig.axes[0].get_lines()]
    (note,) = [t for t in fig.axes[0].texts if t.get_gid() == "violation-note"]
    assert f"violation at t={broken[-1]['t']:g}, after the events drawn" in note.get_text()
    assert note.get_color() == "red"


def test_the_monitor_message_is_shown_when_given(broken: list[dict[str, Any]]) -> None:
    result = simulate(parse_scenario(tomllib.loads(TOML), "p.toml"),
                      broker_factory=broker_class("reply_before_pending"))  # fmt: skip
    assert result.violation is not None
    events = [e for e in broken if "ev" in e]  # no end line: only the exception tells
    fig = plots.sequence_diagram(events, violation=result.violation, limit=10_000)
    text = " ".join(t.get_text() for t in fig.axes[0].texts if t.get_gid() == "violation-text")
    assert "no_leak" in text.replace("\n", " ")


# -- the command's sequence options -----------------------------------------------------------


@pytest.fixture
def trace_file(tmp_path: Path) -> Path:
    path = tmp_path / "t.jsonl"
    out = io.StringIO()
    simulate(parse_scenario(tomllib.loads(TOML), "p.toml"), trace=out)
    path.write_text(out.getvalue())
    return path


def test_plot_window_corr_and_limit(trace_file: Path, tmp_path: Path) -> None:
    for i, args in enumerate(
        (["--window", "2:4"], ["--window", "5:"], ["--corr", "3"], ["--limit", "5"])
    ):
        out = tmp_path / f"seq{i}.svg"  # outputs are new files (replacing one needs --force)
        assert main(["plot", str(trace_file), "-o", str(out), *args]) == 0
        assert out.read_bytes().startswith(MAGIC["svg"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--corr", "999"], "no events to draw of correlation id 999"),
        (["--window", "50:60"], "no events to draw in t=50..60"),
    ],
)
def test_plot_options_that_select_nothing_exit_2(
    trace_file: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plot", str(trace_file), "-o", str(trace_file.with_suffix(".png")), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and str(trace_file) in err and "Traceback" not in err


@pytest.mark.parametrize("window", ["4:2", "a:b", "3", "nan:4"])
def test_a_bad_window_is_a_usage_error(
    trace_file: Path, window: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["plot", str(trace_file), "-o", "x.png", "--window", window])
    assert exit_.value.code == 2
    assert "--window" in capsys.readouterr().err


def test_sequence_options_need_a_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(rows({"random": [2.0]}, [0.5])))
    assert main(["plot", str(path), "-o", str(tmp_path / "x.png"), "--corr", "1"]) == 2
    assert "--corr chooses the events of a sequence diagram" in capsys.readouterr().err


def test_a_csv_that_is_not_rows_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("a,b\n1,2\n")
    assert main(["plot", str(path), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert f"{path}: not sweep rows" in err and "Traceback" not in err
