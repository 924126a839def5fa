"""Seed parity: the 36 broker unit tests of airssys-rt, translated one by one to brokerlab.

The seed (github:airsstack/airssys, airssys-rt/src/broker/{error,traits,registry,in_memory}.rs)
tests its `BrokerError`, its `MessageBroker` trait, its `ActorRegistry` and its pub/sub
`InMemoryMessageBroker`. Each test below is named `test_<file>_<seed test name>`, stands in the
seed's file order, cites its seed test on the first line of its docstring and is classified in
`SEED`:

- `equivalent`: the same property, asserted on brokerlab's public API (messages and fields
  adapted to spec 8.4, a pub/sub stream adapted to a subscribed actor's mailbox, ...);
- `difference`: an intended difference the spec justifies; the test asserts brokerlab's actual
  behaviour and its docstring names the rule;
- `rust_only`: a compile-time or Rust-trait check, translated to the nearest Python fact that
  could be false.
"""

from __future__ import annotations

import ast
import dataclasses
import doctest
import inspect
import pickle
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import broker
from broker import (
    STRATEGIES,
    ActorNotFound,
    Address,
    Broker,
    BrokerError,
    DuplicateRegistration,
    InvalidAddress,
    InvalidConfig,
    MailboxClosed,
    MessageBroker,
    NoResponse,
    Outcome,
    PoolEmpty,
    PoolNotFound,
    RegistryError,
    RequestTimeout,
    RouteError,
    SendTimeout,
    SplitMix64,
    Stats,
)
from sim import Scheduler

SEED: dict[str, str] = {
    # airssys-rt/src/broker/error.rs
    "error.rs::test_actor_not_found_error": "equivalent",
    "error.rs::test_mailbox_closed_error": "equivalent",
    "error.rs::test_send_timeout_error": "equivalent",
    "error.rs::test_request_timeout_error": "equivalent",
    "error.rs::test_registry_error": "equivalent",
    "error.rs::test_route_error": "equivalent",
    "error.rs::test_broker_not_initialized_error": "difference",
    "error.rs::test_no_response_error": "equivalent",
    "error.rs::test_pool_not_found_error": "equivalent",
    "error.rs::test_pool_empty_error": "equivalent",
    "error.rs::test_duplicate_registration_error": "equivalent",
    "error.rs::test_error_is_send_sync": "rust_only",
    "error.rs::test_error_is_std_error": "rust_only",
    "error.rs::test_error_debug_impl": "rust_only",
    # airssys-rt/src/broker/traits.rs
    "traits.rs::test_message_broker_trait_bounds": "rust_only",
    "traits.rs::test_message_broker_error_bounds": "rust_only",
    "traits.rs::test_trait_documentation_validity": "rust_only",
    # airssys-rt/src/broker/registry.rs
    "registry.rs::test_new_registry": "equivalent",
    "registry.rs::test_register_and_resolve": "equivalent",
    "registry.rs::test_duplicate_registration": "equivalent",
    "registry.rs::test_unregister": "equivalent",
    "registry.rs::test_unregister_not_found": "equivalent",
    "registry.rs::test_resolve_not_found": "equivalent",
    "registry.rs::test_routing_key_resolution": "difference",
    "registry.rs::test_pool_registration": "difference",
    "registry.rs::test_pool_round_robin_strategy": "equivalent",
    "registry.rs::test_pool_random_strategy": "equivalent",
    "registry.rs::test_pool_empty": "difference",
    "registry.rs::test_concurrent_registration": "difference",
    "registry.rs::test_registry_clone": "rust_only",
    "registry.rs::test_pool_strategy_equality": "rust_only",
    # airssys-rt/src/broker/in_memory.rs
    "in_memory.rs::test_pub_sub_basic": "equivalent",
    "in_memory.rs::test_multiple_subscribers": "equivalent",
    "in_memory.rs::test_publish_without_subscribers": "equivalent",
    "in_memory.rs::test_request_reply": "equivalent",
    "in_memory.rs::test_request_timeout": "difference",
}

