"""Service-time and delay distributions, and key samplers (docs/scenario-format.md).

Each is a frozen record: `sample(rng)` draws from the stream it is given (it owns no randomness) and
`to_dict()` is its scenario-file form. How many draws a sample consumes is part of the determinism
contract: `Constant` consumes none, `Exponential` and `Uniform` one each, `LogNormal` whatever
`random.Random.lognormvariate` consumes (a variable number; it is rejection based).
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from sim.scenario._limits import MAX_SIGMA, ZIPF_MAX_N
from sim.scenario._tables import ScenarioError, Table

__all__ = [
    "Constant",
    "Dist",
    "Exponential",
    "KeySpec",
    "LogNormal",
    "Uniform",
    "UniformKeys",
    "Zipf",
    "parse_dist",
    "parse_keys",
]


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _finite(x: float) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True, slots=True)
class Exponential:
    """Exponentially distributed with the given mean (> 0)."""

    mean: float

    def __post_init__(self) -> None:
        _require(_finite(self.mean) and self.mean > 0, f"Exponential mean must be > 0: {self!r}")

    def sample(self, rng: random.Random) -> float:
        return rng.expovariate(1.0 / self.mean)

    def to_dict(self) -> dict[str, object]:
        return {"dist": "exponential", "mean": self.mean}


@dataclass(frozen=True, slots=True)
class Constant:
    """Always `value` (>= 0); draws nothing from the stream."""

    value: float

    def __post_init__(self) -> None:
        _require(_finite(self.value) and self.value >= 0, f"Constant value must be >= 0: {self!r}")

    @property
    def mean(self) -> float:
        return self.value

    def sample(self, rng: random.Random) -> float:
        return self.value

    def to_dict(self) -> dict[str, object]:
        return {"dist": "constant", "value": self.value}


@dataclass(frozen=True, slots=True)
class Uniform:
    """Uniform on [low, high], 0 <= low <= high."""

    low: float
    high: float

    def __post_init__(self) -> None:
        _require(
            _finite(self.low) and _finite(self.high) and 0 <= self.low <= self.high,
            f"Uniform needs 0 <= low <= high: {self!r}",
        )

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)

    def to_dict(self) -> dict[str, object]:
        return {"dist": "uniform", "low": self.low, "high": self.high}


@dataclass(frozen=True, slots=True)
class LogNormal:
    """Log-normal with the given *mean of the distribution itself* (> 0) and shape `sigma` (>= 0).

    `sigma` is the standard deviation of the underlying normal; its mean is
    `mu = ln(mean) - sigma**2 / 2`, so that E[X] = exp(mu + sigma**2 / 2) = mean. Specifying the
    mean rather than mu keeps the offered load of a scenario readable whatever the shape.
    """

    mean: float
    sigma: float
    _mu: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _require(
            _finite(self.mean)
            and self.mean > 0
            and _finite(self.sigma)
            and 0 <= self.sigma <= MAX_SIGMA,
            f"LogNormal needs mean > 0 and 0 <= sigma <= {MAX_SIGMA:g}: {self!r}",
        )
        object.__setattr__(self, "_mu", math.log(self.mean) - self.sigma**2 / 2)

    def sample(self, rng: random.Random) -> float:
        return rng.lognormvariate(self._mu, self.sigma)

    def to_dict(self) -> dict[str, object]:
        return {"dist": "lognormal", "mean": self.mean, "sigma": self.sigma}


Dist: TypeAlias = Exponential | Constant | Uniform | LogNormal


@dataclass(frozen=True, slots=True)
class UniformKeys:
    """Message keys 0..n-1, equally likely."""

    n: int

    def __post_init__(self) -> None:
        _require(isinstance(self.n, int) and self.n >= 1, f"UniformKeys needs n >= 1: {self!r}")

    def sample_key(self, rng: random.Random) -> int:
        return rng.randrange(self.n)

    def to_dict(self) -> dict[str, object]:
        return {"dist": "uniform", "n": self.n}


@dataclass(frozen=True, slots=True)
class Zipf:
    """Message keys 0..n-1 with P(k) proportional to 1 / (k + 1)**s: key 0 is the hottest.

    One draw per key: `bisect` over cumulative weights, computed at the first draw (not when
    the scenario is read: a scenario over the caps is refused before any table is built).
    """

    n: int
    s: float
    _cumulative: tuple[float, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _require(
            isinstance(self.n, int) and 1 <= self.n <= ZIPF_MAX_N,
            f"Zipf needs 1 <= n <= {ZIPF_MAX_N}: {self!r}",
        )
        _require(_finite(self.s) and self.s >= 0, f"Zipf needs s >= 0: {self!r}")

    def sample_key(self, rng: random.Random) -> int:
        cumulative = self._cumulative
        if not cumulative:
            weights = ((k + 1) ** -self.s for k in range(self.n))
            cumulative = tuple(itertools.accumulate(weights))
            object.__setattr__(self, "_cumulative", cumulative)
        # random() < 1, so the point is below the total and the index is at most n - 1.
        return bisect.bisect_right(cumulative, rng.random() * cumulative[-1])

    def to_dict(self) -> dict[str, object]:
        return {"dist": "zipf", "n": self.n, "s": self.s}


KeySpec: TypeAlias = UniformKeys | Zipf

_DIST_KEYS: dict[str, tuple[str, ...]] = {
    "exponential": ("mean",),
    "constant": ("value",),
    "uniform": ("low", "high"),
    "lognormal": ("mean", "sigma"),
}
_KEY_DISTS: dict[str, tuple[str, ...]] = {"uniform": ("n",), "zipf": ("n", "s")}


def read_dist(t: Table) -> Dist:
    """Validate one distribution table (see `parse_dist`)."""
    name = t.choice("dist", tuple(_DIST_KEYS))
    t.check_keys(("dist", *_DIST_KEYS[name]))
    if name == "exponential":
        return Exponential(t.time("mean", above=0))
    if name == "constant":
        return Constant(t.time("value", low=0))
    if name == "uniform":
        low = t.time("low", low=0)
        high = t.time("high", low=0)
        if high < low:
            raise t.error("high", f"must be >= low ({low!r}), got {high!r}")
        return Uniform(low, high)
    mean = t.time("mean", above=0)
    sigma = t.limited("sigma", t.number("sigma", low=0), "the cap on sigma", high=MAX_SIGMA)
    return LogNormal(mean, sigma)


def read_keys(t: Table) -> KeySpec:
    """Validate one key-sampler table (see `parse_keys`)."""
    name = t.choice("dist", tuple(_KEY_DISTS))
    t.check_keys(("dist", *_KEY_DISTS[name]))
    if name == "uniform":
        return UniformKeys(t.integer("n", low=1))
    return Zipf(t.integer("n", low=1, high=ZIPF_MAX_N), t.number("s", low=0))


def _as_table(table: object, where: str, key: str) -> Table:
    if not isinstance(table, Mapping):
        raise ScenarioError(f"{where}: expected a table, got {table!r}")
    return Table(table, where, f"{key}." if key else "")


def parse_dist(table: Mapping[str, object], where: str, *, key: str = "") -> Dist:
    """A distribution from its table, e.g. `{"dist": "exponential", "mean": 1.0}`.

    Parameters: `where` is the file and table for error messages (`scenario.toml: [[pool]] #1`);
    `key` the key holding the table, reported dotted (`service.mean`).
    Raises `ScenarioError` naming the key for an unknown `dist`, an unknown, missing or non-numeric
    parameter, or one out of range (mean > 0, value >= 0, 0 <= low <= high, 0 <= sigma <= 10;
    times at most 1e12: sim/scenario/_limits.py).

    >>> parse_dist({"dist": "lognormal", "mean": 2, "sigma": 0.5}, "x.toml")
    LogNormal(mean=2.0, sigma=0.5)
    """
    return read_dist(_as_table(table, where, key))


def parse_keys(table: Mapping[str, object], where: str, *, key: str = "") -> KeySpec:
    """A key sampler: `{"dist": "uniform", "n": N}` or `{"dist": "zipf", "n": N, "s": S}`."""
    return read_keys(_as_table(table, where, key))
