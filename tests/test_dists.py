"""Service-time distributions and key samplers (sim/scenario/_dists.py)."""

from __future__ import annotations

import math
import statistics
from collections import Counter

import pytest

from sim.run import stream
from sim.scenario import (
    Constant,
    Dist,
    Exponential,
    LogNormal,
    ScenarioError,
    Uniform,
    UniformKeys,
    Zipf,
    parse_dist,
    parse_keys,
)

N = 40_000


@pytest.mark.parametrize(
    ("dist", "mean", "stdev"),
    [
        (Exponential(2.0), 2.0, 2.0),
        (Uniform(1.0, 3.0), 2.0, 2.0 / math.sqrt(12)),
        # sd of a lognormal: mean * sqrt(exp(sigma**2) - 1)
        (LogNormal(2.0, 0.5), 2.0, 2.0 * math.sqrt(math.exp(0.25) - 1)),
        (LogNormal(3.0, 0.0), 3.0, 0.0),
    ],
    ids=repr,
)
def test_sample_mean_and_spread(dist: Dist, mean: float, stdev: float) -> None:
    rng = stream(1, "dists")
    xs = [dist.sample(rng) for _ in range(N)]
    assert min(xs) >= 0
    assert statistics.fmean(xs) == pytest.approx(mean, rel=0.02)
    assert statistics.pstdev(xs) == pytest.approx(stdev, rel=0.05, abs=1e-9)
    assert dist.mean == mean


