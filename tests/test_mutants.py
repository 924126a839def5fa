"""The mutation catalogue: every deliberately broken broker is caught by the lockstep machine.

Each known failure mode of the Rust original (BRIEF.md) is reintroduced in a subclass of
`broker.Broker`; the lockstep machine (spec sections 2 to 7) must find a failing example.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import Phase, settings

from broker import Broker
from sim.checking import mutants
from sim.checking.hunt import DIRECTED, catalogue_results, directed_result, run_lockstep
from sim.checking.mutants import MUTANTS, TRACE_SCENARIOS, conform_result
from sim.cli import main

# Mutants are usually caught in a few dozen examples; the cap keeps a survivor from running long.
HUNT = settings(settings.default, max_examples=1000, stateful_step_count=30, print_blob=False)


@pytest.mark.slow  # shrinking to the shortest example takes 10 s to 3 min per mutant
@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_is_caught(name: str) -> None:
    failure = run_lockstep(MUTANTS[name], HUNT)
    assert failure is not None, f"mutant {name} survived the lockstep machine"
    assert failure.steps >= 1


# Without shrinking a hunt stops at the first failing example: a fraction of a second for most.
QUICK = settings(
    HUNT, max_examples=600, phases=[Phase.explicit, Phase.generate], derandomize=True,
    database=None, deadline=None,
)  # fmt: skip


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_is_caught_fast(name: str) -> None:
    """Every mutant, on every run: by the trace checker on its directed simulator scenario
    (spec 10), or, for the three no simulator trace can show, by a directed lockstep example."""
    verdict = conform_result(name)
    if TRACE_SCENARIOS[name] is not None:
        assert verdict is not None and verdict.illegal is not None, f"{name} conforms"
    else:
        assert name in DIRECTED
        assert directed_result(name) is not None, f"{name} survived its directed example"
        assert directed_result(name, Broker) is None


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_is_caught_by_an_unshrunk_hunt(name: str) -> None:
    """The lockstep hunt without shrinking (derandomized, so every run sees the same 600
    examples): every mutant falls to it, round robin's through `rotate_across_leave`."""
    assert run_lockstep(MUTANTS[name], QUICK) is not None


def test_reference_broker_passes() -> None:
    assert run_lockstep(Broker) is None


def test_catalogue_results_rows() -> None:
    rows = catalogue_results(["capacity_off_by_one"], QUICK)  # shrinking takes ~100 s here
    assert [(r.mutant, r.caught_by is not None) for r in rows] == [("capacity_off_by_one", True)]
    assert rows[0].steps is not None and rows[0].steps >= 2


# `brokerlab mutants`: the hunt draws from --seed, so the same arguments print the same table.
SUBSET = ["capacity_off_by_one", "late_reply_delivered"]  # given out of catalogue order


def test_cli_mutants_is_deterministic_and_counts_the_caught(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["mutants", "--quick", "--seed", "3", "--examples", "40", *SUBSET]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    assert capsys.readouterr().out == first
    lines = first.splitlines()
    assert (
        lines[0] == "brokerlab mutants: seed 3, up to 40 lockstep examples per mutant (not shrunk)"
    )
    table = [line.split()[0] for line in lines[3:-2]]
    assert table == ["late_reply_delivered", "capacity_off_by_one"]  # in catalogue order
    assert lines[-1] == "2/2 caught"


def test_cli_mutants_reports_a_survivor_and_exits_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reference broker posing as a mutant survives: it is counted, named, exit 1."""
    monkeypatch.setitem(mutants.MUTANTS, "no_bug", Broker)
    monkeypatch.setitem(mutants.TRACE_SCENARIOS, "no_bug", None)
    assert main(["mutants", "--quick", "--examples", "20", "no_bug", "capacity_off_by_one"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert re.match(r"no_bug +SURVIVED +- +-$", out[-3])
    assert out[-1] == "1/2 caught; survived: no_bug"


def test_cli_mutants_refuses_an_unknown_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mutants", "--quick", "capacity_off_by_one", "nonesuch"]) == 2
    assert "no mutant 'nonesuch'" in capsys.readouterr().err