# One instance of every error class `broker` exports, with the fields of spec 8.4.
SAMPLES: dict[str, BrokerError] = {
    "BrokerError": BrokerError("why"),
    "ActorNotFound": ActorNotFound("id:7", "pool:p"),
    "DuplicateRegistration": DuplicateRegistration("name:duplicate"),
    "InvalidAddress": InvalidAddress("a:b", "a name"),
    "InvalidConfig": InvalidConfig("capacity", 0, "an integer >= 1"),
    "MailboxClosed": MailboxClosed("name:test-actor"),
    "MailboxFull": broker.MailboxFull("a", 3),
    "NoResponse": NoResponse(3),
    "PoolEmpty": PoolEmpty("worker-pool"),
    "PoolNotFound": PoolNotFound("worker-pool"),
    "RegistryError": RegistryError("Invalid operation"),
    "RequestTimeout": RequestTimeout("id:1", 0.1),
    "RouteError": RouteError("pool:h", "No route available"),
    "SendTimeout": SendTimeout("a", 5.0),
    "ServiceUnavailable": broker.ServiceUnavailable("s"),
}


def exported_errors() -> dict[str, type[BrokerError]]:
    """Every error class `broker` exports (its `__all__`), by name."""
    found = {}
    for name in broker.__all__:
        value = getattr(broker, name)
        if isinstance(value, type) and issubclass(value, BrokerError):
            found[name] = value
    return found


def world() -> tuple[Broker[Any], Scheduler]:
    clock = Scheduler()
    return Broker(clock, SplitMix64(0)), clock


# -- airssys-rt/src/broker/error.rs ------------------------------------------------------------


def test_error_rs_test_actor_not_found_error() -> None:
    """airssys-rt src/broker/error.rs::test_actor_not_found_error (EQUIVALENT).

    The seed's `ActorNotFound(address)` reads "Actor not found: <Debug of the address>"; here
    `ActorNotFound("id:7")` reads spec 8.4's "no actor id:7", naming the address's text, which
    is also its `.address` field. The broker raises the same error for an unknown actor.
    """
    err = ActorNotFound("id:7")
    assert str(err) == "no actor id:7"
    assert err.address == "id:7" and err.within is None
    assert err.address in str(err)
    b, _ = world()
    with pytest.raises(ActorNotFound) as info:
        b.unregister(7)
    assert info.value.fields == err.fields and str(info.value) == str(err)


def test_error_rs_test_mailbox_closed_error() -> None:
    """airssys-rt src/broker/error.rs::test_mailbox_closed_error (EQUIVALENT).

    The seed's "Mailbox closed for actor: Named { .., name: "test-actor" }" becomes spec 8.4's
    "name:test-actor is stopped"; the actor's name is in the message and in `.address`, and the
    broker raises it for a send to a stopped actor (spec 2.5).
    """
    err = MailboxClosed("name:test-actor")
    assert str(err) == "name:test-actor is stopped"
    assert "test-actor" in str(err) and err.address == "name:test-actor"
    b, _ = world()
    b.stop(b.register("test-actor"))
    with pytest.raises(MailboxClosed) as info:
        b.send(None, "name:test-actor", "x")
    assert str(info.value) == str(err)


def test_error_rs_test_send_timeout_error() -> None:
    """airssys-rt src/broker/error.rs::test_send_timeout_error (EQUIVALENT).

    The seed's `SendTimeout { target, timeout: 5s }` reads "Send timeout: ... timeout=5s"; here
    `SendTimeout(actor, 5.0)` reads spec 8.4's "a send to {actor} found no room within 5.0":
    the timeout is a number of seconds, written in its shortest round-trip form.
    """
    err = SendTimeout("worker", 5.0)
    assert str(err) == "a send to worker found no room within 5.0"
    assert err.actor == "worker" and err.timeout == 5.0
    assert "5.0" in str(err)


def test_error_rs_test_request_timeout_error() -> None:
    """airssys-rt src/broker/error.rs::test_request_timeout_error (EQUIVALENT).

    The seed's `RequestTimeout { target, timeout: 100ms }` reads "Request timeout: ...
    timeout=100ms"; here `RequestTimeout(address, 0.1)` reads spec 8.4's "request to
    {address} timed out after 0.1", with `.address` and `.timeout` (seconds).
    """
    err = RequestTimeout("id:1", 0.1)
    assert str(err) == "request to id:1 timed out after 0.1"
    assert err.address == "id:1" and err.timeout == 0.1
    assert "0.1" in str(err)


def test_error_rs_test_registry_error() -> None:
    """airssys-rt src/broker/error.rs::test_registry_error (EQUIVALENT).

    The seed's `RegistryError("Invalid operation")` reads "Registry error: Invalid operation";
    spec 8.4's template is the bare `{reason}`, so the reason is the whole message, and the
    error is told apart by its class and its code `registry_error` instead of a prefix.
    """
    err = RegistryError("Invalid operation")
    assert str(err) == "Invalid operation"
    assert err.fields == {"reason": "Invalid operation"}
    assert err.code == "registry_error"
    assert isinstance(DuplicateRegistration("name:a"), RegistryError)  # its category (8.2)


