"""The checker's core against the one it replaced (docs/spec.md 11.2, 11.4).

The old checker (brokerlab before the fast core) explored these bounds; the numbers are its
own, measured on it. Without symmetry the new core must find exactly the same states and
transitions (the same graph). With symmetry a canonical form may keep more than one state per
orbit but never fewer than the old exact count; this one is exact, so the counts are equal.
Every verdict must be the same.
"""

from __future__ import annotations

import gc
import json
import random
from array import array

import networkx as nx
import pytest

from model._abstraction import Keys, encode, normalize
from model._actions import Advance, Tell
from model._menu import Env, setup, successors
from model._properties import _in_flight_change
from model._semantics import apply
from model._state import Addr, State
from model.checker import BoundsError, CheckBounds, _components, _offsets, check
from sim.cli import main

# The old checker's sometimes-witnesses, in order, and the verdict of each: r(eached) or n/a.
OLD_SOMETIMES = (
    "reply_delivered",
    "duplicate_reply_dead_lettered",
    "failover",
    "request_times_out",
    "late_reply_dead_lettered",
    "retry_succeeds",
    "requester_stop_cancels",
    "mailbox_fills",
)
OLD_HOLDS = (
    "routing", "correlation", "one_outcome", "conservation", "no_leak", "capacity",
    "eventually_resolved", "eventually_terminal",
)  # fmt: skip

BOUNDS = {
    "tiny": CheckBounds(clients=1, members=2, requests=1, retry_attempts=1, faults=("crash",)),
    "small": CheckBounds(clients=2, members=2, requests=1, faults=("crash", "duplicate")),
    "leave": CheckBounds(clients=2, members=3, capacity=None, retry_attempts=1, faults=("leave",)),
    "drop_newest": CheckBounds(clients=2, members=2, backpressure="drop_newest", faults=()),
    "least_loaded_block": CheckBounds(
        clients=1,
        members=2,
        requests=2,
        strategy="least_loaded",
        backpressure="block",
        faults=("cancel", "drop"),
    ),
    "topic": CheckBounds(clients=1, members=2, topic=True, faults=()),
    "default": CheckBounds(),
}
# name: (states, transitions) with symmetry, (states, transitions) without, depth, sometimes
OLD: dict[str, tuple[tuple[int, int], tuple[int, int], int, str]] = {
    "tiny": ((266, 995), (531, 1988), 11, "rnrrrnrr"),
    "small": ((33775, 186880), (135079, 747416), 19, "rrrrrrrr"),
    "leave": ((15613, 77744), (187234, 932199), 19, "rnnrrnnn"),
    "drop_newest": ((245, 449), (973, 1780), 10, "rnnrrnnr"),
    "least_loaded_block": ((1184, 4305), (2367, 8608), 12, "rnnrrnnr"),
    "topic": ((56, 80), (111, 158), 9, "rnnrrnnr"),
    "default": ((33775, 194800), (135079, 779096), 18, "rrrrrrrr"),
}
QUICK = ("tiny", "drop_newest", "least_loaded_block", "topic")
SLOW = ("small", "leave", "default")


def _same_as_the_old_checker(name: str) -> None:
    (sym_states, sym_edges), (states, edges), depth, sometimes = OLD[name]
    off = check(BOUNDS[name], symmetry=False)
    assert (off.states, off.transitions, off.depth) == (states, edges, depth)
    on = check(BOUNDS[name])
    assert on.states >= sym_states  # fewer would merge states of different orbits: unsound
    assert (on.states, on.transitions, on.depth) == (sym_states, sym_edges, depth)
    for report in (on, off):
        verdicts = {p.name: p.verdict for p in report.properties}
        assert all(verdicts[p] == "holds" for p in OLD_HOLDS), verdicts
        got = "".join(verdicts[p][0] for p in OLD_SOMETIMES)
        assert got == sometimes, (name, verdicts)


