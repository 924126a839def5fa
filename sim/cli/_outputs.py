"""The files a `brokerlab` command writes, claimed before it does any work.

The rules, the same for every output flag (`run --trace/--summary`, `check --out/--graph`,
`sweep --out`, `plot -o`, `vectors matrix --out`, `vectors verify --keep`):

1. An output is claimed before the command does its work: a path that cannot be written (no
   such directory, no permission, a directory) is exit 2 at once, not after the run it wastes.
2. An output never replaces an input of its command (the same file by `os.path.samefile` or
   `os.path.realpath`), not even with `--force`; two outputs of one command never share a path.
3. An existing file is replaced only with `--force`. A device, a pipe or a standard stream
   (`/dev/null`, `/dev/stdout`, even redirected to a file) is written directly, as named.
4. A file appears whole or not at all: it is written next to its path (`NAME.part-XXXX.EXT`)
   and renamed over it once complete, so a command that fails leaves the old file (or none).
   One exception: a trace cut short by a crash or an interrupt is kept at its path, cut after
   its last whole line, and stderr says so; `brokerlab conform --partial` reads it. A file a
   long command rewrites as it goes (a swarm's report) is put at its path whole each time
   (`Output.checkpoint`).

`vectors regen` is outside these rules: it rewrites the golden files of a source checkout, which
is what it is for (its `--check` writes nothing).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import sys
from collections.abc import Iterable
from types import TracebackType
from typing import IO, Any

from sim.cli._common import UsageError

__all__ = ["Output", "Outputs", "add_force_option"]


def add_force_option(parser: Any) -> None:
    """`--force`, for every command that writes files (rule 3)."""
    parser.add_argument(
        "--force", action="store_true", help="replace output files that exist (never an input)"
    )


class Output:
    """One claimed file: write to `stream` (or to the path `writing`), then `commit()`."""

    __slots__ = ("done", "flag", "partial", "path", "stream", "target", "temp", "what")

    def __init__(
        self, flag: str, path: str, what: str, target: str, temp: str | None, stream: IO[Any]
    ) -> None:
        self.flag, self.path, self.what = flag, path, what
        self.target, self.temp, self.stream = target, temp, stream
        self.partial = False  # keep what was written if the command fails (a trace)
        self.done = False

    @property
    def writing(self) -> str:
        """The file being written, for writers that want a path: it has the path's extension."""
        return self.target if self.temp is None else self.temp

    def commit(self) -> None:
        """The file is complete: put it at its path."""
        if not self.done:
            self.done = True
            self.stream.close()
            if self.temp is not None:
                os.replace(self.temp, self.target)

    def checkpoint(self, text: str) -> None:
        """Put `text` at the path now, whole, through a temporary file of its own, and keep the
        output claimed for more (rule 4 for a file rewritten as a command goes). A device or a
        standard stream gets only what is committed at the end."""
        if self.temp is None:
            return
        directory, name = os.path.split(self.target)
        stem, ext = os.path.splitext(name)
        import tempfile  # only where a file is written: not by `brokerlab run --quiet`

        fd, temp = tempfile.mkstemp(prefix=f"{stem}.part-", suffix=ext, dir=directory)
        os.fchmod(fd, stat.S_IMODE(os.stat(self.temp).st_mode))
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(temp, self.target)

    def discard(self) -> None:
        """Nothing to write after all: leave the path as it was."""
        if not self.done:
            self.done = True
            with contextlib.suppress(OSError):
                self.stream.close()
            if self.temp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self.temp)

    def keep_partial(self) -> int:
        """The command failed midway: keep the whole lines written so far, at the path.

        Returns how many; with none, the file is discarded (a trace without its header is
        no trace).
        """
        with contextlib.suppress(OSError):
            self.stream.close()  # flushes what the writer buffered
        if self.temp is None:
            self.done = True
            return 0
        with open(self.temp, "rb+") as f:
            data = f.read()
            whole = data.rfind(b"\n") + 1  # a line the crash cut in two is dropped
            f.truncate(whole)
        if whole == 0:
            self.discard()
            return 0
        self.commit()
        return data.count(b"\n", 0, whole)


