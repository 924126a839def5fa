"""`brokerlab conform`, `mutants` and `check`: the model against traces, brokers and itself
(docs/spec.md sections 10 and 11)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sim.cli._common import (
    EXIT_OK,
    EXIT_VIOLATION,
    UsageError,
    _positive_int,
    add_broker_options,
    broker_factory,
    close_broker,
)
from sim.cli._outputs import Output, Outputs, add_force_option
from sim.run import ProgressBar, progress_bar

if TYPE_CHECKING:
    from model.checker import Report


def add_parsers(sub: Any) -> None:
    """The `conform`, `mutants`, `check`, `lockstep` and `port-serve` subcommands."""
    _add_conform_parser(sub)
    _add_mutants_parser(sub)
    _add_check_parser(sub)
    _add_lockstep_parser(sub)
    ps = sub.add_parser(
        "port-serve",
        help="the reference broker behind the port protocol, on stdin/stdout",
        description="Speak docs/port-protocol.md on standard input and output with the "
        "reference broker behind it, as a port does: an example of the protocol's other side, "
        'and a target for --broker cmd:"brokerlab port-serve".',
    )
    ps.set_defaults(func=_port_serve)


def _port_serve(args: argparse.Namespace) -> int:
    from sim.port import serve

    return serve(sys.stdin, sys.stdout)


# -- lockstep --------------------------------------------------------------------------------


def _add_lockstep_parser(sub: Any) -> None:
    lo = sub.add_parser(
        "lockstep",
        help="run a broker and the model side by side on random operation sequences",
        description="The lockstep test (Hypothesis' stateful testing): random sequences of "
        "every operation, performed on the broker and on the model, compared after each "
        "(result, events, counters, pending requests). A port is driven only with the "
        "features it declares. Reproducible: the same arguments draw the same examples. Exit 0 "
        "if the broker agrees with the model on every example, 1 with the shrunk failing "
        "example otherwise.",
    )
    lo.set_defaults(func=_lockstep)
    add_broker_options(lo)
    lo.add_argument(
        "--examples", type=_positive_int, default=200, metavar="N",
        help="operation sequences to try (default 200)",
    )  # fmt: skip
    lo.add_argument(
        "--steps", type=_positive_int, default=30, metavar="N",
        help="operations per sequence, at most (default 30)",
    )  # fmt: skip
    lo.add_argument("--quick", action="store_true", help="do not shrink a failure")


def _lockstep_settings(examples: int, steps: int, shrink: bool, derandomize: bool) -> Any:
    """Hypothesis' settings for a lockstep run. Hypothesis is a dev extra: exit 2 without it."""
    try:
        from hypothesis import HealthCheck, Phase, settings
    except ImportError:
        raise UsageError(
            "the lockstep test needs Hypothesis, a dev extra: pip install 'brokerlab[dev]'"
        ) from None
    phases = [Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if shrink else [])
    # Nothing that reads a clock: no deadline, no health check (they time examples), one bug
    # (looking for more stops after 10 s), so a seed gives the same run every time.
    return settings(
        max_examples=examples, stateful_step_count=steps, print_blob=False, deadline=None,
        phases=phases, database=None, derandomize=derandomize, report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip


def _lockstep(args: argparse.Namespace) -> int:
    settings = _lockstep_settings(args.examples, args.steps, not args.quick, derandomize=True)
    from sim.checking.hunt import run_lockstep

    factory = broker_factory(args)
    features = getattr(factory, "features", None)
    try:
        failure = run_lockstep(factory, settings, features)
    finally:
        close_broker(factory)
    scope = "" if features is None else f" (features: {', '.join(sorted(features)) or 'base'})"
    if failure is None:
        print(
            f"lockstep: {args.examples} examples, broker {args.broker!r} agrees with the model"
            f"{scope}"
        )
        return EXIT_OK
    print(
        f"lockstep: broker {args.broker!r} FAILED [{failure.check}] after {failure.steps} "
        f"steps{scope}\n{failure.message}"
    )
    return EXIT_VIOLATION


# -- conform ---------------------------------------------------------------------------------


def _add_conform_parser(sub: Any) -> None:
    co = sub.add_parser(
        "conform",
        help="replay a trace's operations on the reference model and compare every event",
        description="Reads a trace (docs/trace-format.md) from this or any other implementation, "
        "replays its operations one by one on the model and compares each result and event "
        "(docs/spec.md section 10). Exit 0: every operation conforms; 1: the first line where "
        "the trace and the model part ways is named; 2: unreadable input.",
    )
    co.set_defaults(func=_conform)
    co.add_argument("trace", help="trace file (JSON Lines, docs/trace-format.md)")
    co.add_argument(
        "--partial", action="store_true",
        help="the trace may stop mid-run: do not require its `end` line",
    )  # fmt: skip
    co.add_argument(
        "--lenient", action="store_true",
        help="do not require canonical JSON bytes (every field, value and order still counts)",
    )  # fmt: skip


def _check_header(first: str, source: str) -> None:
    """Line 1 read as `brokerlab replay` reads it: its scenario through the scenario loader."""
    from model import TraceUnreadable, read_header
    from sim.scenario import ScenarioError, parse_scenario

    if not first:
        return  # the checker says the file is empty
    head = read_header(first, source)
    try:
        parse_scenario(head["scenario"], f"{source}:1 (header scenario)")
    except ScenarioError as err:
        raise TraceUnreadable(str(err)) from None


def _count_lines(path: str) -> int:
    """The lines of a file, read as bytes in large blocks: the total of conform's bar."""
    count = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            count += block.count(b"\n")
    return count


def _conform(args: argparse.Namespace) -> int:
    from model import TraceUnreadable, check_trace

    bar = progress_bar(None, "conform", unit="line", unit_scale=True)
    try:
        if bar is not None:  # line n of the file has seq n - 1 (docs/trace-format.md)
            bar(0, max(1, _count_lines(args.trace) - 1))
        with open(args.trace, encoding="utf-8") as stream:
            _check_header(stream.readline(), args.trace)
            stream.seek(0)
            verdict = check_trace(
                stream,
                args.trace,
                complete=not args.partial,
                strict=not args.lenient,
                progress=bar,
            )
        if bar is not None and verdict.ok and bar.total is not None:
            bar(bar.total)  # the last operation's lines, after the last report
    except OSError as err:
        raise UsageError(f"cannot read {args.trace!r}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"cannot read {args.trace!r}: not UTF-8 text") from None
    except TraceUnreadable as err:
        raise UsageError(str(err)) from None
    finally:
        if bar is not None:
            bar.close()
    if verdict.illegal is not None:
        print(f"{args.trace}: does not conform at {verdict.illegal}")
        return EXIT_VIOLATION
    print(f"{args.trace}: {verdict.events} events of {verdict.ops} operations conform")
    return EXIT_OK


# -- mutants ---------------------------------------------------------------------------------


def _add_mutants_parser(sub: Any) -> None:
    mu = sub.add_parser(
        "mutants",
        help="run the lockstep test and the trace checker against every mutant broker",
        description="Each deliberately broken broker of sim.checking.mutants (or each one "
        "named) must be caught. The lockstep hunt shrinks its failure to the shortest example "
        "(slow: seconds to minutes each); --quick skips shrinking. The hunt draws its examples "
        "from --seed, so the same arguments print the same table. The table ends with a line "
        "`N/M caught`. Exit 0 if every mutant is caught, 1 if any survives, 2 for an unknown "
        "mutant name.",
    )
    mu.add_argument(
        "names", nargs="*", metavar="NAME",
        help="the mutants to hunt, in catalogue order (default: all)",
    )  # fmt: skip
    mu.add_argument(
        "--examples", type=_positive_int, default=1000, metavar="N",
        help="lockstep examples per mutant (default 1000)",
    )  # fmt: skip
    mu.add_argument(
        "--seed", type=int, default=0, metavar="N",
        help="the seed of the lockstep hunt's examples (default 0)",
    )  # fmt: skip
    mu.set_defaults(func=_mutants)
    mu.add_argument("--quick", action="store_true", help="do not shrink lockstep failures")
    mu.add_argument("--json", action="store_true", help="print the table as JSON")


def _mutant_names(given: Sequence[str]) -> list[str]:
    """The mutants named (all without names), in catalogue order; a usage error for others."""
    from sim.checking.mutants import MUTANTS

    unknown = [n for n in given if n not in MUTANTS]
    if unknown:
        raise UsageError(f"no mutant {unknown[0]!r}: expected some of {', '.join(MUTANTS)}")
    return [n for n in MUTANTS if not given or n in given]


def _mutants(args: argparse.Namespace) -> int:
    names = _mutant_names(args.names)
    hunt = _lockstep_settings(args.examples, 30, not args.quick, derandomize=True)
    from sim.checking.hunt import directed_result, run_lockstep
    from sim.checking.mutants import MUTANTS, conform_result

    rows = []
    for name in names:
        failure = run_lockstep(MUTANTS[name], hunt, seed=args.seed)
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
        shrunk = "not shrunk" if args.quick else "shrunk"
        print(
            f"brokerlab mutants: seed {args.seed}, up to {args.examples} lockstep examples "
            f"per mutant ({shrunk})\n"
        )
        print(format_mutants(rows))
    return EXIT_OK if all(r["caught_by"] for r in rows) else EXIT_VIOLATION


def format_mutants(rows: Sequence[dict[str, Any]]) -> str:
    """The `brokerlab mutants` table, ending with the line `N/M caught`."""
    lines = [f"{'mutant':<32} {'caught by':<46} {'steps':>5} {'seq':>5}"]
    for r in rows:
        caught = ", ".join(r["caught_by"]) or "SURVIVED"
        steps = "-" if r["lockstep_steps"] is None else str(r["lockstep_steps"])
        seq = "-" if r["conform_seq"] is None else str(r["conform_seq"])
        lines.append(f"{r['mutant']:<32} {caught:<46} {steps:>5} {seq:>5}")
    survivors = [r["mutant"] for r in rows if not r["caught_by"]]
    summary = f"{len(rows) - len(survivors)}/{len(rows)} caught"
    if survivors:
        summary += f"; survived: {', '.join(survivors)}"
    return "\n".join([*lines, "", summary])


# -- check -----------------------------------------------------------------------------------


# The bound flags. Each defaults to None, so `--preset` can tell which were given;
# `_check_bounds` fills the rest from `CheckBounds()`.
_BOUND_FLAGS = (
    "--clients", "--members", "--requests", "--capacity", "--backpressure", "--strategy",
    "--timeout", "--retries", "--faults", "--topic", "--tells", "--ttl", "--named", "--priority",
)  # fmt: skip


def _add_check_parser(sub: Any) -> None:
    # The bounds' menu only (model.checker re-exports it): the checker itself, and networkx
    # under it, are imported by `check` when it runs, not by every command's parser.
    from model._menu import FAULTS, PRESETS, CheckBounds
    from model._state import BACKPRESSURES, STRATEGIES

    d = CheckBounds()
    ch = sub.add_parser(
        "check",
        help="model-check the spec exhaustively on small bounds (docs/spec.md section 11)",
        description="Breadth-first exploration of every state the bounds allow; each property "
        "with its verdict. The bounds are the flags below, or a named set of them (--preset). "
        "Exit 0: all hold; 1: a violation (its shortest counterexample is printed after the "
        "table as numbered steps, and can be written with --out and replayed by `brokerlab "
        "run`); 2: bad bounds, including bound flags with "
        "--preset, and strategies whose choices the --broker cannot be made to take (a port's "
        "random and power_of_two; consistent_hash with retries).",
    )
    ch.set_defaults(func=_check)
    ch.add_argument(
        "--preset", choices=sorted(PRESETS), metavar="NAME",
        help=f"run each bounds of a named set in turn ({', '.join(PRESETS)}), stopping at the "
        "first with a violation: a line per bounds and one property table (each verdict the "
        "worst over the bounds); with --json, one object {preset, ok, reports: [report per "
        "bounds run]}. Not combined with bound flags.",
    )  # fmt: skip
    ch.add_argument(
        "--max-states", type=int, metavar="N",
        help="stop each search at N states: violations found so far stand, eventually-"
        "properties are n/a, and the report says the graph is partial",
    )  # fmt: skip
    ch.add_argument("--clients", type=int, help=f"clients ({d.clients})")
    ch.add_argument("--members", type=int, help=f"pool members ({d.members})")
    ch.add_argument("--requests", type=int, help=f"requests per client ({d.requests})")
    ch.add_argument("--capacity", help=f"mailbox capacity, or 'unbounded' ({d.capacity})")
    ch.add_argument(
        "--backpressure", help=f"{', '.join(BACKPRESSURES)} ({d.backpressure})"
    )  # fmt: skip
    ch.add_argument(
        "--strategy", help=f"{', '.join(STRATEGIES)} ({d.strategy}); random, power_of_two "
        "and consistent_hash (with a key nobody knows) branch on every member they may choose",
    )  # fmt: skip
    ch.add_argument("--timeout", type=int, help=f"request timeout in ticks ({d.timeout})")
    ch.add_argument(
        "--retries", type=int, metavar="ATTEMPTS",
        help=f"retry attempts of each send (1: no retries; {d.retry_attempts})",
    )  # fmt: skip
    ch.add_argument(
        "--faults", metavar="LIST",
        help=f"comma-separated, of {', '.join(FAULTS)}; or 'none' ({','.join(d.faults)})",
    )  # fmt: skip
    ch.add_argument(
        "--topic", action="store_const", const=True,
        help="members also subscribe to topic t; clients may publish requests, answered at once",
    )  # fmt: skip
    ch.add_argument("--tells", type=int, help=f"one-way sends per client ({d.tells})")
    ch.add_argument(
        "--ttl", metavar="TICKS",
        help="tells carry this TTL and a timestamp one tick ago, now or one tick ahead "
        "(default none)",
    )  # fmt: skip
    ch.add_argument(
        "--named", action="store_const", const=True,
        help="member 1 registers as `n`; clients may also send to name:n",
    )  # fmt: skip
    ch.add_argument(
        "--priority", action="store_const", const=True, help="every send may also be high"
    )  # fmt: skip
    ch.add_argument("--no-symmetry", action="store_true", help="explore every actor renaming")
    add_broker_options(
        ch, None, "also replay every transition on this broker: reference, a mutant, or "
        'cmd:"COMMAND", a port (docs/port-protocol.md)',
    )  # fmt: skip
    ch.add_argument("--out", metavar="PATH", help="write the first counterexample as a scenario")
    ch.add_argument("--graph", metavar="PATH", help="write the state graph (.graphml or .dot)")
    ch.add_argument("--json", action="store_true", help="print the report as one JSON object")
    add_force_option(ch)


def _optional_int(flag: str, text: str) -> int | None:
    if text in ("none", "unbounded"):
        return None
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"{flag} {text!r}: an integer or 'none'") from None


def _pick(value: Any, default: Any) -> Any:
    return default if value is None else value


def _check_bounds(args: argparse.Namespace) -> tuple[str | None, tuple[Any, ...]]:
    """The preset's name (None without one) and the bounds to check, validated."""
    from model.checker import PRESETS, BoundsError, CheckBounds

    given = [flag for flag in _BOUND_FLAGS if getattr(args, flag[2:]) is not None]
    if args.preset is not None:
        if given:
            raise UsageError(f"--preset {args.preset} fixes every bound: drop {', '.join(given)}")
        return args.preset, PRESETS[args.preset]
    d = CheckBounds()
    capacity = d.capacity if args.capacity is None else _optional_int("--capacity", args.capacity)
    faults = d.faults
    if args.faults is not None:
        faults = () if args.faults in ("", "none") else tuple(args.faults.split(","))
    bounds = CheckBounds(
        clients=_pick(args.clients, d.clients), members=_pick(args.members, d.members),
        requests=_pick(args.requests, d.requests), capacity=capacity,
        backpressure=_pick(args.backpressure, d.backpressure),
        strategy=_pick(args.strategy, d.strategy), timeout=_pick(args.timeout, d.timeout),
        retry_attempts=_pick(args.retries, d.retry_attempts), faults=faults,
        topic=bool(args.topic), tells=_pick(args.tells, d.tells),
        ttl=None if args.ttl is None else _optional_int("--ttl", args.ttl),
        named=bool(args.named), priority=bool(args.priority),
    )  # fmt: skip
    try:
        return None, (bounds.validate(),)
    except BoundsError as err:
        raise UsageError(f"bad bounds: {err}") from None


def _check_port_features(factory: Any, bounds: Any) -> None:
    """A port is checked on what it has: bounds that need more are a usage error."""
    features = getattr(factory, "features", None)
    if features is None:
        return
    needs = {f"strategy:{bounds.strategy}", "services"}
    if bounds.capacity is not None:
        needs.add(f"backpressure:{bounds.backpressure}")
    if bounds.topic:
        needs.add("topics")
    if bounds.retry_attempts > 1:
        needs.add("retry")
    if bounds.priority:
        needs.add("priority")
    if bounds.ttl is not None:
        needs.add("ttl")
    missing = sorted(needs - features)
    if missing:
        raise UsageError(
            f"the port lacks {', '.join(missing)}, which these bounds need; it has "
            f"{', '.join(sorted(features)) or 'no optional features'}"
        )


def _check(args: argparse.Namespace) -> int:
    with Outputs("check", force=args.force) as outputs:
        return _check_into(args, outputs)


def _check_into(args: argparse.Namespace, outputs: Outputs) -> int:
    from model.checker import BoundsError, check
    from sim.checking.exhaustive import check_broker, steering_problem

    preset, all_bounds = _check_bounds(args)
    if args.graph and preset is not None:
        raise UsageError("--graph writes one state graph: give bounds flags, not --preset")
    if args.graph and not args.graph.endswith((".graphml", ".dot")):
        raise UsageError(f"--graph {args.graph!r}: the file name must end in .graphml or .dot")
    graphml = bool(args.graph) and args.graph.endswith(".graphml")
    out_file = outputs.claim("--out", args.out, "counterexample")
    graph_file = outputs.claim("--graph", args.graph, "state graph", binary=graphml)
    symmetry = not args.no_symmetry
    reports = []
    factory = broker_factory(args, replay=True) if args.broker is not None else None
    try:
        if factory is not None:
            for bounds in all_bounds:  # refuse before running anything
                _check_port_features(factory, bounds)
                problem = steering_problem(bounds, factory)
                if problem is not None:
                    raise UsageError(f"bad bounds for --broker {args.broker}: {problem}")
        for bounds in all_bounds:
            progress = None if args.json else _check_bar()
            report = None
            try:
                if factory is not None:
                    report = check_broker(
                        bounds, factory, symmetry=symmetry, progress=progress,
                        clock=time.perf_counter, max_states=args.max_states,
                    )  # fmt: skip
                else:
                    report = check(
                        bounds, symmetry=symmetry, progress=progress,
                        labels=bool(args.graph), clock=time.perf_counter,
                        max_states=args.max_states,
                    )  # fmt: skip
            except BoundsError as err:
                raise UsageError(f"bad bounds: {err}") from None
            finally:
                if progress is not None:
                    progress.end(report)
            reports.append(report)
            if not report.ok:
                break  # the exit status is 1 already; the rest may take long
    finally:
        if factory is not None:
            close_broker(factory)
    ok = all(r.ok for r in reports)
    if preset is None:
        out = reports[0].to_dict()
        text = format_check(reports[0], args.broker)
    else:
        out = {"preset": preset, "ok": ok, "reports": [r.to_dict() for r in reports]}
        text = format_preset(preset, reports, len(all_bounds), args.broker)
    print(json.dumps(out, sort_keys=True) if args.json else text)
    if graph_file is not None:
        _write_graph(reports[0].graph, graph_file)
    _write_counterexample(args, reports[-1], out_file)
    return EXIT_OK if ok else EXIT_VIOLATION


def _write_counterexample(args: argparse.Namespace, report: Any, out: Output | None) -> None:
    """--out: the first counterexample of `report`, as a scenario (none: no file)."""
    from sim.checking.bridge import Unscriptable
    from sim.checking.exhaustive import scenario_toml

    bad = [p.counterexample for p in report.violations() if p.counterexample is not None]
    if out is None or not bad:
        return
    try:
        text = scenario_toml(bad[0], args.broker or "reference", report.bounds)
    except Unscriptable as err:
        print(f"brokerlab check: cannot write {args.out}: {err}", file=sys.stderr)
        return
    out.stream.write(text)
    out.commit()
    if not args.json:
        print(f"counterexample written to {args.out}")


_GRAPH_LIMIT = 20000


def _write_graph(graph: Any, file: Output) -> None:
    import networkx as nx

    if graph.number_of_nodes() > _GRAPH_LIMIT:
        raise UsageError(f"--graph: {graph.number_of_nodes()} states; at most {_GRAPH_LIMIT}")
    out = file.stream
    try:
        if file.path.endswith(".graphml"):
            nx.write_graphml(graph, out)
        else:
            out.write("digraph states {\n")
            for n, data in graph.nodes(data=True):
                out.write(f"  {n} [label={json.dumps(data.get('label', str(n)))}];\n")
            for a, b, data in graph.edges(data=True):
                out.write(f"  {a} -> {b} [label={json.dumps(data.get('label', ''))}];\n")
            out.write("}\n")
        file.commit()
    except OSError as err:
        raise UsageError(f"cannot write {file.path!r}: {err.strerror}") from None


class _CheckBar:
    """The checker's progress as a counter of states (no total is known before the search
    ends), with the transitions and depth beside it: `progress_bar`'s, on a terminal or in
    Jupyter."""

    def __init__(self, bar: ProgressBar) -> None:
        self.bar = bar

    def __call__(self, states: int, transitions: int, depth: int, seconds: float) -> None:
        self.bar.note(f"{transitions:,} transitions, depth {depth}")
        self.bar(states)

    def end(self, report: Report | None) -> None:
        """The search is over (None: it failed): the bar ends at its figures (the checker
        reports only every 2,000 states)."""
        if report is not None:
            self(report.states, report.transitions, report.depth, report.seconds)
        self.bar.close()


def _check_bar() -> _CheckBar | None:
    bar = progress_bar(None, "check", unit="state", unit_scale=True)
    return None if bar is None else _CheckBar(bar)


# How bad each verdict is, for a preset's one table: the worst over its bounds.
_WORST = ("n/a", "holds", "reached", "unreached", "violated")


def format_preset(preset: str, reports: Sequence[Any], planned: int, broker: str | None) -> str:
    """The report of `brokerlab check --preset`: a line per bounds, then one property table
    whose verdicts are the worst over the bounds (a sometimes-property is reached only if it is
    in every bounds that allows it), each violation with the bounds it was found in."""
    target = "the model" if broker is None else f"the model and broker {broker!r}"
    symmetry = "on" if reports[0].symmetry else "off"
    lines = [f"brokerlab check --preset {preset}: {target}, symmetry {symmetry}", ""]
    for i, r in enumerate(reports, 1):
        bounds = " ".join(f"{k}={_short(v)}" for k, v in r.bounds.to_dict().items())
        verdict = "ok" if r.ok else f"{len(r.violations())} VIOLATED"
        lines.append(f"  [{i}] {r.states:>8} states {r.seconds:7.1f}s  {verdict:<10} {bounds}")
    if len(reports) < planned:
        lines.append(f"  ({planned - len(reports)} more not run: stopped at the violation)")
    lines.append("")
    worst: dict[str, Any] = {}
    where: dict[str, int] = {}
    for i, r in enumerate(reports, 1):
        for p in r.properties:
            old = worst.get(p.name)
            if old is None or _WORST.index(p.verdict) > _WORST.index(old.verdict):
                worst[p.name], where[p.name] = p, i
    for name, p in worst.items():
        pair = f" (for {p.pair})" if p.pair else ""
        lines.append(f"  {p.kind:<10} {name:<30} {p.verdict.upper():<10} {p.text}{pair}")
        if p.counterexample is not None:
            lines.append(_counterexample_row(p, f" in [{where[name]}]"))
    for name, p in worst.items():  # in full, after the table
        if p.counterexample is not None:
            heading = f"counterexample in [{where[name]}]"
            lines += ["", _format_counterexample(p.counterexample, heading=heading)]
    ok = all(r.ok for r in reports)
    total = sum(r.seconds for r in reports)
    states = sum(r.states for r in reports)
    verdict = "all properties hold" if ok else "VIOLATED"
    lines += ["", f"verdict: {verdict} ({len(reports)} bounds, {states} states, {total:.1f}s)"]
    return "\n".join(lines)


def _format_counterexample(ce: Any, heading: str = "counterexample") -> str:
    from model.checker import format_counterexample

    return format_counterexample(ce, heading=heading)


def _short(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(value) or "none"
    return str(value)


def _counterexample_row(p: Any, where: str = "") -> str:
    """The line under a violated property's row: the counterexample in one line (printed in
    full after the table)."""
    ce = p.counterexample
    n = len(ce.steps)
    message = "" if p.text == ce.message else f": {ce.message}"
    return f"{'':13}counterexample{where}: {n} steps to t={ce.time:g}, below{message}"


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
    if r.limited:
        lines[-1:-1] = [f"partial: {r.stopped}; no eventually-property judged"]
    for p in r.properties:
        pair = f" (for {p.pair})" if p.pair else ""
        lines.append(f"  {p.kind:<10} {p.name:<30} {p.verdict.upper():<10} {p.text}{pair}")
        if p.counterexample is not None:
            lines.append(_counterexample_row(p))
    for p in r.properties:  # in full, after the table
        if p.counterexample is not None:
            lines += ["", _format_counterexample(p.counterexample)]
    verdict = "all properties hold" if r.ok else f"{len(r.violations())} VIOLATED"
    lines += ["", f"verdict: {verdict}"]
    return "\n".join(lines)
