"""What every `brokerlab` subcommand shares: exit codes, the usage error, argument types."""

from __future__ import annotations

import argparse
import math
import time
from importlib.metadata import PackageNotFoundError, version
from typing import IO, Any

from broker import BrokerFactory

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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _open_out(path: str, what: str) -> IO[str]:
    try:
        return open(path, "w", encoding="utf-8", newline="\n")
    except OSError as err:
        raise UsageError(f"cannot write the {what} to {path!r}: {err.strerror}") from None


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
    from sim.checking.mutants import broker_class
    from sim.port import PortError, PortFactory

    name: str = args.broker
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
