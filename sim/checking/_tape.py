"""Choice tapes: random choices recorded so that a world can be regenerated, and shrunk.

A generator draws every choice from a `Tape`. Drawing fresh, the tape takes values from a
SplitMix64 stream and records them; replaying, it reads a given list instead, and past the end
of that list every choice is 0. A generator is written so that 0 is always the simplest choice
(no fault, the first strategy, the lowest value, "no more elements"), so a tape with fewer or
lower values makes a simpler world. `shrink` searches for such a tape that still fails the same
way, with no knowledge of what the values mean: Hypothesis' engine and TigerBeetle's simulator
shrink this way, instead of with hand-written passes per feature.

A value that is too large for its draw is read as the largest choice (`min(v, n - 1)`), so
lowering a value never jumps to an unrelated choice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from broker import SplitMix64

__all__ = ["Tape", "shrink", "sort_key"]


class Tape:
    """The choices of one generation: fresh from `seed`, or replayed from `choices`."""

    __slots__ = ("choices", "given", "rng")

    def __init__(self, seed: int | None = None, given: Sequence[int] | None = None) -> None:
        if (seed is None) == (given is None):
            raise ValueError("a tape is drawn from a seed or replayed from choices, not both")
        self.rng = SplitMix64(seed) if seed is not None else None
        self.given = given
        self.choices: list[int] = []  # what was drawn (replayed: clamped to each draw's range)

    def below(self, n: int) -> int:
        """A choice in [0, n); 0 is the simplest. A draw with one choice (n = 1) still takes
        its place on the tape, so that the draws after it keep their places when an earlier
        change gives a list one more or one fewer option."""
        i = len(self.choices)
        if n <= 1:
            value = 0
        elif self.rng is not None:
            value = self.rng.randrange(n)
        else:
            assert self.given is not None
            value = min(self.given[i], n - 1) if i < len(self.given) else 0
        self.choices.append(value)
        return value

    def chance(self, percent: int) -> bool:
        """True with `percent` % probability when drawn fresh; False is the simpler choice."""
        return self.below(100) >= 100 - percent

    def pick(self, options: Sequence[str]) -> str:
        """One of `options`; the first is the simplest."""
        return options[self.below(len(options))]

    def grid(self, low: float, high: float, steps: int) -> float:
        """One of `steps + 1` evenly spaced values from `low` to `high` (rounded to 6 places,
        so a written scenario reads well); `low` is the simplest."""
        return round(low + (high - low) * self.below(steps + 1) / steps, 6)

    def many(self, least: int, most: int, percent: int) -> Iterator[int]:
        """Numbers 1, 2, ... for the elements of a list of `least` to `most`: past `least`,
        each one more is a `chance(percent)`, drawn just before the element. So an element's
        draws follow its own "one more" on the tape, and deleting that block (or lowering the
        flag, when it is the last) removes the element and nothing else."""
        n = 0
        while n < most and (n < least or self.chance(percent)):
            n += 1
            yield n


def sort_key(tape: Sequence[int]) -> tuple[int, Sequence[int]]:
    """Shortlex: a shorter tape is simpler, then the lexicographically smaller one."""
    return (len(tape), tape)


def shrink(
    tape: Sequence[int],
    fails: Callable[[Sequence[int]], Sequence[int] | None],
    *,
    budget: int = 2000,
) -> tuple[list[int], int]:
    """The simplest tape found that still fails, and how many candidates were tried.

    `fails(candidate)` runs the world a candidate generates and returns the tape it actually
    consumed if it fails the same way (same signature), else None. A candidate is kept only if
    that consumed tape is simpler (`sort_key`) than the current one, so the search always
    ends. Passes, repeated until none helps or `budget` runs are spent: delete blocks of 8, 4,
    2 and 1 choices; zero blocks; lower each choice (to 0, then by halving).
    """
    best = list(tape)
    tried = 0

    def attempt(candidate: list[int]) -> bool:
        nonlocal best, tried
        if tried >= budget or sort_key(candidate) >= sort_key(best):
            return False
        tried += 1
        consumed = fails(candidate)
        if consumed is not None and sort_key(list(consumed)) < sort_key(best):
            best = list(consumed)
            return True
        return False

    improved = True
    while improved and tried < budget:
        improved = False
        for size in range(8, 0, -1):
            i = len(best) - size
            while i >= 0:
                if attempt(best[:i] + best[i + size :]):
                    improved = True
                i -= 1
                i = min(i, len(best) - size)
        for size in (8, 4, 2):
            i = 0
            while i + size <= len(best):
                if any(best[i : i + size]) and attempt(best[:i] + [0] * size + best[i + size :]):
                    improved = True
                i += 1
        i = 0
        while i < len(best):
            value = best[i]
            for lower in _lower(value):
                if attempt([*best[:i], lower, *best[i + 1 :]]):
                    improved = True
                    break
            i += 1
    return best, tried


def _lower(value: int) -> list[int]:
    """Lower values to try for `value`, simplest first: 0, then halves, then one less."""
    out: list[int] = []
    if value > 0:
        out.append(0)
    half = value // 2
    while half > 0 and half not in out:
        out.append(half)
        half //= 2
    if value - 1 > 0 and value - 1 not in out:
        out.append(value - 1)
    return out