def test_error_rs_test_route_error() -> None:
    """airssys-rt src/broker/error.rs::test_route_error (EQUIVALENT).

    The seed's `RouteError { message_type: "test_message", reason }` reads "Route error:
    message_type=test_message, reason=No route available". brokerlab's messages carry no
    message type, so spec 8.4's RouteError names the address instead: "cannot route to
    {address}: {reason}". The property is the same: both fields appear in the message.
    """
    err = RouteError("pool:h", "No route available")
    assert str(err) == "cannot route to pool:h: No route available"
    assert err.fields == {"address": "pool:h", "reason": "No route available"}
    assert "pool:h" in str(err) and "No route available" in str(err)


def test_error_rs_test_broker_not_initialized_error() -> None:
    """airssys-rt src/broker/error.rs::test_broker_not_initialized_error (DIFFERENCE).

    Spec 8.4 (removed in 1.2): a broker is built ready to use from its timer service and random
    stream and has no actor context, so `BrokerNotInitialized` does not exist. The test asserts
    its absence and that a brand-new broker works at once.
    """
    assert not hasattr(broker, "BrokerNotInitialized")
    assert "BrokerNotInitialized" not in broker.__all__
    assert "BrokerNotInitialized" not in exported_errors()
    b, _ = world()
    a = b.register("first")
    assert b.resolve("name:first") == a


def test_error_rs_test_no_response_error() -> None:
    """airssys-rt src/broker/error.rs::test_no_response_error (EQUIVALENT).

    The seed's `NoResponse` reads "No response received for request"; spec 8.4's NoResponse
    has the field `corr` and reads "request {corr} was cancelled before a reply". It is what a
    cancelled request's outcome carries (spec 5.7, 8.2).
    """
    err = NoResponse(3)
    assert str(err) == "request 3 was cancelled before a reply"
    assert err.corr == 3
    b, _ = world()
    client = b.register()
    b.register("server")
    outcomes: list[Outcome[Any]] = []
    corr = b.request(client, "name:server", "x", timeout=1.0, on_outcome=outcomes.append)
    assert b.cancel(corr)
    assert [o.kind for o in outcomes] == ["cancelled"]
    carried = outcomes[0].error
    assert isinstance(carried, NoResponse) and carried.corr == corr


def test_error_rs_test_pool_not_found_error() -> None:
    """airssys-rt src/broker/error.rs::test_pool_not_found_error (EQUIVALENT).

    The seed's "Actor pool not found: worker-pool" becomes spec 8.4's "no pool worker-pool";
    the pool's name is in the message and in `.pool`.
    """
    err = PoolNotFound("worker-pool")
    assert str(err) == "no pool worker-pool"
    assert err.pool == "worker-pool" and "worker-pool" in str(err)


def test_error_rs_test_pool_empty_error() -> None:
    """airssys-rt src/broker/error.rs::test_pool_empty_error (EQUIVALENT).

    The seed's "Actor pool is empty: worker-pool" becomes spec 8.4's "pool worker-pool has no
    live member"; the pool's name is in the message and in `.pool`.
    """
    err = PoolEmpty("worker-pool")
    assert str(err) == "pool worker-pool has no live member"
    assert err.pool == "worker-pool" and "worker-pool" in str(err)


def test_error_rs_test_duplicate_registration_error() -> None:
    """airssys-rt src/broker/error.rs::test_duplicate_registration_error (EQUIVALENT).

    The seed's "Duplicate actor registration: Named { .., name: "duplicate" }" becomes spec
    8.4's "name:duplicate is already registered"; the broker raises it for a taken name (2.6).
    """
    err = DuplicateRegistration("name:duplicate")
    assert str(err) == "name:duplicate is already registered"
    assert "duplicate" in str(err) and err.address == "name:duplicate"
    b, _ = world()
    b.register("duplicate")
    with pytest.raises(DuplicateRegistration) as info:
        b.register("duplicate")
    assert str(info.value) == str(err)


def test_error_rs_test_error_is_send_sync() -> None:
    """airssys-rt src/broker/error.rs::test_error_is_send_sync (RUST_ONLY).

    `BrokerError: Send + Sync` is a compile-time check. The nearest Python fact: an error can
    be handed to another thread or process unchanged, so every exported error pickles and
    comes back with its class, its fields and its message.
    """
    assert set(SAMPLES) == set(exported_errors())  # a sample of every exported error
    for name, err in SAMPLES.items():
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is exported_errors()[name]
        assert back.fields == err.fields and str(back) == str(err)


