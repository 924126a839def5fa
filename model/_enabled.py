"""`enabled(state, bounds)`: the finite set of actions worth exploring from a state.

The model's `apply` accepts any action; a model checker needs a finite menu. `Bounds` caps what
grows (actors registered, messages sent, requests per requester, time) and fixes the small
vocabularies (names, pools, capacities, timeouts). Nondeterminism is enumerated too: one action
per choice of a `random` pool (spec 3.3), and with `faults`, a dropped-in-transit variant of
every send (spec 7.4).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from model._actions import (
    Action,
    Advance,
    Ask,
    Cancel,
    CreatePool,
    Dequeue,
    Done,
    Join,
    Leave,
    NeedChoice,
    Register,
    Reply,
    Restart,
    Stop,
    Tell,
    Unregister,
)
from model._semantics import apply
from model._state import Addr, Backpressure, Retry, State, StrategyName


@dataclass(frozen=True, slots=True)
class Bounds:
    """What `enabled` may generate. Small values keep the state space small."""

    max_actors: int = 2  # registrations ever made
    names: tuple[str, ...] = ("a",)
    pools: tuple[tuple[str, StrategyName], ...] = (("p", "round_robin"),)
    capacities: tuple[int | None, ...] = (1,)
    backpressures: tuple[Backpressure, ...] = ("reject",)
    max_messages: int = 3  # message ids ever issued
    max_requests: int = 1  # requests per requester
    timeouts: tuple[float, ...] = (2.0,)
    horizon: float = 3.0  # time advances in ticks of 1 up to here
    retry: Retry | None = None
    faults: bool = False


def enabled(state: State, bounds: Bounds) -> tuple[Action, ...]:
    """Every action `bounds` allows from `state` (spec 2 to 7), with choices enumerated.

    Refused operations (which change nothing, spec 2.6) are left out: they are self-loops.

    >>> from model import State
    >>> enabled(State(), Bounds(max_actors=1, pools=(), capacities=(None,)))[:2]
    (Register(name=None, capacity=None, backpressure='reject', send_timeout=None, services=(), pools=()), Register(name='a', capacity=None, backpressure='reject', send_timeout=None, services=(), pools=()))
    """  # noqa: E501
    out: list[Action] = []
    for action in _candidates(state, bounds):
        for concrete in _with_choices(state, action):
            effect = apply(state, concrete)
            if effect.state != state or effect.events:
                out.append(concrete)
    return tuple(out)


def _candidates(s: State, b: Bounds) -> Iterator[Action]:
    if s.next_actor <= b.max_actors:
        for name in (None, *b.names):
            for cap in b.capacities:
                for bp in b.backpressures if cap is not None else ("reject",):
                    yield Register(name, cap, bp)
    for pool, strategy in b.pools:
        yield CreatePool(pool, strategy)
    ids = [a.id for a in s.actors]
    for a in s.actors:
        yield Stop(a.id)
        yield Restart(a.id)
        yield Unregister(a.id)
        yield Dequeue(a.id)
        if a.busy:
            yield Done(a.id)
        for p in s.pools:
            yield Leave(p.name, a.id) if a.id in p.members else Join(p.name, a.id)
    targets = [Addr("id", str(i)) for i in ids]
    targets += [Addr("name", n) for n in b.names]
    targets += [Addr("pool", p) for p, _ in b.pools]
    drops = (False, True) if b.faults else (False,)
    if s.next_msg <= b.max_messages:
        for to in targets:
            for high in (False, True):
                for drop in drops:
                    yield Tell(None, to, high, retry=b.retry, drop=drop)
        for a in s.actors:
            issued = sum(1 for r in s.requests if r.requester == a.id)
            if not a.alive or issued >= b.max_requests:
                continue
            for to in targets:
                for timeout in b.timeouts:
                    for drop in drops:
                        yield Ask(a.id, to, timeout, retry=b.retry, drop=drop)
        for r in s.requests:
            for drop in drops:
                yield Reply(None, r.corr, drop)
    for r in s.requests:
        if r.pending:
            yield Cancel(r.corr)
    if s.now + 1 <= b.horizon:
        yield Advance(s.now + 1)


def _with_choices(state: State, action: Action) -> Iterator[Action]:
    """`action` once per way of choosing members of `random` pools (spec 3.3)."""
    try:
        apply(state, action)
    except NeedChoice as need:
        made: tuple[int, ...] = getattr(action, "choices", ())
        for member in need.live:
            yield from _with_choices(state, _choosing(action, (*made, member)))
        return
    yield action


def _choosing(action: Action, choices: tuple[int, ...]) -> Action:
    chooser: Callable[..., Action] = replace
    return chooser(action, choices=choices)
