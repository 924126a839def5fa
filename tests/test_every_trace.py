"""`replay` and `conform` work on every trace brokerlab writes (docs/trace-format.md).

Three kinds a user meets first: the trace of a `--broker` run (a mutant: the header names it, so
`replay` re-runs that broker, and `replay --broker reference` shows where the reference parts
from it), the trace of a scripted run, and a trace cut short (no end line: a run that crashed
or was interrupted). Every prefix of a conforming trace conforms with `--partial`, even one cut
inside an operation, and a prefix whose last operation is wrong does not.
"""

from __future__ import annotations

import io
import json
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from scripts import scenario_toml, scripts

from model import check_trace
from sim import parse_scenario, replay, simulate
from sim.cli import main

MUTANT = "late_reply_delivered"


@pytest.fixture(scope="module")
def mutant_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The model checker's counterexample for the mutant, run on the mutant with a trace."""
    d = tmp_path_factory.mktemp("mutant")
    ce, trace = d / "ce.toml", d / "ce.jsonl"
    assert main(["check", "--broker", MUTANT, "--out", str(ce)]) == 1
    assert main(["run", str(ce), "--broker", MUTANT, "--trace", str(trace), "--quiet"]) == 1
    return ce, trace


def test_the_trace_of_a_broker_run_replays_on_its_broker(
    mutant_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, trace = mutant_run
    assert json.loads(trace.read_text().splitlines()[0])["broker"] == MUTANT
    capsys.readouterr()
    assert main(["replay", str(trace)]) == 0
    assert capsys.readouterr().out == f"{trace}: replay identical\n"


def test_replay_on_another_broker_shows_where_it_parts(
    mutant_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The header names the mutant; `--broker reference` re-runs the same scenario on the
    reference, and the first difference is the late reply the reference dead-letters."""
    _, trace = mutant_run
    capsys.readouterr()
    assert main(["replay", str(trace), "--broker", "reference"]) == 1
    out = capsys.readouterr().out
    assert "replay on broker 'reference' diverged at line" in out
    assert '"ev":"dead_letter"' in out and '"reason":"late_reply"' in out
    assert "line 1 " not in out  # the header differs only in the broker it names


def test_the_trace_of_a_mutant_does_not_conform(
    mutant_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, trace = mutant_run
    assert main(["conform", str(trace)]) == 1
    assert "late_reply" in capsys.readouterr().out


def test_a_scripted_run_replays_and_conforms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario, trace = tmp_path / "s.toml", tmp_path / "s.jsonl"
    scenario.write_text(
        scenario_toml(
            [
                {"at": 0.0, "do": "register", "name": "c"},
                {"at": 0.0, "do": "register", "name": "s"},
                {"at": 1.0, "do": "request", "from": "c", "to": "name:s", "timeout": 2.0},
                {"at": 1.5, "do": "cancel", "corr": 1},
                {"at": 2.0, "do": "send", "from": "c", "to": "name:s", "payload": "x"},
                {"at": 2.5, "do": "unregister", "actor": "s"},
            ]
        )
    )
    assert main(["run", str(scenario), "--trace", str(trace), "--quiet"]) == 0
    assert main(["replay", str(trace)]) == 0
    assert main(["conform", str(trace)]) == 0
    out = capsys.readouterr().out
    assert "replay identical" in out and "conform" in out


def _default_trace() -> list[str]:
    from sim import default_scenario

    out = io.StringIO()
    assert simulate(default_scenario(), trace=out).ok
    return out.getvalue().splitlines(keepends=True)


def test_a_trace_cut_short_replays_and_conforms_with_partial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _default_trace()
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(lines[: len(lines) // 2]))
    capsys.readouterr()
    assert main(["replay", str(cut)]) == 1
    assert "without its end line, cut short" in capsys.readouterr().out
    assert main(["replay", str(cut), "--partial"]) == 0
    n = len(lines) // 2
    assert (
        capsys.readouterr().out
        == f"{cut}: replay identical for its {n} lines (a trace cut short)\n"
    )
    assert main(["conform", str(cut)]) == 1
    assert "cut short (check it with --partial)" in capsys.readouterr().out
    assert main(["conform", str(cut), "--partial"]) == 0


def test_a_cut_trace_that_differs_before_the_cut_diverges(tmp_path: Path) -> None:
    lines = _default_trace()
    k = len(lines) // 2
    changed = lines[k - 1].replace('"t":', '"t":1', 1)  # the last line kept, altered
    assert changed != lines[k - 1]
    divergence = replay(io.StringIO("".join(lines[: k - 1]) + changed), "cut")
    assert divergence is not None and not divergence.cut_short and divergence.line == k


def _prefixes_conform(trace: str) -> None:
    """Every cut of a conforming trace conforms as a partial trace; the same cut with its last
    event line altered does not (the prefix is checked, not waved through)."""
    lines = trace.splitlines(keepends=True)
    for k in range(2, len(lines)):
        prefix = lines[:k]
        verdict = check_trace(prefix, "cut", complete=False)
        assert verdict.ok, f"cut after line {k}: {verdict.illegal}\n{''.join(prefix)}"
        last = json.loads(prefix[-1])
        if last.get("ev") in ("send", "dequeue", "dead_letter"):
            bad = {**last, "msg": last["msg"] + 1000} if "msg" in last else None
            if bad is not None:
                text = json.dumps(bad, sort_keys=True, separators=(",", ":")) + "\n"
                assert not check_trace([*prefix[:-1], text], "cut", complete=False).ok


def test_every_cut_of_the_default_trace_conforms_as_partial() -> None:
    _prefixes_conform("".join(_default_trace()[:400]))


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(scripts())
def test_every_cut_of_a_scripted_trace_conforms_as_partial(text: str) -> None:
    scenario = parse_scenario(tomllib.loads(text), "script.toml")
    out = io.StringIO()
    simulate(scenario, trace=out)
    _prefixes_conform(out.getvalue())
