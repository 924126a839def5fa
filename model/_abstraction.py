"""What the model checker remembers of a state: relative time, no history, one actor per orbit.

`normalize` maps a model state to an equivalent one (docs/spec.md 11.2): time shifted so that
`now = 0` (the semantics only ever compare and add times, so they are invariant under a shift),
deadlines in the past clamped to 0 (every past deadline behaves alike: expired, late), timer
sequence numbers renumbered by rank (only their order is read), and the write-only history
dropped (the counters of spec 7.2, the list of dead letters, when a request was issued: `apply`
never reads them).

`Keys(bounds, symmetry).key(state, env)` is the seen-set key of a (state, env) pair: the
encoding of `normalize(state)` as nested tuples of plain values, computed in one pass without
building the normalized state. With symmetry it is the encoding under a *canonical renaming* of
the interchangeable actors (members among members, clients among clients): each group is
numbered in the order of a renaming-invariant signature (a member's place in the pool and among
the service's providers, its liveness, work and mailbox; a client's requests), and only when
signatures tie is the least encoding over the orders of the tied actors taken. States of one
orbit then share one key. Ties are rare once set-up is over (two members never share a place in
the pool), so most states are encoded once.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from model._menu import CheckBounds, Env, clients, members
from model._state import ActorState, Addr, Msg, Parked, Request, State, Timer

Key = tuple[Any, ...]
_NO_DEADLINE = -1.0  # how a message without a deadline is encoded (deadlines are >= 0)


def normalize(s: State) -> State:
    """`s` seen from its own present, without history (see the module docstring)."""
    shift = s.now
    rank = {t.seq: i for i, t in enumerate(s.timers)}

    def msg(m: Msg) -> Msg:
        if m.deadline is None or (shift == 0.0 and m.deadline >= 0.0):
            return m
        deadline = max(m.deadline - shift, 0.0)
        return Msg(
            m.id, m.kind, m.sender, m.to, m.corr, deadline, m.high, m.attempt, m.key, m.copy_of,
            m.dup_of,
        )  # fmt: skip

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
        else a.__class__(
            a.id,
            a.name,
            a.alive,
            a.capacity,
            a.backpressure,
            a.send_timeout,
            tuple(msg(m) for m in a.high),
            tuple(msg(m) for m in a.normal),
            tuple(Parked(msg(p.msg), None if p.timer is None else rank[p.timer]) for p in a.parked),
            a.busy,
            a.services,
            a.pools,
        )
        for a in s.actors
    )
    pools = tuple(
        p
        if not (p.high or p.normal)
        else p.__class__(
            p.name,
            p.strategy,
            p.members,
            p.cursor,
            tuple(msg(m) for m in p.high),
            tuple(msg(m) for m in p.normal),
        )
        for p in s.pools
    )
    requests = tuple(
        r
        if (r.issued_at == 0.0 and (r.deadline == 0.0 if not r.pending else shift == 0.0))
        else Request(r.corr, r.requester, 0.0, r.deadline - shift if r.pending else 0.0, r.outcome)
        for r in s.requests
    )
    transit = tuple(t.__class__(msg(t.msg), t.retry, t.wait) for t in s.transit)
    return State(
        now=0.0,
        actors=actors,
        services=s.services,
        pools=pools,
        topics=s.topics,
        requests=requests,
        timers=timers,
        next_actor=s.next_actor,
        next_msg=s.next_msg,
        next_corr=s.next_corr,
        next_seq=len(timers),
        transit=transit,
    )


class Keys:
    """The seen-set keys of one check (see the module docstring)."""

    def __init__(self, b: CheckBounds, symmetry: bool) -> None:
        self.members, self.clients = members(b), clients(b)
        self.symmetry = symmetry
        self.names = (*self.members, *self.clients)
        self.identity = {i: i for i in self.names}

    def key(self, s: State, env: Env) -> Key:
        """The key of (s, env): `encode(normalize(s), env, r)` for the canonical renaming r,
        or the least such encoding when tied signatures leave several."""
        if not self.symmetry:
            return encode(s, env, self.identity)
        names = self.renamings(s, env)
        if len(names) == 1:
            return encode(s, env, names[0])
        return min(encode(s, env, r) for r in names)

    def renamings(self, s: State, env: Env) -> list[dict[int, int]]:
        """The renamings that number each group of interchangeable actors in the order of its
        renaming-invariant signature, one per order of the actors whose signatures tie.

        A signature has a cheap first part (a member's place in the pool and among the
        service's providers, a client's requests) and the rest, computed only for the actors
        the first part leaves tied."""
        pool = s.pools[0].members if s.pools else ()
        by_client: dict[int, tuple[int, ...]] = {}
        for q in s.requests:
            by_client[q.requester] = (*by_client.get(q.requester, ()), q.corr)
        if len(pool) == len(self.members):  # the common case, without the signatures' closures
            firsts = sorted([(by_client.get(c, ()), c) for c in self.clients])
            if all(firsts[i][0] != firsts[i + 1][0] for i in range(len(firsts) - 1)):
                return [dict(zip((*pool, *[c for _, c in firsts]), self.names, strict=True))]
        return self._renamings(s, env, pool, by_client)

    def _renamings(
        self, s: State, env: Env, pool: tuple[int, ...], by_client: dict[int, tuple[int, ...]]
    ) -> list[dict[int, int]]:
        service = s.services[0].providers if s.services else ()
        by_id: dict[int, ActorState] = {}

        def actor(x: int) -> ActorState:
            if not by_id:
                by_id.update((a.id, a) for a in s.actors)
            return by_id[x]

        def place(m: int) -> Any:
            return (
                pool.index(m) if m in pool else 99,
                service.index(m) if m in service else 99,
            )

        def sig_m(m: int) -> Any:
            a = actor(m)
            return (
                a.alive, a.busy, a.name or "", env.member_sig(m),
                tuple(x.id for x in a.high), tuple(x.id for x in a.normal),
                tuple(p.msg.id for p in a.parked),
            )  # fmt: skip

        def requests(c: int) -> Any:
            return by_client.get(c, ())

        def sig_c(c: int) -> Any:
            a = actor(c)
            return (a.alive, a.name or "", env.client_sig(c))

        if len(pool) == len(self.members):  # every member in the pool: its order is theirs
            oms: list[tuple[int, ...]] = [pool]
        else:
            oms = _orders(self.members, place, sig_m)
        ocs = _orders(self.clients, requests, sig_c)
        return [dict(zip((*om, *oc), self.names, strict=True)) for om in oms for oc in ocs]


def _orders(
    group: tuple[int, ...], first: Callable[[int], Any], rest: Callable[[int], Any]
) -> list[tuple[int, ...]]:
    """`group` sorted by signature (`first`, then `rest` where `first` ties), once per order
    of the members whose whole signatures tie."""
    pairs = sorted((first(x), x) for x in group)
    if all(pairs[i][0] != pairs[i + 1][0] for i in range(len(pairs) - 1)):
        return [tuple(x for _, x in pairs)]
    full = sorted(((f, rest(x)), x) for f, x in pairs)
    out: list[tuple[int, ...]] = [()]
    i = 0
    while i < len(full):
        j = i
        while j < len(full) and full[j][0] == full[i][0]:
            j += 1
        tied = [x for _, x in full[i:j]]
        out = [(*o, *p) for o in out for p in itertools.permutations(tied)]
        i = j
    return out


def encode(s: State, env: Env, r: dict[int, int]) -> Key:
    """`normalize(s)` and `env` as nested tuples of plain values, actor ids renamed by `r`
    (ids outside `r` kept), in one pass: every time relative to `s.now`, past deadlines 0,
    timers by rank, no history."""
    shift = s.now
    rank = {t.seq: i for i, t in enumerate(s.timers)}
    get = r.get

    def addr(a: Addr | None) -> Any:
        if a is None:
            return ("", "")
        if a.kind == "id":
            n = int(a.value)
            return ("id", str(get(n, n)))
        return (a.kind, a.value)

    def msg(m: Msg) -> Any:
        sender = 0 if m.sender is None else get(m.sender, m.sender)
        d = m.deadline
        deadline = _NO_DEADLINE if d is None else (d - shift if d > shift else 0.0)
        k = m.key if isinstance(m.key, str) or m.key is None else "*"
        return (
            m.id, m.kind, sender, addr(m.to), m.corr or 0, deadline, m.high, m.attempt,
            k or "", m.copy_of or 0, m.dup_of or 0,
        )  # fmt: skip

    actors = sorted(  # list comprehensions, not generators: the checker's hottest lines
        [
            (
                get(a.id, a.id),
                a.name or "",
                a.alive,
                a.busy,
                tuple(map(msg, a.high)) if a.high else (),
                tuple(map(msg, a.normal)) if a.normal else (),
                tuple([(msg(p.msg), -1 if p.timer is None else rank[p.timer]) for p in a.parked])
                if a.parked
                else (),
                a.pools,
                a.services,
            )
            for a in s.actors
        ]
    )
    pools = tuple(
        [
            (
                p.name,
                tuple(map(r.__getitem__, p.members)),
                p.cursor,
                tuple(map(msg, p.high)),
                tuple(map(msg, p.normal)),
            )
            for p in s.pools
        ]
    )
    services = tuple([(v.name, tuple(map(r.__getitem__, v.providers))) for v in s.services])
    topics = tuple([(t.name, tuple(map(r.__getitem__, t.subscribers))) for t in s.topics])
    requests = tuple(
        [
            (
                q.corr,
                r[q.requester],
                q.deadline - shift if q.outcome is None else 0.0,
                q.outcome or "",
            )
            for q in s.requests
        ]
    )
    timers = tuple(
        [
            (
                t.when - shift,
                t.kind,
                t.corr or 0,
                0 if t.actor is None else r[t.actor],
                () if t.msg is None else msg(t.msg),
                -1.0 if t.wait is None else t.wait,
            )
            for t in s.timers
        ]
    )
    transit = tuple([msg(t.msg) for t in s.transit])
    return (
        tuple(actors),
        pools,
        services,
        topics,
        requests,
        timers,
        transit,
        s.next_msg,
        s.next_corr,
        env.encode(r),
    )
