"""The checker's wider bounds (docs/spec.md 11.1): every strategy, tells with TTLs and
timestamps, a named member, priorities, presets, and `--broker` made to take the model's
choices, so that every mutant but route_collision is caught by `brokerlab check --broker`."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

import model as m
from broker import Broker
from model._menu import NAME, PRESETS, Env, setup, successors
from model._properties import check_transition
from model._semantics import Effect, apply
from model._state import BACKPRESSURES, STRATEGIES
from model.checker import BoundsError, CheckBounds, check
from sim.checking import exhaustive
from sim.checking.exhaustive import check_broker, steering_problem
from sim.checking.mutants import CHECK_BOUNDS, CHECK_PRESET, MUTANTS
from sim.cli import main


def _enrolled(b: CheckBounds) -> tuple[m.State, Env]:
    """The state after set-up and every member's enrolment, in id order."""
    s = m.State()
    for step in setup(b):
        for action in step:
            s = apply(s, action).state
    env = Env()
    while not env.enrolled:
        _, s, env, _ = successors(s, env, b)[0]
    return s, env


def _steps(s: m.State, env: Env, b: CheckBounds) -> list[tuple[m.Action, ...]]:
    return [step for step, *_ in successors(s, env, b)]


# -- bounds and menu ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bounds", "field"),
    [
        (CheckBounds(strategy="fastest"), "strategy"),  # type: ignore[arg-type]
        (CheckBounds(backpressure="spill"), "backpressure"),  # type: ignore[arg-type]
        (CheckBounds(tells=5), "tells"),
        (CheckBounds(tells=1, ttl=0), "ttl"),
        (CheckBounds(ttl=2), "ttl"),  # a TTL without tells
    ],
)
def test_spec_11_1_bad_bounds_name_their_field(bounds: CheckBounds, field: str) -> None:
    with pytest.raises(BoundsError, match=f"^{field}"):
        bounds.validate()


def test_spec_11_1_every_strategy_is_explored() -> None:
    for strategy in STRATEGIES:
        assert CheckBounds(strategy=strategy).validate().strategy == strategy
    d = CheckBounds().to_dict()
    assert (d["tells_per_client"], d["ttl"], d["named"], d["priority"]) == (0, None, False, False)


@pytest.mark.parametrize("strategy", ["random", "power_of_two", "consistent_hash"])
def test_spec_11_1_a_chosen_route_branches_on_every_member_it_may_choose(strategy: str) -> None:
    """Spec 3.3, 3.5, 3.6: one `Ask` to the pool becomes one step per member the strategy may
    choose; power of two never chooses the member every pair rejects (the most loaded, last)."""
    b = CheckBounds(clients=1, members=3, capacity=None, faults=(), strategy=strategy)  # type: ignore[arg-type]
    s, env = _enrolled(b)
    s = apply(s, m.Tell(None, m.Addr("id", "1"))).state  # member 1 is the most loaded
    asks = [
        st[0] for st in _steps(s, env, b) if isinstance(st[0], m.Ask) and st[0].to.kind == "pool"
    ]
    chosen = sorted(a.choices for a in asks)  # type: ignore[union-attr]
    assert chosen == ([(2,), (3,)] if strategy == "power_of_two" else [(1,), (2,), (3,)])


def test_spec_11_1_a_tick_that_retries_twice_branches_on_both_choices() -> None:
    """One `Advance` routing two retries to a random pool of two: four steps, each choosing."""
    b = CheckBounds(clients=2, members=2, capacity=1, faults=(), strategy="random")
    s, env = _enrolled(b)
    for target in ("1", "2"):
        s = apply(s, m.Tell(None, m.Addr("id", target))).state  # both mailboxes full
    for client, member in ((3, 1), (4, 2)):
        ask = m.Ask(client, m.Addr("pool", "p"), 2.0, retry=b.retry, choices=(member,))
        s = apply(s, ask).state  # refused by a full mailbox: retried a tick later
    ticks = [st[0] for st in _steps(s, env, b) if isinstance(st[0], m.Advance)]
    assert sorted(t.choices for t in ticks) == [(1, 1), (1, 2), (2, 1), (2, 2)]  # type: ignore[union-attr]