def test_lognormal_mu_is_chosen_so_the_mean_is_the_parameter() -> None:
    d = LogNormal(2.0, 0.5)
    assert d._mu == pytest.approx(math.log(2.0) - 0.125)
    rng = stream(1, "median")
    xs = sorted(d.sample(rng) for _ in range(N))
    assert xs[N // 2] == pytest.approx(math.exp(d._mu), rel=0.03)  # the median is exp(mu)


def test_constant_draws_nothing_from_the_stream() -> None:
    a, b = stream(2, "s"), stream(2, "s")
    assert Constant(0.25).sample(a) == 0.25
    assert a.random() == b.random()


def test_samples_are_reproducible_from_the_stream() -> None:
    d = Exponential(1.0)
    a, b = stream(9, "svc"), stream(9, "svc")
    assert [d.sample(a) for _ in range(10)] == [d.sample(b) for _ in range(10)]


def test_zipf_frequencies_follow_the_power_law() -> None:
    z = Zipf(10, 1.0)
    rng = stream(3, "keys")
    counts = Counter(z.sample_key(rng) for _ in range(N))
    assert set(counts) == set(range(10))
    harmonic = sum(1 / k for k in range(1, 11))
    for k in (0, 1, 4, 9):
        assert counts[k] / N == pytest.approx(1 / (k + 1) / harmonic, rel=0.06)


def test_zipf_with_one_key_and_zero_exponent() -> None:
    rng = stream(3, "keys")
    assert {Zipf(1, 2.0).sample_key(rng) for _ in range(100)} == {0}
    counts = Counter(Zipf(4, 0.0).sample_key(rng) for _ in range(N))
    assert all(c / N == pytest.approx(0.25, rel=0.05) for c in counts.values())


def test_uniform_keys_cover_the_range() -> None:
    rng = stream(3, "keys")
    assert {UniformKeys(5).sample_key(rng) for _ in range(500)} == set(range(5))


def test_zipf_equality_ignores_the_precomputed_table() -> None:
    assert Zipf(100, 1.1) == Zipf(100, 1.1)
    assert hash(Zipf(100, 1.1)) == hash(Zipf(100, 1.1))
    assert repr(Zipf(3, 1.0)) == "Zipf(n=3, s=1.0)"


@pytest.mark.parametrize(
    "dist",
    [Exponential(1.5), Constant(0.0), Uniform(0.0, 2.0), LogNormal(1.0, 0.25)],
    ids=repr,
)
def test_to_dict_parses_back(dist: Dist) -> None:
    assert parse_dist(dist.to_dict(), "x.toml") == dist


@pytest.mark.parametrize("keys", [UniformKeys(7), Zipf(100, 1.1)], ids=repr)
def test_keys_to_dict_parses_back(keys: UniformKeys | Zipf) -> None:
    assert parse_keys(keys.to_dict(), "x.toml") == keys


def test_parse_dist_accepts_integers_as_floats() -> None:
    d = parse_dist({"dist": "uniform", "low": 1, "high": 2}, "x.toml")
    assert d == Uniform(1.0, 2.0)
    assert isinstance(d, Uniform)
    assert isinstance(d.low, float)


W = 'f.toml: [[pool]] #1 "w"'


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({}, 'missing required key "service.dist"'),
        (
            {"dist": "gamma"},
            'key "service.dist": "gamma" is not one of exponential, constant, uniform, lognormal',
        ),
        (
            {"dist": "exponentail", "mean": 1},
            'key "service.dist": "exponentail" is not one of exponential, constant, uniform, '
            'lognormal (did you mean "exponential"?)',
        ),
        ({"dist": "exponential"}, 'missing required key "service.mean"'),
        ({"dist": "exponential", "mean": 0}, 'key "service.mean": must be > 0, got 0'),
        ({"dist": "exponential", "mean": -1.5}, 'key "service.mean": must be > 0, got -1.5'),
        (
            {"dist": "exponential", "mean": True},
            'key "service.mean": expected a number, got true (a boolean)',
        ),
        (
            {"dist": "exponential", "mean": "1"},
            'key "service.mean": expected a number, got "1" (a string)',
        ),
        (
            {"dist": "exponential", "mean": math.inf},
            'key "service.mean": must be a finite number, got inf',
        ),
        (
            {"dist": "exponential", "meen": 1.0},
            'unknown key "service.meen" (did you mean "service.mean"?)',
        ),
        (
            {"dist": "constant", "value": 1, "sigma": 1},
            'unknown key "service.sigma" (expected one of: dist, value)',
        ),
        ({"dist": "constant", "value": -0.1}, 'key "service.value": must be >= 0, got -0.1'),
        ({"dist": "uniform", "low": -1, "high": 2}, 'key "service.low": must be >= 0, got -1'),
        (
            {"dist": "uniform", "low": 3, "high": 2},
            'key "service.high": must be >= low (3.0), got 2.0',
        ),
        (
            {"dist": "lognormal", "mean": 1, "sigma": -0.5},
            'key "service.sigma": must be >= 0, got -0.5',
        ),
        (
            {"dist": "lognormal", "mean": math.nan, "sigma": 1},
            'key "service.mean": must be a finite number, got nan',
        ),
    ],
)
def test_parse_dist_errors_name_file_table_and_key(table: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_dist(table, W, key="service")
    assert str(info.value) == f"{W}: {message}"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"dist": "zipf", "n": 0, "s": 1.0}, 'key "keys.n": must be >= 1, got 0'),
        (
            {"dist": "zipf", "n": 10.0, "s": 1.0},
            'key "keys.n": expected an integer, got 10.0 (a float)',
        ),
        ({"dist": "zipf", "n": 10, "s": -1}, 'key "keys.s": must be >= 0, got -1'),
        ({"dist": "zipf", "n": 10**8, "s": 1}, 'key "keys.n": must be <= 10000000, got 100000000'),
        ({"dist": "uniform", "n": 5, "s": 1}, 'unknown key "keys.s" (expected one of: dist, n)'),
        ({"dist": "gauss", "n": 5}, 'key "keys.dist": "gauss" is not one of uniform, zipf'),
    ],
)
def test_parse_keys_errors(table: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_keys(table, W, key="keys")
    assert str(info.value) == f"{W}: {message}"


def test_parse_dist_rejects_a_non_table() -> None:
    with pytest.raises(ScenarioError, match=r"^f\.toml: expected a table, got 3$"):
        parse_dist(3, "f.toml")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "build",
    [
        lambda: Exponential(0.0),
        lambda: Constant(-1.0),
        lambda: Uniform(2.0, 1.0),
        lambda: LogNormal(1.0, -1.0),
        lambda: UniformKeys(0),
        lambda: Zipf(0, 1.0),
        lambda: Zipf(5, math.nan),
    ],
)
def test_direct_construction_validates(build: object) -> None:
    with pytest.raises(ValueError):
        build()  # type: ignore[operator]
