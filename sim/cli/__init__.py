"""The `brokerlab` command line: one module per command group, dispatch by `set_defaults(func=)`.

`run` and `replay` are in sim/cli/run.py, `sweep` and `plot` in sim/cli/lab.py, `conform`,
`mutants`, `check`, `lockstep` and `port-serve` in sim/cli/checks.py, `vectors` and `diff` in
sim/cli/vectors.py, what they share in sim/cli/_common.py.

Exit codes everywhere: 0 ok, 1 an invariant broke or a replay diverged, 2 bad input or usage.
A user mistake gets one clear line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sim.cli import checks, lab, run, vectors
from sim.cli._common import EXIT_USAGE, UsageError, _version
from sim.lab import SweepError
from sim.port import PortError
from sim.run import TraceError
from sim.scenario import ScenarioError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="brokerlab",
        description="A model-checked reference message broker and its deterministic simulator.",
    )
    parser.add_argument("--version", action="version", version=f"brokerlab {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run.add_parsers(sub)
    lab.add_parsers(sub)
    checks.add_parsers(sub)
    vectors.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except (UsageError, ScenarioError, TraceError, SweepError) as err:
        print(f"brokerlab {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except PortError as err:  # a port that crashed, hung or wrote nonsense (exit 1), or cannot run
        print(f"brokerlab {args.command}: {err}", file=sys.stderr)
        return err.exit_code
    return code
