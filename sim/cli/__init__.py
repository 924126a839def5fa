"""The `brokerlab` command line: one module per command group, dispatch by `set_defaults(func=)`.

`run` and `replay` are in sim/cli/run.py, `sweep` and `plot` in sim/cli/lab.py, `conform`,
`mutants`, `check`, `lockstep` and `port-serve` in sim/cli/checks.py, `vectors` and `diff` in
sim/cli/vectors.py, `example` in sim/cli/examples.py, `swarm` in sim/cli/swarm.py, what they
share in sim/cli/_common.py.

The files a command writes follow one set of rules, in sim/cli/_outputs.py: claimed before the
work, never over an input, an existing file replaced only with --force, whole or absent.

Exit codes, the same for every command (EXIT_CODES, also in `brokerlab --help`):

- 0: ok.
- 1: a property broke: an invariant of a run, a replay that diverged, a trace that does not
  conform, a model-check violation, a surviving mutant, a failing vector, a port that crashed.
- 2: bad input: a flag, a file, a scenario or a trace, named in one line on stderr.
- 3: an internal error: an exception no input should cause, a bug in brokerlab. One line names
  it and asks for a report with the version and the command line (BROKERLAB_TRACEBACK=1 adds
  the traceback). Never used for a user's input: a traceback-worthy input is a bug to fix here.
- 4: undrained: a run (`run`, a swarm world) was cut off at its hard stop with work still
  scheduled (a long timeout, a fault scheduled late, an overloaded mailbox). Not a broken
  property: every invariant held as far as the run went; it just did not end.
- 130: interrupted (Ctrl-C). A trace being written is kept, cut after its last whole line.
- 141: standard output closed early (`brokerlab vectors list | head -1`): the command stops
  quietly, as a program killed by SIGPIPE does; it claims neither success nor a broken property,
  since its reader did not see the whole answer.

A user mistake gets one clear line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
from collections.abc import Sequence
from typing import Any

from sim.cli._common import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_PIPE,
    EXIT_USAGE,
    UsageError,
    _version,
)

__all__ = ["EXIT_CODES", "build_parser", "main"]

EXIT_CODES = """\
exit codes:
  0    ok
  1    a property broke: an invariant, a replay, conformance, a model check, a vector
  2    bad input: a flag, a file, a scenario or a trace (one line on stderr says which)
  3    internal error: a bug in brokerlab; please report the line it prints
  4    undrained: a run cut off at its hard stop with work still scheduled (no invariant broke)
  130  interrupted; a trace being written is kept, cut after its last whole line
  141  standard output closed early (| head): stopped quietly, as on SIGPIPE

Output files (--trace, --summary, --out, --graph, -o, --keep) are claimed before the work
starts, never replace an input, and replace an existing file only with --force."""


# The module (in sim/cli/) of each command: `brokerlab COMMAND` builds and imports only its own
# group's parser, so that `brokerlab run` does not load the model (the check parser's menus), the
# lab or the ports. tests/test_cli.py holds this table against the full parser.
GROUPS = {
    "run": "run", "replay": "run", "example": "examples", "sweep": "lab", "plot": "lab",
    "port-serve": "checks", "lockstep": "checks", "conform": "checks", "mutants": "checks",
    "check": "checks", "swarm": "swarm", "vectors": "vectors", "diff": "vectors",
}  # fmt: skip


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `brokerlab` parser: every command's, or, given a command `GROUPS` knows, only the
    commands of its group (what `main` builds)."""
    parser = argparse.ArgumentParser(
        prog="brokerlab",
        description="A model-checked reference message broker and its deterministic simulator.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_Version, help="show program's version number and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    group = GROUPS.get(command or "")
    for name in (group,) if group else dict.fromkeys(GROUPS.values()):
        importlib.import_module(f"sim.cli.{name}").add_parsers(sub)
    return parser


class _Version(argparse.Action):
    """`--version`, looked up only when asked (argparse's own takes the text when the parser is
    built, and the lookup scans the installed packages)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, argparse.SUPPRESS, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        print(f"brokerlab {_version()}")
        parser.exit()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit code (EXIT_CODES). argparse's own errors raise SystemExit(2)."""
    words = list(sys.argv[1:] if argv is None else argv)
    name = "brokerlab"
    try:
        args = build_parser(words[0] if words else None).parse_args(words)
        name = f"brokerlab {args.command}"
        code = _dispatch(args, name)
        sys.stdout.flush()  # a closed pipe shows here, inside main, not at the exit's flush
        return code
    except BrokenPipeError:
        _drop_stdout()
        return EXIT_PIPE
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # a bug: every input has its own message and exit 2
        what = " ".join(f"{type(err).__name__}: {err}".split())[:500]
        print(
            f"{name}: internal error: {what}. This is a bug in brokerlab {_version()}: please "
            f"report it with this line; command line: {shlex.join(['brokerlab', *words])}",
            file=sys.stderr,
        )
        if os.environ.get("BROKERLAB_TRACEBACK"):
            import traceback  # a bug's report only

            traceback.print_exc()
        return EXIT_INTERNAL


def _dispatch(args: argparse.Namespace, name: str) -> int:
    try:
        code: int = args.func(args)
    except Exception as err:
        return _reported(err, name)
    return code


def _reported(err: Exception, name: str) -> int:
    """The exit code of a command that raised `err`, said in one line; `err` again if it is
    not an input's error (a bug: `main` reports it)."""
    # Imported here, not at the top: a command loads only what it uses (`GROUPS`), and these
    # modules, if not loaded yet, load the lab and the ports.
    from sim.lab import SweepError
    from sim.port import PortError
    from sim.run import ExecutorError, TraceError
    from sim.scenario import ScenarioError

    if isinstance(err, (UsageError, ScenarioError, TraceError, SweepError, ExecutorError)):
        print(f"{name}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    if isinstance(
        err, PortError
    ):  # a port that crashed, hung or wrote nonsense (exit 1), or cannot run
        print(f"{name}: {err}", file=sys.stderr)
        return err.exit_code
    raise err


def _drop_stdout() -> None:
    """Python's advice for a reader gone away (docs.python.org, signal, "Note on SIGPIPE"):
    point stdout at devnull, so that what it still buffers is not flushed at exit."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a file: nothing will be flushed to a pipe
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
