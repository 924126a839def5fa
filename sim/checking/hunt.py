"""The catalogue hunt: the lockstep machine (Hypothesis) against every mutant of the catalogue.

`run_lockstep(factory)` runs the machine against one broker and returns the shrunk failure
(with a `seed`, the same failure on every run: `brokerlab mutants --seed`);
`catalogue_results` runs the machine against each mutant and reports which check caught it and
how short the shrunk failing example is; every mutant must be caught, and the real broker must
pass (`reference_passes`). `DIRECTED` holds a few fixed lockstep examples for the mutants that no
simulator trace can show (sim/checking/mutants.py, `TRACE_SCENARIOS`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from hypothesis import seed as hypothesis_seed
from hypothesis import settings as Settings
from hypothesis.stateful import run_state_machine_as_test

from broker import Broker, BrokerFactory
from sim.checking.lockstep import Divergence, LockstepMachine
from sim.checking.mutants import MUTANTS


@dataclass(frozen=True, slots=True)
class Failure:
    """How a lockstep run failed: the check that caught it and the shrunk example's length."""

    check: str
    steps: int
    message: str


def machine_for(
    factory: BrokerFactory,
    name: str = "Lockstep",
    features: frozenset[str] | None = None,
    seed: int | None = None,
) -> type[LockstepMachine]:
    """A `LockstepMachine` whose broker comes from `factory` (a port: with its `features`);
    with a `seed`, Hypothesis draws its examples from that seed (`hypothesis.seed`)."""
    attributes = {"factory": staticmethod(factory), "features": features}
    machine = type(name, (LockstepMachine,), attributes)
    return machine if seed is None else hypothesis_seed(seed)(machine)


def run_lockstep(
    factory: BrokerFactory,
    settings: Settings | None = None,
    features: frozenset[str] | None = None,
    seed: int | None = None,
) -> Failure | None:
    """Run the lockstep machine against `factory`'s broker; the (shrunk) failure, or None.

    The failure's `steps` counts the rules of the minimal failing example Hypothesis reports
    (invariant checks and teardown are not steps). With a `seed` the same examples are drawn
    on every run, so the result is the same, given settings that read no clock: no deadline,
    no health checks (they time the examples), one bug reported (looking for more stops after
    ten seconds), and a shrink that ends before Hypothesis's five-minute cap.
    """
    machine = machine_for(factory, features=features, seed=seed)
    try:
        run_state_machine_as_test(machine, settings=settings)
    except Exception as error:  # any failure of the broker counts, not only a Divergence
        check = error.check if isinstance(error, Divergence) else type(error).__name__
        return Failure(check, _count_steps(getattr(error, "__notes__", [])), str(error))
    return None


_STEP = re.compile(r"^(?:.* = )?state\.(\w+)\(")
_NOT_STEPS = frozenset({"teardown"}) | {
    name
    for name, value in vars(LockstepMachine).items()
    if hasattr(value, "hypothesis_stateful_invariant")
}


def _count_steps(notes: list[str]) -> int:
    """Rules in Hypothesis's printout of a failing example."""
    found = (_STEP.match(line) for line in notes)
    return sum(1 for f in found if f is not None and f.group(1) not in _NOT_STEPS)


def _leak(mc: LockstepMachine) -> None:
    server = mc.register("a", None, "reject", None, [], [])
    client = mc.register(None, None, "reject", None, [], [])
    mc.request(client, f"id:{server}", 2.0, False, None, None)
    mc.crash(client)  # the mutant forgets to cancel the request


def _round_robin(mc: LockstepMachine) -> None:
    mc.create_pool("p", "round_robin")
    first = mc.register(None, None, "reject", None, [], ["p"])
    for _ in range(2):
        mc.register(None, None, "reject", None, [], ["p"])
    mc.burst("pool:p", 2, False, None)  # the cursor now points at the third member
    mc.leave("p", first)
    mc.tell(None, "pool:p", False, None, None, None, None)  # the mutant serves the second


def _future_stamp(mc: LockstepMachine) -> None:
    actor = mc.register("a", None, "reject", None, [], [])
    mc.tell(None, "name:a", False, 1.0, 3.0, None, None)  # stamped 3 ahead, ttl 1
    mc.advance(1.0)
    mc.deliver(actor, False)  # the mutant has expired it


# Directed lockstep examples for the mutants no simulator trace can show: a few fixed rules.
DIRECTED: dict[str, Callable[[LockstepMachine], None]] = {
    "leak_pending_on_stop": _leak,
    "round_robin_no_adjust_on_leave": _round_robin,
    "future_timestamp_expired": _future_stamp,
}


def directed_result(name: str, factory: BrokerFactory | None = None) -> Divergence | None:
    """Run mutant `name`'s directed example (if it has one) in the lockstep machine; the
    divergence it shows, or None."""
    example = DIRECTED.get(name)
    if example is None:
        return None
    machine = machine_for(factory or MUTANTS[name])()
    try:
        example(machine)
    except Divergence as divergence:
        return divergence
    return None


@dataclass(frozen=True, slots=True)
class Row:
    """One line of `brokerlab mutants`: `caught_by` is None for a surviving mutant."""

    mutant: str
    caught_by: str | None
    steps: int | None
    message: str = ""


def catalogue_results(
    names: Iterable[str] | None = None,
    settings: Settings | None = None,
    on_row: Callable[[Row], None] | None = None,
    seed: int | None = None,
) -> list[Row]:
    """Run the lockstep machine against each mutant (all by default), in catalogue order,
    each from `seed` (see `run_lockstep`).

    Returns one `Row` per mutant: the check that caught it and the number of steps of the
    shrunk failing example, or `caught_by=None` if it survived.
    """
    rows = []
    for name in MUTANTS if names is None else names:
        failure = run_lockstep(MUTANTS[name], settings, seed=seed)
        row = (
            Row(name, None, None)
            if failure is None
            else Row(name, failure.check, failure.steps, failure.message)
        )
        if on_row is not None:
            on_row(row)
        rows.append(row)
    return rows


def reference_passes(settings: Settings | None = None) -> bool:
    """The real broker under the same machine: no failure."""
    return run_lockstep(Broker, settings) is None