def test_spec_11_1_tells_carry_ttls_stamped_around_now_and_count_per_client() -> None:
    """Spec 4.7: a tell with TTL 1 stamped a tick ago, now, or a tick ahead, to each target,
    normal or high, until the client has made `tells` of them (its memory, `Env.told`)."""
    b = CheckBounds(clients=1, members=1, requests=0, tells=1, ttl=1, named=True, priority=True)
    s, env = _enrolled(b)
    tells = [st[0] for st in _steps(s, env, b) if isinstance(st[0], m.Tell)]
    assert {t.timestamp for t in tells} == {-1.0, None, 1.0}
    assert {str(t.to) for t in tells} == {"pool:p", "service:s", f"name:{NAME}"}
    assert {t.high for t in tells} == {False, True} and {t.ttl for t in tells} == {1.0}
    assert len(tells) == 3 * 3 * 2
    after = next(e for st, _, e, _ in successors(s, env, b) if isinstance(st[0], m.Tell))
    assert after.told == ((2, 1),) and after.client_sig(2) == (1,)
    assert after.encode({1: 1, 2: 2}) != env.encode({1: 1, 2: 2})
    assert not [st for st in _steps(s, after, b) if isinstance(st[0], m.Tell)]


def test_spec_11_1_a_shared_pool_offers_work_to_idle_members_and_done_where_load_counts() -> None:
    """Spec 3.8: an empty mailbox takes from the shared queue; spec 3.4: `Done` is offered
    only where load matters (least_loaded, power_of_two, shared)."""
    b = CheckBounds(clients=1, members=2, faults=(), strategy="shared")
    s, env = _enrolled(b)
    assert not [st for st in _steps(s, env, b) if isinstance(st[0], m.Dequeue)]
    s = apply(s, m.Ask(3, m.Addr("pool", "p"), 2.0)).state
    assert {st[0] for st in _steps(s, env, b) if isinstance(st[0], m.Dequeue)} == {
        m.Dequeue(1),
        m.Dequeue(2),
    }
    s = apply(s, m.Dequeue(1)).state
    for strategy, offered in (("shared", True), ("least_loaded", True), ("round_robin", False)):
        steps = _steps(s, env, replace(b, strategy=strategy))  # type: ignore[arg-type]
        assert ((m.Done(1),) in steps) is offered, strategy


# -- properties -----------------------------------------------------------------------------


def test_spec_11_3_expiry_and_dequeue_order_catch_a_wrong_dequeue() -> None:
    """The new always-properties judge a step, not the model: a made-up effect that hands over
    an expired message, or the second of two queued ones, is a violation."""
    s = apply(m.State(), m.Register("w")).state
    s = apply(s, m.Tell(None, m.Addr("name", "w"), ttl=1.0, timestamp=-1.0)).state  # expired
    s = apply(s, m.Tell(None, m.Addr("name", "w"))).state
    good = apply(s, m.Dequeue(1))
    assert [e.name for e in good.events] == ["dead_letter", "dequeue"]
    bad, seen = check_transition(s, (m.Dequeue(1),), good)
    assert bad == [] and "ttl_expires" in seen
    first, second = s.actors[0].queue
    expired = Effect(good.state, first, (m.Event("dequeue", first.id, "w"),))
    bad, _ = check_transition(s, (m.Dequeue(1),), expired)
    assert any(b.startswith("expiry:") for b in bad), bad
    skipped = Effect(s, second, (m.Event("dequeue", second.id, "w"),))  # the first stays
    bad, _ = check_transition(s, (m.Dequeue(1),), skipped)
    assert any(b.startswith("dequeue_order:") for b in bad), bad


