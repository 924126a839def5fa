"""The simulator against queueing theory (sim.lab.theory), with batch-means 95% confidence
intervals.

Every run: Poisson arrivals, exponential service of mean 1 (mu = 1), the request pattern with a
timeout no request reaches, no faults. A 95% interval misses the truth in one run out of twenty
by design, so every seed here was fixed before its test was first run (seed 0, and 0..N-1 for
the replications of the slow tests) and not chosen afterwards; the simulator is deterministic,
so each test gives the same verdict every time. Quick tests also require the interval to be
narrow, so they cannot pass by being vague.
"""

from __future__ import annotations

import doctest
from typing import Any

import pytest

import sim.lab.theory
from sim import Scenario, Simulation, parse_scenario
from sim.lab import wait_times
from sim.lab.theory import (
    batch_means,
    erlang_c,
    mm1_response,
    mmc_response,
    mmc_wait,
    power_of_d_response,
    random_pool_response,
    round_robin_response,
)


def pool(strategy: str, size: int, rate: float, until: float, seed: int = 0) -> Scenario:
    data: dict[str, Any] = {
        "seed": seed,
        "until": until,
        "pool": [
            {
                "name": "w",
                "size": size,
                "strategy": strategy,
                "service": {"dist": "exponential", "mean": 1.0},
            }
        ],
        "client": [
            {
                "name": "c",
                "target": "pool:w",
                "arrivals": {"process": "poisson", "rate": rate},
                "timeout": 1e9,
            }
        ],
    }
    return parse_scenario(data, "test_theory")


def latencies(s: Scenario) -> list[float]:
    """Response times of every request in resolution order (the broker's own record)."""
    sim = Simulation(s, monitors=False)
    result = sim.run()
    assert result.summary["requests"]["timed_out"] == 0
    return list(sim.broker.latencies)


def assert_covers(samples: list[float], truth: float, max_rel_width: float) -> None:
    mean, half = batch_means(samples)
    assert abs(mean - truth) <= half, f"95% CI {mean:.4f} +- {half:.4f} misses {truth:.4f}"
    assert half <= max_rel_width * truth, f"CI half-width {half:.4f} too wide for {truth:.4f}"


# -- the closed forms themselves ----------------------------------------------------------------


def test_doctests() -> None:
    failures, tried = doctest.testmod(sim.lab.theory)
    assert tried > 10 and failures == 0


def test_erlang_c_textbook_values() -> None:
    assert erlang_c(4, 3.0, 1.0) == pytest.approx(0.5094, abs=5e-5)
    assert mmc_wait(4, 3.0, 1.0) == pytest.approx(0.5094, abs=5e-5)
    assert mmc_response(4, 3.0, 1.0) == pytest.approx(1.5094, abs=5e-5)
    assert erlang_c(2, 1.0, 1.0) == pytest.approx(
        1 / 3
    )  # M/M/2, a = 1: B = 1/5, C = 2B / (2 - a(1 - B)) = 1/3
    # Large c stays finite and sane (no a^c / c! overflow).
    assert 0.0 < erlang_c(500, 490.0, 1.0) < 1.0


def test_power_of_d_limit_and_its_edges() -> None:
    assert power_of_d_response(0.9, 2) == pytest.approx(2.614, abs=5e-4)
    assert power_of_d_response(0.0, 2) == 1.0
    assert power_of_d_response(0.9, 1) == pytest.approx(mm1_response(0.9, 1.0))
    assert power_of_d_response(0.9, 3) < power_of_d_response(0.9, 2)


def test_round_robin_sits_between_shared_and_random() -> None:
    assert mmc_response(4, 3.0, 1.0) < round_robin_response(4, 3.0, 1.0)
    assert round_robin_response(4, 3.0, 1.0) < random_pool_response(4, 3.0, 1.0)


@pytest.mark.parametrize(
    "call",
    [
        lambda: mm1_response(1.0, 1.0),
        lambda: erlang_c(0, 1.0, 1.0),
        lambda: mmc_wait(2, 2.5, 1.0),
        lambda: power_of_d_response(1.0, 2),
        lambda: power_of_d_response(0.5, 0),
        lambda: batch_means([1.0] * 10, batches=20),
        lambda: batch_means([1.0] * 100, batches=1),
    ],
)
def test_bad_inputs_raise_value_error(call: Any) -> None:
    with pytest.raises(ValueError):
        call()


