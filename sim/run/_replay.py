"""Replay: re-run a trace's scenario and compare, line by line, as it streams."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from broker import Broker, BrokerFactory
from sim.run._runner import Simulation
from sim.run._trace import TraceError, read_header
from sim.scenario import ScenarioError, parse_scenario


@dataclass(frozen=True, slots=True)
class Divergence:
    """The first line where a re-run differs from the recorded trace."""

    line: int
    expected: str | None  # None: the recorded trace ended first
    got: str | None  # None: the re-run ended first

    def __str__(self) -> str:
        return (
            f"line {self.line} differs\n  recorded (the trace): {self.expected or '<end of trace>'}"
            f"\n  re-run (now):         {self.got or '<end of run>'}"
        )


class _Diverged(Exception):
    def __init__(self, divergence: Divergence) -> None:
        self.divergence = divergence


class _Comparer:
    """A write-only text stream that checks each line against the recorded one."""

    def __init__(self, recorded: Iterator[str]) -> None:
        self.recorded = recorded
        self.line = 0

    def write(self, text: str) -> int:
        self.line += 1
        got = text.rstrip("\n")
        expected = next(self.recorded, None)
        if expected is not None:
            expected = expected.rstrip("\n")
        if expected != got:
            raise _Diverged(Divergence(self.line, expected, got))
        return len(text)


def replay(
    stream: IO[str],
    source: str,
    broker_factory: BrokerFactory | None = None,
    *,
    brokers: Callable[[str], BrokerFactory] | None = None,
) -> Divergence | None:
    """Re-run the trace in `stream` from its header; None when every line is identical.

    The broker is `broker_factory` if given, else the one the header names: the reference, or
    `brokers(name)` (a mutant's catalogue, for instance). Raises `TraceError` for an unreadable
    trace (bad header, newer format, invalid scenario, a broker it cannot build).
    """
    first = stream.readline()
    if not first:
        raise TraceError(f"{source}: empty file, not a trace")
    head = read_header(first, source)
    try:
        scenario = parse_scenario(head["scenario"], f"{source}:1 (header scenario)")
    except ScenarioError as err:
        raise TraceError(str(err)) from None
    if head["seed"] != scenario.seed:
        raise TraceError(f"{source}:1: header seed {head['seed']!r} != scenario seed")
    if broker_factory is None:
        name = head.get("broker", "reference")
        if name == "reference":
            broker_factory = Broker
        elif brokers is None:
            raise TraceError(f"{source}:1: the trace was written by broker {name!r}")
        else:
            try:
                broker_factory = brokers(str(name))
            except KeyError as err:
                raise TraceError(f"{source}:1: {err.args[0]}") from None
    recorded = iter([first, *()])
    comparer = _Comparer(_chain(recorded, stream))
    try:
        Simulation(scenario, trace=comparer, broker_factory=broker_factory).run()
    except _Diverged as err:
        return err.divergence
    rest = stream.readline()
    if rest:
        return Divergence(comparer.line + 1, rest.rstrip("\n"), None)
    return None


def _chain(first: Iterator[str], rest: IO[str]) -> Iterator[str]:
    yield from first
    yield from rest
