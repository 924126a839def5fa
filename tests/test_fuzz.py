"""One fuzz harness for every reader: scenario files (TOML text and tables), trace lines and
trace headers. Whatever the input, a reader answers with a result or its typed error, and the
CLI with exit 0, 1 or 2 and no traceback, in bounded time (each example has a deadline)."""

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
from scripts import scenario_toml

from model import TraceUnreadable, check_trace
from sim import Scenario, ScenarioError, default_scenario, parse_scenario, simulate
from sim.cli import main

FUZZ = settings(
    max_examples=150,
    deadline=timedelta(seconds=5),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# JSON values of every kind, nested a little, with the awkward ones: huge and negative
# numbers, empty and odd strings, NaN-free floats at the extremes.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, 1, -1, 10**12, 2**63, 0.0, -0.0, 1e308, 5e-324, 0.1, 1.5]),
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
        lines.insert(i, data.draw(st.sampled_from(["[[pool]]", "size = 1", "do = 3", "[x]"])))
    path = tmp_path / "fuzz.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
        parse_scenario(table, str(path))
    except (tomllib.TOMLDecodeError, ScenarioError):
        assert _cli(["run", str(path), "--quiet"]) == 2
        return
    assert _cli(["run", str(path), "--quiet"]) in (0, 1)


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
        elif how == "mutate":
            lines[i] = json.dumps(draw(mutated(json.loads(lines[i]))))
        else:
            lines[i] = draw(
                st.sampled_from(["", "[" * 5000 + "]" * 5000, '{"seq":' + "9" * 5000 + "}", "{"])
                | st.text(max_size=40)
            )
        if not lines:
            break
    return "\n".join(lines) + "\n"


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
    """Run the CLI; a traceback (any exception escaping `main`) fails the test."""
    import contextlib

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(args)
    assert "Traceback" not in err.getvalue()
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
