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
from sim.sweep import SweepError, parse_vary, rows_to_csv, rows_to_json, sweep

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


# -- sweep -----------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _add_sweep_parser(sub: Any) -> None:
    sw = sub.add_parser(
        "sweep",
        help="run a scenario over a cross product of varied keys and seeds",
        description="Keys are dotted paths into the normalized scenario, e.g. "
        "pool.workers.strategy, client.load.arrivals.rate, faults.drop, until "
        "(docs/scenario-format.md, Sweeps).",
    )
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
    from sim import plots  # matplotlib is slow to import: only when plotting

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


# -- conform ---------------------------------------------------------------------------------


def _add_conform_parser(sub: Any) -> None:
    co = sub.add_parser(
        "conform",
        help="check that every event of a trace is a legal step of the reference model",
        description="Reads a trace (docs/trace-format.md) from this or any other implementation "
        "and checks it event by event against the model (docs/spec.md section 10). Exit 0: "
        "every event conforms; 1: the first illegal event is named; 2: unreadable input.",
    )
    co.add_argument("trace", help="trace file (JSON Lines, docs/trace-format.md)")
    co.add_argument(
        "--partial", action="store_true",
        help="the trace may stop mid-run: do not require it to end drained",
    )  # fmt: skip


def _conform(args: argparse.Namespace) -> int:
    from model import TraceUnreadable, check_trace

    progress = None
    if sys.stderr.isatty():

        def progress(n: int) -> None:
            sys.stderr.write(f"\rbrokerlab conform: {n} events checked")
            sys.stderr.flush()

    try:
        with open(args.trace, encoding="utf-8") as stream:
            verdict = check_trace(stream, args.trace, complete=not args.partial, progress=progress)
    except OSError as err:
        raise UsageError(f"cannot read {args.trace!r}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"cannot read {args.trace!r}: not UTF-8 text") from None
    except TraceUnreadable as err:
        raise UsageError(str(err)) from None
    finally:
        if progress is not None:
            sys.stderr.write("\n")
    if verdict.illegal is not None:
        print(f"{args.trace}: does not conform at {verdict.illegal}")
        return EXIT_VIOLATION
    print(f"{args.trace}: {verdict.events} events conform")
    return EXIT_OK


# -- mutants ---------------------------------------------------------------------------------


def _add_mutants_parser(sub: Any) -> None:
    mu = sub.add_parser(
        "mutants",
        help="run the lockstep test and the trace checker against every mutant broker",
        description="Each deliberately broken broker of sim.mutants must be caught. The lockstep "
        "hunt shrinks its failure to the shortest example (slow: seconds to minutes each); "
        "--quick skips shrinking. Exit 0 if every mutant is caught, 1 if any survives.",
    )
    mu.add_argument(
        "--examples", type=_positive_int, default=1000, metavar="N",
        help="lockstep examples per mutant (default 1000)",
    )  # fmt: skip
    mu.add_argument("--quick", action="store_true", help="do not shrink lockstep failures")
    mu.add_argument("--json", action="store_true", help="print the table as JSON")


def _mutants(args: argparse.Namespace) -> int:
    from hypothesis import Phase
    from hypothesis import settings as hsettings

    from sim.lockstep import run_lockstep
    from sim.mutants import MUTANTS, conform_result, directed_result

    phases = [Phase.explicit, Phase.reuse, Phase.generate]
    if not args.quick:
        phases.append(Phase.shrink)
    hunt = hsettings(
        max_examples=args.examples, stateful_step_count=30, print_blob=False, deadline=None,
        phases=phases, database=None,
    )  # fmt: skip
    rows = []
    for name in MUTANTS:
        failure = run_lockstep(MUTANTS[name], hunt)
        directed = directed_result(name)
        verdict = conform_result(name)
        caught = []
        if failure is not None:
            caught.append(f"lockstep:{failure.check}")
        elif directed is not None:
            caught.append(f"lockstep:{directed.check} (directed)")
        if verdict is not None and verdict.illegal is not None:
            caught.append("conform")
        rows.append(
            {
                "mutant": name,
                "caught_by": caught,
                "lockstep_steps": failure.steps if failure is not None else None,
                "conform_seq": verdict.illegal.seq if verdict and verdict.illegal else None,
                "conform": "n/a" if verdict is None else "caught" if verdict.illegal else "missed",
            }
        )
        if not args.json and sys.stderr.isatty():
            sys.stderr.write(f"\r{name}: {'caught' if caught else 'SURVIVED'}\033[K")
    if not args.json and sys.stderr.isatty():
        sys.stderr.write("\r\033[K")
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(format_mutants(rows))
    return EXIT_OK if all(r["caught_by"] for r in rows) else EXIT_VIOLATION


def format_mutants(rows: Sequence[dict[str, Any]]) -> str:
    """The `brokerlab mutants` table."""
    lines = [f"{'mutant':<32} {'caught by':<46} {'steps':>5} {'seq':>5}"]
    for r in rows:
        caught = ", ".join(r["caught_by"]) or "SURVIVED"
        steps = "-" if r["lockstep_steps"] is None else str(r["lockstep_steps"])
        seq = "-" if r["conform_seq"] is None else str(r["conform_seq"])
        lines.append(f"{r['mutant']:<32} {caught:<46} {steps:>5} {seq:>5}")
    return "\n".join(lines)


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


# -- check -----------------------------------------------------------------------------------


def _add_check_parser(sub: Any) -> None:
    from model.checker import FAULTS, CheckBounds

    d = CheckBounds()
    ch = sub.add_parser(
        "check",
        help="model-check the spec exhaustively on small bounds (docs/spec.md section 11)",
        description="Breadth-first exploration of every state the bounds allow; each property "
        "with its verdict. Exit 0: all hold; 1: a violation (its shortest counterexample can be "
        "written with --out and replayed by `brokerlab run`); 2: bad bounds.",
    )
    ch.add_argument("--clients", type=int, default=d.clients, help=f"default {d.clients}")
    ch.add_argument("--members", type=int, default=d.members, help=f"pool members ({d.members})")
    ch.add_argument("--requests", type=int, default=d.requests, help="requests per client")
    ch.add_argument("--capacity", default=str(d.capacity), help="mailbox capacity, or 'unbounded'")
    ch.add_argument("--backpressure", default=d.backpressure, help="reject, drop_newest, ...")
    ch.add_argument("--strategy", default=d.strategy, help="round_robin or least_loaded")
    ch.add_argument("--timeout", type=int, default=d.timeout, help="request timeout in ticks")
    ch.add_argument(
        "--retries", type=int, default=d.retry_attempts, metavar="ATTEMPTS",
        help="retry attempts of each request (1: no retries)",
    )  # fmt: skip
    ch.add_argument(
        "--faults", default=",".join(d.faults), metavar="LIST",
        help=f"comma-separated, of {', '.join(FAULTS)}; or 'none'",
    )  # fmt: skip
    ch.add_argument("--no-symmetry", action="store_true", help="explore every actor renaming")
    ch.add_argument(
        "--broker", metavar="NAME",
        help="also replay every transition on this broker: reference or a mutant",
    )  # fmt: skip
    ch.add_argument("--out", metavar="PATH", help="write the first counterexample as a scenario")
    ch.add_argument("--graph", metavar="PATH", help="write the state graph (.graphml or .dot)")
    ch.add_argument("--json", action="store_true", help="print the report as one JSON object")


def _check_bounds(args: argparse.Namespace) -> Any:
    from model.checker import BoundsError, CheckBounds

    if args.capacity == "unbounded":
        capacity = None
    else:
        try:
            capacity = int(args.capacity)
        except ValueError:
            raise UsageError(f"--capacity {args.capacity!r}: an integer or 'unbounded'") from None
    faults = () if args.faults in ("", "none") else tuple(args.faults.split(","))
    bounds = CheckBounds(
        args.clients, args.members, args.requests, capacity, args.backpressure,
        args.strategy, args.timeout, args.retries, faults,
    )  # fmt: skip
    try:
        return bounds.validate()
    except BoundsError as err:
        raise UsageError(f"bad bounds: {err}") from None


def _check(args: argparse.Namespace) -> int:
    from model.checker import check
    from sim._exhaustive import Unscriptable, broker_factory, check_broker, scenario_toml

    bounds = _check_bounds(args)
    if args.graph and not args.graph.endswith((".graphml", ".dot")):
        raise UsageError(f"--graph {args.graph!r}: the file name must end in .graphml or .dot")
    progress = _CheckProgress(sys.stderr) if sys.stderr.isatty() and not args.json else None
    symmetry = not args.no_symmetry
    if args.broker is not None:
        try:
            factory = broker_factory(args.broker)
        except KeyError as err:
            raise UsageError(f"--broker: {err.args[0]}") from None
        report = check_broker(
            bounds, factory, symmetry=symmetry, progress=progress, clock=time.perf_counter
        )
    else:
        report = check(
            bounds, symmetry=symmetry, progress=progress, labels=bool(args.graph),
            clock=time.perf_counter,
        )  # fmt: skip
    if progress is not None:
        progress.close()
    if args.json:
        print(json.dumps(report.to_dict(), sort_keys=True))
    else:
        print(format_check(report, args.broker))
    if args.graph:
        _write_graph(report.graph, args.graph)
    bad = [p for p in report.violations() if p.counterexample is not None]
    if args.out and bad:
        try:
            text = scenario_toml(bad[0].counterexample, args.broker or "reference", bounds)  # type: ignore[arg-type]
        except Unscriptable as err:
            print(f"brokerlab check: cannot write {args.out}: {err}", file=sys.stderr)
        else:
            with _open_out(args.out, "counterexample") as out:
                out.write(text)
            if not args.json:
                print(f"counterexample written to {args.out}")
    return EXIT_OK if report.ok else EXIT_VIOLATION


_GRAPH_LIMIT = 20000


def _write_graph(graph: Any, path: str) -> None:
    import networkx as nx

    if graph.number_of_nodes() > _GRAPH_LIMIT:
        raise UsageError(f"--graph: {graph.number_of_nodes()} states; at most {_GRAPH_LIMIT}")
    try:
        if path.endswith(".graphml"):
            nx.write_graphml(graph, path)
            return
        with open(path, "w", encoding="utf-8") as out:
            out.write("digraph states {\n")
            for n, data in graph.nodes(data=True):
                out.write(f"  {n} [label={json.dumps(data.get('label', str(n)))}];\n")
            for a, b, data in graph.edges(data=True):
                out.write(f"  {a} -> {b} [label={json.dumps(data.get('label', ''))}];\n")
            out.write("}\n")
    except OSError as err:
        raise UsageError(f"cannot write {path!r}: {err.strerror}") from None


class _CheckProgress:
    """States explored so far, on one terminal line."""

    def __init__(self, out: IO[str]) -> None:
        self.out, self.drawn = out, False

    def __call__(self, states: int, transitions: int, depth: int, seconds: float) -> None:
        rate = states / seconds if seconds > 0 else 0.0
        self.out.write(
            f"\r{states} states  {transitions} transitions  depth {depth}  "
            f"{seconds:.0f}s  {rate:,.0f} states/s"
        )
        self.out.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.out.write("\n")


def format_check(report: Any, broker: str | None = None) -> str:
    """The human-readable report of `brokerlab check`."""
    r = report
    target = "the model" if broker is None else f"the model and broker {broker!r}"
    lines = [
        f"brokerlab check: {target}, symmetry {'on' if r.symmetry else 'off'}",
        "bounds: " + "  ".join(f"{k}={v}" for k, v in r.bounds.to_dict().items()),
        f"states {r.states}  transitions {r.transitions}  depth {r.depth}  "
        f"seconds {r.seconds:.2f}  states/s {r.states_per_second:,.0f}",
        "",
    ]
    for p in r.properties:
        pair = f" (for {p.pair})" if p.pair else ""
        lines.append(f"  {p.kind:<10} {p.name:<30} {p.verdict.upper():<10} {p.text}{pair}")
        if p.counterexample is not None:
            ce = p.counterexample
            lines.append(
                f"             counterexample: {len(ce.actions())} actions, t={ce.time!r}: "
                + ce.detail.splitlines()[0]
            )
    verdict = "all properties hold" if r.ok else f"{len(r.violations())} VIOLATED"
    lines += ["", f"verdict: {verdict}"]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
