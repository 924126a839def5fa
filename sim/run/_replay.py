"""Replay: re-run a trace's scenario and compare, line by line, as it streams."""

from __future__ import annotations

import json
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
    # The recorded trace ended without its end line (docs/trace-format.md: a trace cut short),
    # and every line it has was identical.
    cut_short: bool = False

    def __str__(self) -> str:
        if self.cut_short:
            return (
                f"line {self.line}: the recorded trace ends here without its end line, cut short"
                f" (lines 1-{self.line - 1} replay identically; --partial accepts such a trace)"
                f"\n  re-run (now):         {self.got or '<end of run>'}"
            )
        return (
            f"line {self.line} differs\n  recorded (the trace): {self.expected or '<end of trace>'}"
            f"\n  re-run (now):         {self.got or '<end of run>'}"
        )


class _Diverged(Exception):
    def __init__(self, divergence: Divergence) -> None:
        self.divergence = divergence


class _Comparer:
    """A write-only text stream that checks each line against the recorded one (the writer
    writes whole lines, a block at a time)."""

    def __init__(self, recorded: Iterator[str], any_broker: bool) -> None:
        self.recorded = recorded
        self.any_broker = any_broker
        self.line = 0
        self.last = ""  # the last recorded line compared

    def write(self, text: str) -> int:
        lines = text.split("\n")  # not splitlines(): a JSON string may hold U+2028 as itself
        for line in lines[:-1] if text.endswith("\n") else lines:
            self._compare(line)
        return len(text)

    def _compare(self, got: str) -> None:
        self.line += 1
        expected = next(self.recorded, None)
        if expected is None:
            cut = "end" not in json.loads(self.last)  # the end line: the record with an `end`
            raise _Diverged(Divergence(self.line, None, got, cut_short=cut))
        expected = expected.rstrip("\n")
        if expected != got and not (
            self.line == 1 and self.any_broker and _same_run(expected, got)
        ):
            raise _Diverged(Divergence(self.line, expected, got))
        self.last = expected


def _same_run(recorded: str, rerun: str) -> bool:
    """Two headers that differ at most in the broker they name."""
    a, b = json.loads(recorded), json.loads(rerun)
    a.pop("broker", None)
    b.pop("broker", None)
    return bool(a == b)


def replay(
    stream: IO[str],
    source: str,
    broker_factory: BrokerFactory | None = None,
    *,
    brokers: Callable[[str], BrokerFactory] | None = None,
) -> Divergence | None:
    """Re-run the trace in `stream` from its header; None when every line is identical.

    The broker is `broker_factory` if given (then the header may name another broker: replaying
    a mutant's trace on the reference shows where the two part), else the one the header names:
    the reference, or `brokers(name)` (a mutant's catalogue, for instance). A trace cut short
    (no end line) whose every line replays identically gives a `Divergence` with `cut_short`
    set, which a caller may accept (`brokerlab replay --partial`). Raises `TraceError` for an
    unreadable trace (bad header, newer format, invalid scenario, a broker it cannot build).
    """
    given = broker_factory is not None
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
    comparer = _Comparer(_chain(iter([first]), stream), any_broker=given)
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
