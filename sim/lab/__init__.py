"""The load-balancing lab: parameter sweeps, probes into a run, plots, and queueing theory.

`sim.lab.plots` needs matplotlib (a runtime dependency) and is imported on its own.
"""

from sim.lab import theory
from sim.lab._probes import (
    DepthSeries,
    WindowSeries,
    depth_series,
    record_events,
    trace_events,
    wait_times,
    window_series,
)
from sim.lab._sweep import (
    SweepError,
    parse_vary,
    rows_from_csv,
    rows_to_csv,
    rows_to_frame,
    rows_to_json,
    sweep,
    with_values,
)

__all__ = [
    "DepthSeries",
    "SweepError",
    "WindowSeries",
    "depth_series",
    "parse_vary",
    "record_events",
    "rows_from_csv",
    "rows_to_csv",
    "rows_to_frame",
    "rows_to_json",
    "sweep",
    "theory",
    "trace_events",
    "wait_times",
    "window_series",
    "with_values",
]
