"""Pool strategies: pure choices over the pool's members (docs/spec.md section 3).

A strategy is a function `(members, state, rng, key) -> (index, new_state)`. `members` is the
pool's membership in join order; each member exposes `alive` and `load` (queued + in service).
Stopped members are never chosen. `state` is the strategy's own integer (round robin's cursor);
the caller guarantees at least one member is alive. Adding a strategy is adding a function to
`STRATEGY_FUNCTIONS`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Protocol

from broker.errors import InvalidConfig


class Member(Protocol):
    @property
    def alive(self) -> bool: ...

    @property
    def load(self) -> int: ...


Strategy = Callable[[Sequence[Member], int, random.Random, "str | None"], tuple[int, int]]


def round_robin(
    members: Sequence[Member], cursor: int, rng: random.Random, key: str | None
) -> tuple[int, int]:
    """Spec 3.2: the first live member at or after the cursor; the cursor moves past it."""
    n = len(members)
    for step in range(n):
        i = (cursor + step) % n
        if members[i].alive:
            return i, (i + 1) % n
    raise AssertionError("round_robin called without a live member")


def random_choice(
    members: Sequence[Member], state: int, rng: random.Random, key: str | None
) -> tuple[int, int]:
    """Spec 3.3: uniform over live members, one draw of `rng.randrange(live)`."""
    live = [i for i, m in enumerate(members) if m.alive]
    return live[rng.randrange(len(live))], state


def least_loaded(
    members: Sequence[Member], state: int, rng: random.Random, key: str | None
) -> tuple[int, int]:
    """Spec 3.4: the live member with the smallest load; ties to membership order."""
    best = -1
    best_load = 0
    for i, m in enumerate(members):
        if m.alive and (best < 0 or m.load < best_load):
            best, best_load = i, m.load
    return best, state


STRATEGY_FUNCTIONS: dict[str, Strategy] = {
    "round_robin": round_robin,
    "random": random_choice,
    "least_loaded": least_loaded,
}
STRATEGIES: tuple[str, ...] = tuple(STRATEGY_FUNCTIONS)


def leave_cursor(cursor: int, left_index: int, remaining: int) -> int:
    """Round robin's cursor after the member at `left_index` leaves (spec 3.2.3).

    Members after the leaver shift down by one, so a cursor past the leaver shifts with them;
    this is what keeps rotation from skipping or double-serving a remaining member.
    """
    if left_index < cursor:
        cursor -= 1
    return 0 if remaining == 0 else cursor % remaining


def check_strategy(name: object) -> str:
    if name not in STRATEGY_FUNCTIONS:
        raise InvalidConfig(f"invalid strategy {name!r}: use one of {', '.join(STRATEGIES)}")
    return name