def test_error_rs_test_error_is_std_error() -> None:
    """airssys-rt src/broker/error.rs::test_error_is_std_error (RUST_ONLY).

    Coercing to `&dyn std::error::Error` is a compile-time check. The nearest Python fact:
    every exported error is an `Exception` and a `BrokerError`, and raises and is caught as one.
    """
    for cls in exported_errors().values():
        assert issubclass(cls, Exception) and issubclass(cls, BrokerError)
    for err in SAMPLES.values():
        with pytest.raises(Exception) as info:
            raise err
        assert info.value is err and isinstance(info.value, BrokerError)


def test_error_rs_test_error_debug_impl() -> None:
    """airssys-rt src/broker/error.rs::test_error_debug_impl (RUST_ONLY).

    The seed checks that the derived `Debug` output names the variant (`ActorNotFound`). The
    nearest Python fact: `repr(err)` names the error's class, for every exported error.
    """
    assert repr(ActorNotFound("id:7")) == "ActorNotFound('no actor id:7')"
    for name, err in SAMPLES.items():
        assert repr(err).startswith(f"{name}(")


# -- airssys-rt/src/broker/traits.rs -----------------------------------------------------------


def test_traits_rs_test_message_broker_trait_bounds() -> None:
    """airssys-rt src/broker/traits.rs::test_message_broker_trait_bounds (RUST_ONLY).

    `B: MessageBroker<M>` being `Send + Sync + Clone` is a compile-time check. The nearest
    Python fact: `Broker` provides every member of the `MessageBroker` protocol with the
    protocol's parameters, and the seed trait's own operations `publish`, `subscribe` and
    `publish_request` (which take a topic here, spec 3.9).
    """
    b, _ = world()
    members = [n for n in dir(MessageBroker) if not n.startswith("_")]
    assert "stats" in members and "request" in members
    for name in members:
        assert hasattr(b, name), name
        wanted = getattr(MessageBroker, name)
        if callable(wanted):
            got = inspect.signature(getattr(Broker, name)).parameters
            assert list(got) == list(inspect.signature(wanted).parameters), name
    for name in ("publish", "subscribe", "publish_request"):
        assert callable(getattr(b, name)), name
        assert "topic" in inspect.signature(getattr(Broker, name)).parameters, name


def test_traits_rs_test_message_broker_error_bounds() -> None:
    """airssys-rt src/broker/traits.rs::test_message_broker_error_bounds (RUST_ONLY).

    `B::Error: Error + Send + Sync + 'static` is a compile-time check. The nearest Python fact:
    whatever the broker raises for misuse or a refused delivery is a `BrokerError` of a class
    `broker` exports, and so is what a failed request's outcome carries (spec 8.2).
    """
    b, _ = world()
    a = b.register("a")
    calls: list[Callable[[], object]] = [
        lambda: b.unregister(99),
        lambda: b.register("a"),
        lambda: b.send(None, "name:nobody", "x"),
        lambda: b.send(None, "pool:none", "x"),
        lambda: b.subscribe("not:a:name", a),
        lambda: b.request(a, "name:a", "x", timeout=0.0),
    ]
    raised = []
    for call in calls:
        with pytest.raises(BrokerError) as info:
            call()
        assert type(info.value) in exported_errors().values()
        raised.append(type(info.value).__name__)
    assert raised == [
        "ActorNotFound",
        "DuplicateRegistration",
        "ActorNotFound",
        "PoolNotFound",
        "InvalidAddress",
        "InvalidConfig",
    ]
    outcomes: list[Outcome[Any]] = []
    b.request(a, "service:none", "x", timeout=1.0, on_outcome=outcomes.append)
    assert [o.kind for o in outcomes] == ["failed"]
    assert type(outcomes[0].error) in exported_errors().values()


def test_traits_rs_test_trait_documentation_validity() -> None:
    """airssys-rt src/broker/traits.rs::test_trait_documentation_validity (RUST_ONLY).

    The seed's test is empty: it only has to compile next to the trait's documentation. The
    nearest Python fact: the examples in the `broker` package's documentation run and print
    what they say.
    """
    results = doctest.testmod(broker, verbose=False, report=False)
    assert results.attempted > 0
    assert results.failed == 0


# -- airssys-rt/src/broker/registry.rs ---------------------------------------------------------


