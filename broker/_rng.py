"""The broker's random stream (docs/spec.md 1.2): SplitMix64, with Lemire's bounded draws.

Any language implements it in a few lines with 64-bit unsigned arithmetic, so a port given the
same seed makes the same draws as the reference and writes the same trace, byte for byte
(CPython's Mersenne Twister and its `randrange` rejection sampling would have to be ported
whole). The spec lists test vectors; tests/test_rng.py checks them.
"""

from __future__ import annotations

from typing import Protocol

_MASK = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15


class Rng(Protocol):
    """What the broker draws (spec 1.2): an integer in [0, n) and a number in [0, 1)."""

    def randrange(self, n: int, /) -> int: ...
    def random(self) -> float: ...


class SplitMix64:
    """Sebastiano Vigna's SplitMix64 (the seeding generator of xoshiro), state = the seed.

    >>> r = SplitMix64(1234567)
    >>> r.next64()
    6457827717110365317
    >>> SplitMix64(7).randrange(10)
    3
    """

    __slots__ = ("state",)

    def __init__(self, seed: int) -> None:
        self.state = seed & _MASK

    def next64(self) -> int:
        """The next 64-bit output."""
        # rule 1.2: SplitMix64's next(), modulo 2^64
        self.state = z = (self.state + _GAMMA) & _MASK
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def randrange(self, n: int, /) -> int:
        """Uniform in [0, n), n >= 1: Lemire's multiply-shift with rejection ("Fast random
        integer generation in an interval", 2019), on 64-bit outputs."""
        if n < 1:
            raise ValueError(f"randrange needs n >= 1, got {n}")
        # rule 1.2: below(n), Lemire's method
        m = self.next64() * n
        low = m & _MASK
        if low < n:
            # rule 1.2: reject while the low half is below (2^64 - n) mod n
            threshold = ((1 << 64) - n) % n
            while low < threshold:
                m = self.next64() * n
                low = m & _MASK
        return m >> 64

    def random(self) -> float:
        """Uniform in [0, 1): the top 53 bits of one output, times 2^-53."""
        # rule 1.2: unit(): (next() >> 11) * 2^-53
        return (self.next64() >> 11) * (1.0 / (1 << 53))