def test_batch_means_interval_is_wider_for_correlated_batches() -> None:
    flat = [1.0, 2.0] * 500
    drift = [float(i // 50) for i in range(1000)]  # strongly correlated: batch means differ
    assert batch_means(flat, warmup=0.0)[1] == 0.0
    assert batch_means(drift, warmup=0.0)[1] > 1.0


# -- quick checks against the simulator (the fast suite) --------------------------------------


def test_mm1_pool_of_one() -> None:
    """A pool of one member at rho = 0.5 is M/M/1: mean response 1 / (mu - lambda) = 2.0."""
    assert_covers(latencies(pool("round_robin", 1, 0.5, 20_000.0)), 2.0, 0.08)


def test_shared_pool_is_mmc_erlang_c() -> None:
    """A shared pool of c = 4 at lambda = 3, mu = 1 is M/M/4 (spec 3.8): Erlang C gives
    P(wait) = Wq = 0.5094 and response 1.5094. Waits are measured from the trace events (send to
    dequeue); a request taken by an idle member waits exactly 0, so P(wait) is the fraction of
    positive waits."""
    result, waits = wait_times(pool("shared", 4, 3.0, 10_000.0))
    assert result.ok and len(waits) == result.summary["requests"]["issued"]
    assert_covers(waits, mmc_wait(4, 3.0, 1.0), 0.15)
    assert_covers([1.0 if w > 0 else 0.0 for w in waits], erlang_c(4, 3.0, 1.0), 0.08)
    assert_covers(latencies(pool("shared", 4, 3.0, 10_000.0)), mmc_response(4, 3.0, 1.0), 0.06)


def test_random_pool_is_independent_mm1_queues() -> None:
    """A random pool of 4 at lambda = 3 is four M/M/1 queues at 0.75 each: response 4.0."""
    assert_covers(latencies(pool("random", 4, 3.0, 10_000.0)), 4.0, 0.12)


def test_round_robin_pool_is_erlang_arrivals_gi_m_1() -> None:
    """Round robin gives each of 4 members every 4th arrival: Erlang-4 gaps, a GI/M/1 queue."""
    truth = round_robin_response(4, 3.0, 1.0)
    assert_covers(latencies(pool("round_robin", 4, 3.0, 10_000.0)), truth, 0.12)


# Finite-n allowance for power of two: the limit is for n -> infinity, and a pool of 100 is
# measurably slower (about 2.67-2.70 here against 2.614, i.e. 2-4%; Mitzenmacher 2001 reports
# simulations of 100 servers a few percent above the limit too). We allow 6%.
P2_ALLOWANCE = 0.06


def test_power_of_two_on_100_members_near_the_limit() -> None:
    """power_of_two on 100 members at rho = 0.9 against the supermarket limit 2.614: the CI,
    widened by the finite-n allowance (6% of the limit, above it only), must contain it."""
    limit = power_of_d_response(0.9, 2)
    mean, half = batch_means(latencies(pool("power_of_two", 100, 90.0, 300.0)))
    assert mean - half <= limit * (1 + P2_ALLOWANCE), (mean, half)
    assert mean + half >= limit, (mean, half)
    assert half < 0.08 * limit
    assert mean < 0.35 * mm1_response(0.9, 1.0)  # versus 10.0 for random at the same load


# -- long checks (make test-slow) ------------------------------------------------------------


# The random pool's four M/M/1 queues at rho = 0.75 are the most autocorrelated case: over
# 100_000 time units the 95% half-width was 0.094 to 0.131 across seeds 0..5 (measured when the
# broker's stream became SplitMix64, issue 11), straddling the 3% bound (0.12). Four times the
# length halves it, so the bound tests the simulator, not the luck of one sample path.
@pytest.mark.slow
@pytest.mark.parametrize(
    ("strategy", "size", "rate", "truth", "until"),
    [
        ("round_robin", 1, 0.5, 2.0, 100_000.0),
        ("shared", 4, 3.0, mmc_response(4, 3.0, 1.0), 100_000.0),
        ("random", 4, 3.0, 4.0, 400_000.0),
        ("round_robin", 4, 3.0, round_robin_response(4, 3.0, 1.0), 100_000.0),
    ],
)
def test_long_runs_against_closed_forms(
    strategy: str, size: int, rate: float, truth: float, until: float
) -> None:
    """Ten (random: forty) times longer than the quick checks; the interval must be within 3%
    of the truth."""
    assert_covers(latencies(pool(strategy, size, rate, until)), truth, 0.03)


@pytest.mark.slow
def test_long_shared_pool_wait_probability() -> None:
    result, waits = wait_times(pool("shared", 4, 3.0, 100_000.0))
    assert result.ok
    assert_covers([1.0 if w > 0 else 0.0 for w in waits], erlang_c(4, 3.0, 1.0), 0.02)
    assert_covers(waits, mmc_wait(4, 3.0, 1.0), 0.08)  # waits vary more than responses


@pytest.mark.slow
def test_batch_means_coverage_on_mm1() -> None:
    """The interval itself: over 20 independent M/M/1 replications (seeds 0..19) a 95% interval
    should contain the truth about 19 times; fewer than 16 (probability about 1.6% for an
    honest interval) means batch means is too optimistic here."""
    hits = 0
    for seed in range(20):
        mean, half = batch_means(latencies(pool("round_robin", 1, 0.5, 20_000.0, seed)))
        hits += abs(mean - 2.0) <= half
    assert hits >= 16, hits


@pytest.mark.slow
def test_long_power_of_two_on_100_members() -> None:
    """Three replications of 1500 time units (about 135,000 requests each), pooled: the mean is
    at or above the limit (finite n is worse, never better, within the CI) and within 6%."""
    limit = power_of_d_response(0.9, 2)
    runs = [batch_means(latencies(pool("power_of_two", 100, 90.0, 1500.0, s))) for s in range(3)]
    mean = sum(m for m, _ in runs) / 3
    half = max(h for _, h in runs) / 3**0.5
    assert mean + half >= limit, runs
    assert mean - half <= limit * (1 + P2_ALLOWANCE), runs
