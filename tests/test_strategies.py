"""Spec section 3: pool strategies."""

from __future__ import annotations

import random
from collections import Counter

from conftest import World
from hypothesis import given
from hypothesis import strategies as st

from broker import Broker
from sim._scheduler import Scheduler


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
    m1, m2, m3 = pool_of(world, 3, "least_loaded")
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
