"""Spec section 5: request-reply, correlation, deadlines, late/duplicate/unknown replies."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import World

from broker import ActorNotFound, Events, InvalidConfig, Outcome, PoolNotFound, Transit


def setup(world: World) -> tuple[int, int, list[Outcome[Any]]]:
    b = world.broker
    client = b.register("client")
    server = b.register("server")
    return client, server, []


def test_spec_5_1_pending_exists_before_routing(world: World) -> None:
    """A server that replies the instant the request is enqueued (before `request` returns)
    must find the pending entry: the seed's race, made impossible by ordering."""
    b = world.broker
    client, server, outcomes = setup(world)
    seen: list[list[int]] = []

    def listener(name: str, fields: dict[str, Any]) -> None:
        if name == "enqueue":
            seen.append(b.pending_requests())
            env = b.dequeue(server)
            assert env is not None and env.corr is not None
            b.reply(server, env.corr, "pong")

    b._events = Events(listener)
    corr = b.request(client, "name:server", "ping", timeout=5.0, on_outcome=outcomes.append)
    assert seen == [[corr]]
    assert [o.kind for o in outcomes] == ["replied"]
    assert outcomes[0].reply == "pong"


def test_spec_5_2_correlation_ids_count_up(world: World) -> None:
    client, _, _ = setup(world)
    corrs = [world.broker.request(client, "name:server", i, timeout=1.0) for i in range(5)]
    assert corrs == [1, 2, 3, 4, 5]


def test_spec_5_4_reply_resolves_only_its_own_request(world: World) -> None:
    b = world.broker
    client, server, outcomes = setup(world)
    c1 = b.request(client, "name:server", "a", timeout=5.0, on_outcome=outcomes.append)
    c2 = b.request(client, "name:server", "b", timeout=5.0, on_outcome=outcomes.append)
    world.run(until=1.0)
    b.reply(server, c2, "for b")
    assert [(o.corr, o.kind, o.reply, o.latency) for o in outcomes] == [
        (c2, "replied", "for b", 1.0)
    ]
    assert b.pending_requests() == [c1]
    assert b.outcome(c2) == "replied" and b.outcome(c1) is None
    assert list(b.latencies) == [1.0]


def test_spec_5_5_timeout_exactly_at_deadline_not_before(world: World) -> None:
    b = world.broker
    client, _, outcomes = setup(world)
    corr = b.request(client, "name:server", "x", timeout=2.0, on_outcome=outcomes.append)
    world.run(until=1.999999)
    assert outcomes == []
    world.run(until=2.0)
    assert [(o.kind, o.resolved_at) for o in outcomes] == [("timed_out", 2.0)]
    assert b.outcome(corr) == "timed_out"
    assert world.clock.pending == 0


def test_spec_5_5_reply_at_deadline_is_late_even_before_the_timer(world: World) -> None:
    b = world.broker
    client, server, outcomes = setup(world)
    world.clock.call_at(2.0, lambda: None)  # make sure the clock can sit at t=2 first
    corr = b.request(client, "name:server", "x", timeout=2.0, on_outcome=outcomes.append)
    # Scheduled after the request's timer, this runs after it at t = 2.0 ...
    world.clock.call_at(2.0, lambda: b.reply(server, corr, "late"))
    world.run(until=2.0)
    assert [o.kind for o in outcomes] == ["timed_out"]
    assert world.log.of("dead_letter")[-1]["reason"] == "late_reply"


def test_spec_5_5_reply_at_deadline_before_timer_fires(world: World) -> None:
    b = world.broker
    client, server, outcomes = setup(world)
    holder: dict[str, int] = {}
    # ... and this one runs before the timer at t = 2.0 (scheduled earlier): still late.
    world.clock.call_at(2.0, lambda: b.reply(server, holder["corr"], "late"))
    holder["corr"] = b.request(client, "name:server", "x", timeout=2.0, on_outcome=outcomes.append)
    world.run(until=2.0)
    assert [o.kind for o in outcomes] == ["timed_out"]
    assert b.dead_letters == {"late_reply": 1}
    assert b.delivered == 0


