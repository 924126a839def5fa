"""Spec section 2.4-2.9: registry operations, resolution, failover, atomic errors."""

from __future__ import annotations

import pytest
from conftest import World

from broker import (
    ActorNotFound,
    Address,
    DuplicateRegistration,
    InvalidAddress,
    InvalidConfig,
    MailboxClosed,
    PoolEmpty,
    PoolNotFound,
    ServiceUnavailable,
)


def snapshot(world: World) -> tuple[object, ...]:
    r = world.broker.registry
    return (
        sorted(r.actors),
        sorted(r.names),
        {s: [a.id for a in v] for s, v in sorted(r.services.items())},
        {p: [a.id for a in v.members] for p, v in sorted(r.pools.items())},
        r.next_id,
    )


def test_spec_2_5_id_and_name_resolve_to_the_actor(world: World) -> None:
    b = world.broker
    a = b.register("alpha")
    other = b.register()
    assert b.resolve(Address.id(a)) == a
    assert b.resolve("name:alpha") == a
    assert b.resolve(f"id:{other}") == other
    assert b.label(other) == f"id:{other}"


def test_spec_2_4_id_and_name_lookup_is_by_exact_key(world: World) -> None:
    # A lossy routing key (the seed's u64 hash) could let one name shadow another; exact keys
    # keep thousands of similar names apart.
    b = world.broker
    ids = {f"n{i}": b.register(f"n{i}") for i in range(2000)}
    assert all(b.resolve(f"name:{n}") == i for n, i in ids.items())
    assert len(b.registry.names) == 2000


def test_spec_2_5_unknown_and_stopped(world: World) -> None:
    b = world.broker
    with pytest.raises(ActorNotFound):
        b.resolve("name:ghost")
    with pytest.raises(ActorNotFound):
        b.resolve("id:99")
    a = b.register("a")
    b.stop(a)
    with pytest.raises(MailboxClosed):
        b.resolve("name:a")
    b.restart(a)
    assert b.resolve("name:a") == a


def test_spec_2_5_service_failover_to_next_live_provider(world: World) -> None:
    b = world.broker
    first = b.register("first", services=["storage"])
    second = b.register("second", services=["storage"])
    assert b.resolve("service:storage") == first
    b.stop(first)
    assert b.resolve("service:storage") == second
    b.stop(second)
    with pytest.raises(ServiceUnavailable):
        b.resolve("service:storage")
    b.restart(first)
    assert b.resolve("service:storage") == first
    b.unregister(first)
    b.restart(second)
    assert b.resolve("service:storage") == second
    with pytest.raises(ServiceUnavailable):
        b.resolve("service:never")
    third = b.register()
    b.provide("cache", third)
    assert b.resolve("service:cache") == third
    with pytest.raises(DuplicateRegistration):
        b.provide("cache", third)


def test_spec_2_5_pool_errors(world: World) -> None:
    b = world.broker
    with pytest.raises(PoolNotFound):
        b.resolve("pool:none")
    b.create_pool("p")
    with pytest.raises(PoolEmpty):
        b.resolve("pool:p")
    m = b.register(pools=["p"])
    assert b.resolve("pool:p") == m
    b.stop(m)
    with pytest.raises(PoolEmpty):
        b.resolve("pool:p")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"name": "taken"}, DuplicateRegistration),
        ({"name": "fresh", "pools": ["missing"]}, PoolNotFound),
        ({"name": "fresh", "pools": ["p", "p"]}, DuplicateRegistration),
        ({"name": "fresh", "services": ["s", "s"]}, DuplicateRegistration),
        ({"name": "fresh", "services": ["bad name"]}, InvalidAddress),
        ({"name": ""}, InvalidAddress),
        ({"name": "fresh", "capacity": 0}, InvalidConfig),
        ({"name": "fresh", "backpressure": "spill"}, InvalidConfig),
        ({"name": "fresh", "send_timeout": -1.0}, InvalidConfig),
    ],
)
def test_spec_2_6_failed_registration_changes_nothing(
    world: World, kwargs: dict[str, object], error: type[Exception]
) -> None:
    b = world.broker
    b.create_pool("p")
    b.register("taken", services=["s"], pools=["p"])
    before = snapshot(world)
    events = len(world.log.events)
    with pytest.raises(error):
        b.register(**kwargs)  # type: ignore[arg-type]
    assert snapshot(world) == before
    assert len(world.log.events) == events


def test_spec_2_6_register_reports_its_addresses(world: World) -> None:
    b = world.broker
    b.create_pool("p")
    b.register("w", services=["s"], pools=["p"])
    assert world.log.of("register")[-1] == {
        "actor": "w",
        "name": "w",
        "addresses": ["id:1", "name:w", "service:s", "pool:p"],
        "capacity": None,
        "backpressure": "reject",
        "send_timeout": None,
    }


def test_spec_2_7_unregister(world: World) -> None:
    b = world.broker
    with pytest.raises(ActorNotFound):
        b.unregister(42)
    b.create_pool("p")
    a = b.register("a", services=["s"], pools=["p"])
    b.send(None, "name:a", "x")
    b.unregister(a)
    assert world.log.of("unregister") == [{"actor": "a", "reason": "unregistered"}]
    assert b.dead_letters == {"actor_stopped": 1}
    assert snapshot(world) == ([], [], {"s": []}, {"p": []}, 2)
    with pytest.raises(ActorNotFound):
        b.unregister(a)
    # The name is free again.
    assert b.register("a") == 2


def test_spec_2_8_stop_and_restart_are_idempotent(world: World) -> None:
    b = world.broker
    a = b.register("a")
    b.restart(a)  # live already: nothing
    b.stop(a)
    b.stop(a)  # stopped already: nothing
    assert world.log.names().count("stop") == 1
    b.restart(a)
    assert world.log.names().count("start") == 1
    assert b.dequeue(a) is None


def test_spec_9_1_registry_operations_are_reported(world: World) -> None:
    b = world.broker
    b.create_pool("p", "random")
    a = b.register("a", capacity=2, backpressure="block", send_timeout=1.5)
    b.join_pool("p", a)
    b.provide("s", a)
    b.leave_pool("p", a)
    assert [(n, f) for n, f in world.log.events if n != "register"] == [
        ("create_pool", {"pool": "p", "strategy": "random"}),
        ("join", {"pool": "p", "actor": "a"}),
        ("provide", {"service": "s", "actor": "a"}),
        ("leave", {"pool": "p", "actor": "a"}),
    ]
    assert world.log.of("register")[0]["capacity"] == 2
    assert world.log.of("register")[0]["send_timeout"] == 1.5


def test_spec_2_9_pool_membership_errors(world: World) -> None:
    b = world.broker
    b.create_pool("p")
    with pytest.raises(DuplicateRegistration):
        b.create_pool("p")
    with pytest.raises(InvalidConfig, match="round_robin"):
        b.create_pool("q", strategy="fastest")
    a = b.register()
    b.join_pool("p", a)
    with pytest.raises(DuplicateRegistration):
        b.join_pool("p", a)
    b.leave_pool("p", a)
    with pytest.raises(ActorNotFound):
        b.leave_pool("p", a)
    with pytest.raises(PoolNotFound):
        b.join_pool("nope", a)
    with pytest.raises(PoolNotFound):
        b.leave_pool("nope", a)
    with pytest.raises(ActorNotFound):
        b.join_pool("p", 99)
