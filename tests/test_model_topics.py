"""The reference model's topics (docs/spec.md 1.2: 2.10, 3.9, 7.5) and its send timeout that fails
a request (4.4, 5.9, 6.5), through `model.apply`, the trace checker and the checker's abstraction.
Only the model: nothing here imports `broker` or `sim`."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model import (
    EVENT_FIELDS,
    SPEC_VERSION,
    TRACE_FORMAT,
    TRACE_VERSION,
    Action,
    Addr,
    Advance,
    Arrive,
    Ask,
    CreatePool,
    Dequeue,
    Effect,
    Msg,
    Refused,
    Register,
    Reply,
    Restart,
    Retry,
    State,
    Stop,
    Subscribe,
    Tell,
    TopicState,
    TraceUnreadable,
    Unregister,
    Unsubscribe,
    apply,
    as_event,
    canonical,
    check_trace,
    event_problem,
)
from model._abstraction import encode, normalize
from model._menu import Env
from model._state import ADDRESS_KINDS, NAME

# -- helpers ----------------------------------------------------------------------------------


def run(*actions: Action, state: State | None = None) -> State:
    """The state after `actions`, each of which must be accepted."""
    s = State() if state is None else state
    for a in actions:
        effect = apply(s, a)
        assert not isinstance(effect.result, Refused), (a, effect.result)
        s = effect.state
    return s


def evs(effect: Effect) -> list[tuple[str, dict[str, Any]]]:
    """The events of an effect with every field (spec 9.4)."""
    return [(e.name, dict(e.fields)) for e in effect.events]


def names(effect: Effect) -> list[str]:
    return [e.name for e in effect.events]


def conserved(s: State) -> bool:
    """Spec 7.2."""
    return s.accepted == s.delivered + s.dead_lettered + s.in_flight


def registered(n: int, **mailbox: Any) -> State:
    """`n` anonymous actors, ids 1..n, with the same mailbox settings."""
    return run(*(Register(**mailbox) for _ in range(n)))


# -- 2.1 to 2.3: the address ------------------------------------------------------------------


def test_spec_2_3_topic_address_parses_and_round_trips() -> None:
    assert "topic" in ADDRESS_KINDS
    addr = Addr.parse("topic:news")
    assert addr == Addr("topic", "news")
    assert str(addr) == "topic:news"
    assert Addr.parse(str(addr)) == addr
    for bad in ("topic:", "topic:a b", "topic:ü", "topics:news", "Topic:news"):
        assert Addr.parse(bad) is None, bad


@given(st.from_regex(NAME, fullmatch=True))
def test_spec_2_3_every_name_makes_a_topic_address_that_round_trips(name: str) -> None:
    addr = Addr.parse(f"topic:{name}")
    assert addr == Addr("topic", name)
    assert Addr.parse(str(addr)) == addr


def test_spec_2_3_a_send_to_an_invalid_topic_text_is_misuse() -> None:
    s = registered(1)
    effect = apply(s, Tell(None, "topic:not valid"))
    assert effect.result == Refused("invalid_address")
    assert effect.state is s and effect.events == ()


# -- 2.10: subscribe and unsubscribe -----------------------------------------------------------


def test_spec_2_10_subscribe_appends_in_subscription_order_and_emits() -> None:
    s = run(Register("alice"), Register(), Register())
    e1 = apply(s, Subscribe("news", 3))
    assert e1.result is None
    assert evs(e1) == [("subscribe", {"topic": "news", "actor": "id:3"})]
    e2 = apply(e1.state, Subscribe("news", 1))
    assert evs(e2) == [("subscribe", {"topic": "news", "actor": "alice"})]  # the label
    s = run(Subscribe("news", 2), state=e2.state)
    assert s.topics == (TopicState("news", (3, 1, 2)),)
    assert s.topic("news") == TopicState("news", (3, 1, 2))
    assert s.topic("other") is None


def test_spec_2_10_topics_are_kept_in_order_of_first_subscription() -> None:
    s = run(Subscribe("b", 1), Subscribe("a", 2), Subscribe("b", 2), state=registered(2))
    assert [t.name for t in s.topics] == ["b", "a"]
    assert s.topic("b") == TopicState("b", (1, 2))
    # gone with its last subscriber, and made again, at the end, by the next first one
    s = run(Unsubscribe("b", 1), Unsubscribe("b", 2), state=s)
    assert [t.name for t in s.topics] == ["a"]
    s = run(Subscribe("b", 2), state=s)
    assert [t.name for t in s.topics] == ["a", "b"]


def refused(s: State, action: Action) -> str:
    """The refusal's code; a refusal must change nothing and emit nothing."""
    effect = apply(s, action)
    assert isinstance(effect.result, Refused), effect.result
    assert effect.state is s and effect.events == ()
    return effect.result.code


