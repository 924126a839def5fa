"""`brokerlab run` and `brokerlab replay` (docs/scenario-format.md, docs/trace-format.md)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from broker import BrokerFactory
from sim.cli._common import (
    EXIT_OK,
    EXIT_UNDRAINED,
    EXIT_VIOLATION,
    UsageError,
    _seed,
    _until,
    add_broker_options,
    broker_factory,
    close_broker,
)
from sim.cli._outputs import Outputs, add_force_option
from sim.run import format_summary, simulate
from sim.scenario import Scenario, default_scenario, load_scenario


def add_parsers(sub: Any) -> None:
    """The `run` and `replay` subcommands."""
    run = sub.add_parser("run", help="simulate a scenario (the built-in default without a file)")
    run.set_defaults(func=_run)
    run.add_argument("scenario", nargs="?", help="scenario TOML file (docs/scenario-format.md)")
    run.add_argument("--seed", type=_seed, help="override the scenario's seed")
    run.add_argument("--until", type=_until, help="override when arrivals stop")
    run.add_argument("--trace", metavar="PATH", help="write the JSON Lines trace here")
    run.add_argument("--summary", metavar="PATH", help="write the summary JSON here")
    run.add_argument("--quiet", action="store_true", help="print nothing but errors")
    add_force_option(run)
    add_broker_options(run)

    rep = sub.add_parser("replay", help="re-run a trace and report the first divergence")
    rep.set_defaults(func=_replay)
    rep.add_argument("trace", help="trace file written by `brokerlab run --trace`")
    add_broker_options(
        rep, default=None,
        help="re-run on this broker instead of the one the header names (reference, a mutant, "
        'or cmd:"COMMAND"): where a fixed broker parts from a failing trace',
    )  # fmt: skip
    rep.add_argument(
        "--partial", action="store_true",
        help="accept a trace cut short (no end line) whose every line replays identically",
    )  # fmt: skip


def _scenario(args: argparse.Namespace) -> Scenario:
    scenario = default_scenario() if args.scenario is None else load_scenario(args.scenario)
    if args.seed is not None:
        scenario = dataclasses.replace(scenario, seed=args.seed)
    if args.until is not None:
        scenario = dataclasses.replace(scenario, until=args.until)
    return scenario


def _run(args: argparse.Namespace) -> int:
    scenario = _scenario(args)
    with Outputs("run", force=args.force, inputs=[(args.scenario, "the scenario")]) as outputs:
        trace = outputs.claim("--trace", args.trace, "trace", partial=True)
        summary = outputs.claim("--summary", args.summary, "summary")
        factory = broker_factory(args)
        try:  # a bar on stderr, when a terminal (progress_bar): never in the trace or summary
            result = simulate(
                scenario,
                trace=None if trace is None else trace.stream,
                progress=not args.quiet,
                broker_factory=factory,
            )
        finally:
            close_broker(factory)
        if trace is not None:
            trace.commit()
        if summary is not None:
            json.dump(result.summary, summary.stream, indent=2, sort_keys=True)
            summary.stream.write("\n")
            summary.commit()
    if not args.quiet:
        print(format_summary(result, args.scenario or "built-in default scenario"))
    if result.violation is not None:
        v = result.violation
        print(
            f"brokerlab run: invariant violated at {v.where}: {v.invariant}: {v.detail}",
            file=sys.stderr,
        )
        return EXIT_VIOLATION
    if result.undrained is not None:
        print(
            f"brokerlab run: undrained: {result.undrained}; no invariant broke, the run was cut "
            "off (exit 4)",
            file=sys.stderr,
        )
        return EXIT_UNDRAINED
    return EXIT_OK


def _replay(args: argparse.Namespace) -> int:
    from sim.run import replay  # it reads traces: loads the model, which `run` does not need

    factories: list[BrokerFactory] = []

    def named(name: str) -> BrokerFactory:  # the broker the header names
        factories.append(broker_factory(argparse.Namespace(**{**vars(args), "broker": name})))
        return factories[-1]

    try:
        chosen = named(args.broker) if args.broker is not None else None
        with open(args.trace, encoding="utf-8") as stream:
            divergence = replay(stream, args.trace, chosen, brokers=named)
    except OSError as err:
        raise UsageError(f"cannot read {args.trace!r}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"cannot read {args.trace!r}: not UTF-8 text") from None
    finally:
        for factory in factories:
            close_broker(factory)
    on = f" on broker {args.broker!r}" if args.broker is not None else ""
    if divergence is None:
        print(f"{args.trace}: replay identical{on}")
        return EXIT_OK
    if divergence.cut_short and args.partial:
        n = divergence.line - 1
        print(f"{args.trace}: replay identical{on} for its {n} lines (a trace cut short)")
        return EXIT_OK
    print(f"{args.trace}: replay{on} diverged at {divergence}")
    return EXIT_VIOLATION
