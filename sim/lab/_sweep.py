"""Parameter sweeps: one scenario, some of its keys varied over values, times N seeds.

A key is a dotted path into the scenario's normalized form (`Scenario.to_dict()`); inside an
array of tables (`pool`, `actor`, `client`) the next segment selects an entry by its `name`, or by
its position from 1 when the entries have no name (`faults.crash.1.at`). Every combination is
re-validated with `parse_scenario`, so a bad key or value is a `SweepError` naming the key before
anything runs. Runs are independent, so they may go to worker processes or a dask cluster
(`sim.run.run_tasks`); rows come back in the order of the cross product (first key outermost,
seeds innermost) whatever the executor and number of workers, so a sweep's output is a pure
function of its inputs. The row layout is in ROW_FIELDS and docs/scenario-format.md ("Sweeps").
"""

from __future__ import annotations

import copy
import csv
import difflib
import io
import itertools
import json
import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sim.run import progress_bar, require_pandas, run_tasks, simulate
from sim.scenario import Poisson, Scenario, ScenarioError, parse_scenario

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ROW_FIELDS",
    "SweepError",
    "parse_value",
    "parse_vary",
    "rows_from_csv",
    "rows_to_csv",
    "rows_to_frame",
    "rows_to_json",
    "set_path",
    "sweep",
    "with_values",
]

Value = Any  # a TOML value: int, float, bool, str, or a list or table of them
Progress = Callable[[int, int], None]  # (runs done, runs in total)

# The summary figures of every row, in CSV column order, after the varied keys and `seed`;
# then one `utilization.<member>` column per pool member and actor (busy time / end time).
ROW_FIELDS = (
    "offered_load",  # arrival rate into the first pool * mean service time / total speed
    "servers",  # members of the first pool
    "service_mean",  # mean service time of the first pool at speed 1
    "latency_mean",
    "latency_p50",
    "latency_p90",
    "latency_p99",
    "throughput",  # replied requests / end time (the arrival window plus the drain)
    "dead_letters",  # messages dead-lettered, all reasons
    "requests_issued",
    "requests_replied",
    "requests_timed_out",
    "invariants_ok",
)
_ARRAYS = ("pool", "actor", "client")


class SweepError(ValueError):
    """A sweep that cannot run: a bad key, value or combination. The message names the key."""


def parse_value(text: str) -> Value:
    """A value as TOML would read it on the right of `k = `, else the text as a bare string.

    >>> [parse_value(t) for t in ("3", "2.5", "true", "round_robin", '"7"')]
    [3, 2.5, True, 'round_robin', '7']
    """
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    return value if isinstance(value, bool | int | float | str) else text


def parse_vary(spec: str) -> tuple[str, list[Value]]:
    """`KEY=V1,V2,...` into the key and its values (each read by `parse_value`).

    >>> parse_vary("pool.workers.strategy=random,shared")
    ('pool.workers.strategy', ['random', 'shared'])
    """
    key, sep, values = spec.partition("=")
    key = key.strip()
    if not sep or not key or not values.strip():
        raise SweepError(f"--vary {spec!r}: expected KEY=V1,V2,... (for example until=100,200)")
    return key, [parse_value(v.strip()) for v in values.split(",")]


def _entry(items: list[Any], where: str, segments: list[str]) -> tuple[dict[str, Any], int]:
    """The entry of an array of tables that the next segment(s) select, and segments used.

    Names may contain dots, so the longest run of segments that names an entry wins."""
    named = {e.get("name"): e for e in items if isinstance(e, dict) and "name" in e}
    for n in range(len(segments), 0, -1):
        entry = named.get(".".join(segments[:n]))
        if entry is not None:
            return entry, n
    head = segments[0]
    if head.isdigit() and 1 <= int(head) <= len(items) and isinstance(items[int(head) - 1], dict):
        return items[int(head) - 1], 1
    choices = [str(name) for name in named] or [str(k) for k in range(1, len(items) + 1)]
    close = difflib.get_close_matches(head, choices, n=1)
    hint = (
        f'did you mean "{close[0]}"?' if close else "there are: " + (", ".join(choices) or "none")
    )
    raise SweepError(f'{where} has no entry "{head}" ({hint})')