def test_spec_2_10_subscribe_checks_in_order() -> None:
    s = run(Subscribe("news", 1), state=registered(1))
    # the actor first: an unknown actor with an invalid name is actor_not_found
    assert refused(s, Subscribe("bad name", 9)) == "actor_not_found"
    assert refused(s, Subscribe("news", 9)) == "actor_not_found"
    # then the name: checked before whether the actor subscribed already
    assert refused(s, Subscribe("bad name", 1)) == "invalid_address"
    assert refused(s, Subscribe("", 1)) == "invalid_address"
    assert refused(s, Subscribe("news", 1)) == "duplicate_registration"


def test_spec_2_10_unsubscribe_checks_in_order() -> None:
    s = run(Subscribe("news", 1), state=registered(2))
    assert refused(s, Unsubscribe("bad name", 9)) == "actor_not_found"
    assert refused(s, Unsubscribe("news", 9)) == "actor_not_found"
    # an invalid name is reported as such, not as "not subscribed"
    assert refused(s, Unsubscribe("bad name", 1)) == "invalid_address"
    assert refused(s, Unsubscribe("news", 2)) == "actor_not_found"  # not a subscriber
    assert refused(s, Unsubscribe("never", 1)) == "actor_not_found"  # no such topic


def test_spec_2_10_unsubscribe_removes_and_emits() -> None:
    s = run(Register("alice"), Register(), Subscribe("news", 1), Subscribe("news", 2))
    effect = apply(s, Unsubscribe("news", 1))
    assert effect.result is None
    assert evs(effect) == [("unsubscribe", {"topic": "news", "actor": "alice"})]
    assert effect.state.topics == (TopicState("news", (2,)),)
    last = apply(effect.state, Unsubscribe("news", 2))
    assert evs(last) == [("unsubscribe", {"topic": "news", "actor": "id:2"})]
    assert last.state.topics == ()


def test_spec_2_10_a_stopped_actor_may_subscribe_and_stop_keeps_subscriptions() -> None:
    s = run(Stop(1), state=registered(2))
    s = run(Subscribe("news", 1), Subscribe("news", 2), state=s)
    assert s.topics == (TopicState("news", (1, 2)),)
    stopped = apply(s, Stop(2))
    assert stopped.state.topics == s.topics
    assert "unsubscribe" not in names(stopped)


def test_spec_2_7_unregister_drops_every_subscription_silently() -> None:
    s = run(
        Subscribe("a", 1),
        Subscribe("b", 2),
        Subscribe("b", 1),
        Subscribe("c", 2),
        Subscribe("a", 2),
        state=registered(2),
    )
    effect = apply(s, Unregister(1))
    assert names(effect) == ["unregister"]  # the unregister event covers it
    assert effect.state.topics == (
        TopicState("a", (2,)),
        TopicState("b", (2,)),
        TopicState("c", (2,)),
    )
    gone = apply(effect.state, Unregister(2))
    assert gone.state.topics == ()  # each topic went with its last subscriber


# -- 3.9: delivery to a topic -------------------------------------------------------------------