def test_registry_rs_test_new_registry() -> None:
    """airssys-rt src/broker/registry.rs::test_new_registry (EQUIVALENT).

    `actor_count() == 0` and `pool_count() == 0` become `stats().actors == 0` and
    `len(stats().pools) == 0` on a fresh broker (spec 9.2).
    """
    b, _ = world()
    stats = b.stats()
    assert stats.actors == 0
    assert len(stats.pools) == 0
    assert len(stats.topics) == 0


def test_registry_rs_test_register_and_resolve() -> None:
    """airssys-rt src/broker/registry.rs::test_register_and_resolve (EQUIVALENT).

    Registering an anonymous actor gives `stats().actors == 1`, and its address resolves: the
    seed's `resolve(&address).is_ok()` is `resolve("id:<id>")` returning its id.
    """
    b, _ = world()
    a = b.register()
    assert b.stats().actors == 1
    assert b.resolve(f"id:{a}") == a
    assert b.resolve(Address.id(a)) == a


def test_registry_rs_test_duplicate_registration() -> None:
    """airssys-rt src/broker/registry.rs::test_duplicate_registration (EQUIVALENT).

    The seed registers one address twice. brokerlab gives every registration a fresh id, so
    the address that can be taken twice is a name: the second `register("dup")` raises
    `DuplicateRegistration` and, as in the seed, changes nothing (spec 2.6: it consumes no id).
    """
    b, _ = world()
    first = b.register("dup")
    with pytest.raises(DuplicateRegistration) as info:
        b.register("dup")
    assert info.value.address == "name:dup"
    assert b.stats().actors == 1
    assert b.resolve("name:dup") == first
    assert b.register() == first + 1


def test_registry_rs_test_unregister() -> None:
    """airssys-rt src/broker/registry.rs::test_unregister (EQUIVALENT).

    Register (count 1), unregister (count 0); resolving the address afterwards is
    `ActorNotFound` (spec 2.5, 2.7).
    """
    b, _ = world()
    a = b.register()
    assert b.stats().actors == 1
    b.unregister(a)
    assert b.stats().actors == 0
    with pytest.raises(ActorNotFound) as info:
        b.resolve(f"id:{a}")
    assert info.value.address == f"id:{a}"


def test_registry_rs_test_unregister_not_found() -> None:
    """airssys-rt src/broker/registry.rs::test_unregister_not_found (EQUIVALENT).

    Unregistering an actor never registered is `ActorNotFound` (spec 2.7).
    """
    b, _ = world()
    with pytest.raises(ActorNotFound) as info:
        b.unregister(42)
    assert info.value.address == "id:42"
    assert b.stats().actors == 0


def test_registry_rs_test_resolve_not_found() -> None:
    """airssys-rt src/broker/registry.rs::test_resolve_not_found (EQUIVALENT).

    Resolving an address never registered is `ActorNotFound` (spec 2.5), by id and by name.
    """
    b, _ = world()
    for text in ("id:42", "name:ghost"):
        with pytest.raises(ActorNotFound) as info:
            b.resolve(text)
        assert info.value.address == text


def test_registry_rs_test_routing_key_resolution() -> None:
    """airssys-rt src/broker/registry.rs::test_routing_key_resolution (DIFFERENCE).

    Spec 2.4: `id:` and `name:` resolve through a table keyed by the exact id or name, never
    by a lossy hash, so brokerlab has no `compute_routing_key`/`resolve_by_routing_key`. The
    test asserts their absence and that resolution is exact: every one of many names, two of
    them differing only in case, resolves to its own actor, so no two names share a route.
    """
    b, _ = world()
    assert not hasattr(b, "resolve_by_routing_key")
    assert not hasattr(b, "compute_routing_key")
    names = [f"actor-{i}" for i in range(100)] + ["a", "A"]
    ids = {name: b.register(name) for name in names}
    assert len(set(ids.values())) == len(names)
    for name, actor in ids.items():
        assert b.resolve(f"name:{name}") == actor
        assert b.resolve(f"id:{actor}") == actor
    assert b.resolve("name:a") != b.resolve("name:A")


