"""The `brokerlab` command line: run, replay (docs/scenario-format.md, docs/trace-format.md).

Exit codes everywhere: 0 ok, 1 an invariant broke or a replay diverged, 2 bad input or usage.
A user mistake gets one clear line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import IO, Any

from sim._replay import replay
from sim._runner import Result, simulate
from sim._trace import TraceError
from sim.scenario import Scenario, ScenarioError, default_scenario, load_scenario

EXIT_OK, EXIT_VIOLATION, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A bad command line value or unreadable input file: exit 2 with this message."""


def _version() -> str:
    try:
        return version("brokerlab")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="brokerlab",
        description="A model-checked reference message broker and its deterministic simulator.",
    )
    parser.add_argument("--version", action="version", version=f"brokerlab {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="simulate a scenario (the built-in default without a file)")
    run.add_argument("scenario", nargs="?", help="scenario TOML file (docs/scenario-format.md)")
    run.add_argument("--seed", type=_seed, help="override the scenario's seed")
    run.add_argument("--until", type=_positive_float, help="override when arrivals stop")
    run.add_argument("--trace", metavar="PATH", help="write the JSON Lines trace here")
    run.add_argument("--summary", metavar="PATH", help="write the summary JSON here")
    run.add_argument("--quiet", action="store_true", help="print nothing but errors")

    rep = sub.add_parser("replay", help="re-run a trace and report the first divergence")
    rep.add_argument("trace", help="trace file written by `brokerlab run --trace`")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        return _replay(args)
    except (UsageError, ScenarioError, TraceError) as err:
        print(f"brokerlab {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE


def _scenario(args: argparse.Namespace) -> Scenario:
    scenario = default_scenario() if args.scenario is None else load_scenario(args.scenario)
    if args.seed is not None:
        scenario = dataclasses.replace(scenario, seed=args.seed)
    if args.until is not None:
        scenario = dataclasses.replace(scenario, until=args.until)
    return scenario


def _open_out(path: str, what: str) -> IO[str]:
    try:
        return open(path, "w", encoding="utf-8", newline="\n")
    except OSError as err:
        raise UsageError(f"cannot write the {what} to {path!r}: {err.strerror}") from None


def _run(args: argparse.Namespace) -> int:
    scenario = _scenario(args)
    trace = _open_out(args.trace, "trace") if args.trace else None
    progress = _Progress(sys.stderr) if not args.quiet and sys.stderr.isatty() else None
    try:
        result = simulate(scenario, trace=trace, progress=progress)
    finally:
        if trace is not None:
            trace.close()
        if progress is not None:
            progress.close()
    if args.summary:
        with _open_out(args.summary, "summary") as out:
            json.dump(result.summary, out, indent=2, sort_keys=True)
            out.write("\n")
    if not args.quiet:
        print(format_summary(result, args.scenario or "built-in default scenario"))
    if result.violation is not None:
        print(f"brokerlab run: invariant violated at {result.violation}", file=sys.stderr)
        return EXIT_VIOLATION
    return EXIT_OK


def _replay(args: argparse.Namespace) -> int:
    try:
        with open(args.trace, encoding="utf-8") as stream:
            divergence = replay(stream, args.trace)
    except OSError as err:
        raise UsageError(f"cannot read {args.trace!r}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"cannot read {args.trace!r}: not UTF-8 text") from None
    if divergence is None:
        print(f"{args.trace}: replay identical")
        return EXIT_OK
    print(f"{args.trace}: replay diverged at {divergence}")
    return EXIT_VIOLATION


class _Progress:
    """A one-line progress bar on a terminal, shown only once a run has lasted a second.

    The only wall-clock reader in sim/: it decides when to draw, never what is simulated.
    """

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.start = time.monotonic()
        self.drawn = False

    def __call__(self, now: float, until: float) -> None:
        elapsed = time.monotonic() - self.start
        if elapsed < 1.0:
            return
        done = min(1.0, now / until)
        bar = "#" * int(done * 30)
        self.out.write(f"\r[{bar:<30}] {done:6.1%}  t={now:.1f}/{until:g}  {elapsed:.0f}s")
        self.out.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.out.write("\n")
            self.out.flush()


def format_summary(result: Result, name: str) -> str:
    """The human-readable report of a run."""
    s: dict[str, Any] = result.summary
    m, r, lat = s["messages"], s["requests"], s["latency"]
    lines = [
        f"brokerlab run: {name}, seed {s['seed']}, {s['events']} events, "
        f"ended at t={s['end_time']:.3f}",
        "",
        "messages  accepted {accepted}  delivered {delivered}  dead-lettered {dead_lettered}  "
        "rejected {rejected}  in flight {in_flight}".format(**m),
        "requests  issued {issued}  replied {replied}  timed out {timed_out}  "
        "cancelled {cancelled}  failed {failed}".format(**r),
        f"retries   {s['retries']}",
    ]
    if lat["count"]:
        lines.append(
            "latency   n={count}  mean {mean:.3f}  p50 {p50:.3f}  p90 {p90:.3f}  "
            "p99 {p99:.3f}  max {max:.3f}".format(**lat)
        )
    if s["dead_letters"]:
        lines += ["", "dead letters by reason"]
        lines += [f"  {reason:<22} {n:>8}" for reason, n in s["dead_letters"].items()]
    lines += ["", f"  {'member':<16} {'served':>8} {'utilization':>12}"]
    for label, stats in s["members"].items():
        lines.append(f"  {label:<16} {stats['served']:>8} {stats['utilization']:>11.1%}")
    verdict = "all invariants held" if result.ok else f"VIOLATION: {result.violation}"
    lines += ["", f"invariants: {verdict}"]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