@pytest.mark.parametrize("name", QUICK)
def test_spec_11_the_state_graph_is_the_old_checkers(name: str) -> None:
    _same_as_the_old_checker(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_spec_11_the_state_graph_is_the_old_checkers_on_larger_bounds(name: str) -> None:
    _same_as_the_old_checker(name)


@pytest.mark.parametrize("seed", range(6))
def test_spec_11_2_the_key_is_the_normalized_states(seed: int) -> None:
    """The search keeps states as `apply` left them and keys them in one pass; the key must be
    that of the normalized state (shifted, history dropped), on every state of random walks
    that let time pass, with and without symmetry."""
    rng = random.Random(seed)
    b = CheckBounds(clients=2, members=2, requests=2, faults=("cancel", "crash", "duplicate"))
    plain, sym = Keys(b, False), Keys(b, True)
    identity = plain.identity
    s = State()
    for step in setup(b):
        for action in step:
            s = apply(s, action).state
    env, seen_time = Env(), 0
    for _ in range(60):
        moves = successors(s, env, b)
        if not moves:
            break
        _, s, env, _ = rng.choice(moves)
        seen_time += s.now > 0
        assert plain.key(s, env) == encode(normalize(s), env, identity)
        assert sym.key(s, env) == sym.key(normalize(s), env)
    assert seen_time  # the walks did leave `now = 0`, so the shift was exercised


@pytest.mark.parametrize("seed", range(4))
def test_spec_7_2_conservation_counts_in_flight_from_what_the_step_changed(seed: int) -> None:
    """The conservation property counts the change of `in_flight` only over the records a step
    replaced (model/_properties.py); on random walks through parking, retries, transit drops,
    a shared queue and crashes it must equal the change of the full count."""
    rng = random.Random(seed)
    bounds = (
        CheckBounds(clients=2, members=2, requests=2, backpressure="block", faults=("crash",)),
        CheckBounds(clients=2, members=2, strategy="shared", faults=("drop", "crash", "leave")),
    )
    changes = 0
    for b in bounds:
        s = State()
        for step in setup(b):
            for action in step:
                s = apply(s, action).state
        network = (  # delays in transit (timers, and held until `Arrive`), which menus omit
            Tell(3, Addr("pool", "p"), delay=1.0),
            Tell(3, Addr("pool", "p"), delay=True, duplicate=0.5),
            Advance(1.0),
        )
        for action in network:
            after = apply(s, action).state
            assert _in_flight_change(s, after) == after.in_flight - s.in_flight
            s = after
        env = Env()
        for _ in range(80):
            moves = successors(s, env, b)
            if not moves:
                break
            _, after, env, _ = rng.choice(moves)
            assert _in_flight_change(s, after) == after.in_flight - s.in_flight
            changes += after.in_flight != s.in_flight
            s = after
    assert changes  # the walks did move messages in and out of flight


def test_spec_11_4_one_key_per_orbit_of_the_enrolment_orders() -> None:
    """Members enrolled in either order are one state with symmetry, two without."""
    b = CheckBounds(clients=1, members=2, faults=())
    s = State()
    for step in setup(b):
        for action in step:
            s = apply(s, action).state
    ends = []
    for first in (0, 1):
        t, env = s, Env()
        for pick in (first, 0):
            step, t, env, _ = successors(t, env, b)[pick]
        ends.append((t, env))
    (a, ea), (c, ec) = ends
    assert Keys(b, True).key(a, ea) == Keys(b, True).key(c, ec)
    assert Keys(b, False).key(a, ea) != Keys(b, False).key(c, ec)


def test_a_state_limit_stops_the_search_and_judges_no_eventually() -> None:
    """`max_states`: the search stops there; always-properties found so far stand, a partial
    graph proves no eventually-property, and an unseen witness is n/a, not unreached."""
    full = check(BOUNDS["tiny"])
    cut = check(BOUNDS["tiny"], max_states=100)
    assert not full.limited and cut.limited and 100 <= cut.states < full.states
    kinds = {p.name: (p.kind, p.verdict) for p in cut.properties}
    assert all(v == "n/a" for k, v in kinds.values() if k == "eventually")
    assert all(v != "unreached" for _, v in kinds.values())
    assert cut.to_dict()["limited"] is True
    with pytest.raises(BoundsError, match="max_states"):
        check(BOUNDS["tiny"], max_states=0)


def test_cli_check_max_states(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--max-states", "300", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["limited"] is True and 300 <= out["states"] < 400
    assert main(["check", "--max-states", "300"]) == 0
    assert "partial: state limit" in capsys.readouterr().out
    assert main(["check", "--max-states", "0"]) == 2
    assert "max_states" in capsys.readouterr().err


@pytest.mark.parametrize("seed", range(30))
def test_the_components_of_the_edge_arrays_are_networkxs(seed: int) -> None:
    """The eventually-check finds strongly connected components from the search's edge arrays
    (model/checker.py `_components`); on random graphs, restricted to random node sets, they
    must be networkx's."""
    rng = random.Random(seed)
    n = rng.randint(1, 40)
    edges = sorted((rng.randrange(n), rng.randrange(n)) for _ in range(rng.randint(0, 3 * n)))
    src, dst = array("i", [a for a, _ in edges]), array("i", [b for _, b in edges])
    nodes = {v for v in range(n) if rng.random() < 0.8}
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from(edges)
    want = sorted(sorted(c) for c in nx.strongly_connected_components(g.subgraph(nodes)))
    got = sorted(sorted(c) for c in _components(_offsets(src, n), dst, nodes))
    assert got == want


def test_the_search_collects_garbage_less_often_and_restores_the_collector() -> None:
    """A search raises the collector's first threshold while it runs (its keys are hundreds of
    thousands of tracked tuples that a collection would walk) and restores it after, also
    when the search stops at a complaint."""
    before = gc.get_threshold()
    during: list[tuple[int, int, int]] = []

    def look(*_: object) -> str | None:
        during.append(gc.get_threshold())
        return "stop: seen" if len(during) == 3 else None

    report = check(CheckBounds(clients=1, members=1, faults=()), on_transition=look)
    assert report.stopped == "stop: seen"
    assert during[0][0] >= 100_000 and during[0][1:] == before[1:]
    assert gc.get_threshold() == before