def test_registry_rs_test_pool_registration() -> None:
    """airssys-rt src/broker/registry.rs::test_pool_registration (DIFFERENCE).

    Spec 2.9 and 3: pools are created explicitly (`create_pool`) and joined, not implied by a
    "workers:worker-0" name prefix; a name containing ':' is not even a valid name (spec 2.2:
    `InvalidAddress`, and a refused registration consumes no id, 2.6). Registered into an
    explicit pool, the seed's counts hold: 3 actors, 1 pool, 3 members.
    """
    b, _ = world()
    with pytest.raises(InvalidAddress) as info:
        b.register("workers:worker-0")
    assert info.value.value == "workers:worker-0"
    assert b.stats().actors == 0 and len(b.stats().pools) == 0
    b.create_pool("workers")
    members = [b.register(f"worker-{i}", pools=["workers"]) for i in range(3)]
    assert members == [1, 2, 3]
    stats = b.stats()
    assert stats.actors == 3
    assert len(stats.pools) == 1
    assert stats.pools["workers"] == 3


def test_registry_rs_test_pool_round_robin_strategy() -> None:
    """airssys-rt src/broker/registry.rs::test_pool_round_robin_strategy (EQUIVALENT).

    `get_pool_member("workers", RoundRobin)` is `resolve("pool:workers")` on a `round_robin`
    pool (created explicitly, spec 2.9): four selections over three members all succeed and the
    fourth wraps around to the first (spec 3.2.1: the three before are each member once).
    """
    b, _ = world()
    b.create_pool("workers", "round_robin")
    members = [b.register(f"worker-{i}", pools=["workers"]) for i in range(3)]
    picks = [b.resolve("pool:workers") for _ in range(4)]
    assert all(pick in members for pick in picks)
    assert picks[0] == picks[3]
    assert picks[:3] == members


def test_registry_rs_test_pool_random_strategy() -> None:
    """airssys-rt src/broker/registry.rs::test_pool_random_strategy (EQUIVALENT).

    Ten `resolve("pool:workers")` on a five-member `random` pool give ten members, each of
    which resolves by its id. brokerlab's draws come from the injected seeded stream (spec
    1.2, 3.3), so the same seed gives the same ten members, which the seed could not promise.
    """

    def picks(seed: int) -> tuple[list[int], list[int]]:
        b: Broker[Any] = Broker(Scheduler(), SplitMix64(seed))
        b.create_pool("workers", "random")
        members = [b.register(f"worker-{i}", pools=["workers"]) for i in range(5)]
        chosen = [b.resolve("pool:workers") for _ in range(10)]
        for member in chosen:
            assert b.resolve(f"id:{member}") == member
        return members, chosen

    members, chosen = picks(0)
    assert len(chosen) == 10
    assert set(chosen) <= set(members)
    assert len(set(chosen)) > 1
    assert picks(0) == (members, chosen)


def test_registry_rs_test_pool_empty() -> None:
    """airssys-rt src/broker/registry.rs::test_pool_empty (DIFFERENCE).

    The seed's `get_pool_member("nonexistent", ..)` returns `None`, as it does for an empty
    pool. Spec 2.5: resolving a pool that does not exist raises `PoolNotFound`, and one without
    a live member raises `PoolEmpty`, so the caller learns which.
    """
    b, _ = world()
    with pytest.raises(PoolNotFound) as missing:
        b.resolve("pool:nonexistent")
    assert missing.value.pool == "nonexistent"
    b.create_pool("idle")
    with pytest.raises(PoolEmpty) as empty:
        b.resolve("pool:idle")
    assert empty.value.pool == "idle"


def test_registry_rs_test_concurrent_registration() -> None:
    """airssys-rt src/broker/registry.rs::test_concurrent_registration (DIFFERENCE).

    The seed registers 100 actors from a second thread while the main thread registers 100.
    Spec 1.7: a broker is not thread-safe, and callers with several threads MUST serialize
    every call (one lock, or one worker). So the test makes the 200 registrations from one
    caller: 200 distinct ids (counted from 1, spec 1.3), `stats().actors == 200`, no pools.
    """
    b, _ = world()
    ids = [b.register(f"actor-{i}") for i in range(200)]
    assert len(set(ids)) == 200
    assert ids == list(range(1, 201))
    assert b.stats().actors == 200
    assert len(b.stats().pools) == 0


def test_registry_rs_test_registry_clone() -> None:
    """airssys-rt src/broker/registry.rs::test_registry_clone (RUST_ONLY).

    A Rust `Clone` of the registry shares its maps through an `Arc`; in Python a broker is
    shared by passing the object itself. The nearest fact that can be false: a second handle
    (typed as the protocol) sees the registration, while `stats()` is a frozen snapshot that
    shares nothing with the broker and keeps its counts after later changes.
    """
    b, _ = world()
    a = b.register()
    snapshot = b.stats()
    other: MessageBroker[Any] = b
    assert other.stats().actors == 1
    assert other.resolve(f"id:{a}") == a
    assert isinstance(snapshot, Stats)
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.actors = 5  # type: ignore[misc]
    other.register()
    assert b.stats().actors == 2
    assert snapshot.actors == 1


