"""Worlds that once broke brokerlab, kept as scenario files (tests/regressions/*.toml): each
must run clean on the reference, and its trace conform and replay. A failure the swarm finds
and shrinks (docs/swarm.md) joins them once it is fixed; each file says what it broke."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from model import check_trace
from sim import load_scenario, replay, simulate

REGRESSIONS = sorted((Path(__file__).resolve().parent / "regressions").glob("*.toml"))


def test_there_are_regressions() -> None:
    assert REGRESSIONS


@pytest.mark.parametrize("path", REGRESSIONS, ids=[p.stem for p in REGRESSIONS])
def test_a_regression_runs_clean_conforms_and_replays(path: Path) -> None:
    out = io.StringIO()
    result = simulate(load_scenario(path), trace=out)
    assert result.ok, result.summary
    text = out.getvalue()
    verdict = check_trace(text.splitlines(), path.name)
    assert verdict.ok, verdict.illegal
    assert replay(io.StringIO(text), path.name) is None