def test_spec_3_9_fan_out_in_subscription_order_skipping_stopped_subscribers() -> None:
    s = run(Register("alice"), Register(), Register(), Register())
    s = run(Subscribe("news", 3), Subscribe("news", 2), Subscribe("news", 1), state=s)
    s = run(Stop(2), state=s)
    before = s
    effect = apply(s, Tell(4, "topic:news", high=True, ttl=9.0, key="k"))
    assert effect.result == before.next_msg
    m = before.next_msg
    common = {"from": "id:4", "kind": "tell", "key": "k"}
    assert evs(effect) == [
        ("send", {"msg": m, "to": "topic:news", **common}),
        ("route", {"msg": m, "actor": "topic:news"}),
        ("send", {"msg": m + 1, "to": "id:3", "copy_of": m, **common}),
        ("route", {"msg": m + 1, "actor": "id:3"}),
        ("enqueue", {"msg": m + 1, "actor": "id:3", "depth": 1}),
        ("send", {"msg": m + 2, "to": "id:1", "copy_of": m, **common}),
        ("route", {"msg": m + 2, "actor": "alice"}),
        ("enqueue", {"msg": m + 2, "actor": "alice", "depth": 1}),
    ]
    after = effect.state
    assert after.next_msg == m + 3
    assert after.sent == before.sent + 3  # the original and its two copies
    assert after.delivered == before.delivered + 1  # the original, delivered to the topic
    assert after.rejected == before.rejected and after.dead_lettered == before.dead_lettered
    copy = after.actor(3).queue[0]  # type: ignore[union-attr]
    assert copy.id == m + 1 and copy.copy_of == m and copy.dup_of is None
    assert copy.to == Addr("id", "3") and copy.sender == 4 and copy.kind == "tell"
    assert copy.high and copy.key == "k" and copy.deadline == 9.0 and copy.corr is None
    other = replace(copy, id=m + 2, to=Addr("id", "1"))  # the same message but for id and to
    assert after.actor(1).high == (other,)  # type: ignore[union-attr]
    assert after.actor(2).queue == ()  # type: ignore[union-attr]
    assert conserved(after)


@pytest.mark.parametrize("setup", ["unknown", "all_stopped", "unsubscribed"])
def test_spec_3_9_no_live_subscriber_dead_letters_no_subscribers(setup: str) -> None:
    s = registered(2)
    if setup == "all_stopped":
        s = run(Subscribe("news", 1), Subscribe("news", 2), Stop(1), Stop(2), state=s)
    elif setup == "unsubscribed":
        s = run(Subscribe("news", 1), Unsubscribe("news", 1), state=s)
    retry = Retry(max_attempts=5)  # a retry policy never applies to a topic
    effect = apply(s, Tell(None, "topic:news", retry=retry))
    m = s.next_msg
    assert effect.result == m  # not refused: the send succeeds
    assert evs(effect) == [
        ("send", {"msg": m, "from": None, "to": "topic:news", "kind": "tell"}),
        ("dead_letter", {"msg": m, "reason": "no_subscribers"}),
    ]
    after = effect.state
    assert (after.sent, after.rejected, after.delivered, after.dead_lettered) == (1, 0, 0, 1)
    assert after.retries == 0 and after.timers == ()
    assert after.dead_letters[-1].reason == "no_subscribers"
    assert conserved(after)


def test_spec_3_9_a_request_to_a_topic_without_subscribers_times_out() -> None:
    s = registered(1)
    effect = apply(s, Ask(1, "topic:nobody", 2.0, retry=Retry()))
    corr = effect.result
    assert corr == 1
    assert names(effect) == ["send", "dead_letter"]
    assert effect.events[-1].detail == "no_subscribers"
    assert effect.state.pending() == (1,)  # a dead letter that is not a failure (5.9)
    before_deadline = apply(effect.state, Advance(1.999))
    assert before_deadline.events == () and before_deadline.state.pending() == (1,)
    timeout = apply(before_deadline.state, Advance(2.0))
    assert evs(timeout) == [
        ("resolve", {"corr": 1, "outcome": "timed_out", "requester": "id:1", "msg": None})
    ]


