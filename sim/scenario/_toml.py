"""A scenario written back as TOML (`scenario_toml`): what `brokerlab swarm` writes a shrunk
world as, so that `brokerlab run FILE` replays it.

The normalized form (`Scenario.to_dict()`) has one shape: scalars at the top, arrays of tables
(`[[pool]]`, `[[actor]]`, `[[client]]`, `[[script]]`), one table (`[faults]`), and inline
tables and arrays below. That shape takes a dozen lines to write; `tomllib` reads it back, and
`parse_scenario(tomllib.loads(scenario_toml(s))) == s` is tested.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from sim.scenario._records import Scenario


def value_toml(value: Any) -> str:
    """One TOML value: inline tables and arrays nest; strings are JSON strings (valid TOML)."""
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {value_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(value_toml(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"a scenario holds finite numbers only, got {value!r}")
        return repr(value)
    if isinstance(value, int | str):
        return json.dumps(value)
    raise TypeError(f"not a scenario value: {value!r}")


def scenario_toml(scenario: Scenario, comments: Iterable[str] = ()) -> str:
    """`scenario` as a TOML file, after `comments` (each line written as `# line`)."""
    data = scenario.to_dict()
    lines = [f"# {line}".rstrip() for line in comments]
    tables = []
    for key, value in data.items():
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            tables += [(f"[[{key}]]", item) for item in value]
        elif isinstance(value, Mapping):
            tables.append((f"[{key}]", value))
        elif not (isinstance(value, list) and not value):  # an empty array of tables: nothing
            lines.append(f"{key} = {value_toml(value)}")
    for head, table in tables:
        lines += ["", head]
        lines += [f"{k} = {value_toml(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"
