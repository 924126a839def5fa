"""Measuring one run from the outside: event taps, queue depth samples and time windows.

A probe builds a `Simulation`, attaches itself, runs it and returns what it saw; it never changes
what is simulated. Two ways in, both public parts of the runner:
- a `broker_factory` that hands the broker a listener which tees every event to the probe
  (the simulator's own fault events do not pass through the broker, so a tap does not see
  them; a trace does);
- callbacks scheduled on `sim.clock` before `run()`, which read the broker and emit nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from broker import Broker, BrokerFactory, Listener, Network, Rng, Timers
from sim.run import RunResult, Simulation, simulate
from sim.scenario import Scenario

__all__ = [
    "DepthSeries",
    "WindowSeries",
    "depth_series",
    "record_events",
    "trace_events",
    "wait_times",
    "window_series",
]

Sink = Callable[[float, str, dict[str, Any]], None]


def _tapped(sink: Sink) -> BrokerFactory:
    """A broker factory whose broker also reports every event, with its time, to `sink`."""

    def factory(
        timers: Timers,
        rng: Rng,
        *,
        listener: Listener | None = None,
        network: Network | None = None,
        wake: Callable[[int], None] | None = None,
    ) -> Broker[Any]:
        def tee(ev: str, fields: dict[str, Any]) -> None:
            sink(timers.now, ev, fields)
            if listener is not None:
                listener(ev, fields)

        return Broker(timers, rng, listener=tee, network=network, wake=wake)

    return factory


def record_events(
    scenario: Scenario, kinds: Collection[str] | None = None
) -> tuple[RunResult, list[dict[str, Any]]]:
    """Run `scenario` and return its result and the broker's events (`{"t", "ev", **fields}`),
    only those of `kinds` if given. No fault events (see the module docstring); in memory."""
    events: list[dict[str, Any]] = []

    def sink(now: float, ev: str, fields: dict[str, Any]) -> None:
        if kinds is None or ev in kinds:
            events.append({"t": now, "ev": ev, **fields})

    sim = Simulation(scenario, monitors=False, broker_factory=_tapped(sink))
    return sim.run(), events


def trace_events(scenario: Scenario) -> list[dict[str, Any]]:
    """Run `scenario` with a trace and return its events (faults included): the header and the
    `op`, `choice` and `end` lines left out. Meant for small runs, such as one drawn as a
    sequence diagram."""
    return [e for e in simulate(scenario, keep_trace=True).trace() if "ev" in e]


def wait_times(scenario: Scenario) -> tuple[RunResult, list[float]]:
    """Per request, the time from its send to its dequeue by a worker (the wait before service),
    in dequeue order. A request answered at once waits exactly 0.0: equal times do not drift."""
    sent: dict[int, float] = {}
    waits: list[float] = []

    def sink(now: float, ev: str, fields: dict[str, Any]) -> None:
        if ev == "send":
            if fields["kind"] == "request":
                sent[fields["msg"]] = now
        elif ev == "dequeue":
            issued = sent.pop(fields["msg"], None)
            if issued is not None:
                waits.append(now - issued)

    sim = Simulation(scenario, monitors=False, broker_factory=_tapped(sink))
    return sim.run(), waits


@dataclass(frozen=True, slots=True)
class DepthSeries:
    """Mailbox depth of every worker (pool member or actor) at `times`, from `depth_series`."""

    times: tuple[float, ...]
    depths: dict[str, tuple[int, ...]]
    result: RunResult


def depth_series(scenario: Scenario, interval: float) -> DepthSeries:
    """Run `scenario` and sample each worker's mailbox depth every `interval`, from 0 up to
    `scenario.until` (the drain is not sampled, so the samplers never keep the run alive).

    A member of a `shared` pool keeps its own mailbox empty (the pool's queue holds the work),
    so its depth is 0 throughout. A stopped (crashed) member's mailbox is emptied (spec 2.8).
    """
    if not (math.isfinite(interval) and interval > 0):
        raise ValueError(f"interval must be finite and > 0, got {interval!r}")
    sim = Simulation(scenario, monitors=False)
    workers = list(sim.workers.values())
    times: list[float] = []
    rows: list[list[int]] = [[] for _ in workers]
    count = math.floor(scenario.until / interval) + 1

    def sample() -> None:
        times.append(sim.clock.now)
        for row, w in zip(rows, workers, strict=True):
            row.append(sim.broker.depth(w.id))

    for k in range(count):
        sim.clock.call_at(k * interval, sample)
    result = sim.run()
    depths = {w.label: tuple(row) for w, row in zip(workers, rows, strict=True)}
    return DepthSeries(tuple(times), depths, result)


@dataclass(frozen=True, slots=True)
class WindowSeries:
    """Requests resolved in consecutive windows of width `width` starting at `starts`."""

    width: float
    starts: tuple[float, ...]
    replied: tuple[int, ...]
    timed_out: tuple[int, ...]
    mean_latency: tuple[float | None, ...]  # of the replied ones; None for an empty window
    result: RunResult

    @property
    def throughput(self) -> tuple[float, ...]:
        """Replied requests per unit time in each window."""
        return tuple(n / self.width for n in self.replied)


def window_series(scenario: Scenario, width: float) -> WindowSeries:
    """Run `scenario` and bin every request outcome by when it resolved, in windows of `width`
    from 0 to the end of the run: replies, timeouts and the mean latency of the replies."""
    if not (math.isfinite(width) and width > 0):
        raise ValueError(f"width must be finite and > 0, got {width!r}")
    issued: dict[int, float] = {}
    ends: list[tuple[float, str, float]] = []

    def sink(now: float, ev: str, fields: dict[str, Any]) -> None:
        if ev == "send" and fields["kind"] == "request" and "dup_of" not in fields:
            issued[fields["corr"]] = now
        elif ev == "resolve":
            ends.append((now, fields["outcome"], now - issued.pop(fields["corr"], now)))

    sim = Simulation(scenario, monitors=False, broker_factory=_tapped(sink))
    result = sim.run()
    n = max(1, math.ceil(result.summary["end_time"] / width))
    replied, timed_out, total = [0] * n, [0] * n, [0.0] * n
    for t, outcome, latency in ends:
        k = min(n - 1, int(t // width))
        if outcome == "replied":
            replied[k] += 1
            total[k] += latency
        elif outcome == "timed_out":
            timed_out[k] += 1
    means = tuple(total[k] / replied[k] if replied[k] else None for k in range(n))
    starts = tuple(k * width for k in range(n))
    return WindowSeries(width, starts, tuple(replied), tuple(timed_out), means, result)
