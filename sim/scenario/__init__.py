"""Scenarios: what to simulate (docs/scenario-format.md).

Frozen records (`Scenario` and its parts), the TOML loader that validates them with messages
naming the file, table and key (`load_scenario`, `parse_scenario`), service-time and key
distributions, and `[[script]]` steps (exact, timed broker operations).
"""

from sim.scenario._dists import (
    Constant,
    Dist,
    Exponential,
    KeySpec,
    LogNormal,
    Uniform,
    UniformKeys,
    Zipf,
    parse_dist,
    parse_keys,
)
from sim.scenario._limits import (
    MAX_ACTORS,
    MAX_CONCURRENCY,
    MAX_POOL_SIZE,
    MAX_SEED,
    MAX_SIGMA,
    MAX_TIME,
    MAX_USERS,
    MIN_RATE,
    MIN_SPEED,
    ZIPF_MAX_N,
)
from sim.scenario._load import load_scenario, loads_scenario, parse_scenario
from sim.scenario._records import (
    VERSION,
    ActorSpec,
    Arrivals,
    ClientSpec,
    Closed,
    ConstantArrivals,
    Crash,
    Faults,
    Hang,
    Poisson,
    PoolSpec,
    RetrySpec,
    Scenario,
    Slow,
    default_scenario,
)
from sim.scenario._script import ACTIONS, ScriptStep
from sim.scenario._tables import ScenarioError
from sim.scenario._toml import scenario_toml, value_toml

__all__ = [
    "ACTIONS",
    "MAX_ACTORS",
    "MAX_CONCURRENCY",
    "MAX_POOL_SIZE",
    "MAX_SEED",
    "MAX_SIGMA",
    "MAX_TIME",
    "MAX_USERS",
    "MIN_RATE",
    "MIN_SPEED",
    "VERSION",
    "ZIPF_MAX_N",
    "ActorSpec",
    "Arrivals",
    "ClientSpec",
    "Closed",
    "Constant",
    "ConstantArrivals",
    "Crash",
    "Dist",
    "Exponential",
    "Faults",
    "Hang",
    "KeySpec",
    "LogNormal",
    "Poisson",
    "PoolSpec",
    "RetrySpec",
    "Scenario",
    "ScenarioError",
    "ScriptStep",
    "Slow",
    "Uniform",
    "UniformKeys",
    "Zipf",
    "default_scenario",
    "load_scenario",
    "loads_scenario",
    "parse_dist",
    "parse_keys",
    "parse_scenario",
    "scenario_toml",
    "value_toml",
]
