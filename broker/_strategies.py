"""Pool strategies: pure choices over the pool's members (docs/spec.md section 3).

A strategy is a function `(members, state, rng, key) -> (index, new_state)`. `members` is the
pool's membership in join order; each member exposes `alive`, `load` (queued + in service) and
`label` (its stable name).
Stopped members are never chosen. `state` is the strategy's own integer (round robin's cursor);
the caller guarantees at least one member is alive. Adding a strategy is adding a function to
`STRATEGY_FUNCTIONS`.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
from collections.abc import Callable, Sequence
from typing import Literal, Protocol

from broker._rng import Rng
from broker.errors import InvalidConfig, RouteError

# Points per member on the consistent-hash ring (spec 3.6).
VNODES = 64


class Member(Protocol):
    @property
    def alive(self) -> bool: ...

    @property
    def load(self) -> int: ...

    @property
    def label(self) -> str: ...


Strategy = Callable[[Sequence[Member], int, Rng, "str | None"], tuple[int, int]]


def round_robin(
    members: Sequence[Member], cursor: int, rng: Rng, key: str | None
) -> tuple[int, int]:
    """Spec 3.2: the first live member at or after the cursor; the cursor moves past it."""
    # rule 3.2, 3.2.1: the first live member at or after the cursor
    n = len(members)
    for step in range(n):
        i = (cursor + step) % n
        if members[i].alive:
            # rule 3.2.1: the cursor moves to the index after the chosen one
            return i, (i + 1) % n
    raise AssertionError("round_robin called without a live member")


def random_choice(
    members: Sequence[Member], state: int, rng: Rng, key: str | None
) -> tuple[int, int]:
    """Spec 3.3: uniform over live members, one draw of `rng.randrange(live)`."""
    # rule 3.3: the live members
    live = [i for i, m in enumerate(members) if m.alive]
    # rule 1.2, 3.3: one draw randrange(len(live))
    return live[rng.randrange(len(live))], state


def least_loaded(
    members: Sequence[Member], state: int, rng: Rng, key: str | None
) -> tuple[int, int]:
    """Spec 3.4: the live member with the smallest load; ties to membership order."""
    best = -1
    best_load = 0
    for i, m in enumerate(members):
        # rule 3.4: smallest load, ties to the earliest
        if m.alive and (best < 0 or m.load < best_load):
            best, best_load = i, m.load
    return best, state


def power_of_two(
    members: Sequence[Member], state: int, rng: Rng, key: str | None
) -> tuple[int, int]:
    """Spec 3.5: two distinct live members drawn uniformly, the less loaded wins, ties to the
    earlier in membership order. Draws: `i = randrange(n)`, `j = randrange(n - 1)`, and j is
    bumped past i, so the pair is uniform over distinct pairs. One live member: no draw."""
    live = [i for i, m in enumerate(members) if m.alive]
    if len(live) == 1:
        # rule 3.5: one live member: chosen without a draw
        return live[0], state
    # rule 1.2, 3.5: draw i = randrange(n)
    i = rng.randrange(len(live))
    # rule 1.2, 3.5: then j = randrange(n - 1)
    j = rng.randrange(len(live) - 1)
    if j >= i:
        # rule 3.5: j >= i: add 1, so the pair is distinct
        j += 1
    a, b = sorted((live[i], live[j]))
    # rule 3.5: the less loaded; ties to the earlier
    return (b if members[b].load < members[a].load else a), state


def stable_hash(text: str) -> int:
    """A 64-bit hash that is the same in every process and every language (spec 3.6)."""
    # rule 3.6: H(text) is the first 8 bytes of BLAKE2b-64, big-endian
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


@functools.lru_cache(maxsize=256)
def _ring(labels: tuple[str, ...]) -> tuple[list[int], list[int]]:
    """Ring points and, for each, the index of its member; ties broken by label then vnode."""
    # rule 3.6: 64 points per member, ordered by (point, label, v)
    points = sorted(
        (stable_hash(f"{label}#{v}"), label, v, i)
        for i, label in enumerate(labels)
        for v in range(VNODES)
    )
    return [p[0] for p in points], [p[3] for p in points]


def consistent_hash(
    members: Sequence[Member], state: int, rng: Rng, key: str | None
) -> tuple[int, int]:
    """Spec 3.6: the first live member clockwise from the key's point on a ring of virtual
    nodes. The ring depends only on the members' labels, so a leaving member moves only its
    own keys."""
    if key is None:
        # rule 3.6: a message without a key is a RouteError
        raise RouteError("pool", "a consistent_hash pool needs a message key")
    hashes, owners = _ring(tuple(m.label for m in members))
    # rule 3.6: the first point at or after the key's
    start = bisect.bisect_left(hashes, stable_hash(key))
    n = len(hashes)
    for step in range(n):
        owner = owners[(start + step) % n]
        if members[owner].alive:
            # rule 3.6: whose owner is live
            return owner, state
    raise AssertionError("consistent_hash called without a live member")


def first_live(members: Sequence[Member], state: int, rng: Rng, key: str | None) -> tuple[int, int]:
    """`broadcast` (spec 3.7) routes the original to the first live member; the broker sends
    each other live member its own copy. `shared` (spec 3.8) never chooses: the pool's queue
    takes the message."""
    for i, m in enumerate(members):
        if m.alive:
            # rule 3.7: a broadcast original goes to the first live member
            return i, state
    raise AssertionError("first_live called without a live member")


StrategyName = Literal[
    "round_robin",
    "random",
    "least_loaded",
    "power_of_two",
    "consistent_hash",
    "broadcast",
    "shared",
]
STRATEGY_FUNCTIONS: dict[StrategyName, Strategy] = {
    "round_robin": round_robin,
    "random": random_choice,
    "least_loaded": least_loaded,
    "power_of_two": power_of_two,
    "consistent_hash": consistent_hash,
    "broadcast": first_live,
    "shared": first_live,
}
STRATEGIES: tuple[StrategyName, ...] = tuple(STRATEGY_FUNCTIONS)


def leave_cursor(cursor: int, left_index: int, remaining: int) -> int:
    """Round robin's cursor after the member at `left_index` leaves (spec 3.2.3).

    Members after the leaver shift down by one, so a cursor past the leaver shifts with them;
    this is what keeps rotation from skipping or double-serving a remaining member.
    """
    if left_index < cursor:
        # rule 3.2.3: a leaver before the cursor moves it back by one
        cursor -= 1
    # rule 3.2.3: then modulo the new size
    return 0 if remaining == 0 else cursor % remaining


def check_strategy(name: object) -> StrategyName:
    for known in STRATEGIES:
        if name == known:
            return known
    # rule 3.1, 8.3, 8.4: an unknown strategy is InvalidConfig
    raise InvalidConfig("strategy", name, f"one of {', '.join(STRATEGIES)}")