def test_registry_rs_test_pool_strategy_equality() -> None:
    """airssys-rt src/broker/registry.rs::test_pool_strategy_equality (RUST_ONLY).

    `PartialEq` of the `PoolStrategy` enum is a Rust derive. brokerlab's strategies are names
    (`broker.STRATEGIES`); the nearest facts: `round_robin` and `random` are two distinct
    known names, the names are unique, and a pool's strategy is matched by its exact name, so
    the Rust variant's spelling `RoundRobin` is `InvalidConfig` (spec 3.1).
    """
    assert "round_robin" in STRATEGIES and "random" in STRATEGIES
    assert STRATEGIES.index("round_robin") != STRATEGIES.index("random")
    assert len(set(STRATEGIES)) == len(STRATEGIES)
    b, _ = world()
    with pytest.raises(InvalidConfig) as info:
        b.create_pool("p", "RoundRobin")
    assert info.value.field == "strategy"
    b.create_pool("p", "round_robin")
    assert len(b.stats().pools) == 1


# -- airssys-rt/src/broker/in_memory.rs --------------------------------------------------------


def test_in_memory_rs_test_pub_sub_basic() -> None:
    """airssys-rt src/broker/in_memory.rs::test_pub_sub_basic (EQUIVALENT).

    The seed's `subscribe()` stream becomes an actor subscribed to the topic "events", whose
    mailbox is read with `dequeue`: after `publish`, it receives the payload "hello" as its own
    copy of the published message (spec 3.9: `copy_of` names the original).
    """
    b, _ = world()
    sub = b.register()
    b.subscribe("events", sub)
    original = b.publish(None, "events", "hello")
    env = b.dequeue(sub)
    assert env is not None
    assert env.payload == "hello"
    assert env.copy_of == original and env.msg != original
    assert b.dequeue(sub) is None


def test_in_memory_rs_test_multiple_subscribers() -> None:
    """airssys-rt src/broker/in_memory.rs::test_multiple_subscribers (EQUIVALENT).

    Three subscribers: `subscriber_count() == 3` is `stats().topics["events"] == 3`; one
    publish reaches all three, each with its own copy of "broadcast", sent in subscription
    order (spec 3.9).
    """
    b, _ = world()
    subs = [b.register() for _ in range(3)]
    for sub in subs:
        b.subscribe("events", sub)
    assert b.stats().topics["events"] == 3
    original = b.publish(None, "events", "broadcast")
    copies = [b.dequeue(sub) for sub in subs]
    for sub, env in zip(subs, copies, strict=True):
        assert env is not None
        assert env.payload == "broadcast"
        assert env.copy_of == original
        assert env.to == Address.id(sub)
    ids = [env.msg for env in copies if env is not None]
    assert ids == sorted(ids) and len(set(ids)) == 3


def test_in_memory_rs_test_publish_without_subscribers() -> None:
    """airssys-rt src/broker/in_memory.rs::test_publish_without_subscribers (EQUIVALENT).

    Publishing with no subscriber succeeds (the seed's `is_ok()`: no error, a message id
    back). brokerlab also accounts for it: the message is dead-lettered `no_subscribers`
    (spec 3.9, 7.5), accepted and not refused.
    """
    b, _ = world()
    msg = b.publish(None, "events", "nobody listening")
    assert msg == 1
    stats = b.stats()
    assert stats.dead_letters == {"no_subscribers": 1}
    assert stats.rejected == 0 and stats.delivered == 0
    assert stats.topics == {}


