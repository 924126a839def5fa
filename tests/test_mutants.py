"""The mutation catalogue: every deliberately broken broker is caught by the lockstep machine.

Each known failure mode of the Rust original (BRIEF.md) is reintroduced in a subclass of
`broker.Broker`; the lockstep machine (spec sections 2 to 7) must find a failing example.
"""

from __future__ import annotations

import pytest
from hypothesis import settings

from sim.lockstep import default_factory, run_lockstep
from sim.mutants import MUTANTS, catalogue_results

# Mutants are usually caught in a few dozen examples; the cap keeps a survivor from running long.
HUNT = settings(settings.default, max_examples=1000, stateful_step_count=30, print_blob=False)


@pytest.mark.slow  # shrinking to the shortest example takes 10 s to 3 min per mutant
@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_is_caught(name: str) -> None:
    failure = run_lockstep(MUTANTS[name], HUNT)
    assert failure is not None, f"mutant {name} survived the lockstep machine"
    assert failure.steps >= 1


def test_reference_broker_passes() -> None:
    assert run_lockstep(default_factory) is None


def test_catalogue_results_rows() -> None:
    rows = catalogue_results(["capacity_off_by_one"], HUNT)
    assert [(r.mutant, r.caught_by is not None) for r in rows] == [("capacity_off_by_one", True)]
    assert rows[0].steps is not None and rows[0].steps >= 2
