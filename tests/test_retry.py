"""Spec section 6: retries of transient failures."""

from __future__ import annotations

import random
from typing import Any

import pytest
from conftest import World

from broker import (
    ActorNotFound,
    InvalidConfig,
    MailboxClosed,
    MailboxFull,
    Outcome,
    PoolEmpty,
    RetryPolicy,
    ServiceUnavailable,
    Transit,
)


def test_spec_6_1_transient_errors() -> None:
    assert MailboxFull("a", 1).is_transient and PoolEmpty("p").is_transient
    assert ServiceUnavailable("s").is_transient
    assert not ActorNotFound("id:1").is_transient and not MailboxClosed("id:1").is_transient


def test_spec_6_2_backoff_schedule() -> None:
    policy = RetryPolicy(max_attempts=6, backoff=0.1, multiplier=2.0, max_backoff=0.5)
    rng = random.Random(0)
    assert [policy.delay(k, rng) for k in range(1, 6)] == [0.1, 0.2, 0.4, 0.5, 0.5]


@pytest.mark.parametrize("backoff", [0.0, 0.01, 3.0])
@pytest.mark.parametrize("multiplier", [1.0, 2.0, 3, 1e300])  # 3: an int power, past a double
def test_spec_6_2_a_power_past_the_largest_double_waits_the_cap(
    backoff: float, multiplier: float
) -> None:  # the broker's schedule alone: tests/test_edges.py
    """The broker and the model agree on every wait, past k = 1025 where 2^(k-1) overflows."""
    import model

    kwargs: dict[str, Any] = {"backoff": backoff, "multiplier": multiplier, "max_backoff": 0.5}
    policy = RetryPolicy(max_attempts=3000, **kwargs)
    spec = model.Retry(max_attempts=3000, **kwargs)
    rng = random.Random(0)
    for k in (1, 2, 3, 1024, 1025, 1026, 2999):
        assert policy.delay(k, rng) == spec.wait(k)
    assert policy.delay(2999, rng) == (0.5 if backoff and multiplier > 1 else min(0.5, backoff))


def test_spec_6_2_jitter_only_shortens_and_is_seeded() -> None:
    policy = RetryPolicy(backoff=1.0, multiplier=1.0, max_backoff=1.0, jitter=0.5)
    a = [policy.delay(1, random.Random(3)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    draws = [policy.delay(1, r) for r in [random.Random(7)] * 200]
    assert all(0.5 <= d <= 1.0 for d in draws) and len(set(draws)) > 100


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"max_attempts": 1.5},
        {"backoff": -1.0},
        {"multiplier": 0.5},
        {"max_backoff": float("nan")},
        {"jitter": 1.5},
        {"jitter": -0.1},
    ],
)
def test_spec_6_2_bad_policy(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidConfig):
        RetryPolicy(**kwargs)


def test_spec_6_3_retry_re_resolves_the_address(world: World) -> None:
    b = world.broker
    b.create_pool("p")
    b.send(None, "pool:p", "x", retry=RetryPolicy(max_attempts=3, backoff=1.0))
    assert b.accepted == 1 and b.in_flight == 1
    assert world.log.of("retry") == [{"msg": 1, "attempt": 1, "at": 1.0}]
    world.clock.call_at(0.5, lambda: b.register("late", pools=["p"]))
    world.run(until=1.0)
    assert b.dequeue(1).payload == "x"  # type: ignore[union-attr]
    assert b.retries == 1 and world.conserved()


def test_spec_6_3_exhausted_retries_dead_letter_and_fail(world: World) -> None:
    b = world.broker
    client = b.register("client")
    b.create_pool("p")
    outcomes: list[Outcome[Any]] = []
    b.request(
        client,
        "pool:p",
        "x",
        timeout=100.0,
        retry=RetryPolicy(max_attempts=3, backoff=1.0),
        on_outcome=outcomes.append,
    )
    world.run(until=100.0)
    assert [e["attempt"] for e in world.log.of("retry")] == [1, 2]
    assert [e["at"] for e in world.log.of("retry")] == [1.0, 3.0]
    assert [(o.kind, o.resolved_at) for o in outcomes] == [("failed", 3.0)]
    error = outcomes[0].error
    assert isinstance(error, PoolEmpty) and error.fields == {"pool": "p"}
    assert b.dead_letters == {"pool_empty": 1}
    assert world.conserved() and b.in_flight == 0


def test_spec_6_3_permanent_errors_are_not_retried(world: World) -> None:
    b = world.broker
    with pytest.raises(ActorNotFound):
        b.send(None, "name:ghost", "x", retry=RetryPolicy(max_attempts=5))
    assert b.retries == 0 and b.rejected == 1


def test_spec_6_4_no_retry_at_or_past_the_deadline(world: World) -> None:
    b = world.broker
    client = b.register("client")
    b.create_pool("p")
    outcomes: list[Outcome[Any]] = []
    policy = RetryPolicy(max_attempts=10, backoff=1.0, multiplier=1.0)
    b.request(client, "pool:p", "x", timeout=2.0, retry=policy, on_outcome=outcomes.append)
    world.run(until=10.0)
    assert [e["at"] for e in world.log.of("retry")] == [1.0]  # a retry at 2.0 would be late
    assert [(o.kind, o.resolved_at) for o in outcomes] == [("failed", 1.0)]


def test_spec_6_5_late_failure_after_transit_dead_letters(world: World) -> None:
    class Slow:
        def transit(self, env: object) -> Transit:
            return Transit(delay=1.0)

    w = World(network=Slow())
    b = w.broker
    b.create_pool("p")
    msg = b.send(None, "pool:p", "x")  # does not raise: the failure happens after the call
    w.run(until=1.0)
    assert w.log.of("dead_letter") == [{"msg": msg, "reason": "pool_empty"}]
    assert b.rejected == 0 and w.conserved()


def test_spec_7_4_transit_drop(world: World) -> None:
    class Lossy:
        def transit(self, env: object) -> Transit:
            return Transit(drop=True)

    w = World(network=Lossy())
    b = w.broker
    a = b.register("a")
    b.send(None, "name:a", "x")
    assert b.dead_letters == {"dropped_in_transit": 1}
    assert b.dequeue(a) is None and b.delivered == 0 and w.conserved()


def test_spec_6_3_a_retry_keeps_the_sends_own_send_timeout(world: World) -> None:
    b = world.broker
    b.create_pool("p")
    w = b.register("w", capacity=1, backpressure="block")
    b.send(None, "name:w", 1)
    policy = RetryPolicy(max_attempts=3, backoff=1.0, multiplier=1.0, max_backoff=5.0)
    msg = b.send(None, "pool:p", 2, retry=policy, send_timeout=0.5)  # PoolEmpty: retry at 1.0
    b.join_pool("p", w)
    world.run(until=10.0)
    assert [e["msg"] for e in world.log.of("park")] == [msg]  # parked at t=1.0 ...
    assert world.log.of("dead_letter") == [{"msg": msg, "reason": "send_timeout"}]  # ... to 1.5
    assert world.clock.now == 10.0 and world.conserved()