def test_spec_3_9_a_copy_refused_by_a_full_reject_mailbox_is_dead_lettered() -> None:
    s = run(Register(capacity=1), Register(), Register())  # 1: full under reject
    s = run(Tell(None, "id:1"), Subscribe("news", 1), Subscribe("news", 2), state=s)
    effect = apply(s, Tell(3, "topic:news", retry=Retry(max_attempts=3)))
    m = s.next_msg
    assert effect.result == m  # the call does not raise
    assert names(effect) == [
        "send",
        "route",
        "send",
        "route",
        "dead_letter",
        "send",
        "route",
        "enqueue",
    ]
    assert evs(effect)[4] == ("dead_letter", {"msg": m + 1, "reason": "mailbox_full"})
    after = effect.state
    assert "reject" not in names(effect) and after.rejected == 0 and after.retries == 0
    assert after.actor(2).queue[0].id == m + 2  # type: ignore[union-attr]  # the others still get theirs
    assert conserved(after)


def test_spec_3_9_a_request_copy_refused_by_a_full_mailbox_does_not_fail_the_request() -> None:
    s = run(Register(capacity=1), Register(), Tell(None, "id:1"), Subscribe("news", 1))
    effect = apply(s, Ask(2, "topic:news", 3.0))
    assert names(effect) == ["send", "route", "send", "route", "dead_letter"]
    assert "resolve" not in names(effect)
    assert effect.state.pending() == (1,)


def test_spec_3_9_a_copy_to_a_full_drop_oldest_mailbox_drops_the_oldest() -> None:
    s = run(Register(capacity=1, backpressure="drop_oldest"), Register())
    s = run(Tell(None, "id:1"), Subscribe("news", 1), state=s)
    old = s.actor(1).queue[0].id  # type: ignore[union-attr]
    effect = apply(s, Tell(2, "topic:news"))
    m = s.next_msg
    assert evs(effect)[2:] == [
        ("send", {"msg": m + 1, "from": "id:2", "to": "id:1", "kind": "tell", "copy_of": m}),
        ("route", {"msg": m + 1, "actor": "id:1"}),
        ("dead_letter", {"msg": old, "reason": "dropped_oldest"}),
        ("enqueue", {"msg": m + 1, "actor": "id:1", "depth": 1}),
    ]
    assert [x.id for x in effect.state.actor(1).queue] == [m + 1]  # type: ignore[union-attr]
    assert conserved(effect.state)


def test_spec_3_9_a_copy_to_a_full_drop_newest_mailbox_is_dropped() -> None:
    s = run(Register(capacity=1, backpressure="drop_newest"), Register())
    s = run(Tell(None, "id:1"), Subscribe("news", 1), state=s)
    effect = apply(s, Tell(2, "topic:news"))
    assert evs(effect)[-1] == ("dead_letter", {"msg": s.next_msg + 1, "reason": "dropped_newest"})
    assert conserved(effect.state)


def test_spec_3_9_a_copy_to_a_full_block_mailbox_parks_then_enters_or_times_out() -> None:
    s = run(Register(capacity=1, backpressure="block", send_timeout=1.0), Register())
    s = run(Tell(None, "id:1"), Subscribe("news", 1), state=s)
    effect = apply(s, Tell(2, "topic:news"))
    copy = s.next_msg + 1
    assert evs(effect)[-1] == ("park", {"msg": copy, "actor": "id:1"})
    parked = effect.state
    assert [p.msg.id for p in parked.actor(1).parked] == [copy]  # type: ignore[union-attr]
    assert conserved(parked)
    # a dequeue frees the slot: the parked copy enters
    freed = apply(parked, Dequeue(1))
    assert ("enqueue", {"msg": copy, "actor": "id:1", "depth": 1}) in evs(freed)
    # or its send timeout (the mailbox's) expires first
    expired = apply(parked, Advance(1.0))
    assert evs(expired) == [("dead_letter", {"msg": copy, "reason": "send_timeout"})]
    assert conserved(expired.state)


def test_spec_5_9_a_parked_request_copy_that_times_out_does_not_fail_the_request() -> None:
    s = run(Register(capacity=1, backpressure="block", send_timeout=1.0), Register())
    s = run(Tell(None, "id:1"), Subscribe("news", 1), state=s)
    asked = apply(s, Ask(2, "topic:news", 5.0))
    assert names(asked)[-1] == "park"
    expired = apply(asked.state, Advance(1.0))
    assert names(expired) == ["dead_letter"]  # the copy's send timeout: nothing more
    assert expired.state.pending() == (1,)


