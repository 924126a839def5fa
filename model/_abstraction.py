"""What the model checker remembers of a state: relative time, no history, one actor per orbit.

`normalize` maps a model state to an equivalent one (docs/spec.md 11.2): time shifted so that
`now = 0` (the semantics only ever compare and add times, so they are invariant under a shift),
deadlines in the past clamped to 0 (every past deadline behaves alike: expired, late), timer
sequence numbers renumbered by rank (only their order is read), and the write-only history
dropped (the counters of spec 7.2 and the list of dead letters: `apply` never reads them).

`key` encodes a (state, env) pair as nested tuples of plain values; with symmetry it is the least
encoding over every renaming of interchangeable actors (members among members, clients among
clients), so states that differ only by which identical actor is which share one key.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from model._menu import CheckBounds, Env, clients, members
from model._state import Addr, Msg, Parked, Request, State, Timer

Key = tuple[Any, ...]


def normalize(s: State) -> State:
    """`s` seen from its own present, without history (see the module docstring)."""
    shift = s.now
    rank = {t.seq: i for i, t in enumerate(s.timers)}

    def msg(m: Msg) -> Msg:
        if m.deadline is None or (shift == 0.0 and m.deadline >= 0.0):
            return m
        deadline = max(m.deadline - shift, 0.0)
        return Msg(m.id, m.kind, m.sender, m.to, m.corr, deadline, m.high, m.attempt)

    timers = tuple(
        Timer(
            t.when - shift,
            rank[t.seq],
            t.kind,
            t.corr,
            t.actor,
            None if t.msg is None else msg(t.msg),
            t.retry,
            t.wait,
        )
        for t in s.timers
    )
    actors = tuple(
        a
        if not (a.high or a.normal or a.parked)
        else replace(
            a,
            high=tuple(msg(m) for m in a.high),
            normal=tuple(msg(m) for m in a.normal),
            parked=tuple(
                Parked(msg(p.msg), None if p.timer is None else rank[p.timer]) for p in a.parked
            ),
        )
        for a in s.actors
    )
    requests = tuple(
        r
        if (r.issued_at == 0.0 and (r.deadline == 0.0 if not r.pending else shift == 0.0))
        else Request(r.corr, r.requester, 0.0, r.deadline - shift if r.pending else 0.0, r.outcome)
        for r in s.requests
    )
    return State(
        now=0.0,
        actors=actors,
        services=s.services,
        pools=s.pools,
        topics=s.topics,
        requests=requests,
        timers=timers,
        next_actor=s.next_actor,
        next_msg=s.next_msg,
        next_corr=s.next_corr,
        next_seq=len(timers),
    )


Renaming = Callable[[int], int]


def renamer(b: CheckBounds, symmetry: bool) -> Callable[[State, Env], list[dict[int, int]]]:
    """The renamings to try for a state: the identity without symmetry; with it, those that
    number each group of interchangeable actors in the order of a renaming-invariant
    signature (a member's place in the pool and among the service's providers, a client's
    requests), every order of equal signatures tried. The least encoding over them is then
    the same for every state of an orbit, and far cheaper than trying all N! renamings."""
    ms, cs = members(b), clients(b)
    identity = [{i: i for i in (*ms, *cs)}]
    if not symmetry:
        return lambda s, env: identity

    def options(s: State, env: Env) -> list[dict[int, int]]:
        pool, service = s.pools[0].members, s.services[0].providers if s.services else ()
        held = {m: sorted((c, n) for mm, c, n in env.held if mm == m) for m in ms}

        def sig_m(m: int) -> Any:
            a = s.actor(m)
            assert a is not None
            where = (pool.index(m) if m in pool else 99, service.index(m) if m in service else 99)
            return (*where, a.alive, a.busy, held[m], tuple(x.id for x in a.queue))

        def sig_c(c: int) -> Any:
            a = s.actor(c)
            assert a is not None
            return (tuple(r.corr for r in s.requests if r.requester == c), a.alive)

        out = []
        for om in _orders(ms, sig_m):
            for oc in _orders(cs, sig_c):
                out.append(dict(zip((*om, *oc), (*ms, *cs), strict=True)))
        return out

    return options


def _orders(group: tuple[int, ...], sig: Callable[[int], Any]) -> list[tuple[int, ...]]:
    """`group` sorted by `sig`, once per order of the members that tie."""
    sigs = {x: sig(x) for x in group}
    ranked = sorted(group, key=lambda x: sigs[x])
    out: list[tuple[int, ...]] = [()]
    i = 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and sigs[ranked[j]] == sigs[ranked[i]]:
            j += 1
        out = [(*o, *p) for o in out for p in itertools.permutations(ranked[i:j])]
        i = j
    return out


def key(s: State, env: Env, names: list[dict[int, int]]) -> Key:
    """The least encoding of (s, env) over the renamings `names`."""
    if len(names) == 1:
        return _encode(s, env, names[0])
    return min(_encode(s, env, r) for r in names)


def _addr(a: Addr | None, r: dict[int, int]) -> Any:
    if a is None:
        return ("", "")
    if a.kind == "id":
        return ("id", str(r.get(int(a.value), int(a.value))))
    return (a.kind, a.value)


def _msg(m: Msg, r: dict[int, int]) -> Any:
    sender = 0 if m.sender is None else r.get(m.sender, m.sender)
    deadline = -1.0 if m.deadline is None else m.deadline
    return (m.id, m.kind, sender, _addr(m.to, r), m.corr or 0, deadline, m.high, m.attempt)


def _encode(s: State, env: Env, r: dict[int, int]) -> Key:
    actors = sorted(
        (
            r.get(a.id, a.id),
            a.alive,
            a.busy,
            tuple(_msg(m, r) for m in a.high),
            tuple(_msg(m, r) for m in a.normal),
            tuple((_msg(p.msg, r), -1 if p.timer is None else p.timer) for p in a.parked),
            a.pools,
            a.services,
        )
        for a in s.actors
    )
    pools = tuple((p.name, tuple(r[m] for m in p.members), p.cursor) for p in s.pools)
    services = tuple((v.name, tuple(r[m] for m in v.providers)) for v in s.services)
    topics = tuple((t.name, tuple(r[m] for m in t.subscribers)) for t in s.topics)
    requests = tuple((q.corr, r[q.requester], q.deadline, q.outcome or "") for q in s.requests)
    timers = tuple(
        (
            t.when,
            t.seq,
            t.kind,
            t.corr or 0,
            0 if t.actor is None else r[t.actor],
            () if t.msg is None else _msg(t.msg, r),
        )
        for t in s.timers
    )
    held = tuple(sorted((r[m], c, n) for m, c, n in env.held))
    return (
        tuple(actors),
        pools,
        services,
        topics,
        requests,
        timers,
        s.next_msg,
        s.next_corr,
        env.enrolled,
        held,
    )
