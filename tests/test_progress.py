"""Progress bars (sim.run.progress_bar): tqdm on a terminal or in Jupyter, nothing otherwise.

A bar only draws; a run, a sweep's rows and conform's verdict are the same with or without one.
The bars wait a second before drawing (tqdm's `delay`), so the tests build them with `delay=0`
through a patched `progress_bar`, and give them a stderr that says it is a terminal.
"""

from __future__ import annotations

import io
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from scripts import small_pool

import sim.run
from sim import parse_scenario, simulate, sweep
from sim.cli import main
from sim.run import ProgressBar, in_jupyter, progress_bar

TOML = small_pool(4, 20.0)


class Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def scenario() -> sim.Scenario:
    import tomllib

    return parse_scenario(tomllib.loads(TOML), "progress.toml")


def on_terminal(monkeypatch: pytest.MonkeyPatch) -> Terminal:
    """Make sys.stderr a Terminal. In the test's body: pytest's capture sets sys.stderr anew
    when the test is called, after its fixtures."""
    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    return err


@pytest.fixture
def bars(monkeypatch: pytest.MonkeyPatch) -> list[ProgressBar]:
    """Every bar built by `simulate`, `sweep`, `conform` and `check`, drawn at once; the list
    of them."""
    made: list[ProgressBar] = []

    def eager(*args: Any, **kwargs: Any) -> ProgressBar | None:
        bar = progress_bar(*args, **{**kwargs, "delay": 0.0})
        if bar is not None:
            made.append(bar)
        return bar

    import sim.cli.checks
    import sim.lab._sweep
    import sim.run._runner

    monkeypatch.setattr(sim.run._runner, "progress_bar", eager)
    monkeypatch.setattr(sim.lab._sweep, "progress_bar", eager)
    monkeypatch.setattr(sim.cli.checks, "progress_bar", eager)  # conform and check
    return made


def test_no_bar_unless_a_terminal() -> None:
    assert progress_bar(10, "runs", file=io.StringIO()) is None
    assert progress_bar(10, "runs", file=Terminal()) is not None


def test_a_bar_draws_its_estimate_on_a_terminal() -> None:
    out = Terminal()
    bar = progress_bar(60.0, "run", file=out, delay=0.0, bar_format=sim.run._runner.RUN_BAR)
    assert bar is not None
    bar(15.0, 60.0)
    bar(30.0)
    bar.close()
    text = out.getvalue()
    assert "run:  50%" in text and "t=30.0/60" in text and text.endswith("\n")
    assert bar.done == 30.0 and bar.total == 60.0


def test_without_tqdm_there_is_no_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import tqdm.auto: ImportError
    assert progress_bar(10, "runs", file=Terminal(), delay=0.0) is None


def test_a_jupyter_kernel_counts_as_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not in_jupyter()
    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: object()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", fake)
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    assert in_jupyter()
    bar = progress_bar(3, "runs", file=io.StringIO(), delay=0.0)
    assert bar is not None
    bar.close()


def test_simulate_with_a_bar_runs_the_same(
    bars: list[ProgressBar], monkeypatch: pytest.MonkeyPatch
) -> None:
    err = on_terminal(monkeypatch)
    plain, drawn = io.StringIO(), io.StringIO()
    a = simulate(scenario(), trace=plain)
    b = simulate(scenario(), trace=drawn, progress=True)
    assert drawn.getvalue() == plain.getvalue()
    assert a.summary == b.summary
    (bar,) = bars
    assert bar.total == 20.0 and bar.done == 20.0  # virtual time up to `until`
    assert "t=20.0/20" in err.getvalue()


def test_progress_false_and_callables_draw_nothing(
    bars: list[ProgressBar], monkeypatch: pytest.MonkeyPatch
) -> None:
    err = on_terminal(monkeypatch)
    seen: list[tuple[float, float]] = []
    simulate(scenario(), progress=False)
    simulate(scenario(), progress=lambda now, until: seen.append((now, until)))
    assert bars == [] and err.getvalue() == ""
    assert len(seen) == 100 and seen[-1] == (20.0, 20.0)


def test_sweep_bar_counts_runs(bars: list[ProgressBar], monkeypatch: pytest.MonkeyPatch) -> None:
    err = on_terminal(monkeypatch)
    rows = sweep(scenario(), {"until": [5.0, 10.0]}, seeds=2, progress=True)
    assert rows == sweep(scenario(), {"until": [5.0, 10.0]}, seeds=2)
    (bar,) = bars
    assert bar.total == 4 and bar.done == 4
    assert "sweep: 100%" in err.getvalue() and "4/4" in err.getvalue()


def test_commands_draw_on_stderr_only(
    bars: list[ProgressBar],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = on_terminal(monkeypatch)
    (tmp_path / "s.toml").write_text(TOML)
    trace = tmp_path / "t.jsonl"
    assert main(["run", str(tmp_path / "s.toml"), "--trace", str(trace)]) == 0
    assert main(["conform", str(trace)]) == 0
    rows = tmp_path / "rows.json"
    assert main(["sweep", str(tmp_path / "s.toml"), "--vary", "until=5,6", "--out", str(rows)]) == 0
    run_bar, conform_bar, sweep_bar = bars
    assert run_bar.done == run_bar.total == 20.0
    lines = trace.read_text().count("\n")
    assert conform_bar.total == lines - 1 and conform_bar.done == conform_bar.total
    assert sweep_bar.done == sweep_bar.total == 2
    out = capsys.readouterr().out
    assert "conform" in out and "%|" not in out and "\r" not in out
    drawn = err.getvalue()
    assert "run: 100%" in drawn and "conform: 100%" in drawn and "sweep: 100%" in drawn
    assert "%|" not in trace.read_text() and "%|" not in rows.read_text()


def test_check_counts_states_with_transitions_and_depth(
    bars: list[ProgressBar], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No total is known before the search ends: a counter of states, one bar per bounds, and
    none with --json (its stdout is the report, its stderr stays clean for scripts)."""
    err = on_terminal(monkeypatch)
    small = ["check", "--clients", "1", "--members", "1", "--faults", "none"]
    assert main(small) == 0
    (bar,) = bars
    states = int(capsys.readouterr().out.split("states ")[1].split()[0])
    assert bar.total is None and bar.done == states > 1  # it ends at the search's count
    drawn = err.getvalue()
    assert "check: " in drawn and "transitions, depth " in drawn
    bars.clear()
    assert main([*small, "--json"]) == 0 and bars == []


def test_quiet_commands_draw_nothing(
    bars: list[ProgressBar], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    err = on_terminal(monkeypatch)
    (tmp_path / "s.toml").write_text(TOML)
    assert main(["run", str(tmp_path / "s.toml"), "--quiet"]) == 0
    assert main(["sweep", str(tmp_path / "s.toml"), "--vary", "until=5", "--quiet"]) == 0
    assert bars == [] and err.getvalue() == ""


def test_a_non_conforming_trace_leaves_its_bar_where_it_stopped(
    bars: list[ProgressBar], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    on_terminal(monkeypatch)
    out = io.StringIO()
    simulate(scenario(), trace=out)
    lines = out.getvalue().splitlines(keepends=True)
    (tmp_path / "cut.jsonl").write_text("".join(lines[:-1]))  # no end line
    assert main(["conform", str(tmp_path / "cut.jsonl")]) == 1
    (bar,) = bars
    assert bar.total is not None and bar.done < bar.total