def test_spec_3_9_a_request_to_a_topic_the_first_reply_wins() -> None:
    s = run(Register("a"), Register("b"), Register("client"))
    s = run(Subscribe("jobs", 1), Subscribe("jobs", 2), state=s)
    original = s.next_msg
    asked = apply(s, Ask(3, "topic:jobs", 5.0))
    corr = asked.result
    assert isinstance(corr, int)
    s = asked.state
    # each subscriber dequeues its own copy, which carries the correlation id and deadline
    for actor in (1, 2):
        got = apply(s, Dequeue(actor))
        assert isinstance(got.result, Msg)
        assert got.result.to == Addr("id", str(actor)) and got.result.copy_of == original
        assert got.result.corr == corr and got.result.deadline == 5.0
        s = got.state
    first = apply(s, Reply(2, corr))  # b answers first
    assert evs(first)[-1] == (
        "resolve",
        {"corr": corr, "outcome": "replied", "requester": "client", "msg": first.result},
    )
    second = apply(first.state, Reply(1, corr))
    assert evs(second)[-1] == ("dead_letter", {"msg": second.result, "reason": "duplicate_reply"})
    assert second.state.pending() == ()
    assert conserved(second.state)


def test_spec_3_9_a_delayed_topic_message_fans_out_on_arrival_and_a_duplicate_too() -> None:
    s = run(Register(), Register(), Subscribe("news", 1))
    sent = apply(s, Tell(2, "topic:news", delay=True, duplicate=True))
    m = s.next_msg
    assert names(sent) == ["send", "send"]  # the original and its transit duplicate
    arrived = apply(sent.state, Arrive(m))
    assert [(e.name, e.msg) for e in arrived.events] == [
        ("route", m),
        ("send", m + 2),
        ("route", m + 2),
        ("enqueue", m + 2),
    ]
    dup = apply(arrived.state, Arrive(m + 1))
    copy_of_dup = dict(dup.events[1].fields)
    assert copy_of_dup["copy_of"] == m + 1 and "dup_of" not in copy_of_dup
    assert dup.state.delivered == 2 and conserved(dup.state)


def test_spec_3_7_broadcast_copies_are_unchanged_by_the_shared_copy_mechanism() -> None:
    s = run(CreatePool("p", "broadcast"), Register(pools=("p",)), Register(pools=("p",)))
    s = run(Register(pools=("p",)), Stop(2), state=s)
    effect = apply(s, Tell(None, "pool:p"))
    m = s.next_msg
    assert [(e.name, e.msg, e.actor) for e in effect.events] == [
        ("send", m, None),
        ("route", m, "id:1"),
        ("send", m + 1, None),
        ("route", m + 1, "id:3"),
        ("enqueue", m + 1, "id:3"),
        ("enqueue", m, "id:1"),
    ]
    assert dict(effect.events[2].fields)["copy_of"] == m
    assert effect.state.delivered == 0  # a pool's original is delivered at its dequeue


# -- conservation over random runs (7.2) --------------------------------------------------------

