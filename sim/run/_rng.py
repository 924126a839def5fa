"""Named random streams derived from one seed.

Each component draws from its own `random.Random`, seeded from sha256 of `"{seed}/{name}"`. The
derivation depends only on the seed and the name (never on `hash()`, `PYTHONHASHSEED`, or the
order in which streams are created), so adding a stream never shifts another stream's draws. The
derivation is part of the trace format: changing it changes every recorded run, and the tests pin
its values.
"""

from __future__ import annotations

import hashlib
import random

__all__ = ["Streams", "stream"]


def stream(seed: int, name: str) -> random.Random:
    """A fresh `random.Random` for the stream `name` of run `seed`.

    >>> stream(7, "arrivals").random() == stream(7, "arrivals").random()
    True
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    if not isinstance(name, str):
        raise TypeError(f"stream name must be a str, got {name!r}")
    digest = hashlib.sha256(f"{seed}/{name}".encode()).digest()
    return random.Random(int.from_bytes(digest, "big"))


class Streams:
    """The named streams of one run: `get(name)` returns the same `random.Random` every time."""

    __slots__ = ("_cache", "seed")

    seed: int
    _cache: dict[str, random.Random]

    def __init__(self, seed: int) -> None:
        stream(seed, "")  # validates the seed with the same rules and message
        self.seed = seed
        self._cache = {}

    def get(self, name: str) -> random.Random:
        rng = self._cache.get(name)
        if rng is None:
            rng = self._cache[name] = stream(self.seed, name)
        return rng

    def names(self) -> tuple[str, ...]:
        """The names of the streams handed out so far, sorted."""
        return tuple(sorted(self._cache))

    def __repr__(self) -> str:
        return f"Streams(seed={self.seed!r})"
