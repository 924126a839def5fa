"""`brokerlab vectors list|verify|regen|matrix` and `brokerlab diff` (docs/port-protocol.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sim.cli._common import (
    EXIT_OK,
    EXIT_VIOLATION,
    UsageError,
    _open_out,
    add_broker_options,
    broker_factory,
    close_broker,
)
from sim.cli._outputs import Outputs, add_force_option

ROOT = Path(__file__).resolve().parent.parent.parent  # a source checkout's top level
MATRIX = ROOT / "docs" / "rule-coverage.md"


def add_parsers(sub: Any) -> None:
    """The `vectors` and `diff` subcommands."""
    ve = sub.add_parser(
        "vectors",
        help="the golden conformance vectors: list them, verify a broker or port against them",
        description="Small scenarios with the reference's trace of each (sim/vectors/corpus/). "
        '`verify` runs them on a broker (a port: --broker cmd:"COMMAND") and compares its '
        "traces with the golden ones byte for byte, skipping vectors that need features the "
        "port lacks; exit 0 if all it ran pass, 1 otherwise.",
    )
    vsub = ve.add_subparsers(dest="action", required=True, metavar="ACTION")
    li = vsub.add_parser("list", help="each vector, what it shows, its rules and features")
    li.add_argument("--json", action="store_true", help="print the index as JSON")
    li.set_defaults(func=_list)
    vf = vsub.add_parser("verify", help="run the vectors on a broker; pass/fail per vector/rule")
    add_broker_options(vf)
    vf.add_argument(
        "only", nargs="*", metavar="RULE_OR_NAME",
        help="only the vectors written for these rules (5.5) or named so (5_5-reply)",
    )  # fmt: skip
    vf.add_argument("--verbose", "-v", action="store_true", help="one line per vector")
    vf.add_argument(
        "--keep", metavar="DIR",
        help="write each failing vector's trace here (a new or empty directory, or --force)",
    )  # fmt: skip
    add_force_option(vf)
    vf.set_defaults(func=_verify)
    rg = vsub.add_parser(
        "regen", help="rewrite the golden traces, the index and the matrix from the reference"
    )
    rg.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if any golden file would change"
    )
    rg.set_defaults(func=_regen)
    mx = vsub.add_parser("matrix", help="the rule-coverage matrix (docs/rule-coverage.md)")
    mx.add_argument("--out", metavar="PATH", help=f"write it here (default: print); {MATRIX.name}")
    add_force_option(mx)
    mx.add_argument(
        "--check", action="store_true", help="exit 1 if docs/rule-coverage.md is not up to date"
    )
    mx.set_defaults(func=_matrix)

    di = sub.add_parser(
        "diff",
        help="the first difference between a port's trace and the reference's",
        description="Compare two traces of one scenario line by line (headers without their "
        "`broker`): the first differing line, labelled port and reference, its operation and "
        "the spec rule that decides it. Exit 0 if identical, 1 if they differ.",
    )
    di.add_argument("port_trace", help="the trace the port (or any broker) wrote")
    di.add_argument("reference_trace", help="the reference's trace of the same scenario")
    di.set_defaults(func=_diff)


def _index() -> dict[str, Any]:
    from sim.vectors import read_index

    index = read_index()
    if not index:
        raise UsageError("no vector index (sim/vectors/corpus/index.json): run vectors regen")
    return index


def _list(args: argparse.Namespace) -> int:
    index = _index()
    if args.json:
        print(json.dumps(index, indent=1, sort_keys=True))
        return EXIT_OK
    for name, entry in sorted(index.items()):
        features = ", ".join(entry["features"]) or "base"
        print(f"{name}\n    {entry['summary']}\n    rules: {' '.join(entry['rules'])}")
        print(f"    needs: {features}; {entry['lines']} lines")
    print(f"{len(index)} vectors")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from sim.vectors import CORPUS

    with Outputs("vectors", force=args.force, inputs=[(str(CORPUS), "the corpus")]) as outputs:
        return _verify_into(args, outputs.claim_dir("--keep", args.keep))


def _verify_into(args: argparse.Namespace, keep: str | None) -> int:
    import time

    from sim.vectors import explain, rule_key, vectors, verify

    index = _index()
    chosen = vectors(only=args.only)
    if not chosen:
        raise UsageError(f"no vector matches {' '.join(args.only)}")
    factory = broker_factory(args)
    features = getattr(factory, "features", None)
    start = time.perf_counter()  # reported, never decides anything
    try:
        outcomes = verify(factory, chosen, index, features)
    finally:
        close_broker(factory)
    seconds = time.perf_counter() - start
    per_rule: dict[str, dict[str, int]] = {}
    for o in outcomes:  # per rule: the vectors written for it
        per_rule.setdefault(o.vector.rule, {"pass": 0, "fail": 0, "skip": 0})[o.status] += 1
        if args.verbose or o.status == "fail":
            extra = f" (needs {', '.join(o.missing)})" if o.missing else ""
            print(f"{o.status.upper():4} {o.vector.name}{extra}")
        if o.status == "fail" and o.difference is not None:
            print(
                "     "
                + explain(o.difference, o.vector.golden.read_text()).replace("\n", "\n     ")
            )
            if keep is not None:
                with _open_out(str(Path(keep) / f"{o.vector.name}.jsonl"), "trace") as out:
                    out.write(o.trace)
    print("\nrule     pass fail skip  (the vectors written for each rule)")
    for rule in sorted(per_rule, key=rule_key):
        c = per_rule[rule]
        mark = "  FAIL" if c["fail"] else ""
        print(f"{rule:<8} {c['pass']:>4} {c['fail']:>4} {c['skip']:>4}{mark}")
    counts = {s: sum(1 for o in outcomes if o.status == s) for s in ("pass", "fail", "skip")}
    print(
        f"\nbroker {args.broker}: {counts['pass']} passed, {counts['fail']} failed, "
        f"{counts['skip']} skipped (features the port lacks) of {len(outcomes)} vectors "
        f"in {seconds:.1f} s"
    )
    return EXIT_VIOLATION if counts["fail"] else EXIT_OK


def _regen(args: argparse.Namespace) -> int:
    from sim.vectors import CORPUS, regenerate

    files = regenerate()
    changed = [
        name
        for name, text in files.items()
        if not (CORPUS / name).exists() or (CORPUS / name).read_text(encoding="utf-8") != text
    ]
    stale = sorted(
        p.name for p in CORPUS.glob("*.jsonl") if p.name not in files
    )  # a golden trace without its scenario
    if args.check:
        for name in changed:
            print(f"would change: {name}")
        for name in stale:
            print(f"stale (no .toml): {name}")
        print(f"{len(files) - 1} vectors; {len(changed)} golden files would change")
        return EXIT_VIOLATION if changed or stale else EXIT_OK
    for name in changed:
        (CORPUS / name).write_text(files[name], encoding="utf-8", newline="\n")
    for name in stale:
        (CORPUS / name).unlink()
    print(f"{len(files) - 1} vectors; {len(changed)} golden files written, {len(stale)} removed")
    if MATRIX.parent.is_dir():  # a source checkout: the matrix follows the index
        text, uncovered = matrix_text()
        MATRIX.write_text(text, encoding="utf-8", newline="\n")
        print(f"wrote {MATRIX}; not covered: {', '.join(uncovered) or 'none'}")
    return EXIT_OK


def matrix_text() -> tuple[str, list[str]]:
    """The matrix, from the source checkout (docs/spec.md and tests/ are not installed)."""
    from model.checker import PROPERTY_RULES
    from sim.checking.mutants import MUTANT_RULES
    from sim.vectors import matrix

    spec, tests = ROOT / "docs" / "spec.md", ROOT / "tests"
    if not spec.exists() or not tests.is_dir():
        raise UsageError(f"the matrix needs a source checkout: no {spec} or {tests}")
    return matrix(spec, tests, _index(), PROPERTY_RULES, MUTANT_RULES)


def _matrix(args: argparse.Namespace) -> int:
    text, uncovered = matrix_text()
    if args.check:
        current = MATRIX.read_text(encoding="utf-8") if MATRIX.exists() else ""
        if current != text:
            print(
                f"{MATRIX} is not up to date: run brokerlab vectors matrix --out {MATRIX} --force"
            )
            return EXIT_VIOLATION
        print(f"{MATRIX} is up to date; not covered: {', '.join(uncovered) or 'none'}")
        return EXIT_OK
    if args.out:
        from sim.vectors import CORPUS

        inputs = [
            (str(ROOT / "docs" / "spec.md"), "the spec"),
            (str(CORPUS / "index.json"), "the index"),
        ]
        with Outputs("vectors", force=args.force, inputs=inputs) as outputs:
            out = outputs.claim("--out", args.out, "matrix")
            assert out is not None
            out.stream.write(text)
            out.commit()
        print(f"wrote {args.out}; not covered: {', '.join(uncovered) or 'none'}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as err:
        raise UsageError(f"cannot read {path!r}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"cannot read {path!r}: not UTF-8 text") from None


def _diff(args: argparse.Namespace) -> int:
    from sim.vectors import explain, first_difference

    port, reference = _read(args.port_trace), _read(args.reference_trace)
    for path, text in ((args.port_trace, port), (args.reference_trace, reference)):
        first = text.split("\n", 1)[0]
        try:
            head = json.loads(first)
        except ValueError:
            raise UsageError(f"{path}:1: not a trace header (invalid JSON)") from None
        if not isinstance(head, dict) or head.get("format") != "brokerlab-trace":
            raise UsageError(f"{path}:1: not a brokerlab trace header")
    diff = first_difference(port, reference)
    if diff is None:
        print(f"identical: {len(port.splitlines())} lines (headers aside from `broker`)")
        return EXIT_OK
    print(explain(diff, reference))
    return EXIT_VIOLATION