def set_path(data: dict[str, Any], key: str, value: Value) -> None:
    """Set the dotted `key` of a normalized scenario dict in place (module docstring).

    A missing table key is created, for `parse_scenario` to judge (it suggests close keys).

    >>> d = {"until": 1.0, "pool": [{"name": "w", "size": 2}]}
    >>> set_path(d, "pool.w.size", 4); d["pool"][0]["size"]
    4
    """
    segments = key.split(".")
    if not all(segments):
        raise SweepError(f'key "{key}": empty segment')
    node: Any = data
    done: list[str] = []
    while True:
        seg, rest = segments[0], segments[1:]
        where = ".".join(done) or "the scenario"
        if isinstance(node, list):
            node, used = _entry(node, where, segments)
            done += segments[:used]
            segments = segments[used:]
            if not segments:
                raise SweepError(f'key "{key}": name a key of the entry, e.g. "{key}.size"')
            continue
        if not isinstance(node, dict):
            raise SweepError(f'key "{key}": "{where}" is a value, not a table')
        if not rest:
            node[seg] = value
            return
        if seg not in node and seg not in _ARRAYS:
            node[seg] = {}
        elif seg not in node:
            node[seg] = []
        node = node[seg]
        done.append(seg)
        segments = rest


def with_values(scenario: Scenario, changes: Mapping[str, Value]) -> Scenario:
    """`scenario` with the dotted keys of `changes` set to their values: the keys of a sweep
    (module docstring), and `seed` too. The result is checked as a file is, so a bad key or
    value raises `ScenarioError` naming it.

    >>> from sim import default_scenario
    >>> s = with_values(default_scenario(), {"seed": 3, "pool.workers.strategy": "shared"})
    >>> s.seed, s.pools[0].strategy
    (3, 'shared')
    """
    data = copy.deepcopy(scenario.to_dict())
    for key, value in changes.items():
        try:
            set_path(data, key, value)
        except SweepError as err:
            raise ScenarioError(f"with_values: {err}") from None
    return parse_scenario(data, "with_values")


def _modified(base: Mapping[str, Any], changes: Sequence[tuple[str, Value]]) -> Scenario:
    data = copy.deepcopy(dict(base))
    for key, value in changes:
        try:
            set_path(data, key, value)
        except SweepError as err:
            raise SweepError(f"--vary {key}={value!r}: {err}") from None
    source = "--vary " + " ".join(f"{k}={v!r}" for k, v in changes)
    try:
        return parse_scenario(data, source)
    except ScenarioError as err:
        raise SweepError(str(err)) from None


def _first_pool_figures(s: Scenario) -> dict[str, float | int | None]:
    """offered_load, servers and service_mean of the first pool (None without a pool)."""
    if not s.pools:
        return {"offered_load": None, "servers": None, "service_mean": None}
    pool = s.pools[0]
    rate = 0.0
    for c in s.clients:
        if c.target == f"pool:{pool.name}":
            a = c.arrivals
            rate += a.rate if isinstance(a, Poisson) else 1.0 / getattr(a, "interval", math.inf)
    mean = float(pool.service.mean)
    speed = math.fsum(pool.speeds) if pool.speeds else float(pool.size)
    return {"offered_load": rate * mean / speed, "servers": pool.size, "service_mean": mean}


def _run(data: dict[str, Any]) -> dict[str, Any]:
    """One run, in whichever process: the normalized scenario in, the row's figures out."""
    scenario = parse_scenario(data, "<sweep>")
    s = simulate(scenario).summary
    lat, req = s["latency"], s["requests"]
    end = s["end_time"]
    row: dict[str, Any] = {
        **_first_pool_figures(scenario),
        "latency_mean": lat["mean"],
        "latency_p50": lat["p50"],
        "latency_p90": lat["p90"],
        "latency_p99": lat["p99"],
        "throughput": req["replied"] / end if end > 0 else 0.0,
        "dead_letters": s["messages"]["dead_lettered"],
        "requests_issued": req["issued"],
        "requests_replied": req["replied"],
        "requests_timed_out": req["timed_out"],
        "invariants_ok": s["invariants"]["ok"],
    }
    for label, member in s["members"].items():
        row[f"utilization.{label}"] = member["utilization"]
    return row


MAX_JOBS = 256  # processes on one machine: each one a Python interpreter


