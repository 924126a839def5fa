"""Spec section 3: pool strategies."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from conftest import World
from hypothesis import given
from hypothesis import strategies as st

from broker import Broker, PoolEmpty
from sim import Scheduler


def pool_of(world: World, n: int, strategy: str) -> list[int]:
    world.broker.create_pool("p", strategy)
    return [world.broker.register(f"m{i}", pools=["p"]) for i in range(1, n + 1)]


def test_spec_3_2_1_exact_rotation(world: World) -> None:
    members = pool_of(world, 4, "round_robin")
    picks = [world.broker.resolve("pool:p") for _ in range(12)]
    assert picks == members * 3


def test_spec_3_2_1_rotation_skips_stopped_members(world: World) -> None:
    m1, m2, m3 = pool_of(world, 3, "round_robin")
    b = world.broker
    assert b.resolve("pool:p") == m1
    b.stop(m2)
    assert [b.resolve("pool:p") for _ in range(4)] == [m3, m1, m3, m1]


def test_spec_3_2_3_leave_before_cursor_does_not_skip(world: World) -> None:
    m1, m2, m3, m4 = pool_of(world, 4, "round_robin")
    b = world.broker
    assert [b.resolve("pool:p") for _ in range(2)] == [m1, m2]
    b.leave_pool("p", m1)  # before the cursor: m3 must still be next
    assert [b.resolve("pool:p") for _ in range(3)] == [m3, m4, m2]


def test_spec_3_2_3_leave_at_cursor_serves_the_next(world: World) -> None:
    m1, m2, m3, m4 = pool_of(world, 4, "round_robin")
    b = world.broker
    assert b.resolve("pool:p") == m1
    b.leave_pool("p", m2)  # the member at the cursor leaves
    assert [b.resolve("pool:p") for _ in range(3)] == [m3, m4, m1]
    b.leave_pool("p", m1)
    b.leave_pool("p", m3)
    b.leave_pool("p", m4)
    assert b.registry.pools["p"].cursor == 0


@given(st.lists(st.tuples(st.sampled_from(["pick", "join", "leave"]), st.integers(0, 50))))
def test_spec_3_2_no_skip_no_double_serve_across_joins_and_leaves(
    ops: list[tuple[str, int]],
) -> None:
    """Whatever joins and leaves happen, the members still present are served in rotation:
    between two services of one member, every other member present throughout is served once."""
    b: Broker[str] = Broker(Scheduler(), random.Random(0))
    b.create_pool("p")
    members = [b.register(pools=["p"]) for _ in range(3)]
    served: list[int] = []
    for op, arg in ops:
        if op == "join":
            members.append(b.register(pools=["p"]))
        elif op == "leave" and len(members) > 1:
            gone = members.pop(arg % len(members))
            b.leave_pool("p", gone)
            served = [m for m in served if m != gone]
        else:
            served.append(b.resolve("pool:p"))
    # In the served sequence of current members, any window of len(set) consecutive
    # picks after the last membership change has no repeats.
    window = len(members)
    for i in range(len(served) - window + 1):
        chunk = served[i : i + window]
        if all(m in members for m in chunk):
            assert len(set(chunk)) <= window
    # And a stable tail rotates exactly.
    tail = [b.resolve("pool:p") for _ in range(2 * window)]
    assert sorted(tail[:window]) == sorted(members)
    assert tail[:window] == tail[window:]


def test_spec_3_3_random_is_seeded_and_covers_live_members() -> None:
    def picks(seed: int) -> list[int]:
        w = World(seed)
        members = pool_of(w, 4, "random")
        w.broker.stop(members[0])
        return [w.broker.resolve("pool:p") for _ in range(400)]

    first = picks(5)
    assert first == picks(5)
    assert first != picks(6)
    counts = Counter(first)
    assert set(counts) == {2, 3, 4}
    assert all(100 <= c <= 170 for c in counts.values())


def test_spec_3_4_least_loaded_counts_queue_and_service_ties_to_order(world: World) -> None:
    m1, _, m3 = pool_of(world, 3, "least_loaded")
    b = world.broker
    assert b.resolve("pool:p") == m1  # all zero: first in membership order
    b.send(None, "id:1", "x")
    b.send(None, "id:2", "x")
    assert b.resolve("pool:p") == m3
    b.dequeue(m1)  # m1 now has 0 queued but 1 in service
    assert b.load(m1) == 1
    assert b.resolve("pool:p") == m3
    b.done(m1)
    assert b.resolve("pool:p") == m1
    b.stop(m1)
    assert b.resolve("pool:p") == m3


def test_spec_3_5_power_of_two_picks_less_loaded_of_two_distinct() -> None:
    w = World(9)
    members = pool_of(w, 4, "power_of_two")
    b = w.broker
    for i, m in enumerate(members):  # loads 0, 1, 2, 3
        for _ in range(i):
            b.send(None, f"id:{m}", "x")
    picks = Counter(b.resolve("pool:p") for _ in range(600))
    # The most loaded member loses every pair it is in; the least loaded wins all of its.
    assert members[3] not in picks
    assert picks[members[0]] == max(picks.values())
    # Exactly the distribution of "min of a uniform distinct pair": 3/6, 2/6, 1/6.
    shares = [picks[m] / 600 for m in members[:3]]
    assert abs(shares[0] - 0.5) < 0.07 and abs(shares[1] - 1 / 3) < 0.07
    assert abs(shares[2] - 1 / 6) < 0.07


def test_spec_3_5_power_of_two_ties_and_single_member() -> None:
    w = World(2)
    m1, m2 = pool_of(w, 2, "power_of_two")
    assert {w.broker.resolve("pool:p") for _ in range(50)} == {m1}  # tie: membership order
    w.broker.stop(m1)
    state = w.broker.rng.getstate()
    assert w.broker.resolve("pool:p") == m2
    assert w.broker.rng.getstate() == state  # one live member: no draw


def test_spec_3_6_consistent_hash_is_stable_and_moves_only_the_leavers_keys() -> None:
    w = World()
    members = pool_of(w, 5, "consistent_hash")
    b = w.broker
    keys = [f"user-{i}" for i in range(500)]
    before = {k: b.resolve("pool:p", key=k) for k in keys}
    assert before == {k: b.resolve("pool:p", key=k) for k in keys}
    assert len(set(before.values())) == 5
    b.leave_pool("p", members[2])
    after = {k: b.resolve("pool:p", key=k) for k in keys}
    moved = {k for k in keys if before[k] != after[k]}
    assert moved == {k for k in keys if before[k] == members[2]}
    assert moved  # the leaver owned some keys


def test_spec_3_6_consistent_hash_pinned_values_and_keyless_messages() -> None:
    from broker import RouteError
    from broker._strategies import stable_hash

    assert stable_hash("user-1") == stable_hash("user-1")
    # Pinned against `b2sum -l 64`, so a port can check its hash the same way (spec 3.6).
    assert stable_hash("") == 0xE4A6A0577479B2B4
    assert stable_hash("user-1") == 0x9AAC5A8621EAE188
    w = World()
    pool_of(w, 3, "consistent_hash")
    with pytest.raises(RouteError, match="key"):
        w.broker.send(None, "pool:p", "x")


def test_spec_3_7_broadcast_sends_each_live_member_its_own_copy() -> None:
    w = World()
    m1, m2, m3 = pool_of(w, 3, "broadcast")
    b = w.broker
    b.stop(m2)
    msg = b.send(None, "pool:p", "hello")
    got = {m: b.dequeue(m) for m in (m1, m3)}
    assert {m: e.payload for m, e in got.items() if e} == {m1: "hello", m3: "hello"}
    assert got[m1].msg == msg and got[m3].copy_of == msg  # type: ignore[union-attr]
    copies = [e for e in w.log.of("send") if "copy_of" in e]
    assert copies == [{"msg": msg + 1, "from": None, "to": f"id:{m3}", "kind": "tell",
                       "copy_of": msg}]  # fmt: skip
    assert b.accepted == 2 and b.delivered == 2


def test_spec_3_7_broadcast_request_first_reply_wins() -> None:
    w = World()
    m1, m2 = pool_of(w, 2, "broadcast")
    b = w.broker
    client = b.register("client")
    outcomes: list[object] = []
    corr = b.request(client, "pool:p", "q", timeout=5.0, on_outcome=outcomes.append)
    for m in (m2, m1):
        env = b.dequeue(m)
        assert env is not None and env.corr == corr
        b.reply(m, corr, f"from {m}")
    assert [o.reply for o in outcomes] == [f"from {m2}"]  # type: ignore[attr-defined]
    assert b.dead_letters == {"duplicate_reply": 1}


def test_spec_3_8_shared_queue_members_pull_in_order() -> None:
    w = World()
    m1, m2 = pool_of(w, 2, "shared")
    b = w.broker
    for i in range(4):
        b.send(None, "pool:p", i)
    assert [e["actor"] for e in w.log.of("enqueue")] == ["pool:p"] * 4
    assert b.dequeue(m2).payload == 0  # type: ignore[union-attr]
    assert b.dequeue(m1).payload == 1  # type: ignore[union-attr]
    b.send(None, f"id:{m1}", "own")
    assert b.dequeue(m1).payload == "own"  # own mailbox first  # type: ignore[union-attr]
    assert b.dequeue(m1).payload == 2  # type: ignore[union-attr]
    b.stop(m1)
    assert b.dequeue(m2).payload == 3  # type: ignore[union-attr]
    b.send(None, "pool:p", "last")
    b.stop(m2)  # the last live member: the queue dies with it
    assert b.dead_letters == {"actor_stopped": 1}
    with pytest.raises(PoolEmpty):
        b.send(None, "pool:p", "nobody")


def test_spec_3_8_shared_queue_wakes_idle_members() -> None:
    woken: list[int] = []
    w = World()
    b = w.broker
    b._wake = woken.append
    m1, m2, m3 = pool_of(w, 3, "shared")
    b.dequeue(m1)  # m1 asks while the queue is empty: idle again
    b.send(None, f"id:{m2}", "busy")  # m2 has its own mail: woken for that
    assert woken == [m2]
    woken.clear()
    b.send(None, "pool:p", "x")
    assert woken == [m1, m3]  # nobody dequeued, so every idle member is told, in order
    b.dequeue(m1)
    woken.clear()
    b.send(None, "pool:p", "y")
    assert woken == [m3]  # m1 is busy with x
    b.send(None, "pool:p", "expired", ttl=1.0)
    w.run(until=1.0)
    assert b.dequeue(m3).payload == "y"  # type: ignore[union-attr]
    assert b.dequeue(m3) is None and b.dead_letters == {"expired": 1}


def test_spec_3_8_the_queue_dies_when_the_last_live_member_leaves() -> None:
    w = World()
    m1, m2 = pool_of(w, 2, "shared")
    b = w.broker
    b.send(None, "pool:p", "x")
    b.leave_pool("p", m1)
    assert b.dead_letters == {}  # m2 can still pull it
    b.stop(m2)  # stopping dead-letters it: nobody live is left
    assert b.dead_letters == {"actor_stopped": 1}
    b.restart(m2)
    b.send(None, "pool:p", "y")
    b.leave_pool("p", m2)  # the last live member leaves
    assert b.dead_letters == {"actor_stopped": 2} and b.in_flight == 0


def test_spec_5_9_an_undeliverable_broadcast_copy_does_not_fail_the_request() -> None:
    w = World()
    b = w.broker
    b.create_pool("p", "broadcast")
    m1 = b.register("m1", pools=["p"])
    m2 = b.register("m2", capacity=1, pools=["p"])
    b.send(None, f"id:{m2}", "filler")  # m2 is full: its copy will be refused
    client = b.register("client")
    outcomes: list[object] = []
    corr = b.request(client, "pool:p", "q", timeout=5.0, on_outcome=outcomes.append)
    assert b.dead_letters == {"mailbox_full": 1}  # the copy to m2
    assert outcomes == [] and b.pending_requests() == [corr]
    env = b.dequeue(m1)
    assert env is not None
    b.reply(m1, corr, "ok")
    assert [o.kind for o in outcomes] == ["replied"]  # type: ignore[attr-defined]