_TOPICS = ("t", "u")
_ACTORS = st.integers(1, 4)
_ACTIONS = st.one_of(
    st.builds(
        Register,
        capacity=st.sampled_from([None, 1, 2]),
        backpressure=st.sampled_from(["reject", "drop_newest", "drop_oldest", "block"]),
        send_timeout=st.sampled_from([None, 0.5]),
    ),
    st.builds(Subscribe, st.sampled_from(_TOPICS), _ACTORS),
    st.builds(Unsubscribe, st.sampled_from(_TOPICS), _ACTORS),
    st.builds(Stop, _ACTORS),
    st.builds(Restart, _ACTORS),
    st.builds(Unregister, _ACTORS),
    st.builds(
        Tell,
        st.none(),
        st.sampled_from(["topic:t", "topic:u", "id:1"]),
        high=st.booleans(),
        duplicate=st.sampled_from([False, 0.25]),
    ),
    st.builds(Ask, _ACTORS, st.sampled_from(["topic:t", "topic:u"]), st.just(1.0)),
    st.builds(Dequeue, _ACTORS),
    st.builds(Reply, _ACTORS, st.integers(1, 4)),
    st.builds(Advance, st.just(0.0)),  # replaced by "now + 0.3" below
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_ACTIONS, max_size=40))
def test_spec_7_2_conservation_and_topic_invariants_hold_on_random_runs(
    actions: list[Action],
) -> None:
    s = State()
    for a in actions:
        if isinstance(a, Advance):
            a = Advance(s.now + 0.3)
        effect = apply(s, a)
        if isinstance(a, Tell | Ask) and str(a.to).startswith("topic:"):
            assert not isinstance(effect.result, Refused) or a.sender is not None, (a, effect)
            assert "reject" not in names(effect) and "retry" not in names(effect)
        if isinstance(effect.result, Refused) and isinstance(a, Subscribe | Unsubscribe):
            assert effect.state is s and effect.events == ()  # 2.10: a refusal changes nothing
        s = effect.state
        assert conserved(s), (a, s)
        ids = {x.id for x in s.actors}
        for topic in s.topics:  # 2.10: a topic exists while it has a subscriber
            assert topic.subscribers, topic
            assert len(set(topic.subscribers)) == len(topic.subscribers)
            assert set(topic.subscribers) <= ids  # unregistered actors are gone
        assert len({t.name for t in s.topics}) == len(s.topics)
        for e in effect.events:
            fields = {k: list(v) if isinstance(v, tuple) else v for k, v in e.fields}
            assert event_problem(e.name, fields) is None, e
            if e.name == "route" and e.actor is not None and e.actor.startswith("topic:"):
                assert s.topic(e.actor.removeprefix("topic:")) is not None
    s = apply(s, Advance(s.now + 10.0)).state  # every timer runs out
    assert conserved(s) and s.pending() == ()


# -- 4.4, 5.9, 6.5: a parked request whose send timeout expires fails ---------------------------


def parked_request(timeout: float = 5.0, send_timeout: float = 1.0) -> tuple[State, int]:
    """A requester `client` whose request waits, parked, in the full `block` mailbox of 1."""
    s = run(Register(capacity=1, backpressure="block"), Register("client"), Tell(None, "id:1"))
    effect = apply(s, Ask(2, "id:1", timeout, send_timeout=send_timeout))
    assert names(effect)[-1] == "park"
    assert isinstance(effect.result, int)
    return effect.state, effect.result


def test_spec_4_4_a_request_parked_past_its_send_timeout_ends_failed() -> None:
    s, corr = parked_request()
    msg = s.actor(1).parked[0].msg.id  # type: ignore[union-attr]
    effect = apply(s, Advance(1.0))
    assert evs(effect) == [
        ("dead_letter", {"msg": msg, "reason": "send_timeout"}),
        ("resolve", {"corr": corr, "outcome": "failed", "requester": "client", "msg": None}),
    ]
    after = effect.state
    assert after.request(corr).outcome == "failed"  # type: ignore[union-attr]
    assert not any(t.kind == "timeout" for t in after.timers)  # 5.3: its timer is gone
    assert after.rejected == 0 and conserved(after)
    # the request timer does not fire later: nothing happens at its deadline
    assert apply(after, Advance(5.0)).events == ()


def test_spec_4_4_a_request_that_timed_out_while_parked_is_only_dead_lettered() -> None:
    s, corr = parked_request(timeout=1.0, send_timeout=2.0)
    timed_out = apply(s, Advance(1.0))
    assert names(timed_out) == ["resolve"] and timed_out.events[0].detail == "timed_out"
    expired = apply(timed_out.state, Advance(2.0))
    assert names(expired) == ["dead_letter"]
    assert expired.state.request(corr).outcome == "timed_out"  # type: ignore[union-attr]


