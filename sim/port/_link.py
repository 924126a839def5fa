"""The pipe to a port: start it, say hello, exchange JSON lines, never hang (docs/port-protocol.md).

`Link` owns the subprocess. It writes request lines and reads answer lines with a per-call
timeout, and turns every way a port can fail (it cannot start, exits, hangs, writes something
that is not a JSON object, answers `ok: false`) into a `PortError` that names the port's command,
the last request sent and the last lines of its standard error.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shlex
import subprocess
import tempfile
import time
from typing import Any

from broker import BACKPRESSURES, STRATEGIES

PROTOCOL = 1
# What a port may list in `features` (docs/port-protocol.md, Features): one per strategy and
# backpressure mode the broker has, and the optional parts.
FEATURES = (
    *(f"strategy:{s}" for s in STRATEGIES),
    *(f"backpressure:{b}" for b in BACKPRESSURES),
    "services",
    "topics",
    "priority",
    "ttl",
    "retry",
    "transit",
)
DEFAULT_TIMEOUT = 10.0  # seconds a port may take to answer one request
_STDERR_TAIL = 10  # lines of the port's standard error shown when it fails


class PortError(Exception):
    """A port that failed or cannot be used: `exit_code` 1 (it misbehaved) or 2 (a usage error:
    it cannot start, speaks another version, lacks a feature the run needs)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Link:
    """One running port process. Not thread-safe (nor is a broker, spec 1.7)."""

    def __init__(self, command: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        from model import SPEC_VERSION

        self.command = command
        self.timeout = timeout
        self.last = "(nothing yet)"
        try:
            argv = shlex.split(command)
        except ValueError as err:
            raise PortError(f"port command {command!r}: {err}", 2) from None
        if not argv:
            raise PortError('port command is empty: expected cmd:"PROGRAM ARGS..."', 2)
        self._err = tempfile.TemporaryFile()  # noqa: SIM115  # lives as long as the port
        try:
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err
            )
        except OSError as err:
            self._err.close()
            raise PortError(f"cannot start port {command!r}: {err.strerror}", 2) from None
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._in = self._proc.stdin
        self._fd = self._proc.stdout.fileno()
        self._buf = bytearray()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._fd, selectors.EVENT_READ)
        hello_request = {"op": "hello", "protocol": PROTOCOL, "spec_version": SPEC_VERSION}
        self.write([json.dumps(hello_request)])
        hello = self.read()
        if hello.get("protocol") != PROTOCOL or hello.get("spec_version") != SPEC_VERSION:
            self.close()
            raise PortError(
                f"port {command!r} speaks protocol {hello.get('protocol')!r} and spec "
                f"{hello.get('spec_version')!r}; brokerlab speaks protocol {PROTOCOL} and spec "
                f"{SPEC_VERSION!r}",
                2,
            )
        features = hello.get("features")
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
            raise self.fail("its hello answer has no list of strings `features`")
        unknown = sorted(set(features) - set(FEATURES))
        if unknown:
            raise self.fail(f"unknown features {unknown}: expected some of {', '.join(FEATURES)}")
        self.features = frozenset(features)
        self.name = str(hello.get("name", command))

    # -- lines ---------------------------------------------------------------------------------

    def write(self, lines: list[str]) -> None:
        """Send request lines (several at once: the port answers them in order)."""
        self.last = lines[-1]
        try:
            self._in.write("".join(line + "\n" for line in lines).encode())
            self._in.flush()
        except (BrokenPipeError, ValueError):
            raise self.fail("it closed its input (exited?)") from None

    def read_line(self) -> str:
        """The next answer line, as text, within the timeout."""
        # The only wall-clock reads of sim/ besides the progress bars: they decide when to give
        # up on a port that hangs, never what is simulated.
        deadline = time.monotonic() + self.timeout
        while True:
            end = self._buf.find(b"\n")
            if end >= 0:
                raw = bytes(self._buf[:end])
                del self._buf[: end + 1]
                try:
                    return raw.decode()
                except UnicodeDecodeError:
                    raise self.fail("it wrote a line that is not UTF-8") from None
            left = deadline - time.monotonic()
            if left <= 0 or not self._selector.select(left):
                raise self.fail(f"no answer within {self.timeout:g} s (--port-timeout)")
            chunk = os.read(self._fd, 1 << 16)
            if not chunk:  # its output is closed: it exited, or will in a moment
                try:
                    code = self._proc.wait(timeout=1.0)
                except subprocess.TimeoutExpired:
                    code = None
                status = "closed its output" if code is None else f"exited with status {code}"
                raise self.fail(status)
            self._buf += chunk

    def read(self) -> dict[str, Any]:
        """The next answer, parsed; `ok: false` and anything not a JSON object fail."""
        return self.read_raw()[1]

    def read_raw(self) -> tuple[str, dict[str, Any]]:
        """The next answer as written and parsed."""
        line = self.read_line()
        answer = self.parse(line)
        if answer.get("ok") is not True and "ask" not in answer:
            problem = answer.get("problem", "no `ok: true` and no `problem` given")
            raise self.fail(f"it answered ok: false: {problem}")
        return line, answer

    def parse(self, line: str) -> dict[str, Any]:
        try:
            answer = json.loads(line)
        except ValueError as err:
            raise self.fail(f"it wrote invalid JSON ({err}): {line[:200]!r}") from None
        if not isinstance(answer, dict):
            raise self.fail(f"it wrote {line[:200]!r}, not a JSON object")
        return answer

    # -- failing and closing -------------------------------------------------------------------

    def fail(self, what: str) -> PortError:
        """The error for a port that misbehaved; it is stopped."""
        tail = self._stderr_tail()
        self.close()
        message = f"port {self.command!r} failed: {what}\n  last request: {self.last[:500]}"
        if tail:
            message += "\n  its standard error ends with:\n" + "\n".join(f"    {t}" for t in tail)
        return PortError(message, 1)

    def _stderr_tail(self) -> list[str]:
        try:
            self._err.seek(0, os.SEEK_END)
            size = self._err.tell()
            self._err.seek(max(0, size - 4096))
            text = self._err.read().decode(errors="replace")
        except (OSError, ValueError):
            return []
        return text.splitlines()[-_STDERR_TAIL:]

    def close(self) -> None:
        """End the port: close its input, then wait a little, then kill it."""
        proc = self._proc
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                self._in.close()
            try:
                proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._selector.close()
        self._err.close()

    @property
    def closed(self) -> bool:
        return self._proc.poll() is not None
