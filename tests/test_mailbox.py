"""Spec section 4: mailboxes, backpressure, priorities, expiry."""

from __future__ import annotations

import pytest
from conftest import World

from broker import InvalidConfig, MailboxClosed, MailboxFull


def payloads(world: World, actor: int) -> list[object]:
    out = []
    while (env := world.broker.dequeue(actor)) is not None:
        out.append(env.payload)
    return out


@pytest.mark.parametrize("capacity", [0, -1, 1.5, True])
def test_spec_4_1_capacity_must_be_positive_integer(world: World, capacity: object) -> None:
    with pytest.raises(InvalidConfig, match="capacity"):
        world.broker.register(capacity=capacity)  # type: ignore[arg-type]


def test_spec_4_4_reject_raises_and_is_not_accepted(world: World) -> None:
    b = world.broker
    a = b.register("a", capacity=2)
    b.send(None, "name:a", 1)
    b.send(None, "name:a", 2)
    with pytest.raises(MailboxFull) as err:
        b.send(None, "name:a", 3)
    assert err.value.is_transient
    assert (b.sent, b.rejected, b.accepted) == (3, 1, 2)
    assert b.depth(a) == 2
    assert world.log.of("reject") == [{"msg": 3, "error": "mailbox_full"}]
    assert payloads(world, a) == [1, 2]
    assert world.conserved()


def test_spec_4_4_drop_newest(world: World) -> None:
    b = world.broker
    a = b.register("a", capacity=1, backpressure="drop_newest")
    b.send(None, "name:a", 1)
    b.send(None, "name:a", 2)
    assert b.dead_letters == {"dropped_newest": 1}
    assert world.log.of("dead_letter") == [{"msg": 2, "reason": "dropped_newest"}]
    assert payloads(world, a) == [1]
    assert world.conserved()


def test_spec_4_4_drop_oldest_of_lowest_class(world: World) -> None:
    b = world.broker
    a = b.register("a", capacity=2, backpressure="drop_oldest")
    b.send(None, "name:a", "h", priority="high")
    b.send(None, "name:a", "n1")
    b.send(None, "name:a", "n2")  # evicts n1, not the older high message
    assert payloads(world, a) == ["h", "n2"]
    b.send(None, "name:a", "h1", priority="high")
    b.send(None, "name:a", "h2", priority="high")
    b.send(None, "name:a", "h3", priority="high")  # only high present: evicts h1
    assert payloads(world, a) == ["h2", "h3"]
    assert b.dead_letters == {"dropped_oldest": 2}


def test_spec_4_4_block_parks_until_room(world: World) -> None:
    b = world.broker
    a = b.register("a", capacity=1, backpressure="block")
    b.send(None, "name:a", 1)
    b.send(None, "name:a", 2)
    b.send(None, "name:a", 3)
    assert b.depth(a) == 1
    assert [e["msg"] for e in world.log.of("park")] == [2, 3]
    assert b.dequeue(a).payload == 1  # type: ignore[union-attr]
    assert b.depth(a) == 1  # 2 moved in at once
    assert payloads(world, a) == [2, 3]
    assert b.in_flight == 0 and world.conserved()


def test_spec_4_4_block_send_timeout_dead_letters(world: World) -> None:
    b = world.broker
    a = b.register("a", capacity=1, backpressure="block", send_timeout=5.0)
    b.send(None, "name:a", 1)
    b.send(None, "name:a", 2)  # mailbox default: 5.0
    b.send(None, "name:a", 3, send_timeout=10.0)  # its own
    world.run(until=5.0)
    assert b.dead_letters == {"send_timeout": 1}
    world.run(until=7.0)
    assert payloads(world, a) == [1, 3]
    world.run(until=20.0)
    assert b.dead_letters == {"send_timeout": 1}
    assert world.clock.pending == 0  # 3's timer was cancelled when it got room


def test_spec_4_4_parked_messages_die_with_the_actor(world: World) -> None:
    b = world.broker
    a = b.register("a", capacity=1, backpressure="block", send_timeout=5.0)
    b.send(None, "name:a", 1)
    b.send(None, "name:a", 2)
    b.stop(a)
    assert b.dead_letters == {"actor_stopped": 2}
    assert world.clock.pending == 0
    with pytest.raises(MailboxClosed):
        b.send(None, "name:a", 3)


def test_spec_4_5_high_first_fifo_within_class(world: World) -> None:
    b = world.broker
    a = b.register("a")
    for p, prio in [(1, "normal"), (2, "high"), (3, "normal"), (4, "high")]:
        b.send(None, "name:a", p, priority=prio)  # type: ignore[arg-type]
    assert payloads(world, a) == [2, 4, 1, 3]
    with pytest.raises(InvalidConfig, match="priority"):
        b.send(None, "name:a", 5, priority="urgent")  # type: ignore[arg-type]


def test_spec_4_6_depth_never_exceeds_capacity(world: World) -> None:
    b = world.broker
    for mode in ("drop_newest", "drop_oldest", "block"):
        a = b.register(capacity=3, backpressure=mode)  # type: ignore[arg-type]
        for i in range(10):
            b.send(None, f"id:{a}", i)
            assert b.depth(a) <= 3
    assert max(e["depth"] for e in world.log.of("enqueue")) == 3


def test_spec_4_7_expired_at_dequeue_with_exclusive_deadline(world: World) -> None:
    b = world.broker
    a = b.register("a")
    b.send(None, "name:a", "short", ttl=1.0)
    b.send(None, "name:a", "long", ttl=2.0)
    world.run(until=1.0)  # now == deadline of "short": expired
    assert payloads(world, a) == ["long"]
    assert world.log.of("dead_letter") == [{"msg": 1, "reason": "expired"}]
    b.send(None, "name:a", "fresh", ttl=1.0)
    world.run(until=1.999)
    assert payloads(world, a) == ["fresh"]


def test_spec_4_7_future_timestamp_is_not_expired(world: World) -> None:
    b = world.broker
    a = b.register("a")
    world.run(until=10.0)
    b.send(None, "name:a", "from the future", ttl=1.0, timestamp=50.0)
    b.send(None, "name:a", "from the past", ttl=1.0, timestamp=2.0)
    assert payloads(world, a) == ["from the future"]
    assert b.dead_letters == {"expired": 1}


@pytest.mark.parametrize("ttl", [0.0, -1.0, float("nan"), float("inf")])
def test_spec_8_3_bad_ttl(world: World, ttl: float) -> None:
    world.broker.register("a")
    with pytest.raises(InvalidConfig, match="ttl"):
        world.broker.send(None, "name:a", 1, ttl=ttl)
    assert world.broker.sent == 0


def test_spec_4_8_dequeue_by_stopped_actor(world: World) -> None:
    b = world.broker
    a = b.register("a")
    b.send(None, "name:a", 1)
    b.stop(a)
    assert b.dequeue(a) is None