def test_spec_4_4_a_parked_one_way_message_is_only_dead_lettered() -> None:
    s = run(Register(capacity=1, backpressure="block"), Register(), Tell(None, "id:1"))
    s = run(Tell(2, "id:1", send_timeout=1.0), state=s)
    effect = apply(s, Advance(1.0))
    assert names(effect) == ["dead_letter"] and effect.events[0].detail == "send_timeout"


def test_spec_5_9_a_parked_transit_duplicate_that_times_out_does_not_fail_the_request() -> None:
    s = run(Register(capacity=1, backpressure="block", send_timeout=1.0), Register())
    s = run(Tell(None, "id:1"), state=s)
    asked = apply(s, Ask(2, "id:1", 5.0, delay=True, duplicate=True))
    m = s.next_msg
    dup = apply(asked.state, Arrive(m + 1))  # the duplicate parks first
    assert names(dup) == ["route", "park"]
    expired = apply(dup.state, Advance(1.0))
    assert names(expired) == ["dead_letter"]  # the duplicate's send timeout: nothing more
    assert expired.state.pending() == (1,)


# -- 9.4: the event vocabulary ------------------------------------------------------------------


def test_spec_9_4_subscribe_events_are_in_the_vocabulary() -> None:
    for kind in ("subscribe", "unsubscribe"):
        assert EVENT_FIELDS[kind] == {"topic": "text", "actor": "label"}
        fields = {"topic": "news", "actor": "id:1"}
        assert event_problem(kind, fields) is None
        assert event_problem(kind, {"topic": 3, "actor": "id:1"}) is not None
        assert event_problem(kind, {"actor": "id:1"}) is not None
        assert as_event(kind, fields) != as_event(kind, {**fields, "topic": "other"})
    assert as_event("subscribe", {"topic": "x", "actor": "a"}) != as_event(
        "unsubscribe", {"topic": "x", "actor": "a"}
    )


# -- 10: the trace checker reads subscribe and unsubscribe ---------------------------------------


def _op_line(action: Action) -> dict[str, Any]:
    if isinstance(action, Register):
        return {
            "op": "register",
            "name": action.name,
            "capacity": action.capacity,
            "backpressure": action.backpressure,
            "send_timeout": action.send_timeout,
            "services": list(action.services),
            "pools": list(action.pools),
        }
    if isinstance(action, Subscribe | Unsubscribe):
        op = "subscribe" if isinstance(action, Subscribe) else "unsubscribe"
        return {"op": op, "topic": action.topic, "actor": action.actor}
    if isinstance(action, Tell):
        assert action.sender is not None
        return {
            "op": "send",
            "from": action.sender,
            "to": str(action.to),
            "priority": "normal",
            "key": None,
            "ttl": None,
            "timestamp": None,
            "retry": None,
            "send_timeout": None,
        }
    if isinstance(action, Dequeue):
        return {"op": "dequeue", "actor": action.actor}
    raise AssertionError(action)


def trace(actions: list[Action]) -> list[dict[str, Any]]:
    """A trace of `actions` as the model runs them (docs/trace-format.md), header first."""
    lines: list[dict[str, Any]] = [
        {
            "format": TRACE_FORMAT,
            "version": TRACE_VERSION,
            "spec_version": SPEC_VERSION,
            "broker": "model",
            "seed": 0,
            "scenario": {},
        }
    ]
    s = State()
    for action in actions:
        effect = apply(s, action)
        result = effect.result
        op = _op_line(action)
        if isinstance(result, Refused):
            fields = {
                k: "as worded" if k in ("expected", "reason") else v for k, v in result.fields
            }
            op |= {"result": None, "error": result.code, "error_fields": fields}
        else:
            op |= {"result": getattr(result, "id", result), "error": None}
        lines.append(op)
        lines += [
            {"ev": e.name, **{k: list(v) if isinstance(v, tuple) else v for k, v in e.fields}}
            for e in effect.events
        ]
        s = effect.state
    counters = {
        "sent": s.sent,
        "rejected": s.rejected,
        "delivered": s.delivered,
        "dead_lettered": s.dead_lettered,
        "retries": s.retries,
    }
    lines.append({"end": "drained", "counters": counters, "pending": list(s.pending())})
    return lines


