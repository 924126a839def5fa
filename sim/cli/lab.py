"""`brokerlab sweep` and `brokerlab plot` (docs/scenario-format.md, "Sweeps")."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from sim.cli._common import (
    EXIT_OK,
    EXIT_VIOLATION,
    UsageError,
    _open_out,
    _positive_int,
    _Progress,
)
from sim.lab import parse_vary, rows_to_csv, rows_to_json, sweep
from sim.scenario import load_scenario


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
    sw.add_argument("--jobs", type=_positive_int, default=1, help="worker processes")
    sw.add_argument("--out", metavar="PATH", help="write rows here: .json or .csv")
    sw.add_argument("--quiet", action="store_true", help="print nothing but errors")


def _sweep(args: argparse.Namespace) -> int:
    if args.out and not args.out.endswith((".json", ".csv")):
        raise UsageError(f"--out {args.out!r}: the file name must end in .json or .csv")
    vary: dict[str, list[Any]] = {}
    for spec in args.vary:
        key, values = parse_vary(spec)
        if key in vary:
            raise UsageError(f"--vary {key}: given twice; list all its values in one --vary")
        vary[key] = values
    scenario = load_scenario(args.scenario)
    bar = _Progress(sys.stderr) if not args.quiet and sys.stderr.isatty() else None
    try:
        rows = sweep(scenario, vary, seeds=args.seeds, jobs=args.jobs, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    if args.out:
        text = rows_to_csv(rows) if args.out.endswith(".csv") else rows_to_json(rows)
        with _open_out(args.out, "rows") as out:
            out.write(text)
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
        help="draw sweep rows (JSON) or a trace (JSON Lines) as a PNG",
        description="latency: latency against offered load per strategy, theory dashed; "
        "utilization: per member and strategy; sequence: a trace as a sequence diagram. "
        "Default: sequence for a trace, latency when the rows vary the load, else utilization.",
    )
    pl.set_defaults(func=_plot)
    pl.add_argument("input", help="rows from `brokerlab sweep --out x.json`, or a trace")
    pl.add_argument("-o", "--output", required=True, metavar="FILE.png", help="image to write")
    pl.add_argument("--kind", choices=PLOT_KINDS, help="what to draw (default: inferred)")


def _read_plot_input(path: str) -> tuple[str, list[dict[str, Any]]]:
    """('rows', rows) for a sweep's JSON, ('trace', events) for a trace."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as err:
        raise UsageError(f"cannot read {path!r}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"cannot read {path!r}: not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, list) and all(isinstance(r, dict) and "seed" in r for r in data):
        if not data:
            raise UsageError(f"{path}: no rows to plot")
        return "rows", data
    try:
        lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError:
        lines = []
    if lines and isinstance(lines[0], dict) and lines[0].get("format") == "brokerlab-trace":
        return "trace", lines[1:]
    raise UsageError(
        f"{path}: neither sweep rows (a JSON array from `brokerlab sweep --out x.json`) "
        "nor a trace (`brokerlab run --trace`)"
    )


def _plot(args: argparse.Namespace) -> int:
    if not args.output.lower().endswith(".png"):
        raise UsageError(f"-o {args.output!r}: the file name must end in .png")
    what, data = _read_plot_input(args.input)
    from sim.lab import plots  # matplotlib is slow to import: only when plotting

    kind = args.kind
    if kind is None:
        loads = {r.get("offered_load") for r in data} if what == "rows" else set()
        kind = "sequence" if what == "trace" else "latency" if len(loads) > 1 else "utilization"
    if (kind == "sequence") != (what == "trace"):
        need = "a trace" if kind == "sequence" else "sweep rows"
        raise UsageError(f"--kind {kind} needs {need}; {args.input} holds {what}")
    if kind == "sequence":
        fig = plots.sequence_diagram(data)
    elif kind == "latency":
        fig = plots.latency_vs_load(data)
    else:
        fig = plots.utilization_by_member(data)
    try:
        fig.savefig(args.output, dpi=100)
    except OSError as err:
        raise UsageError(f"cannot write {args.output!r}: {err.strerror}") from None
    print(f"brokerlab plot: wrote {args.output} ({kind})")
    return EXIT_OK
