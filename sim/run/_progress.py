"""Progress bars for long runs, drawn by tqdm on a terminal or in a Jupyter notebook.

tqdm is in the optional `lab` extra, so it is imported only when a bar is about to be drawn, and
without it there is simply no bar. A bar goes to stderr, and only when stderr is a terminal or
the code runs in a Jupyter kernel: never into a pipe, a log file or an output. tqdm reads the
wall clock to pace its redraws and to estimate the time left; that is the one use of wall-clock
time allowed in sim/ besides a port's timeouts, and nothing simulated ever depends on it.
"""

from __future__ import annotations

import sys
import warnings
from types import TracebackType
from typing import IO, Any

__all__ = ["ProgressBar", "progress_bar"]


class ProgressBar:
    """A drawn bar. Call it with `(done, total)`, the signature of the progress callbacks of
    `simulate` (virtual time, `until`) and `sweep` (runs done, runs in all), or with `done`
    alone; close it (or use it as a context manager) to end its line. Build one with
    `progress_bar`, which decides whether anything is drawn at all."""

    __slots__ = ("_bar",)

    def __init__(self, bar: Any) -> None:
        self._bar = bar

    def __call__(self, done: float, total: float | None = None) -> None:
        bar = self._bar
        if total is not None and total != bar.total:
            bar.total = total
        bar.update(done - bar.n)

    def note(self, text: str) -> None:
        """Text shown after the counts (drawn at the next update)."""
        self._bar.set_postfix_str(text, refresh=False)

    @property
    def done(self) -> float:
        """How far the bar has got."""
        return float(self._bar.n)

    @property
    def total(self) -> float | None:
        """Where the bar ends, if known."""
        total = self._bar.total
        return None if total is None else float(total)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def in_jupyter() -> bool:
    """Whether this code runs in a Jupyter kernel (whose stderr is a cell's output, no tty)."""
    ipython = sys.modules.get("IPython")
    if ipython is None or "ipykernel" not in sys.modules:
        return False
    return getattr(ipython, "get_ipython", lambda: None)() is not None


def progress_bar(
    total: float | None,
    desc: str,
    *,
    unit: str = "it",
    unit_scale: bool = False,
    bar_format: str | None = None,
    file: IO[str] | None = None,
    delay: float = 1.0,
) -> ProgressBar | None:
    """A bar towards `total` (None: unknown, a counter), or None when none should be drawn:
    `file` (default stderr) is neither a terminal nor a Jupyter cell, or tqdm is not installed.

    The bar appears only after `delay` seconds, so a quick run draws nothing. `unit_scale`
    writes large counts as 1.2M; `bar_format` is tqdm's, whose fields include `{n}` and
    `{total}` (for example `t={n:.1f}/{total:g}` for virtual time).

    >>> import io
    >>> progress_bar(10, "runs", file=io.StringIO()) is None  # not a terminal
    True
    """
    out = sys.stderr if file is None else file
    if not (_isatty(out) or in_jupyter()):
        return None
    try:
        with warnings.catch_warnings():
            # Without ipywidgets tqdm.auto warns, then draws text, which a notebook shows fine.
            warnings.simplefilter("ignore")
            from tqdm.auto import tqdm
    except ImportError:
        return None
    bar = tqdm(
        total=total, desc=desc, unit=unit, unit_scale=unit_scale, bar_format=bar_format,
        file=out, delay=delay, leave=True, dynamic_ncols=True,
    )  # fmt: skip
    return ProgressBar(bar)


def _isatty(out: IO[str]) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):  # no such method, or a closed file
        return False
