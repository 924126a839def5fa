"""`brokerlab swarm`: many small random worlds, every failure shrunk (docs/swarm.md)."""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sim.cli._common import (
    EXIT_OK,
    EXIT_VIOLATION,
    UsageError,
    _non_negative_int,
    _positive_int,
    _seed,
    add_broker_options,
    broker_factory,
    close_broker,
)
from sim.cli._outputs import Output, Outputs, add_force_option
from sim.run import ProgressBar, progress_bar, run_tasks

if TYPE_CHECKING:
    from sim.checking.swarm import SwarmReport, SwarmWorld

# sim.checking.swarm (and the model checker under it) is imported by the functions that run a
# swarm, not here: every `brokerlab` command builds this module's parser.

# Worlds per checkpoint of the report (and per round of tasks sent to the executor).
BATCH = 2000
CHUNK = 25  # worlds per task sent to a worker: small worlds, one round trip each 25


def add_parsers(sub: Any) -> None:
    sw = sub.add_parser(
        "swarm",
        help="run many small random worlds, check each, shrink every failure",
        description="Each world is a random scenario drawn from a choice tape seeded by --seed "
        "and its index; it runs with the online monitors on, its trace is conformed, and a "
        "failure is shrunk to a scenario file that `brokerlab run` replays (docs/swarm.md). "
        "Exit 0: every world ok; 1: a failure (a violation, a trace that does not conform, a "
        "world that did not drain, a crash).",
    )
    sw.set_defaults(func=_swarm)
    sw.add_argument("--seed", type=_seed, default=0, help="the master seed (default 0)")
    sw.add_argument("--worlds", type=_positive_int, default=100, help="worlds to run (100)")
    sw.add_argument(
        "--size", type=_size, default=1.0,
        help="scale of each world (1.0: about a thousand events at the median)",
    )  # fmt: skip
    add_broker_options(sw)
    sw.add_argument(
        "--conform-every", type=_non_negative_int, default=1, metavar="N",
        help="conform every Nth world's trace (1, the default: all; 0: none)",
    )  # fmt: skip
    sw.add_argument(
        "--shrink-budget", type=_non_negative_int, default=2000, metavar="RUNS",
        help="runs spent shrinking each failure (2000; 0: do not shrink)",
    )  # fmt: skip
    sw.add_argument("--jobs", type=_positive_int, default=1, help="local worker processes")
    sw.add_argument(
        "--scheduler", metavar="tcp://HOST:PORT",
        help="run the worlds on this dask.distributed cluster (docs/swarm.md)",
    )  # fmt: skip
    sw.add_argument("--out", metavar="DIR", help="write shrunk failures here (default: none)")
    sw.add_argument(
        "--report", metavar="PATH",
        help="write the JSON report here, and after every 2,000 worlds (see --resume)",
    )  # fmt: skip
    sw.add_argument(
        "--resume", action="store_true",
        help="continue the swarm whose --report is given, from its last checkpoint",
    )  # fmt: skip
    sw.add_argument("--quiet", action="store_true", help="print nothing but errors")
    add_force_option(sw)