def test_spec_11_3_new_witnesses_are_reached_where_the_bounds_allow_them() -> None:
    """A full drop_oldest mailbox drops, a block one parks, TTL'd tells expire and are taken in
    time, and a high message overtakes a normal one: none of the new always-properties is
    vacuous."""
    tells = CheckBounds(clients=1, members=1, tells=1, ttl=1, priority=True, capacity=2, faults=())
    for b, witnesses in (
        (replace(tells, capacity=1, backpressure="drop_oldest"), ["message_dropped"]),
        (replace(tells, capacity=1, backpressure="block"), ["message_parked"]),
        (tells, ["ttl_expires", "ttl_delivered", "high_overtakes"]),
    ):
        verdicts = {p.name: p.verdict for p in check(b).properties}
        assert all(verdicts[w] == "reached" for w in witnesses), (b, verdicts)
        assert all(v in ("holds", "reached", "n/a") for v in verdicts.values()), verdicts


def test_spec_11_1_a_few_small_presets_hold() -> None:
    """One bounds of `exhaustive-small` per strategy, each with another backpressure mode."""
    small = PRESETS["exhaustive-small"]
    assert {(b.strategy, b.backpressure) for b in small} == {
        (s, p) for s in STRATEGIES for p in BACKPRESSURES
    }
    assert all(b.tells and b.ttl and b.named and b.priority for b in small)
    for i, strategy in enumerate(STRATEGIES):
        b = next(
            x for x in small if (x.strategy, x.backpressure) == (strategy, BACKPRESSURES[i % 4])
        )
        report = check(b)
        assert report.ok, (b, [p.to_dict() for p in report.violations()])


# -- the broker made to take the model's choices ------------------------------------------------


@pytest.mark.parametrize("strategy", ["random", "power_of_two", "consistent_hash"])
def test_spec_11_4_the_reference_takes_every_choice_the_model_makes(strategy: str) -> None:
    b = CheckBounds(clients=1, members=3, capacity=None, retry_attempts=1, faults=("crash",))
    report = check_broker(replace(b, strategy=strategy), Broker)  # type: ignore[arg-type]
    assert report.ok, report.stopped
    assert report.states > 300


def test_spec_11_4_without_steering_the_reference_would_disagree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The test above could fail: the broker's own draws go elsewhere."""
    monkeypatch.setattr(exhaustive, "_draws", lambda s, a: [])
    b = CheckBounds(clients=1, members=3, capacity=None, retry_attempts=1, faults=())
    assert not check_broker(replace(b, strategy="random"), Broker).ok


def _two_retries_routed(strategy: str, choices: tuple[int, ...]) -> list[str | None]:
    """The reference's routes in one tick that retries two requests (every mailbox was full,
    then member 3 finished its work), driven as `check --broker` drives it."""
    b = CheckBounds(clients=2, members=3, faults=(), strategy=strategy)  # type: ignore[arg-type]
    enrol = [(m.Join("p", x), m.Provide("s", x)) for x in (1, 2, 3)]
    full = [(m.Tell(None, m.Addr("id", x)),) for x in "123"]
    asks = [(m.Ask(c, m.Addr("pool", "p"), 2.0, retry=b.retry, choices=(1,)),) for c in (4, 5)]
    driver = exhaustive._Driver(Broker, steer=True, draws=True)
    for step in (*setup(b), *enrol, *full, *asks, (m.Dequeue(3),), (m.Done(3),)):
        driver.step(step)
    driver.seen = []
    driver.step((m.Advance(1.0, choices=choices),))
    return [e.actor for e in driver.seen if e.name == "route"]