class Outputs:
    """The outputs of one command: `claim` each before the work, then `commit` each.

    Used as a context manager: on leaving it, every output not committed is discarded, except a
    `partial` one when an exception is leaving (rule 4), whose note goes to stderr.
    """

    def __init__(
        self, command: str, *, force: bool, inputs: Iterable[tuple[str | None, str]] = ()
    ) -> None:
        self.command, self.force = command, force
        self.inputs = [(path, name) for path, name in inputs if path]  # (path, "the scenario")
        self.claimed: list[Output] = []
        self.dirs: list[str] = []  # directories made for --keep: removed again if left empty

    def __enter__(self) -> Outputs:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        err: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for out in self.claimed:
            if out.done:
                continue
            lines = out.keep_partial() if err is not None and out.partial else 0
            if lines:
                print(
                    f"brokerlab {self.command}: the {out.what} at {out.path} is partial: cut "
                    f"after line {lines}; `brokerlab conform --partial {out.path}` checks it",
                    file=sys.stderr,
                )
            else:
                out.discard()
        for path in reversed(self.dirs):
            with contextlib.suppress(OSError):
                os.rmdir(path)  # only if empty

    def _check(self, flag: str, path: str, target: str) -> None:
        """Rule 2: not an input, not another output."""
        for given, name in self.inputs:
            if os.path.realpath(given) == target or _same(given, target):
                raise UsageError(f"{flag} {path}: is {name}, an input")
        for out in self.claimed:
            if out.target == target or _same(out.target, target):
                raise UsageError(f"{out.flag} and {flag} name the same file {path}")

    def claim(
        self,
        flag: str,
        path: str | None,
        what: str,
        *,
        binary: bool = False,
        partial: bool = False,
        replace: bool = False,
    ) -> Output | None:
        """Claim the file `path` (none: None) for `flag`, which writes `what` ("trace").
        `replace`: the command means to replace the file that is there (a resumed swarm's
        report, a file in a directory claimed with `claim_dir(..., reuse=True)`)."""
        if not path:
            return None
        try:
            mode: int | None = os.stat(path).st_mode
        except OSError:
            mode = None  # nothing there yet (or not reachable: creating it will say why)
        if mode is not None and stat.S_ISDIR(mode):
            raise UsageError(f"{flag} {path}: is a directory")
        if mode is not None and (not stat.S_ISREG(mode) or _DEVICES.match(path)):
            # A device, a pipe or a standard stream (/dev/stdout, even redirected to a file):
            # written as it is named, with nothing to replace and no file to share.
            try:
                stream: IO[Any] = open(path, "wb" if binary else "w")  # noqa: SIM115
            except OSError as err:
                raise UsageError(f"cannot write the {what} to {path!r}: {err.strerror}") from None
            out = Output(flag, path, what, path, None, stream)
        else:
            target = os.path.realpath(path)  # a symbolic link's file is replaced, not the link
            self._check(flag, path, target)
            if mode is not None and not (self.force or replace):
                raise UsageError(f"{flag} {path}: exists (--force replaces it)")
            out = self._temporary(flag, path, what, target, binary, mode)
        out.partial = partial
        self.claimed.append(out)
        return out

    def _temporary(
        self, flag: str, path: str, what: str, target: str, binary: bool, mode: int | None
    ) -> Output:
        directory, name = os.path.split(target)
        stem, ext = os.path.splitext(name)
        import tempfile  # only where a file is written: not by `brokerlab run --quiet`

        try:
            fd, temp = tempfile.mkstemp(prefix=f"{stem}.part-", suffix=ext, dir=directory)
        except OSError as err:
            raise UsageError(f"cannot write the {what} to {path!r}: {err.strerror}") from None
        # mkstemp makes the file private; give it the mode the replaced file had, or the
        # usual one for a new file (0666 less the umask).
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.fchmod(fd, stat.S_IMODE(mode))
        if binary:
            stream: IO[Any] = os.fdopen(fd, "wb")
        else:
            stream = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
        return Output(flag, path, what, target, temp, stream)

    def claim_dir(self, flag: str, path: str | None, *, reuse: bool = False) -> str | None:
        """Claim a directory to write files into (`--keep DIR`): new or empty, unless --force
        or `reuse` (a resumed swarm writes into its own directory again)."""
        if not path:
            return None
        target = os.path.realpath(path)
        self._check(flag, path, target)
        if os.path.exists(target):
            if not os.path.isdir(target):
                raise UsageError(f"{flag} {path}: is not a directory")
            if os.listdir(target) and not (self.force or reuse):
                raise UsageError(f"{flag} {path}: is not empty (--force writes into it)")
            return target
        try:
            os.makedirs(target)
        except OSError as err:
            raise UsageError(f"cannot make the directory {path!r}: {err.strerror}") from None
        self.dirs.append(target)
        return target


_DEVICES = re.compile(r"/dev/(stdout|stderr|fd/\d+)\Z")


def _same(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # either does not exist (yet)
        return False