def _size(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.01 <= value <= 100.0:
        raise argparse.ArgumentTypeError(f"must be in [0.01, 100], got {text}")
    return value


def _slug(signature: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", signature).strip("-")[:60]


def _start(args: argparse.Namespace, spec: SwarmWorld) -> SwarmReport:
    """A new report, or the one `--resume` continues (checked to be this swarm's)."""
    from sim.checking.swarm import SwarmReport

    if not args.resume:
        return SwarmReport(spec, args.worlds)
    if not args.report:
        raise UsageError("--resume needs the --report of the swarm to continue")
    try:
        with open(args.report, encoding="utf-8") as f:
            report = SwarmReport.from_dict(json.load(f))
    except OSError as err:
        raise UsageError(f"--report {args.report}: cannot read it: {err.strerror}") from None
    except (ValueError, KeyError, TypeError) as err:
        raise UsageError(f"--report {args.report}: not a swarm report ({err})") from None
    if report.spec != spec:
        raise UsageError(
            f"--report {args.report}: is the report of another swarm ({report.spec}); resume "
            "it with the same --seed, --size, --broker, --conform-every and --shrink-budget"
        )
    if args.worlds < report.done:
        raise UsageError(f"--worlds {args.worlds}: the report has {report.done} done already")
    report.worlds = args.worlds
    return report


def _swarm(args: argparse.Namespace) -> int:
    from sim.checking.swarm import SwarmWorld

    factory = broker_factory(args)  # a name that is no broker, a port that cannot start: exit 2
    features = getattr(factory, "features", None)  # a port's: its worlds use only those
    close_broker(factory)
    if args.scheduler and args.jobs != 1:
        raise UsageError("--jobs and --scheduler: give one (the cluster's workers are its jobs)")
    spec = SwarmWorld(
        seed=args.seed,
        size=args.size,
        broker=args.broker,
        conform_every=args.conform_every,
        shrink_budget=args.shrink_budget,
        features=None if features is None else tuple(sorted(features)),
    )
    with Outputs("swarm", force=args.force) as outputs:
        report = _start(args, spec)
        # A resumed swarm replaces its own report and writes into its own directory again.
        report_out = outputs.claim("--report", args.report, "report", replace=args.resume)
        out_dir = outputs.claim_dir("--out", args.out, reuse=args.resume)
        started = time.monotonic()
        ran = _run(args, spec, report, report_out)
        shrunk = _shrink(args, spec, report, outputs, out_dir)
        if report_out is not None:
            report_out.stream.write(_json(report, shrunk))
            report_out.commit()
        seconds = time.monotonic() - started
    if not args.quiet:
        print(_table(report, shrunk, ran, seconds))
    failed = sum(n for status, n in report.status.items() if status != "ok")
    return EXIT_VIOLATION if failed else EXIT_OK


def _run(
    args: argparse.Namespace, spec: SwarmWorld, report: SwarmReport, report_out: Output | None
) -> int:
    """Run the worlds the report has not done, in batches, checkpointing after each."""
    from sim.checking.swarm import run_world

    first, total = report.done, report.worlds
    bar = None if args.quiet else progress_bar(total, "swarm", unit="world")
    try:
        if bar is not None:
            bar(first)
        for start in range(first, total, BATCH):
            end = min(total, start + BATCH)

            def progress(done: int, _: int, start: int = start) -> None:
                if bar is not None:
                    bar(start + done)

            outcomes = run_tasks(
                run_world,
                [(spec, i) for i in range(start, end)],
                jobs=args.jobs,
                scheduler=args.scheduler,
                progress=progress,
                chunk=CHUNK,
            )
            for outcome in outcomes:
                report.add(outcome)
            if bar is not None and report.failures:
                bar.note(f"{len(report.failures)} failure signature(s)")
            if report_out is not None and end < total:
                report_out.checkpoint(_json(report, {}))
    finally:
        if bar is not None:
            bar.close()
    return total - first


def _shrink(
    args: argparse.Namespace,
    spec: SwarmWorld,
    report: SwarmReport,
    outputs: Outputs,
    out_dir: str | None,
) -> dict[str, dict[str, Any]]:
    """Shrink the first world of each failure signature; write each to `out_dir`."""
    from sim.checking.swarm import shrink_world, shrunk_toml

    found: dict[str, dict[str, Any]] = {}
    if spec.shrink_budget == 0:
        return found
    for k, f in enumerate(sorted(report.failures.values(), key=lambda f: f["world"]), 1):
        failure = report.first(f["signature"])
        bar = None if args.quiet else progress_bar(spec.shrink_budget, f"shrink {k}", unit="run")
        try:
            shrunk = shrink_world(failure, spec, None if bar is None else _advance(bar))
        finally:
            if bar is not None:
                bar.close()
        s = shrunk.scenario
        entry: dict[str, Any] = {
            "choices": len(shrunk.tape),
            "from_choices": shrunk.original,
            "runs": shrunk.tried,
            "actors": sum(p.size for p in s.pools) + len(s.actors) + len(s.clients),
            "steps": len(s.script) + len(s.faults.crash) + len(s.faults.slow) + len(s.faults.hang),
            "detail": shrunk.detail,
        }
        if out_dir is not None:
            name = f"{k}-{_slug(failure.signature or '')}.toml"
            out = outputs.claim("--out", os.path.join(out_dir, name), "shrunk world", replace=True)
            assert out is not None
            out.stream.write(shrunk_toml(failure, shrunk, spec))
            out.commit()
            entry["file"] = os.path.join(args.out, name)
        found[failure.signature or ""] = entry
    return found


def _advance(bar: ProgressBar) -> Callable[[int], None]:
    """A progress callback that moves `bar` on by the runs it is told of."""
    return lambda n: bar(bar.done + n)


def _json(report: SwarmReport, shrunk: dict[str, dict[str, Any]]) -> str:
    data = report.to_dict()
    for f in data["failures"]:
        if f["signature"] in shrunk:
            f["shrunk"] = shrunk[f["signature"]]
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def _table(report: SwarmReport, shrunk: dict[str, dict[str, Any]], ran: int, seconds: float) -> str:
    from sim.checking.swarm import STATUSES

    spec, status = report.spec, report.status
    conform = {0: "none", 1: "every world"}.get(spec.conform_every, f"every {spec.conform_every}th")
    lines = [
        f"swarm --seed {spec.seed}: {report.done:,} worlds of size {spec.size:g} on broker "
        f"{spec.broker}, conform {conform}",
        f"  events    {report.events:,} (median {report.median_events() or 0:,} per world)",
    ]
    notes = {"undrained": " (liveness: did not drain after its fault-free tail)",
             "crash": " (an exception in brokerlab: a bug)"}  # fmt: skip
    lines += [f"  {s:<10}{status.get(s, 0):>8,}{notes.get(s, '') if status.get(s) else ''}"
              for s in STATUSES]  # fmt: skip
    failures = sorted(report.failures.values(), key=lambda f: f["world"])
    if failures:
        lines += ["", "failures by signature (first world; shrunk):"]
    for f in failures:
        lines.append(f"  {f['signature']}: {f['count']:,} world(s), first world {f['world']}")
        entry = shrunk.get(f["signature"])
        if entry is not None:
            where = f" -> {entry['file']}" if "file" in entry else " (--out DIR writes it)"
            lines.append(
                f"    shrunk from {entry['from_choices']} to {entry['choices']} choices in "
                f"{entry['runs']} runs: {entry['actors']} actors, {entry['steps']} steps{where}"
            )
            lines.append(f"    {entry['detail']}")
    rate = ran / seconds * 60 if seconds > 0 else 0.0
    lines += ["", f"time: {seconds:.1f} s ({rate:,.0f} worlds/min this run)"]
    return "\n".join(lines)