def test_in_memory_rs_test_request_reply() -> None:
    """airssys-rt src/broker/in_memory.rs::test_request_reply (EQUIVALENT).

    The seed's `publish_request` answered by a subscribing task becomes `publish_request` +
    the subscriber's `dequeue` of its copy (which carries the correlation id) + `reply`: the
    outcome is `replied` with the reply's payload "pong". A request to a topic ends with its
    first reply, so a second subscriber's reply is dead-lettered `duplicate_reply` (spec 3.9,
    5.6). And a subscriber that answers at once, from the wake hook inside the call (spec
    1.6), is answered: the pending entry exists before the publish (5.1), unlike the seed's.
    """
    b, _ = world()
    requester = b.register("requester")
    first = b.register()
    b.subscribe("events", first)
    outcomes: list[Outcome[Any]] = []
    corr = b.publish_request(requester, "events", "ping", timeout=1.0, on_outcome=outcomes.append)
    env = b.dequeue(first)
    assert env is not None and env.corr == corr and env.payload == "ping"
    b.reply(first, env.corr, "pong")
    assert [(o.corr, o.kind, o.reply) for o in outcomes] == [(corr, "replied", "pong")]
    assert outcomes[0].error is None

    second = b.register()
    b.subscribe("events", second)
    outcomes.clear()
    corr = b.publish_request(requester, "events", "ping", timeout=1.0, on_outcome=outcomes.append)
    for sub, answer in ((first, "pong"), (second, "pong too")):
        env = b.dequeue(sub)
        assert env is not None and env.corr == corr
        b.reply(sub, env.corr, answer)
    assert [(o.kind, o.reply) for o in outcomes] == [("replied", "pong")]
    assert b.stats().dead_letters == {"duplicate_reply": 1}

    held: list[Broker[Any]] = []

    def answer_at_once(actor: int) -> None:
        env = held[0].dequeue(actor)
        if env is not None and env.corr is not None:
            held[0].reply(actor, env.corr, "pong")

    eager: Broker[Any] = Broker(Scheduler(), SplitMix64(0), wake=answer_at_once)
    held.append(eager)
    asker = eager.register()
    eager.subscribe("events", eager.register())
    outcomes.clear()
    corr = eager.publish_request(asker, "events", "ping", timeout=1.0, on_outcome=outcomes.append)
    assert [(o.corr, o.kind, o.reply) for o in outcomes] == [(corr, "replied", "pong")]
    assert eager.pending_requests() == []


def test_in_memory_rs_test_request_timeout() -> None:
    """airssys-rt src/broker/in_memory.rs::test_request_timeout (DIFFERENCE).

    The seed's `publish_request(.., 10ms)` returns `Err(RequestTimeout)`. Spec 5.3 and 8.2:
    `publish_request` does not raise for a timeout; it returns a correlation id, and the
    request ends `timed_out` at its deadline with an outcome that carries the typed
    `RequestTimeout` (its `.timeout`, and the topic's address).
    """
    b, clock = world()
    requester = b.register()
    b.subscribe("events", b.register())  # subscribed, never replies
    outcomes: list[Outcome[Any]] = []
    corr = b.publish_request(
        requester, "events", "no reply", timeout=0.01, on_outcome=outcomes.append
    )
    assert b.pending_requests() == [corr]
    clock.advance_to(0.005)
    assert outcomes == []
    clock.advance_to(0.01)
    assert [(o.corr, o.kind, o.resolved_at) for o in outcomes] == [(corr, "timed_out", 0.01)]
    error = outcomes[0].error
    assert isinstance(error, RequestTimeout)
    assert error.timeout == 0.01 and error.address == "topic:events"
    assert b.pending_requests() == []


# -- the inventory -----------------------------------------------------------------------------


def function_name(seed_test: str) -> str:
    """`error.rs::test_x` -> `test_error_rs_test_x`."""
    file, test = seed_test.split("::")
    return f"test_{file.replace('.rs', '_rs')}_{test}"


def test_every_seed_test_is_translated() -> None:
    """SEED lists the seed's 36 tests; each has exactly one test here, in the seed's order,
    whose docstring cites it and names its class; and the classes add up."""
    assert len(SEED) == 36
    assert Counter(key.split("::")[0] for key in SEED) == {
        "error.rs": 14,
        "traits.rs": 3,
        "registry.rs": 14,
        "in_memory.rs": 5,
    }
    defined = Counter(
        node.name
        for node in ast.parse(Path(__file__).read_text(encoding="utf-8")).body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    )
    expected = {function_name(key): key for key in SEED}
    assert set(defined) == set(expected) | {"test_every_seed_test_is_translated"}
    assert all(count == 1 for count in defined.values())
    module = sys.modules[__name__]
    tests = {name: getattr(module, name) for name in expected}
    in_order = sorted(expected, key=lambda name: tests[name].__code__.co_firstlineno)
    assert [expected[name] for name in in_order] == list(SEED)
    for name, key in expected.items():
        doc = tests[name].__doc__ or ""
        file, test = key.split("::")
        assert doc.startswith(f"airssys-rt src/broker/{file}::{test} ({SEED[key].upper()})")
    assert Counter(SEED.values()) == {"equivalent": 22, "difference": 6, "rust_only": 8}