def sweep(
    scenario: Scenario,
    vary: Mapping[str, Sequence[Value]],
    seeds: int = 1,
    jobs: int = 1,
    progress: Progress | bool | None = None,
    scheduler: str | None = None,
) -> list[dict[str, Any]]:
    """Run every combination of `vary` (a cross product, in the order given) for seeds
    `scenario.seed + k`, k < `seeds`, on `jobs` processes (1: inline) or on the workers of the
    dask.distributed `scheduler` (`tcp://HOST:PORT`; `sim.run.run_tasks`), and return one row
    each. The rows are the same whichever runs them.

    A row holds the varied keys with their values, `seed`, then ROW_FIELDS and the
    `utilization.<member>` figures. Raises `SweepError` (naming the key) before running anything
    if a key or value is bad. `progress`: True draws a bar of the runs done out of all of them
    on a terminal or in a notebook (`sim.run.progress_bar`; none without tqdm); a callable is
    called with `(runs done, runs in all)` after each run. Neither changes a row. Raises
    `ExecutorError` (`sim.run`) if the scheduler is malformed or unreachable, or dask missing.
    """
    if not (isinstance(seeds, int) and seeds >= 1):
        raise SweepError(f"seeds must be an integer >= 1, got {seeds!r}")
    if not (isinstance(jobs, int) and 1 <= jobs <= MAX_JOBS):
        raise SweepError(f"jobs must be an integer in [1, {MAX_JOBS}], got {jobs!r}")
    for key, values in vary.items():
        if key in ("seed", "version"):
            raise SweepError(f'--vary {key}: "{key}" cannot be varied (use --seeds)')
        if isinstance(values, str) or not values:
            raise SweepError(f"--vary {key}: expected a non-empty list of values")
    base = scenario.to_dict()
    for key, values in vary.items():  # one key at a time first, so an error names the culprit
        for value in values:
            _modified(base, [(key, value)])
    combos = [list(zip(vary, vals, strict=True)) for vals in itertools.product(*vary.values())]
    tasks: list[tuple[list[tuple[str, Value]], dict[str, Any]]] = []
    for changes in combos:
        varied = _modified(base, changes).to_dict()
        for k in range(seeds):
            tasks.append((changes, {**varied, "seed": scenario.seed + k}))
    bar = progress_bar(len(tasks), "sweep", unit="run") if progress is True else None
    report = bar if isinstance(progress, bool) else progress
    try:
        figures = run_tasks(
            _run, [data for _, data in tasks], jobs=jobs, scheduler=scheduler, progress=report
        )
    finally:
        if bar is not None:
            bar.close()
    rows = []
    for (changes, data), fig in zip(tasks, figures, strict=True):
        rows.append({**dict(changes), "seed": data["seed"], **fig})
    return rows


def rows_to_json(rows: Sequence[Mapping[str, Any]]) -> str:
    """Canonical JSON of sweep rows: sorted keys, two-space indent, a final newline."""
    return json.dumps(list(rows), indent=2, sort_keys=True, allow_nan=False) + "\n"


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Varied keys (first row's order), `seed`, ROW_FIELDS, then utilization columns in order of
    first appearance (a varied pool size adds members as it goes)."""
    first = list(rows[0]) if rows else []
    varied = first[: first.index("seed")] if "seed" in first else []
    extra: dict[str, None] = {}
    for row in rows:
        extra.update((k, None) for k in row if k.startswith("utilization."))
    return [*varied, "seed", *ROW_FIELDS, *extra]


def rows_to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """CSV of sweep rows with a fixed column order (`_columns`); absent values are empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = _columns(rows)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(_cell(row.get(c)) for c in columns)
    return out.getvalue()


def rows_to_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Sweep rows as a pandas DataFrame, one row per run, its columns in the CSV's order
    (`rows_to_csv`); a row without a column (a member a smaller pool lacks) has NaN there.
    pandas is the optional `lab` extra: without it, an ImportError says how to install it.

    >>> from sim import load_example, sweep
    >>> rows = sweep(load_example("pool"), {"pool.workers.strategy": ["random", "shared"]})
    >>> frame = rows_to_frame(rows)
    >>> frame[["pool.workers.strategy", "seed", "requests_issued"]].values.tolist()
    [['random', 1, 613], ['shared', 1, 613]]
    """
    lib = require_pandas("rows_to_frame()")
    frame: pd.DataFrame = lib.DataFrame(list(rows), columns=_columns(rows))
    return frame


def rows_from_csv(text: str, source: str = "<csv>") -> list[dict[str, Any]]:
    """Sweep rows from the CSV `rows_to_csv` writes: every cell read as `parse_value` reads a
    TOML scalar (a JSON list or table as JSON), an empty cell as None. CSV has no types, so a
    string value that looks like a number or a boolean comes back as one; JSON rows do not.

    Raises `SweepError`, naming `source` and the line, for text that is not sweep rows.

    >>> rows_from_csv("s,seed,mean\\nshared,1,0.5\\nrandom,2,\\n")
    [{'s': 'shared', 'seed': 1, 'mean': 0.5}, {'s': 'random', 'seed': 2, 'mean': None}]
    """
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, [])
        if "seed" not in header:
            raise SweepError(f"{source}: not sweep rows: line 1 has no `seed` column")
        rows = []
        for cells in reader:
            if not cells:
                continue
            if len(cells) != len(header):
                raise SweepError(
                    f"{source}:{reader.line_num}: {len(cells)} cells, but the header has "
                    f"{len(header)} columns"
                )
            rows.append({k: _uncell(c) for k, c in zip(header, cells, strict=True)})
    except csv.Error as err:
        raise SweepError(f"{source}:{reader.line_num}: not CSV: {err}") from None
    return rows


def _uncell(text: str) -> Any:
    if text == "":
        return None
    if text[0] in "[{":
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    return parse_value(text)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, sort_keys=True)
    return str(value)
