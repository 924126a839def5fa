"""`pip install .` without extras gives a working CLI: run, check, conform, replay, sweep, plot.

The runtime dependencies are only matplotlib and networkx (pyproject.toml); Hypothesis, pytest,
coverage, ruff, mypy, the notebook stack, SimPy, pandas, tqdm and dask.distributed are dev,
bench, lab or dask extras, so no module the CLI imports for these commands may need one of them.
Building a fresh virtualenv for every test run would need the network and minutes; instead each
command runs in a subprocess of this interpreter whose first `sys.meta_path` finder refuses
every extra's top-level module, exactly as a missing package would (ModuleNotFoundError).
`test_the_blocker_blocks` shows the blocker really fails an import, so a runtime dependency on
an extra cannot pass unnoticed; `mutants`, which documents that it needs Hypothesis, must then
exit 2 with a clear message, and so must `sweep --scheduler` without dask.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from scripts import small_pool

# Every extra's top-level module (pytest-cov brings coverage, ipykernel brings IPython,
# distributed brings dask).
BLOCKED = (
    "hypothesis", "pytest", "_pytest", "pytest_cov", "coverage", "ruff", "mypy",
    "nbclient", "nbformat", "ipykernel", "IPython", "simpy", "pandas", "tqdm",
    "distributed", "dask",
)  # fmt: skip

# Installs the blocker; any code appended runs without the extras.
BLOCKER = f"""\
import sys

BLOCKED = frozenset({BLOCKED!r})


class _BlockExtras:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(
                f"No module named {{name!r}} (blocked: not a runtime dependency)", name=name
            )
        return None


sys.meta_path.insert(0, _BlockExtras())
"""

# `python -c BOOTSTRAP ARGS...` is `brokerlab ARGS...` without the extras.
BOOTSTRAP = (
    BLOCKER
    + """
args = sys.argv[1:]
sys.argv = ["brokerlab", *args]
from sim.cli import main

raise SystemExit(main(args))
"""
)

SCENARIO = small_pool(3, 30.0)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _env() -> dict[str, str]:
    env = dict(os.environ, MPLBACKEND="Agg")
    # coverage's subprocess hook would start coverage, which then needs its own (blocked) modules.
    for key in ("COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG"):
        env.pop(key, None)
    return env


def _python(code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,  # not the checkout: the installed package is imported
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def brokerlab(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `brokerlab ARGS...` with every extra blocked."""
    return _python(BOOTSTRAP, *args, cwd=cwd)


def _ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runtime_only")


@pytest.fixture(scope="module")
def trace(workdir: Path) -> Path:
    """The built-in default scenario, run once without the extras; its trace."""
    proc = brokerlab(
        "run", "--quiet", "--trace", "trace.jsonl", "--summary", "summary.json", "--until", "50",
        cwd=workdir,
    )  # fmt: skip
    _ok(proc)
    return workdir / "trace.jsonl"


@pytest.fixture(scope="module")
def rows(workdir: Path) -> Path:
    """A two-point sweep of a small scenario, run without the extras; its rows."""
    (workdir / "pool.toml").write_text(SCENARIO)
    proc = brokerlab(
        "sweep", "pool.toml", "--vary", "until=20,30", "--out", "rows.json", "--quiet",
        cwd=workdir,
    )  # fmt: skip
    _ok(proc)
    return workdir / "rows.json"


def test_the_blocker_blocks(tmp_path: Path) -> None:
    proc = _python(BLOCKER + "import hypothesis\n", cwd=tmp_path)
    assert proc.returncode == 1
    blocked = "No module named 'hypothesis' (blocked: not a runtime dependency)"
    assert f"ModuleNotFoundError: {blocked}" in proc.stderr
    proc = _python(BLOCKER + "import matplotlib, networkx\n", cwd=tmp_path)
    _ok(proc)


def test_runtime_modules_import_without_extras(tmp_path: Path) -> None:
    modules = (
        "sim, sim.run, sim.lab, sim.scenario, sim.checking.bridge, sim.checking.mutants, "
        "sim.checking.exhaustive, sim.cli, broker, model, model.checker"
    )
    _ok(_python(BLOCKER + f"import {modules}\n", cwd=tmp_path))
    proc = _python(BLOCKER + "import sim.checking.lockstep\n", cwd=tmp_path)
    assert proc.returncode == 1
    assert "ModuleNotFoundError: No module named 'hypothesis'" in proc.stderr


def test_run_writes_a_trace_and_a_clean_summary(trace: Path) -> None:
    first = json.loads(trace.read_text().splitlines()[0])
    assert first["format"] == "brokerlab-trace"
    summary = json.loads((trace.parent / "summary.json").read_text())
    assert summary["invariants"]["ok"] is True
    assert summary["invariants"]["violations"] == []


def test_conform_accepts_the_trace(trace: Path) -> None:
    proc = brokerlab("conform", trace.name, cwd=trace.parent)
    _ok(proc)
    assert "conform" in proc.stdout


def test_replay_is_identical(trace: Path) -> None:
    proc = brokerlab("replay", trace.name, cwd=trace.parent)
    _ok(proc)
    assert "replay identical" in proc.stdout


def test_check_holds_on_small_bounds(tmp_path: Path) -> None:
    proc = brokerlab("check", "--clients", "1", "--members", "2", "--faults", "crash", cwd=tmp_path)
    _ok(proc)
    assert "verdict: all properties hold" in proc.stdout


def test_check_replays_on_a_mutant_without_a_traceback(tmp_path: Path) -> None:
    proc = brokerlab(
        "check", "--clients", "1", "--members", "2", "--faults", "crash",
        "--broker", "capacity_off_by_one",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr
    assert "verdict:" in proc.stdout


def test_sweep_writes_one_row_per_point(rows: Path) -> None:
    data = json.loads(rows.read_text())
    assert isinstance(data, list)
    assert len(data) == 2


def test_sweep_on_a_cluster_needs_the_dask_extra(rows: Path) -> None:
    proc = brokerlab(
        "sweep", "pool.toml", "--vary", "until=20", "--scheduler", "tcp://127.0.0.1:8786",
        cwd=rows.parent,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "pip install 'brokerlab[dask]'" in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_plot_draws_the_rows(rows: Path) -> None:
    proc = brokerlab("plot", rows.name, "-o", "fig.png", cwd=rows.parent)
    _ok(proc)
    png = rows.parent / "fig.png"
    assert png.read_bytes()[:8] == PNG_SIGNATURE


@pytest.mark.parametrize("command", [("mutants", "--quick"), ("lockstep",)])
def test_the_lockstep_commands_need_the_dev_extra(tmp_path: Path, command: tuple[str]) -> None:
    proc = brokerlab(*command, cwd=tmp_path)
    assert proc.returncode == 2
    assert "Hypothesis" in proc.stderr
    assert "Traceback" not in proc.stderr