def test_spec_5_6_duplicate_late_orphan_unknown_replies(world: World) -> None:
    b = world.broker
    client, server, outcomes = setup(world)
    c1 = b.request(client, "name:server", 1, timeout=5.0, on_outcome=outcomes.append)
    b.reply(server, c1, "first")
    b.reply(server, c1, "again")
    c2 = b.request(client, "name:server", 2, timeout=1.0, on_outcome=outcomes.append)
    world.run(until=3.0)
    b.reply(server, c2, "too late")
    c3 = b.request(client, "name:server", 3, timeout=5.0, on_outcome=outcomes.append)
    assert b.cancel(c3)
    b.reply(server, c3, "nobody waits")
    b.reply(server, 999, "who?")
    b.reply(server, 0, "who?")
    reasons = [e["reason"] for e in world.log.of("dead_letter")]
    assert reasons == [
        "duplicate_reply",
        "late_reply",
        "orphan_reply",
        "unknown_correlation",
        "unknown_correlation",
    ]
    assert [o.kind for o in outcomes] == ["replied", "timed_out", "cancelled"]
    assert [o.reply for o in outcomes] == ["first", None, None]
    assert world.log.of("send")[-1]["to"] is None  # unknown correlation: no requester


def test_spec_5_7_cancel(world: World) -> None:
    b = world.broker
    client, _, outcomes = setup(world)
    corr = b.request(client, "name:server", 1, timeout=5.0, on_outcome=outcomes.append)
    assert b.cancel(corr) is True
    assert b.cancel(corr) is False
    assert b.cancel(12345) is False
    assert [o.kind for o in outcomes] == ["cancelled"]
    assert world.clock.pending == 0


@pytest.mark.parametrize("how", ["stop", "unregister"])
def test_spec_5_8_stopped_requester_leaves_nothing_pending(world: World, how: str) -> None:
    b = world.broker
    client, _, outcomes = setup(world)
    for i in range(3):
        b.request(client, "name:server", i, timeout=5.0, on_outcome=outcomes.append)
    getattr(b, how)(client)
    assert b.pending_requests() == []
    assert world.clock.pending == 0  # no live timer either
    assert [o.kind for o in outcomes] == ["cancelled"] * 3
    with pytest.raises(ActorNotFound):
        b.request(client, "name:server", 9, timeout=1.0)
    assert b.sent == 3


def test_spec_5_9_failed_when_delivery_fails_without_retry(world: World) -> None:
    b = world.broker
    client, _, outcomes = setup(world)
    corr = b.request(client, "pool:none", 1, timeout=5.0, on_outcome=outcomes.append)
    assert [(o.corr, o.kind) for o in outcomes] == [(corr, "failed")]
    error = outcomes[0].error  # spec 8.4: the delivery error itself, with its fields
    assert isinstance(error, PoolNotFound) and error.pool == "none"
    assert str(error) == "no pool none"
    assert b.rejected == 1 and b.accepted == 0
    assert world.clock.pending == 0


def test_spec_5_9_dropped_request_times_out(world: World) -> None:
    b = world.broker
    client, server, outcomes = setup(world)
    b.stop(server)
    b.restart(server)
    b.request(client, "name:server", 1, timeout=5.0, on_outcome=outcomes.append)
    b.stop(server)  # the queued request is dead-lettered, the request waits for its deadline
    assert outcomes == []
    world.run(until=5.0)
    assert [o.kind for o in outcomes] == ["timed_out"]


@pytest.mark.parametrize("timeout", [0.0, -1.0, float("nan"), float("inf"), "1"])
def test_spec_5_10_bad_timeout_creates_nothing(world: World, timeout: object) -> None:
    client, _, _ = setup(world)
    with pytest.raises(InvalidConfig, match="timeout"):
        world.broker.request(client, "name:server", 1, timeout=timeout)  # type: ignore[arg-type]
    assert world.broker.pending_requests() == [] and world.broker.sent == 0


def test_spec_5_10_unknown_requester(world: World) -> None:
    with pytest.raises(ActorNotFound):
        world.broker.request(77, "name:server", 1, timeout=1.0)


def test_spec_5_3_exactly_one_outcome_under_duplication() -> None:
    class DuplicateEverything:
        def transit(self, env: object) -> Transit:
            return Transit(delay=0.5, duplicate=0.7)

    world = World(network=DuplicateEverything())
    b = world.broker
    client, server, outcomes = setup(world)
    corrs = [
        b.request(client, "name:server", i, timeout=10.0, on_outcome=outcomes.append)
        for i in range(3)
    ]
    world.run(until=1.0)
    while (env := b.dequeue(server)) is not None:
        b.reply(server, env.corr, env.payload)  # type: ignore[arg-type]
    world.run(until=20.0)
    assert sorted(o.corr for o in outcomes) == corrs
    assert {o.kind for o in outcomes} == {"replied"}
    dups = [e for e in world.log.of("send") if "dup_of" in e]
    assert len(dups) == 9  # 3 requests + 6 replies (each request was served twice)
    assert b.dead_letters == {"duplicate_reply": 9}
    assert b.in_flight == 0 and world.conserved()
