"""The refinement check: the reference broker's state, seen through an abstraction function, is
the model's state.

Comparing events catches a broker that does something wrong; comparing states after every step
also catches one that is about to: a round-robin cursor left pointing at the wrong member, a
pending entry that leaked, a parked message in the wrong order. Each shows in events only later,
if ever, in a run that happens to exercise it. `view(broker)` and `model_view(state)` project both
onto the same plain values (ids, labels, message ids in order, deadlines); `refinement` names the
first part where they differ.

The abstraction reads the reference broker's internals (the registry, mailboxes and pending
table), so it applies to `broker.Broker` and its mutants, not to ports.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import model as m
from broker import Broker, Envelope

View = dict[str, Any]

__all__ = ["View", "model_view", "refinement", "view"]


def view(broker: Broker[Any], *, relative: bool = False) -> View:
    """The broker's state as the model sees a state (see the module docstring). With
    `relative`, deadlines are seen from the present (the model checker's states, spec 11.2)."""
    reg = broker.registry
    now = broker.timers.now if relative else 0.0
    actors = tuple(
        (
            a.id,
            a.label,
            a.alive,
            bool(a.busy),
            _ids(a.mailbox.high),
            _ids(a.mailbox.normal),
            _ids(env for env, _ in a.mailbox.parked),
            tuple(a.pools),
            tuple(a.services),
        )
        for a in reg.actors.values()
    )
    pools = tuple(
        (
            p.name,
            p.strategy,
            tuple(x.id for x in p.members),
            p.cursor if p.strategy == "round_robin" else 0,
            _ids(p.queue.mailbox.high) if p.queue is not None else (),
            _ids(p.queue.mailbox.normal) if p.queue is not None else (),
        )
        for p in reg.pools.values()
    )
    services = tuple(
        (name, tuple(x.id for x in providers))
        for name, providers in reg.services.items()
        if providers
    )
    topics = tuple((name, tuple(x.id for x in subs)) for name, subs in reg.topics.items())
    pending = tuple(
        (corr, p.requester.id, _seen(p.deadline, now, relative))
        for corr, p in sorted(broker._pending.items())
    )
    return {
        "actors": actors,
        "pools": pools,
        "services": services,
        "topics": topics,
        "pending": pending,
        "next ids": (reg.next_id, broker._next_msg, len(broker._fate)),
    }


def model_view(s: m.State, *, relative: bool = False) -> View:
    """The model's state, projected as `view` projects the broker's."""
    actors = tuple(
        (
            a.id,
            a.label,
            a.alive,
            a.busy,
            _mids(a.high),
            _mids(a.normal),
            _mids(p.msg for p in a.parked),
            a.pools,
            a.services,
        )
        for a in s.actors
    )
    pools = tuple(
        (
            p.name,
            p.strategy,
            p.members,
            p.cursor if p.strategy == "round_robin" else 0,
            _mids(p.high),
            _mids(p.normal),
        )
        for p in s.pools
    )
    services = tuple((x.name, x.providers) for x in s.services if x.providers)
    topics = tuple((t.name, t.subscribers) for t in s.topics)
    pending = tuple(
        (r.corr, r.requester, _seen(r.deadline, s.now, relative)) for r in s.requests if r.pending
    )
    return {
        "actors": actors,
        "pools": pools,
        "services": services,
        "topics": topics,
        "pending": pending,
        "next ids": (s.next_actor, s.next_msg, s.next_corr),
    }


def refinement(broker: Broker[Any], s: m.State, *, relative: bool = False) -> str | None:
    """None when the broker's state maps onto the model's; else the first part that differs."""
    got, want = view(broker, relative=relative), model_view(s, relative=relative)
    for part, value in got.items():
        if value != want[part]:
            return f"{part}: broker {value}, model {want[part]}"
    return None


def _seen(deadline: float, now: float, relative: bool) -> float:
    """A deadline as the checker keeps it: from the present, a past one clamped to 0."""
    return max(deadline - now, 0.0) if relative else deadline


def _ids(envelopes: Iterable[Envelope[Any]]) -> tuple[int, ...]:
    return tuple(env.msg for env in envelopes)


def _mids(messages: Iterable[m.Msg]) -> tuple[int, ...]:
    return tuple(msg.id for msg in messages)
