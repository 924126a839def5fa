"""Retry policy for transient delivery errors (docs/spec.md section 6)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from broker._rng import Rng
from broker.errors import InvalidConfig


def check_number(value: object, what: str, *, low: float = 0.0, strict: bool = False) -> float:
    """`value` as a float if finite and >= low (> low if strict); else InvalidConfig."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < low
        or (strict and value == low)
    ):
        # rule 8.3, 8.4: negative, zero (if strict), NaN or infinite is invalid
        raise InvalidConfig(what, value, f"a finite number {'>' if strict else '>='} {low:g}")
    return float(value)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how late a transient failure is retried (spec 6.2).

    Attempt `k` (k = 1 is the first retry) waits
    `min(max_backoff, backoff * multiplier ** (k - 1)) * (1 - jitter * u)` with `u` drawn from the
    broker's seeded stream, so jitter only ever shortens a wait and never breaks the cap.
    """

    max_attempts: int = 3
    backoff: float = 0.1
    multiplier: float = 2.0
    max_backoff: float = 5.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        attempts = self.max_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            # rule 6.2, 8.3: max_attempts is an integer >= 1
            raise InvalidConfig("max_attempts", attempts, "an integer >= 1")
        # rule 6.2, 8.3: backoff >= 0, multiplier >= 1, max_backoff >= 0
        check_number(self.backoff, "backoff")
        check_number(self.multiplier, "multiplier", low=1.0)
        check_number(self.max_backoff, "max_backoff")
        check_number(self.jitter, "jitter")
        if self.jitter > 1.0:
            # rule 6.2, 8.3: jitter is in [0, 1]
            raise InvalidConfig("jitter", self.jitter, "a number in [0, 1]")

    def delay(self, retry: int, rng: Rng) -> float:
        """The wait before retry number `retry` (1-based)."""
        # rule 6.2: min(max_backoff, backoff * multiplier^(k-1))
        try:
            uncapped = self.backoff * self.multiplier ** (retry - 1)
        except OverflowError:
            # rule 6.2: a power past the largest double is infinite, so the wait is the cap
            # (0 when backoff is 0). Every wait that did not overflow is computed as before.
            uncapped = math.inf if self.backoff else self.backoff
        base = min(self.max_backoff, uncapped)
        if self.jitter:
            # rule 1.2, 6.2: times (1 - jitter * u), one draw
            base *= 1.0 - self.jitter * rng.random()
        return base
