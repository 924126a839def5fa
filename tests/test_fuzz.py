"""One fuzz harness for every reader: scenario files (TOML text and tables), trace lines and
trace headers. Whatever the input, a reader answers with a result or its typed error, and the
CLI with exit 0, 1, 2 or 4 (a run cut off at its hard stop), never 3 (an internal error) and
no traceback, in bounded time (each example has a deadline). The edges of issue 15
(tests/test_edges.py) are among the inputs: numbers at the ends of the doubles, seeds past 64
bits, caps on sizes, deep nesting, retries past the largest power of a double."""

from __future__ import annotations

import io
import json
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scripts import scenario_toml, toml_value

from model import TraceUnreadable, check_trace
from sim import Scenario, ScenarioError, default_scenario, load_scenario, parse_scenario, simulate
from sim.cli import main

FUZZ = settings(
    max_examples=150,
    deadline=timedelta(seconds=5),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Numbers at the edges: of the doubles, of 64 bits, and of the caps of sim/scenario/_limits.py
# (on either side of each).
EXTREMES = [
    5e-324, 1e-300, 1e-12, 9e-13, 1e-9, 9e-10, 1e12, 1.0000000000001e12, 1e15, 1e200, 1e308,
    1.7976931348623157e308, -1e308, 10.0, 10.000001, 2000, 10_000, 10_001, 50_000, 100_000,
    10_000_001, 2**53 + 1, 2**64 - 1, 2**64, 10**30,
]  # fmt: skip

# JSON values of every kind, nested a little, with the awkward ones: huge and negative
# numbers, empty and odd strings, NaN-free floats at the extremes.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, 1, -1, 10**12, 2**63, 0.0, -0.0, 1e308, 5e-324, 0.1, 1.5]),
    st.sampled_from(EXTREMES),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["", "x", "pool:w", "id:1", "name:nobody", "-", "a b", "é", "\u0000"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside nested dicts and lists."""
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """`base` (a JSON value) with one to three values replaced, deleted or added."""
    obj = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(obj) if p]
        if not paths:
            return draw(values)
        path = draw(st.sampled_from(paths))
        parent = obj
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(values)
        else:
            parent.append(draw(values))
    return obj


# -- scenario files ----------------------------------------------------------------------------

BASE_SCENARIO = default_scenario().to_dict()


@FUZZ
@given(mutated(BASE_SCENARIO))
def test_scenario_tables_load_or_say_why(table: Any) -> None:
    if not isinstance(table, dict):
        table = {"x": table}
    try:
        scenario = parse_scenario(table, "fuzz.toml")
    except ScenarioError as err:
        assert str(err).startswith("fuzz.toml")
        return
    assert isinstance(scenario, Scenario)
    assert parse_scenario(scenario.to_dict(), "again") == scenario  # what loads, round-trips


SCRIPT = scenario_toml(
    [
        {"at": 0.0, "do": "register", "name": "c"},
        {"at": 0.0, "do": "register", "name": "s", "capacity": 1, "backpressure": "block"},
        {"at": 1.0, "do": "request", "from": "c", "to": "name:s", "timeout": 2.0},
        {"at": 1.0, "do": "send", "from": "c", "to": "name:s", "priority": "high"},
        {"at": 1.5, "do": "cancel", "corr": 1},
        {"at": 2.0, "do": "reply", "from": "s", "corr": 1},
        {"at": 2.5, "do": "stop", "actor": "s"},
    ]
)


@FUZZ
@given(st.data())
def test_scenario_text_loads_or_exits_2(tmp_path: Path, data: st.DataObject) -> None:
    """TOML text cut, spliced and garbled: the loader's typed error, exit 2 from the CLI."""
    lines = SCRIPT.splitlines()
    i = data.draw(st.integers(0, len(lines) - 1))
    how = data.draw(st.sampled_from(["cut", "garble", "value", "splice"]))
    if how == "cut":
        lines = lines[:i]
    elif how == "garble":
        lines[i] = data.draw(st.text(max_size=30))
    elif how == "value" and "=" in lines[i]:
        key = lines[i].split("=")[0].strip()
        lines[i] = f"{key} = {data.draw(st.sampled_from(['1e999', '-1', '[]', '{}', 'nan', '0']))}"
    else:
        lines.insert(i, data.draw(st.sampled_from(["[[pool]]", "size = 1", "do = 3", "[x]", DEEP])))
    path = tmp_path / "fuzz.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        load_scenario(path)
    except ScenarioError as err:
        assert str(err).startswith(str(path))
        assert _cli(["run", str(path), "--quiet"]) == 2
        return
    assert _cli(["run", str(path), "--quiet"]) in (0, 1, 4)


DEEP = "deep = " + "[" * 5000 + "]" * 5000  # tomllib recurses per level: a RecursionError

# A scenario with every number the format has: pools, actors, clients of every arrival
# process, keys, retries, faults and a script.
RICH: dict[str, Any] = {
    "seed": 1,
    "until": 5.0,
    "pool": [
        {"name": "w", "size": 2, "capacity": 4, "backpressure": "block", "send_timeout": 1.0,
         "service": {"dist": "exponential", "mean": 0.5}, "speeds": [1.0, 2.0]},
    ],
    "actor": [
        {"name": "a", "services": ["s"],
         "service": {"dist": "lognormal", "mean": 0.5, "sigma": 0.5}},
        {"name": "b", "service": {"dist": "uniform", "low": 0.1, "high": 0.3}},
    ],
    "client": [
        {"name": "c1", "target": "pool:w", "arrivals": {"process": "poisson", "rate": 2.0},
         "timeout": 3.0, "count": 5, "keys": {"dist": "zipf", "n": 5, "s": 1.1}},
        {"name": "c2", "target": "service:s", "pattern": "tell", "count": 3,
         "arrivals": {"process": "constant", "interval": 1.0}},
        {"name": "c3", "target": "name:b", "count": 4,
         "arrivals": {"process": "closed", "concurrency": 2, "think": 0.5}},
        # ServiceUnavailable is transient (spec 6.1): retried until max_attempts or the
        # deadline; with max_attempts 2000, past the 1025th retry (spec 6.2's overflow).
        {"name": "c4", "target": "service:nobody", "timeout": 3.0, "count": 1,
         "arrivals": {"process": "constant", "interval": 2.0},
         "retry": {"max_attempts": 3, "backoff": 0.001, "multiplier": 2.0,
                   "max_backoff": 0.001, "jitter": 0.1}},
    ],
    "faults": {
        "drop": 0.1, "duplicate": 0.1, "delay": {"dist": "constant", "value": 0.01},
        "crash": [{"actor": "w-1", "at": 1.0, "restart_after": 1.0}],
        "slow": [{"actor": "w-2", "at": 0.5, "until": 2.0, "speed": 0.5}],
        "hang": [{"actor": "a", "at": 1.0, "until": 1.5}],
    },
    "script": [
        {"at": 0.5, "do": "register", "name": "z", "capacity": 1, "backpressure": "block",
         "send_timeout": 1.0},
        {"at": 1.0, "do": "send", "from": "z", "to": "name:b", "ttl": 1.0, "timestamp": 0.5,
         "payload": 1.5},
        {"at": 1.0, "do": "request", "from": "z", "to": "name:a", "timeout": 2.0,
         "retry": {"max_attempts": 2, "backoff": 0.1, "max_backoff": 1.0}},
    ],
}  # fmt: skip


def _toml(table: dict[str, Any]) -> str:
    """A scenario table as a TOML file: top-level keys, then [faults], then arrays of tables."""
    lines = [f"{k} = {toml_value(v)}" for k, v in table.items() if not isinstance(v, dict | list)]
    for key, value in table.items():
        if isinstance(value, dict):
            lines += [f"[{key}]", *(f"{k} = {toml_value(v)}" for k, v in value.items())]
        elif isinstance(value, list):
            for entry in value:
                lines += [f"[[{key}]]", *(f"{k} = {toml_value(v)}" for k, v in entry.items())]
    return "\n".join(lines) + "\n"


def _numbers(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    return [p for p in _paths(obj, prefix) if _is_number(_at(obj, p))]


def _at(obj: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        obj = obj[key]
    return obj


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@st.composite
def numbers_at_the_edges(draw: st.DrawFn) -> dict[str, Any]:
    """RICH with one or two of its numbers replaced by an extreme (of either sign)."""
    table = json.loads(json.dumps(RICH))
    for _ in range(draw(st.integers(1, 2))):
        path = draw(st.sampled_from(_numbers(table)))
        value = draw(st.sampled_from(EXTREMES)) * draw(st.sampled_from([1, 1, 1, -1]))
        _at(table, path[:-1])[path[-1]] = value
    return table


def _runs_or_exits_2(path: Path, table: dict[str, Any]) -> None:
    """The loader refuses the table (exit 2, naming the key) or the run ends (0, 1, or 4 when
    cut off at the hard stop): no
    overflow, no infinite time, no division by zero, no hang, no internal error."""
    path.write_text(_toml(table), encoding="utf-8")
    try:
        load_scenario(path)
    except ScenarioError as err:
        assert str(err).startswith(f"{path}: ") and "key" in str(err)
        assert _cli(["run", str(path), "--quiet"]) == 2
        return
    assert _cli(["run", str(path), "--quiet"]) in (0, 1, 4)


@settings(FUZZ, max_examples=100)
@given(numbers_at_the_edges())
def test_numbers_at_the_edges_run_or_exit_2(tmp_path: Path, table: dict[str, Any]) -> None:
    _runs_or_exits_2(tmp_path / "edge.toml", table)


# The values that overflowed a run before the caps (issue 15): every number of RICH meets each.
OVERFLOWS = [5e-324, 1e308, -1e308, 2000, 2**64]


@pytest.mark.parametrize("path", _numbers(RICH), ids=lambda p: ".".join(map(str, p)))
def test_every_number_past_the_doubles_runs_or_exits_2(
    tmp_path: Path, path: tuple[Any, ...]
) -> None:
    for value in OVERFLOWS:
        table = json.loads(json.dumps(RICH))
        _at(table, path[:-1])[path[-1]] = value
        _runs_or_exits_2(tmp_path / "edge.toml", table)


# -- traces ------------------------------------------------------------------------------------


def _trace() -> list[str]:
    out = io.StringIO()
    simulate(parse_scenario(tomllib.loads(SCRIPT), "script.toml"), trace=out)
    return out.getvalue().splitlines()


TRACE = _trace()


@st.composite
def traces(draw: st.DrawFn) -> str:
    """The script's trace with a few lines deleted, repeated, swapped, mutated or replaced."""
    lines = list(TRACE)
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from(["delete", "repeat", "swap", "mutate", "mutate", "text"]))
        if how == "delete":
            del lines[i]
        elif how == "repeat":
            lines.insert(i, lines[i])
        elif how == "swap" and i + 1 < len(lines):
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
        elif how == "mutate":  # a line an earlier round garbled mutates as JSON null
            lines[i] = json.dumps(draw(mutated(_json_or_none(lines[i]))))
        else:
            lines[i] = draw(
                st.sampled_from(["", "[" * 5000 + "]" * 5000, '{"seq":' + "9" * 5000 + "}", "{"])
                | st.text(max_size=40)
            )
        if not lines:
            break
    return "\n".join(lines) + "\n"


def _json_or_none(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return None


@FUZZ
@given(traces())
def test_conform_answers_every_trace(text: str) -> None:
    """A verdict names a line the trace has; an unreadable trace names the file."""
    try:
        verdict = check_trace(io.StringIO(text), "fuzz.jsonl")
    except TraceUnreadable as err:
        assert str(err).startswith("fuzz.jsonl")
        return
    if verdict.illegal is not None:  # seq k is line k + 1 (contiguous, or unreadable); 0: header
        assert 0 <= verdict.illegal.seq < len(text.splitlines()), verdict.illegal


@FUZZ
@given(traces())
def test_conform_and_replay_exit_0_1_or_2(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.jsonl"
    path.write_text(text, encoding="utf-8")
    assert _cli(["conform", str(path)]) in (0, 1, 2)
    assert _cli(["replay", str(path)]) in (0, 1, 2)


@FUZZ
@given(mutated(json.loads(TRACE[0])))
def test_headers_are_read_by_the_scenario_loader(tmp_path: Path, head: Any) -> None:
    """A header whose scenario is wrong (a pool of 10^12 members, a string seed) is exit 2 for
    both readers, at once."""
    path = tmp_path / "fuzz.jsonl"
    path.write_text("\n".join([json.dumps(head), *TRACE[1:]]) + "\n", encoding="utf-8")
    codes = (_cli(["conform", str(path), "--lenient"]), _cli(["replay", str(path)]))
    assert set(codes) <= {0, 1, 2}
    if isinstance(head, dict) and isinstance(head.get("scenario"), dict):
        try:
            parse_scenario(head["scenario"], "header")
        except ScenarioError:
            assert codes == (2, 2)


def test_a_header_with_a_huge_pool_is_refused_at_once(tmp_path: Path) -> None:
    head = json.loads(TRACE[0])
    head["scenario"]["pool"] = [
        {"name": "w", "size": 10**12, "service": {"dist": "constant", "value": 1.0}}
    ]
    path = tmp_path / "huge.jsonl"
    path.write_text("\n".join([json.dumps(head), *TRACE[1:]]) + "\n", encoding="utf-8")
    assert _cli(["conform", str(path)]) == 2
    assert _cli(["replay", str(path)]) == 2


def _cli(args: list[str]) -> int:
    """Run the CLI; a traceback, or an internal error (exit 3: an exception `main` caught),
    fails the test."""
    import contextlib

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(args)
    assert "Traceback" not in err.getvalue()
    assert code != 3, err.getvalue()
    return code


@pytest.mark.parametrize("line", ["[" * 100000, '{"a":' * 3000 + "1" + "}" * 3000])
def test_deep_nesting_is_unreadable_not_a_recursion_error(line: str) -> None:
    with pytest.raises(TraceUnreadable):
        check_trace(io.StringIO(TRACE[0] + "\n" + line + "\n"), "deep")


@pytest.mark.parametrize(
    "change",
    [{"pool": [1.5]}, {"actor": "x"}, {"client": [{"name": 3}]}, {"until": [1]}],
    ids=["pool-number", "actor-text", "client-name-number", "until-list"],
)
def test_the_headers_that_gave_tracebacks_exit_2(tmp_path: Path, change: dict[str, Any]) -> None:
    head = json.loads(TRACE[0])
    head["scenario"] |= change
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([json.dumps(head), *TRACE[1:]]) + "\n", encoding="utf-8")
    assert _cli(["conform", str(path)]) == 2
    assert _cli(["replay", str(path)]) == 2


def test_a_register_event_with_null_addresses_is_illegal_not_a_traceback(tmp_path: Path) -> None:
    lines = [json.loads(line) for line in TRACE[1:]]
    i = next(i for i, e in enumerate(lines) if e.get("ev") == "register")
    lines[i]["addresses"] = None
    path = tmp_path / "null.jsonl"
    path.write_text("\n".join([TRACE[0], *map(json.dumps, lines)]) + "\n", encoding="utf-8")
    verdict = check_trace(io.StringIO(path.read_text(encoding="utf-8")), "null", strict=False)
    assert verdict.illegal is not None and verdict.illegal.seq == i + 1
    assert "'addresses'" in verdict.illegal.why
    assert _cli(["conform", str(path)]) == 1
