"""What every `brokerlab` subcommand shares: exit codes, the usage error, argument types."""

from __future__ import annotations

import argparse
import math
from typing import IO, Any

from broker import Broker, BrokerFactory
from sim.scenario import MAX_SEED, MAX_TIME

# The exit codes of every command (sim/cli/__init__.py says what each means).
EXIT_OK, EXIT_VIOLATION, EXIT_USAGE, EXIT_INTERNAL, EXIT_UNDRAINED = 0, 1, 2, 3, 4
EXIT_INTERRUPTED, EXIT_PIPE = 130, 141  # the shell's 128 + SIGINT, 128 + SIGPIPE


class UsageError(Exception):
    """A bad command line value or unreadable input file: exit 2 with this message."""


def _version() -> str:
    # imported here: the lookup scans the installed packages, which a command pays only when
    # it prints its version (`--version`, an internal error)
    from importlib.metadata import PackageNotFoundError, version

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


def _until(text: str) -> float:
    """`--until`: a time, so at most the scenario format's cap on times."""
    value = _positive_float(text)
    if value > MAX_TIME:
        raise argparse.ArgumentTypeError(
            f"expected a finite number > 0 and <= {MAX_TIME:g}, got {text!r}"
        )
    return value


def _seed(text: str) -> int:
    """A seed (or an id): 64 bits, as ports keep it (docs/port-protocol.md)."""
    expected = f"expected an integer from 0 to {MAX_SEED}, got {text!r}"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(expected) from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(expected)
    return value


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    return _int_at_least(text, 1)


def _non_negative_int(text: str) -> int:
    return _int_at_least(text, 0)


def _open_out(path: str, what: str) -> IO[str]:
    try:
        return open(path, "w", encoding="utf-8", newline="\n")
    except OSError as err:
        raise UsageError(f"cannot write the {what} to {path!r}: {err.strerror}") from None


BROKER_HELP = (
    'reference (default), a mutant of `brokerlab mutants`, or cmd:"COMMAND": a port speaking '
    "docs/port-protocol.md"
)


def add_broker_options(parser: Any, default: str | None = "reference", help: str = "") -> None:
    """`--broker NAME` and `--port-timeout SECONDS`, shared by every command that drives one."""
    parser.add_argument("--broker", default=default, metavar="NAME", help=help or BROKER_HELP)
    parser.add_argument(
        "--port-timeout", type=_positive_float, default=10.0, metavar="SECONDS",
        help="with --broker cmd:...: how long the port may take to answer one request (10)",
    )  # fmt: skip


def broker_factory(args: argparse.Namespace, *, replay: bool = False) -> BrokerFactory:
    """The broker `--broker` names: the reference, a mutant, or a port (started here, so a port
    that cannot start or speaks another protocol version is a usage error, exit 2)."""
    name: str = args.broker
    if name == "reference":  # the common case: no mutant catalogue (nor its imports) needed
        return Broker
    from sim.checking.mutants import broker_class
    from sim.port import PortError, PortFactory

    if name.startswith("cmd:"):
        command = name[4:].strip()
        if not command:
            raise UsageError('--broker cmd: needs a command line, e.g. cmd:"node port.js"')
        factory = PortFactory(command, timeout=args.port_timeout, replay=replay)
        try:
            factory.link  # noqa: B018  # start it now
        except PortError as err:
            if err.exit_code == EXIT_USAGE:
                raise UsageError(str(err)) from None
            raise
        return factory
    try:
        return broker_class(name)
    except KeyError as err:
        raise UsageError(f"--broker: {err.args[0]}") from None


def close_broker(factory: object) -> None:
    """Stop a port's process, if the factory started one."""
    close = getattr(factory, "close", None)
    if callable(close):
        close()
