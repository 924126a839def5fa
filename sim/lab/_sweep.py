"""Parameter sweeps: one scenario, some of its keys varied over values, times N seeds.

A key is a dotted path into the scenario's normalized form (`Scenario.to_dict()`); inside an
array of tables (`pool`, `actor`, `client`) the next segment selects an entry by its `name`, or by
its position from 1 when the entries have no name (`faults.crash.1.at`). Every combination is
re-validated with `parse_scenario`, so a bad key or value is a `SweepError` naming the key before
anything runs. Runs are independent, so they may go to worker processes; rows come back in the
order of the cross product (first key outermost, seeds innermost) whatever the number of jobs,
so a sweep's output is a pure function of its inputs. The row layout is in ROW_FIELDS and
docs/scenario-format.md ("Sweeps").
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
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from sim.run import simulate
from sim.scenario import Poisson, Scenario, ScenarioError, parse_scenario

__all__ = [
    "ROW_FIELDS",
    "SweepError",
    "parse_value",
    "parse_vary",
    "rows_to_csv",
    "rows_to_json",
    "set_path",
    "sweep",
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


def sweep(
    scenario: Scenario,
    vary: Mapping[str, Sequence[Value]],
    seeds: int = 1,
    jobs: int = 1,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Run every combination of `vary` (a cross product, in the order given) for seeds
    `scenario.seed + k`, k < `seeds`, on `jobs` processes (1: inline), and return one row each.

    A row holds the varied keys with their values, `seed`, then ROW_FIELDS and the
    `utilization.<member>` figures. Raises `SweepError` (naming the key) before running anything
    if a key or value is bad.
    """
    if not (isinstance(seeds, int) and seeds >= 1):
        raise SweepError(f"seeds must be an integer >= 1, got {seeds!r}")
    if not (isinstance(jobs, int) and jobs >= 1):
        raise SweepError(f"jobs must be an integer >= 1, got {jobs!r}")
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
    figures: list[dict[str, Any] | None] = [None] * len(tasks)
    if jobs == 1:
        for i, (_, data) in enumerate(tasks):
            figures[i] = _run(data)
            if progress is not None:
                progress(i + 1, len(tasks))
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(_run, data): i for i, (_, data) in enumerate(tasks)}
            for done, future in enumerate(as_completed(futures), 1):
                figures[futures[future]] = future.result()
                if progress is not None:
                    progress(done, len(tasks))
    rows = []
    for (changes, data), fig in zip(tasks, figures, strict=True):
        assert fig is not None
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