def text(lines: list[dict[str, Any]]) -> list[str]:
    out = [canonical(lines[0])]
    for i, line in enumerate(lines[1:], 1):
        out.append(canonical({"t": 0.0, "seq": i, **line}))
    return out


TOPIC_RUN: list[Action] = [
    Register("a"),
    Register(),
    Subscribe("news", 1),
    Subscribe("news", 2),
    Subscribe("news", 2),  # refused: duplicate_registration
    Tell(2, "topic:news"),
    Unsubscribe("news", 1),
    Unsubscribe("news", 1),  # refused: actor_not_found
    Tell(1, "topic:news"),
    Dequeue(2),
    Dequeue(1),
    Dequeue(2),
    Unsubscribe("news", 2),
    Tell(1, "topic:news"),  # no_subscribers
]


def test_spec_10_a_trace_with_subscriptions_conforms() -> None:
    lines = trace(TOPIC_RUN)
    assert any(line.get("error") == "duplicate_registration" for line in lines)
    assert any(line.get("reason") == "no_subscribers" for line in lines)
    verdict = check_trace(text(lines))
    assert verdict.ok, verdict.illegal
    assert verdict.ops == len(TOPIC_RUN)
    assert verdict.state is not None and verdict.state.topics == ()


def test_spec_10_a_trace_missing_a_copy_or_an_unsubscribe_is_illegal() -> None:
    lines = trace(TOPIC_RUN)
    no_copy = [x for x in lines if not (x.get("ev") == "send" and "copy_of" in x)]
    assert not check_trace(text(no_copy)).ok
    at = next(i for i, x in enumerate(lines) if x.get("ev") == "unsubscribe")
    wrong = [*lines[:at], {**lines[at], "topic": "other"}, *lines[at + 1 :]]
    verdict = check_trace(text(wrong))
    assert not verdict.ok and verdict.illegal is not None and "unsubscribe" in verdict.illegal.why
    # a subscribe op line whose refusal the model does not share
    at = next(i for i, x in enumerate(lines) if x.get("op") == "subscribe")
    refused_op = {**lines[at], "result": None, "error": "actor_not_found"}
    assert not check_trace(text([*lines[:at], refused_op, *lines[at + 2 :]])).ok


@pytest.mark.parametrize(
    ("key_", "value"), [("topic", 5), ("topic", None), ("actor", "1"), ("actor", True)]
)
def test_spec_10_subscribe_op_arguments_are_type_checked(key_: str, value: Any) -> None:
    lines = trace(TOPIC_RUN[:3])
    at = next(i for i, x in enumerate(lines) if x.get("op") == "subscribe")
    lines[at] = {**lines[at], key_: value}
    with pytest.raises(TraceUnreadable, match=key_):
        check_trace(text(lines))
    missing = {k: v for k, v in trace(TOPIC_RUN[:3])[at].items() if k != key_}
    lines[at] = missing
    with pytest.raises(TraceUnreadable, match="lacks"):
        check_trace(text(lines))


# -- 11: the checker's abstraction keeps the topics ---------------------------------------------


def test_spec_11_2_normalize_and_the_state_key_keep_topics() -> None:
    """Spec 11.2: the relative state (shifted, history dropped) keeps the subscriptions."""
    s = run(Subscribe("news", 1), Subscribe("news", 2), Advance(3.0), state=registered(2))
    assert normalize(s).topics == s.topics
    other = run(Unsubscribe("news", 2), Subscribe("news", 2), state=s)  # same members...
    assert other.topics == s.topics
    swapped = run(Unsubscribe("news", 1), Subscribe("news", 1), state=s)  # ...other order
    identity = {1: 1, 2: 2}
    assert encode(s, Env(), identity) == encode(normalize(other), Env(), identity)
    assert encode(s, Env(), identity) != encode(normalize(swapped), Env(), identity)


def test_trace_lines_are_json() -> None:
    """The helper writes what check_trace reads (guards the tests above against a bad helper)."""
    for line in text(trace(TOPIC_RUN)):
        assert isinstance(json.loads(line), dict)
