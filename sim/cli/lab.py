"""`brokerlab sweep` and `brokerlab plot` (docs/scenario-format.md, "Sweeps")."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from typing import Any

from sim.cli._common import (
    EXIT_OK,
    EXIT_VIOLATION,
    UsageError,
    _positive_int,
    _seed,
)
from sim.cli._outputs import Outputs, add_force_option
from sim.lab import SweepError, parse_vary, rows_from_csv, rows_to_csv, rows_to_json, sweep
from sim.scenario import MAX_SEED, load_scenario


def add_parsers(sub: Any) -> None:
    """The `sweep` and `plot` subcommands."""
    _add_sweep_parser(sub)
    _add_plot_parser(sub)


# -- sweep -----------------------------------------------------------------------------------


def _add_sweep_parser(sub: Any) -> None:
    sw = sub.add_parser(
        "sweep",
        help="run a scenario over a cross product of varied keys and seeds",
        description="Keys are dotted paths into the normalized scenario, e.g. "
        "pool.workers.strategy, client.load.arrivals.rate, faults.drop, until "
        "(docs/scenario-format.md, Sweeps).",
    )
    sw.set_defaults(func=_sweep)
    sw.add_argument("scenario", help="scenario TOML file (docs/scenario-format.md)")
    sw.add_argument(
        "--vary", action="append", default=[], metavar="KEY=V1,V2,...",
        help="a key and its values (TOML scalars); repeat for a cross product",
    )  # fmt: skip
    sw.add_argument("--seeds", type=_positive_int, default=1, help="seeds per combination")
    sw.add_argument(
        "--jobs", type=_positive_int, default=1,
        help="worker processes on this machine (1: inline); not with --scheduler",
    )  # fmt: skip
    sw.add_argument(
        "--scheduler", metavar="tcp://HOST:PORT",
        help="run on a dask.distributed cluster, at the address `dask scheduler` prints; the "
        "rows are a local run's. The workers need this version of brokerlab[dask] "
        "(docs/scenario-format.md, Running sweeps on a cluster)",
    )  # fmt: skip
    sw.add_argument("--out", metavar="PATH", help="write rows here: .json or .csv")
    sw.add_argument("--quiet", action="store_true", help="print nothing but errors")
    add_force_option(sw)


def _sweep(args: argparse.Namespace) -> int:
    with Outputs("sweep", force=args.force, inputs=[(args.scenario, "the scenario")]) as outputs:
        return _sweep_into(args, outputs)


def _sweep_into(args: argparse.Namespace, outputs: Outputs) -> int:
    if args.out and not args.out.endswith((".json", ".csv")):
        raise UsageError(f"--out {args.out!r}: the file name must end in .json or .csv")
    out = outputs.claim("--out", args.out, "rows")
    vary: dict[str, list[Any]] = {}
    for spec in args.vary:
        key, values = parse_vary(spec)
        if key in vary:
            raise UsageError(f"--vary {key}: given twice; list all its values in one --vary")
        vary[key] = values
    if args.scheduler is not None and args.jobs != 1:
        raise UsageError(
            f"--jobs {args.jobs} with --scheduler: choose one (on a cluster, its workers are the "
            "processes: `dask worker --nworkers N`)"
        )
    scenario = load_scenario(args.scenario)
    if scenario.seed + args.seeds - 1 > MAX_SEED:
        raise UsageError(
            f"--seeds {args.seeds}: seed {scenario.seed} plus {args.seeds - 1} passes "
            f"{MAX_SEED}, the largest seed"
        )
    # A bar of runs done on stderr, when a terminal (progress_bar): never in the rows.
    rows = sweep(
        scenario, vary, seeds=args.seeds, jobs=args.jobs, progress=not args.quiet,
        scheduler=args.scheduler,
    )  # fmt: skip
    if out is not None:
        out.stream.write(rows_to_csv(rows) if args.out.endswith(".csv") else rows_to_json(rows))
        out.commit()
    if not args.quiet:
        print(format_sweep(rows))
    broken = [r for r in rows if not r["invariants_ok"]]
    if broken:
        print(f"brokerlab sweep: invariants broke in {len(broken)} run(s)", file=sys.stderr)
        return EXIT_VIOLATION
    return EXIT_OK


def format_sweep(rows: Sequence[dict[str, Any]]) -> str:
    """One line per run: the varied values, the seed and the headline figures."""
    lines = []
    for r in rows:
        varied = list(r)[: list(r).index("seed")]
        setting = "  ".join(f"{k}={r[k]}" for k in varied)
        mean = "-" if r["latency_mean"] is None else f"{r['latency_mean']:.3f}"
        p99 = "-" if r["latency_p99"] is None else f"{r['latency_p99']:.3f}"
        lines.append(
            f"{setting}  seed={r['seed']}  latency mean {mean} p99 {p99}  "
            f"throughput {r['throughput']:.3f}  replied {r['requests_replied']}"
            f"/{r['requests_issued']}  timed out {r['requests_timed_out']}"
        )
    return "\n".join(lines)


# -- plot ------------------------------------------------------------------------------------

PLOT_KINDS = ("latency", "utilization", "sequence")


def _add_plot_parser(sub: Any) -> None:
    pl = sub.add_parser(
        "plot",
        help="draw sweep rows (JSON or CSV) or a trace (JSON Lines) as PNG, SVG or PDF",
        description="latency: latency of replied requests against offered load per strategy, "
        "theory dashed; utilization: per member and strategy; sequence: a trace as a sequence "
        "diagram (--window, --corr and --limit choose its events). Default: sequence for a "
        "trace, latency when the rows vary the load, else utilization.",
    )
    pl.set_defaults(func=_plot)
    pl.add_argument("input", help="rows from `brokerlab sweep --out` (.json or .csv), or a trace")
    pl.add_argument(
        "-o", "--output", required=True, metavar="FILE",
        help="image to write: .png, .svg or .pdf (by its extension)",
    )  # fmt: skip
    pl.add_argument("--kind", choices=PLOT_KINDS, help="what to draw (default: inferred)")
    add_force_option(pl)
    pl.add_argument(
        "--window", type=_window, metavar="T0:T1",
        help="sequence: only the events at times T0 <= t <= T1 (either may be left out: 5:)",
    )  # fmt: skip
    pl.add_argument(
        "--corr", type=_seed, metavar="N",
        help="sequence: only the events of correlation id N (its request, replies, resolve)",
    )  # fmt: skip
    pl.add_argument(
        "--limit", type=_positive_int, default=80, metavar="N",
        help="sequence: draw at most the first N events chosen (80); the figure says so",
    )  # fmt: skip


def _window(text: str) -> tuple[float, float]:
    lo, sep, hi = text.partition(":")
    try:
        t0 = float(lo) if lo.strip() else -math.inf
        t1 = float(hi) if hi.strip() else math.inf
    except ValueError:
        t0 = t1 = math.nan
    if not sep or math.isnan(t0) or math.isnan(t1):
        raise argparse.ArgumentTypeError(f"expected T0:T1 (times, e.g. 10:20 or 10:), got {text!r}")
    if t0 > t1:
        raise argparse.ArgumentTypeError(f"expected T0 <= T1, got {text!r}")
    return t0, t1


def _read_plot_input(path: str) -> tuple[str, list[dict[str, Any]]]:
    """('rows', rows) for a sweep's JSON or CSV, ('trace', lines) for a trace (its header
    left out)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as err:
        raise UsageError(f"cannot read {path!r}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"cannot read {path!r}: not UTF-8 text") from None
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        data = None
    if isinstance(data, list) and all(isinstance(r, dict) and "seed" in r for r in data):
        return "rows", _some(data, path)
    try:
        lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    except (json.JSONDecodeError, ValueError):
        lines = []
    if lines and isinstance(lines[0], dict) and lines[0].get("format") == "brokerlab-trace":
        if not all(isinstance(line, dict) and isinstance(line.get("t"), int | float)
                   for line in lines[1:]):  # fmt: skip
            raise UsageError(f"{path}: a trace whose lines are not all objects with a time `t`")
        return "trace", lines[1:]
    if data is None and not lines:
        try:
            return "rows", _some(rows_from_csv(text, path), path)
        except SweepError as err:
            if path.lower().endswith(".csv"):
                raise UsageError(str(err)) from None
    raise UsageError(
        f"{path}: neither sweep rows (JSON or CSV from `brokerlab sweep --out`) "
        "nor a trace (`brokerlab run --trace`)"
    )


def _some(rows: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    if not rows:
        raise UsageError(f"{path}: no rows to plot")
    return rows


def _plot(args: argparse.Namespace) -> int:
    with Outputs("plot", force=args.force, inputs=[(args.input, "the input")]) as outputs:
        return _plot_into(args, outputs)


def _plot_into(args: argparse.Namespace, outputs: Outputs) -> int:
    from sim.lab import plots  # matplotlib is slow to import: only when plotting

    if not args.output.lower().endswith(tuple("." + f for f in plots.FORMATS)):
        raise UsageError(f"-o {args.output!r}: the file name must end in .png, .svg or .pdf")
    image = outputs.claim("-o", args.output, "figure", binary=True)
    assert image is not None  # -o is required
    what, data = _read_plot_input(args.input)
    kind = args.kind
    if kind is None:
        loads = {r.get("offered_load") for r in data} if what == "rows" else set()
        kind = "sequence" if what == "trace" else "latency" if len(loads) > 1 else "utilization"
    if (kind == "sequence") != (what == "trace"):
        need = "a trace" if kind == "sequence" else "sweep rows"
        raise UsageError(f"--kind {kind} needs {need}; {args.input} holds {what}")
    if kind != "sequence":
        for flag in ("window", "corr"):
            if getattr(args, flag) is not None:
                raise UsageError(f"--{flag} chooses the events of a sequence diagram (a trace)")
    if kind == "sequence":
        try:
            fig = plots.sequence_diagram(data, limit=args.limit, window=args.window, corr=args.corr)
        except ValueError as err:
            raise UsageError(f"{args.input}: {err}") from None
        except (KeyError, TypeError) as err:  # a line without the fields of its kind
            raise UsageError(
                f"{args.input}: an event lacks a field or has a bad one: {err}"
            ) from None
    elif kind == "latency":
        fig = plots.latency_vs_load(data)
    else:
        fig = plots.utilization_by_member(data)
    try:
        plots.save_figure(fig, image.writing)  # a path with the output's extension
        image.commit()
    except OSError as err:
        raise UsageError(f"cannot write {args.output!r}: {err.strerror}") from None
    print(f"brokerlab plot: wrote {args.output} ({kind})")
    return EXIT_OK