@pytest.mark.parametrize("strategy", ["random", "power_of_two"])
def test_spec_11_4_a_tick_of_two_retries_replays_both_choices(
    strategy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spec 3.3, 3.5: each retry goes to the member the model chose, in routing order (for
    power of two, 3 wins against the busier 2, then 2 against 3, which beat it to the slot)."""
    assert _two_retries_routed(strategy, (3, 2)) == ["id:3", "id:2"]
    monkeypatch.setattr(exhaustive, "_draws", lambda s, a: [])
    assert _two_retries_routed(strategy, (3, 2)) != ["id:3", "id:2"]  # its own draws differ


def test_spec_11_4_a_broker_that_cannot_take_the_choices_is_refused() -> None:
    def port(*args: object, **kw: object) -> Broker[object]:  # not the reference's class
        raise AssertionError("never started")

    assert steering_problem(CheckBounds(strategy="random"), port) is not None
    assert steering_problem(CheckBounds(strategy="random"), Broker) is None
    assert steering_problem(CheckBounds(strategy="consistent_hash"), Broker) is not None
    ok = CheckBounds(strategy="consistent_hash", retry_attempts=1)
    assert steering_problem(ok, Broker) is None
    with pytest.raises(BoundsError, match="consistent_hash"):
        check_broker(CheckBounds(strategy="consistent_hash"), Broker)


# -- mutants ------------------------------------------------------------------------------------


def test_every_mutant_has_a_checker_record() -> None:
    assert set(CHECK_PRESET) == set(MUTANTS)
    assert set(CHECK_BOUNDS) == {n for n, p in CHECK_PRESET.items() if p is not None}
    assert {p for p in CHECK_PRESET.values()} <= {*PRESETS, None}


@pytest.mark.parametrize("name", sorted(CHECK_BOUNDS))
def test_spec_11_4_check_broker_catches_the_mutant_and_passes_the_reference(name: str) -> None:
    bounds = CHECK_BOUNDS[name]
    assert not check_broker(bounds, MUTANTS[name]).ok, f"{name} survived {bounds}"
    assert check_broker(bounds, Broker).ok


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(n for n, p in CHECK_PRESET.items() if p is not None))
def test_spec_11_4_the_recorded_preset_catches_the_mutant(name: str) -> None:
    """`brokerlab check --broker NAME --preset P`: exit 1 (it stops at the first bounds that
    catches the mutant; those of `wide` are first)."""
    assert main(["check", "--broker", name, "--preset", str(CHECK_PRESET[name])]) == 1


# -- presets and the command line ----------------------------------------------------------------


def test_cli_check_presets_and_new_flags(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = CheckBounds(clients=1, members=1, requests=1, retry_attempts=1, faults=())
    monkeypatch.setitem(PRESETS, "tiny-test", (tiny, replace(tiny, tells=1, ttl=1)))
    assert main(["check", "--preset", "tiny-test", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["preset"] == "tiny-test" and out["ok"] is True
    assert [r["bounds"]["tells_per_client"] for r in out["reports"]] == [0, 1]
    assert main(["check", "--preset", "tiny-test"]) == 0
    text = capsys.readouterr().out
    assert "[1]" in text and "[2]" in text and "ttl_expires" in text
    assert main(["check", "--preset", "tiny-test", "--members", "3"]) == 2
    assert "--members" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["check", "--preset", "nonesuch"])
    args = ["check", "--clients", "1", "--members", "1", "--faults", "none", "--retries", "1"]
    assert main([*args, "--tells", "1", "--ttl", "1", "--named", "--priority", "--json"]) == 0
    bounds = json.loads(capsys.readouterr().out)["bounds"]
    assert (bounds["ttl"], bounds["named"], bounds["priority"]) == (1, True, True)
    assert main([*args, "--strategy", "shared", "--broker", "reference"]) == 0
    assert main([*args, "--ttl", "1"]) == 2  # no tells
    assert (
        main([*args, "--strategy", "consistent_hash", "--retries", "2", "--broker", "reference"])
        == 2
    )
    capsys.readouterr()
    bad = ["check", "--preset", "tiny-test", "--broker", "future_timestamp_expired", "--json"]
    assert main(bad) == 1
    out = json.loads(capsys.readouterr().out)
    assert [r["bounds"]["tells_per_client"] for r in out["reports"]] == [0, 1]  # the 2nd caught


def test_spec_11_1_exhaustive_small_holds() -> None:
    """The CI preset: every strategy with every backpressure mode (its time is `make bench`'s
    and the closing notes', not asserted here)."""
    for b in PRESETS["exhaustive-small"]:
        report = check(b)
        assert report.ok, (b, [p.to_dict() for p in report.violations()])


@pytest.mark.slow
def test_spec_11_1_wide_holds_and_reaches_every_witness() -> None:
    reached: set[str] = set()
    for b in PRESETS["wide"]:
        report = check(b)
        assert report.ok, (b, [p.to_dict() for p in report.violations()])
        reached |= {p.name for p in report.properties if p.verdict == "reached"}
    from model._properties import SOMETIMES

    assert reached == set(SOMETIMES)
