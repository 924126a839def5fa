"""brokerlab's simulator: the public API.

A scenario (docs/scenario-format.md) is loaded into frozen records and simulated by a
deterministic discrete-event scheduler driving a broker; a run gives a `Result`: a summary, the
invariant violation if one broke, and, with `keep_trace=True`, its JSON Lines trace
(docs/trace-format.md), which `replay` re-runs and compares line by line.

>>> from sim import default_scenario, load_example, simulate, with_values
>>> result = simulate(default_scenario())
>>> result.ok, result.summary["requests"]["issued"]
(True, 1476)

Scenarios come from a file (`load_scenario`), TOML text (`loads_scenario`), a table
(`parse_scenario`), the examples shipped in sim/examples/ (`load_example`, `example_names`) or
`default_scenario()`; `with_values` changes keys by their dotted paths, checked as a file is:

>>> mmc = with_values(load_example("mmc"), {"until": 200.0, "client.load.arrivals.rate": 2.0})
>>> result = simulate(mmc, keep_trace=True)
>>> requests = result.requests()  # a pandas DataFrame, one row per request
>>> len(requests) == result.summary["requests"]["issued"]
True
>>> sorted(requests["served_by"].unique())
['workers-1', 'workers-2', 'workers-3', 'workers-4']

`Result.summary_frame()`, `Result.members()` and `Result.requests()` are pandas DataFrames, as is
`rows_to_frame(sweep(...))`; pandas is the optional `lab` extra (`pip install 'brokerlab[lab]'`),
imported only by those. `Result.trace()` gives the kept trace's lines as dicts.

The rooms behind this API, each a subpackage: `sim.scenario` (records, loading, distributions,
scripts), `sim.run` (the scheduler, world, runner, monitors, trace, replay, summary), `sim.lab`
(sweeps, probes, plots, theory), `sim.examples` (the example scenarios), `sim.checking` (the
model-to-broker bridge, lockstep, the checker's broker replay, mutants) and `sim.cli` (the
`brokerlab` command, also `python -m sim`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.examples import example_names, example_text, load_example
    from sim.lab._sweep import (
        SweepError,
        rows_to_csv,
        rows_to_frame,
        rows_to_json,
        sweep,
        with_values,
    )
    from sim.run import (
        Divergence,
        InvariantViolation,
        Result,
        RunResult,
        Scheduler,
        SchedulerError,
        Simulation,
        TraceError,
        replay,
        simulate,
    )
    from sim.scenario import (
        Scenario,
        ScenarioError,
        default_scenario,
        load_scenario,
        loads_scenario,
        parse_scenario,
    )

__all__ = [
    "Divergence",
    "InvariantViolation",
    "Result",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "Scheduler",
    "SchedulerError",
    "Simulation",
    "SweepError",
    "TraceError",
    "default_scenario",
    "example_names",
    "example_text",
    "load_example",
    "load_scenario",
    "loads_scenario",
    "parse_scenario",
    "replay",
    "rows_to_csv",
    "rows_to_frame",
    "rows_to_json",
    "simulate",
    "sweep",
    "with_values",
]

# Each public name's module, imported when the name is first read (PEP 562): `brokerlab run`
# loads the scenario and the simulator, not the lab, the examples or the model.
_HOMES = {
    "sim.examples": ("example_names", "example_text", "load_example"),
    "sim.lab._sweep": (
        "SweepError", "rows_to_csv", "rows_to_frame", "rows_to_json", "sweep", "with_values",
    ),
    "sim.run": (
        "Divergence", "InvariantViolation", "Result", "RunResult", "Scheduler", "SchedulerError",
        "Simulation", "TraceError", "replay", "simulate",
    ),
    "sim.scenario": (
        "Scenario", "ScenarioError", "default_scenario", "load_scenario", "loads_scenario",
        "parse_scenario",
    ),
}  # fmt: skip
_HOME = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> object:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'sim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # found once: later reads are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
