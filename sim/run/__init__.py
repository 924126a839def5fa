"""The simulator itself: a scenario's world driving a broker in virtual time.

The deterministic scheduler and named random streams, the world (network faults, workers,
clients), the runner, online invariant monitors, the JSON Lines trace (docs/trace-format.md),
replay with the first divergence, the run's summary, and progress bars for long runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.run._executor import ExecutorError, run_tasks
    from sim.run._monitors import InvariantViolation
    from sim.run._oplog import register_args, request_args, send_args
    from sim.run._progress import ProgressBar, in_jupyter, progress_bar
    from sim.run._replay import Divergence, replay
    from sim.run._result import REQUEST_COLUMNS, Result, RunResult, require_pandas
    from sim.run._rng import Streams, stream
    from sim.run._runner import Progress, Simulation, hard_stop, simulate
    from sim.run._scheduler import ScheduledCall, Scheduler, SchedulerError, TieBreaker
    from sim.run._summary import format_summary, latency_summary
    from sim.run._trace import TraceError

__all__ = [
    "REQUEST_COLUMNS",
    "Divergence",
    "ExecutorError",
    "InvariantViolation",
    "Progress",
    "ProgressBar",
    "Result",
    "RunResult",
    "ScheduledCall",
    "Scheduler",
    "SchedulerError",
    "Simulation",
    "Streams",
    "TieBreaker",
    "TraceError",
    "format_summary",
    "hard_stop",
    "in_jupyter",
    "latency_summary",
    "progress_bar",
    "register_args",
    "replay",
    "request_args",
    "require_pandas",
    "run_tasks",
    "send_args",
    "simulate",
    "stream",
]

# Each public name's module, imported when the name is first read (PEP 562): `brokerlab run`
# loads what a run needs, not the executor, replay or the trace checker's model.
_HOMES = {
    "sim.run._executor": ("ExecutorError", "run_tasks"),
    "sim.run._monitors": ("InvariantViolation",),
    "sim.run._oplog": ("register_args", "request_args", "send_args"),
    "sim.run._progress": ("ProgressBar", "in_jupyter", "progress_bar"),
    "sim.run._replay": ("Divergence", "replay"),
    "sim.run._result": ("REQUEST_COLUMNS", "Result", "RunResult", "require_pandas"),
    "sim.run._rng": ("Streams", "stream"),
    "sim.run._runner": ("Progress", "Simulation", "hard_stop", "simulate"),
    "sim.run._scheduler": ("ScheduledCall", "Scheduler", "SchedulerError", "TieBreaker"),
    "sim.run._summary": ("format_summary", "latency_summary"),
    "sim.run._trace": ("TraceError",),
}  # fmt: skip
_HOME = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> object:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'sim.run' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # found once: later reads are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
