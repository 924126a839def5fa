"""Queueing theory the simulator is checked against, and batch-means confidence intervals.

Every function is pure (no randomness, no clock) and takes rates per unit of virtual time:
`lam` is the arrival rate, `mu` the service rate of one server (1 / mean service time), `c` the
number of servers. Response time is waiting time plus service time ("sojourn time").

Sources:
- L. Kleinrock, *Queueing Systems, Volume 1: Theory*, Wiley 1975: M/M/1 (section 3.2), M/M/c and
  Erlang's C formula (section 3.5), GI/M/1 (section 6.4).
- M. Mitzenmacher, *The Power of Two Choices in Randomized Load Balancing*, IEEE TPDS 12(10),
  2001, Theorem 1 (and N. D. Vvedenskaya, R. L. Dobrushin, F. I. Karpelevich, *Queueing system
  with selection of the shortest of two queues: an asymptotic approach*, Problems Inform.
  Transmission 32, 1996): the n -> infinity limit of the supermarket model.
- Batch means: A. M. Law, *Simulation Modeling and Analysis*, 5th ed., section 9.5.3.
- Student-t quantiles: M. Abramowitz and I. A. Stegun, *Handbook of Mathematical Functions*,
  table 26.10 and expansion 26.7.5.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

__all__ = [
    "batch_means",
    "erlang_c",
    "mm1_response",
    "mmc_response",
    "mmc_wait",
    "power_of_d_response",
    "random_pool_response",
    "round_robin_response",
    "t_quantile_975",
]


def _check_stable(c: int, lam: float, mu: float) -> None:
    if not (isinstance(c, int) and c >= 1):
        raise ValueError(f"c must be an integer >= 1, got {c!r}")
    if not (math.isfinite(lam) and math.isfinite(mu) and lam > 0 and mu > 0):
        raise ValueError(f"lam and mu must be finite and > 0, got lam={lam!r}, mu={mu!r}")
    if lam >= c * mu:
        raise ValueError(f"unstable: lam={lam!r} >= c * mu = {c * mu!r} (load >= 1)")


def mm1_response(lam: float, mu: float) -> float:
    """Mean response time of an M/M/1 queue: `1 / (mu - lam)` (Kleinrock vol. 1, eq. 3.26).

    Raises `ValueError` unless 0 < lam < mu.

    >>> mm1_response(0.5, 1.0)
    2.0
    """
    _check_stable(1, lam, mu)
    return 1.0 / (mu - lam)


def erlang_c(c: int, lam: float, mu: float) -> float:
    """Erlang's C formula: the probability that an arrival to an M/M/c queue has to wait.

    Computed through the Erlang B recursion `B(k) = a B(k-1) / (k + a B(k-1))`, `a = lam / mu`,
    which never forms `a^c / c!` and so stays accurate for large c; then
    `C = c B / (c - a (1 - B))` (Kleinrock vol. 1, eq. 3.40).

    >>> round(erlang_c(4, 3.0, 1.0), 4)
    0.5094
    >>> erlang_c(1, 0.5, 1.0)  # one server: P(wait) = utilization
    0.5
    """
    _check_stable(c, lam, mu)
    a = lam / mu
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return c * b / (c - a * (1.0 - b))


def mmc_wait(c: int, lam: float, mu: float) -> float:
    """Mean waiting time (in queue, before service) of an M/M/c queue: `C / (c mu - lam)`.

    >>> round(mmc_wait(4, 3.0, 1.0), 4)
    0.5094
    """
    return erlang_c(c, lam, mu) / (c * mu - lam)


def mmc_response(c: int, lam: float, mu: float) -> float:
    """Mean response time of an M/M/c queue: `mmc_wait + 1 / mu`. A `shared` pool is one.

    >>> round(mmc_response(4, 3.0, 1.0), 4)
    1.5094
    >>> mmc_response(1, 0.5, 1.0) == mm1_response(0.5, 1.0)
    True
    """
    return mmc_wait(c, lam, mu) + 1.0 / mu


def random_pool_response(c: int, lam: float, mu: float) -> float:
    """Mean response time of a `random` pool: c independent M/M/1 queues, each at rate lam / c.

    Random splitting of a Poisson stream gives independent Poisson streams (Kleinrock vol. 1,
    section 4.8), so each member is an M/M/1 queue of its own.

    >>> random_pool_response(4, 3.0, 1.0)
    4.0
    """
    _check_stable(c, lam, mu)
    return mm1_response(lam / c, mu)


def round_robin_response(c: int, lam: float, mu: float) -> float:
    """Mean response time of a `round_robin` pool under Poisson arrivals and exponential service.

    Every c-th arrival goes to the same member, so each member sees Erlang-c inter-arrival
    times (c phases of rate lam) and is a GI/M/1 queue. Its response time is
    `1 / (mu (1 - s))`, where s in (0, 1) solves `s = A(mu (1 - s))` and
    `A(x) = (lam / (lam + x))^c` is the Laplace transform of the inter-arrival time
    (Kleinrock vol. 1, eqs. 6.21 and 6.30). Solved by fixed-point iteration from s = 0, which
    increases monotonically to the root.

    >>> round(round_robin_response(1, 0.5, 1.0), 12)  # c = 1: M/M/1
    2.0
    >>> round(round_robin_response(4, 3.0, 1.0), 4)  # between M/M/4 (1.51) and random (4.0)
    2.6476
    """
    _check_stable(c, lam, mu)
    s = 0.0
    for _ in range(100_000):
        nxt = (lam / (lam + mu * (1.0 - s))) ** c
        if abs(nxt - s) < 1e-15:
            s = nxt
            break
        s = nxt
    return 1.0 / (mu * (1.0 - s))


def power_of_d_response(rho: float, d: int = 2) -> float:
    """Mean response time, in units of the mean service time 1 / mu, of the supermarket model
    (each arrival joins the shortest of d queues sampled at random) as the number of servers
    goes to infinity: `sum over i >= 1 of rho^((d^i - d) / (d - 1))` (Mitzenmacher 2001,
    Theorem 1). For d = 1 this is M/M/1, `1 / (1 - rho)`.

    A finite pool does a little worse than the limit (see tests/test_theory.py), and
    `power_of_two` samples two distinct members (spec 3.5), which helps a little.

    >>> round(power_of_d_response(0.9, 2), 3)
    2.614
    >>> round(power_of_d_response(0.5, 1), 12)
    2.0
    """
    if not (isinstance(d, int) and d >= 1):
        raise ValueError(f"d must be an integer >= 1, got {d!r}")
    if not (math.isfinite(rho) and 0.0 <= rho < 1.0):
        raise ValueError(f"rho must be in [0, 1), got {rho!r}")
    if d == 1:
        return 1.0 / (1.0 - rho)
    total, i = 0.0, 1
    while True:
        exponent = (d**i - d) // (d - 1)  # an integer: 1 + d + ... + d^(i-2)
        term: float = rho**exponent
        total += term
        if term < 1e-17:
            return total
        i += 1


# t_{0.975, df} for df = 1 .. 30 (Abramowitz and Stegun, table 26.10, rounded to 4 places).
_T975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)  # fmt: skip


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with `df` degrees of freedom (a two-sided 95% interval).

    Tabulated for df <= 30; above, the Cornish-Fisher expansion of t in terms of the normal
    quantile (Abramowitz and Stegun 26.7.5, four terms), which is within 1e-4 there.

    >>> t_quantile_975(19)
    2.093
    >>> round(t_quantile_975(40), 4)  # the table gives 2.0211
    2.0211
    >>> round(t_quantile_975(10**9), 4)
    1.96
    """
    if not (isinstance(df, int) and df >= 1):
        raise ValueError(f"df must be an integer >= 1, got {df!r}")
    if df <= len(_T975):
        return _T975[df - 1]
    x = NormalDist().inv_cdf(0.975)
    g1 = (x**3 + x) / 4
    g2 = (5 * x**5 + 16 * x**3 + 3 * x) / 96
    g3 = (3 * x**7 + 19 * x**5 + 17 * x**3 - 15 * x) / 384
    g4 = (79 * x**9 + 776 * x**7 + 1482 * x**5 - 1920 * x**3 - 945 * x) / 92160
    return x + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def batch_means(
    samples: Sequence[float], batches: int = 20, warmup: float = 0.1
) -> tuple[float, float]:
    """The mean of a correlated output series and the half-width of its 95% confidence interval.

    Drops the first `warmup` fraction of `samples` (the transient from an empty system), splits
    the rest into `batches` consecutive batches of equal size (the remainder at the end is
    dropped), and treats the batch means as independent normal samples: the interval is
    `mean +- t_{0.975, batches - 1} * stdev(batch means) / sqrt(batches)` (Law, section 9.5.3).
    The t quantile is used, not the normal one: with 20 batches the normal would be 7% too
    narrow. Batches must be long compared with the series' correlation time for the interval to
    be honest; 20 batches of a long run are the textbook choice.

    Raises `ValueError` with fewer than 2 batches or fewer samples than batches after warm-up.

    >>> batch_means([1.0, 3.0] * 50, batches=10, warmup=0.0)
    (2.0, 0.0)
    >>> m, h = batch_means([float(b) for b in range(4) for _ in range(5)], batches=4, warmup=0.0)
    >>> m, round(h, 4)  # batch means 0, 1, 2, 3: 3.1824 * 1.2910 / 2
    (1.5, 2.0542)
    """
    if not (isinstance(batches, int) and batches >= 2):
        raise ValueError(f"batches must be an integer >= 2, got {batches!r}")
    if not 0.0 <= warmup < 1.0:
        raise ValueError(f"warmup must be in [0, 1), got {warmup!r}")
    kept = samples[int(len(samples) * warmup) :]
    size = len(kept) // batches
    if size == 0:
        raise ValueError(f"{len(kept)} samples after warm-up are too few for {batches} batches")
    means = [math.fsum(kept[k * size : (k + 1) * size]) / size for k in range(batches)]
    grand = math.fsum(means) / batches
    var = math.fsum((m - grand) ** 2 for m in means) / (batches - 1)
    return grand, t_quantile_975(batches - 1) * math.sqrt(var / batches)
