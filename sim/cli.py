"""The `brokerlab` command line: the parser, `run` and `replay` (docs/scenario-format.md,
docs/trace-format.md); `sweep` and `plot` live in sim/_cli_lab.py, `conform`, `mutants` and
`check` in sim/_cli_checks.py, what they share in sim/_cli_common.py.

Exit codes everywhere: 0 ok, 1 an invariant broke or a replay diverged, 2 bad input or usage.
A user mistake gets one clear line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from typing import Any

from sim._cli_checks import (
    _add_check_parser,
    _add_conform_parser,
    _add_mutants_parser,
    _check,
    _conform,
    _mutants,
)
from sim._cli_common import (
    EXIT_OK,
    EXIT_USAGE,
    EXIT_VIOLATION,
    UsageError,
    _open_out,
    _positive_float,
    _Progress,
    _seed,
    _version,
)
from sim._cli_lab import _add_plot_parser, _add_sweep_parser, _plot, _sweep
from sim._replay import replay
from sim._runner import Result, simulate
from sim._trace import TraceError
from sim.scenario import Scenario, ScenarioError, default_scenario, load_scenario
from sim.sweep import SweepError


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
    _add_sweep_parser(sub)
    _add_plot_parser(sub)
    _add_conform_parser(sub)
    _add_mutants_parser(sub)
    _add_broker_option(run)
    _add_check_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "plot":
            return _plot(args)
        if args.command == "conform":
            return _conform(args)
        if args.command == "check":
            return _check(args)
        if args.command == "mutants":
            return _mutants(args)
        return _replay(args)
    except (UsageError, ScenarioError, TraceError, SweepError) as err:
        print(f"brokerlab {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE


def _scenario(args: argparse.Namespace) -> Scenario:
    scenario = default_scenario() if args.scenario is None else load_scenario(args.scenario)
    if args.seed is not None:
        scenario = dataclasses.replace(scenario, seed=args.seed)
    if args.until is not None:
        scenario = dataclasses.replace(scenario, until=args.until)
    return scenario


def _run(args: argparse.Namespace) -> int:
    scenario = _scenario(args)
    trace = _open_out(args.trace, "trace") if args.trace else None
    progress = _Progress(sys.stderr) if not args.quiet and sys.stderr.isatty() else None
    try:
        result = simulate(
            scenario, trace=trace, progress=progress, broker_factory=_broker_class(args)
        )
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


# -- run --broker ----------------------------------------------------------------------------


def _add_broker_option(run: Any) -> None:
    run.add_argument(
        "--broker", default="reference", metavar="NAME",
        help="the broker to simulate: reference (default) or a mutant of `brokerlab mutants`",
    )  # fmt: skip


def _broker_class(args: argparse.Namespace) -> Any:
    from broker import Broker
    from sim.mutants import MUTANT_CLASSES

    name = getattr(args, "broker", "reference")
    if name == "reference":
        return Broker
    if name not in MUTANT_CLASSES:
        raise UsageError(
            f"--broker {name!r}: expected reference or one of {', '.join(MUTANT_CLASSES)}"
        )
    return MUTANT_CLASSES[name]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
