"""`brokerlab example`: print an example scenario's TOML, or list them (sim/examples/)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sim.cli._common import EXIT_OK, UsageError
from sim.examples import example_description, example_names, example_text


def add_parsers(sub: Any) -> None:
    """The `example` subcommand."""
    ex = sub.add_parser(
        "example",
        help="print an example scenario's TOML (no name: the built-in default), or --list them",
        description="Print example NAME's TOML to stdout, to save and edit: "
        "`brokerlab example mmc > mmc.toml`. Without NAME, the built-in default scenario, "
        "the one `brokerlab run` runs without a file.",
    )
    ex.set_defaults(func=_example)
    ex.add_argument("name", nargs="?", metavar="NAME", help="an example (see --list)")
    ex.add_argument("--list", action="store_true", help="list the examples, one line each")


def _example(args: argparse.Namespace) -> int:
    if args.list:
        if args.name is not None:
            raise UsageError("--list takes no NAME")
        names = example_names()
        width = max(map(len, names))
        for name in names:
            print(f"{name:<{width}}  {example_description(name)}")
        return EXIT_OK
    sys.stdout.write(example_text(args.name or "default"))
    return EXIT_OK
