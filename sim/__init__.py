"""brokerlab's simulator: the public API.

A scenario (docs/scenario-format.md) is loaded into frozen records and simulated by a
deterministic discrete-event scheduler driving a broker; a run gives a summary and optionally a
JSON Lines trace (docs/trace-format.md) that `replay` re-runs and compares line by line.

>>> result = simulate(default_scenario())
>>> result.ok, result.summary["requests"]["issued"]
(True, 1476)

The rooms behind this API, each a subpackage: `sim.scenario` (records, loading, distributions,
scripts), `sim.run` (the scheduler, world, runner, monitors, trace, replay, summary), `sim.lab`
(sweeps, probes, plots, theory), `sim.checking` (the model-to-broker bridge, lockstep, the
checker's broker replay, mutants) and `sim.cli` (the `brokerlab` command).
"""

from sim.lab._sweep import SweepError, rows_to_csv, rows_to_json, sweep
from sim.run import (
    Divergence,
    InvariantViolation,
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
    parse_scenario,
)

__all__ = [
    "Divergence",
    "InvariantViolation",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "Scheduler",
    "SchedulerError",
    "Simulation",
    "SweepError",
    "TraceError",
    "default_scenario",
    "load_scenario",
    "parse_scenario",
    "replay",
    "rows_to_csv",
    "rows_to_json",
    "simulate",
    "sweep",
]
