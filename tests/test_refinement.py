"""The refinement check (sim/checking/refinement.py): the broker's state maps onto the model's
after every step, and a latent corruption is caught at the step that makes it."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import model as m
from broker import Broker, BrokerError, BrokerFactory
from sim.checking.bridge import disagreement, perform
from sim.checking.mutants import MUTANTS
from sim.checking.refinement import refinement
from sim.run import Scheduler


def drive(factory: BrokerFactory, actions: Sequence[m.Action]) -> list[tuple[str | None, bool]]:
    """Run `actions` on a broker and on the model; per step, the refinement problem (None if
    the states agree) and whether the step's result (value or refusal) and events agreed."""
    clock = Scheduler()
    seen: list[m.Event] = []
    broker: Any = factory(
        clock, random.Random(0), listener=lambda name, f: seen.append(m.as_event(name, f))
    )
    state = m.State()
    out = []
    for action in actions:
        seen.clear()
        effect = m.apply(state, action)
        try:
            value, error = perform(broker, action, None, clock), None
        except BrokerError as err:
            value, error = None, err.code
        state = effect.state
        agree = disagreement(action, value, error, effect.result) is None
        out.append((refinement(broker, state), agree and seen == list(effect.events)))
    return out


def rr(pool: str) -> m.Addr:
    return m.Addr("pool", pool)


ROTATION: list[m.Action] = [
    m.CreatePool("p"),
    m.Register("a", pools=("p",)),
    m.Register("b", pools=("p",)),
    m.Register("c", pools=("p",)),
    m.Register("client"),
    m.Tell(None, rr("p")),  # to a; the cursor moves to 1
    m.Tell(None, rr("p")),  # to b; the cursor moves to 2
    m.Leave("p", 1),  # a leaves: the cursor must follow c down to 1
    m.Ask(4, rr("p"), 5.0, high=True),
    m.Cancel(1),
    m.Stop(2),
    m.Restart(2),
    m.Join("p", 1),
    m.Provide("s", 3),
    m.Reply(None, 1),
    m.Dequeue(3),
    m.Done(3),
    m.Unregister(3),
    m.Advance(10.0),
]


def test_the_reference_refines_the_model_at_every_step() -> None:
    steps = drive(Broker, ROTATION)
    assert steps == [(None, True)] * len(ROTATION)


def test_a_cursor_left_behind_is_caught_at_the_leave_not_later() -> None:
    """The mutant's leave emits the same `leave` event; only the state shows the cursor."""
    steps = drive(MUTANTS["round_robin_no_adjust_on_leave"], ROTATION)
    leave = ROTATION.index(m.Leave("p", 1))
    assert steps[:leave] == [(None, True)] * leave
    problem, events_agree = steps[leave]
    assert events_agree and problem is not None and problem.startswith("pools:")


def test_a_leaked_pending_entry_is_caught_at_the_stop() -> None:
    actions: list[m.Action] = [
        m.Register("client"),
        m.Register("server"),
        m.Ask(1, m.Addr("name", "server"), 5.0),
        m.Stop(1),
    ]
    steps = drive(MUTANTS["leak_pending_on_stop"], actions)
    assert steps[:3] == [(None, True)] * 3
    problem, _ = steps[3]
    assert problem is not None and problem.startswith("pending:")
