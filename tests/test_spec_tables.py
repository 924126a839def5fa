"""docs/spec.md 9.3 and 9.4 against the code: the tables cannot drift from what the broker emits.

The tables are read from the spec itself. Over a corpus of reference traces (random scripts with
every operation, and random workloads with every fault), every event the broker emits must
have exactly the fields 9.4 lists for its kind (the optional ones only where they apply), every
operation may emit only the events 9.3 lists for it (its sequences expanded), and every kind
and every field the tables name must occur. The model accepts the corpus: every trace conforms.
"""

from __future__ import annotations

import inspect
import io
import json
import re
import tomllib
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from scripts import scenario_toml, scripts
from test_conform import random_scenario

from broker import Events
from broker._events import FIELDS
from model import EVENT_FIELDS, check_trace
from sim import Scenario, parse_scenario, simulate

SPEC = Path(__file__).resolve().parent.parent / "docs" / "spec.md"
_ROW = re.compile(r"^\| (?P<left>[^|]+) \| (?P<right>.+) \|$")
_KIND = re.compile(r"`([a-z_]+)`")
_SEQUENCE = re.compile(r"\*\*([a-z ]+)\*\*")
_FIELD = re.compile(r"`([a-z_]+)`(\?)?")


def _table(heading: str) -> list[tuple[str, str]]:
    """The rows (first cell, second cell) of the first table after the rule `heading`."""
    text = SPEC.read_text(encoding="utf-8")
    start = text.index(heading)
    rows: list[tuple[str, str]] = []
    for line in text[start:].splitlines()[1:]:
        match = _ROW.match(line)
        if match is None:
            if rows:
                break
            continue
        left, right = match["left"].strip(), match["right"].strip()
        if left in ("operation", "event") or set(left) <= {"-"}:
            continue
        rows.append((left, right))
    return rows


def _items(cell: str) -> list[str]:
    """The comma-separated items of a cell, commas inside parentheses kept."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(cell):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            items.append(cell[start:i].strip())
            start = i + 1
    return [*items, cell[start:].strip()]


def schemas() -> dict[str, tuple[set[str], set[str]]]:
    """9.4: per event kind, its required and its optional (`?`) fields."""
    out = {}
    for left, right in _table("9.4 "):
        kind = _KIND.fullmatch(left)
        assert kind is not None, left
        fields = [_FIELD.match(item) for item in _items(right)]
        assert all(fields), right
        required = {f[1] for f in fields if f is not None and not f[2]}
        optional = {f[1] for f in fields if f is not None and f[2]}
        out[kind[1]] = (required, optional)
    return out


def operations() -> dict[str, set[str]]:
    """9.3: per operation (timers by their kind), the event kinds it may emit, sequences
    expanded."""
    rows = _table("9.3 ")
    sequences = {m[1]: right for left, right in rows if (m := _SEQUENCE.fullmatch(left))}
    direct = {left: right for left, right in rows if not _SEQUENCE.fullmatch(left)}

    def kinds(text: str, seen: frozenset[str] = frozenset()) -> set[str]:
        out = set(_KIND.findall(text))
        for name in _SEQUENCE.findall(text):
            if name not in seen:
                out |= kinds(sequences[name], seen | {name})
        return out

    known_events = set(schemas())
    result: dict[str, set[str]] = {}
    for left, right in direct.items():
        op = left.split(" (")[0].split(":")[0].strip()  # "timer: retry" -> "timer"
        op = "fire" if op == "timer" else op
        result.setdefault(op, set()).update(kinds(right) & known_events)
    return result


def traces() -> list[str]:
    """The corpus: 400 random scripts and 40 random workloads with faults."""
    out: list[str] = []

    @settings(
        max_examples=400,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(scripts())
    def collect(text: str) -> None:
        out.append(run(parse_scenario(tomllib.loads(text), "script.toml")))

    collect()
    out += [run(random_scenario(seed)) for seed in range(40)]
    out.append(run(parse_scenario(tomllib.loads(scenario_toml(EVERY_OPERATION)), "every.toml")))
    return out


# One script that performs every operation at least once, whatever the random corpus draws.
EVERY_OPERATION: list[dict[str, object]] = [
    {"at": 0.0, "do": "create_pool", "pool": "p", "strategy": "broadcast"},
    {"at": 0.0, "do": "register", "name": "c"},
    {"at": 0.0, "do": "register", "name": "w", "capacity": 1, "backpressure": "block"},
    {"at": 0.0, "do": "register", "name": "x"},
    {"at": 0.0, "do": "join", "pool": "p", "actor": "w"},
    {"at": 0.0, "do": "join", "pool": "p", "actor": "x"},
    {"at": 0.0, "do": "provide", "service": "s", "actor": "x"},
    {"at": 0.0, "do": "subscribe", "topic": "news", "actor": "w"},
    {"at": 0.0, "do": "subscribe", "topic": "news", "actor": "x"},
    {"at": 0.0, "do": "request", "from": "c", "to": "topic:news", "timeout": 2.0,
     "answered_by": "x"},
    {"at": 0.0, "do": "send", "to": "name:w", "send_timeout": 0.5},
    {"at": 0.0, "do": "request", "from": "c", "to": "pool:p", "timeout": 1.0},
    {"at": 0.5, "do": "deliver", "actor": "w"},
    {"at": 0.5, "do": "done", "actor": "w"},
    {"at": 0.5, "do": "reply", "from": "w", "corr": 2},
    {"at": 0.5, "do": "request", "from": "c", "to": "service:s", "timeout": 1.0},
    {"at": 0.5, "do": "cancel", "corr": 3},
    {"at": 0.5, "do": "unsubscribe", "topic": "news", "actor": "w"},
    {"at": 0.5, "do": "leave", "pool": "p", "actor": "w"},
    {"at": 0.5, "do": "stop", "actor": "x"},
    {"at": 1.0, "do": "restart", "actor": "x"},
    {"at": 1.0, "do": "send", "to": "topic:none"},
    {"at": 1.0, "do": "unregister", "actor": "w"},
]  # fmt: skip


def run(scenario: Scenario) -> str:
    text = io.StringIO()
    simulate(scenario, trace=text)
    return text.getvalue()


@pytest.fixture(scope="module")
def corpus() -> list[list[dict[str, Any]]]:
    texts = traces()
    for text in texts:
        verdict = check_trace(io.StringIO(text), "corpus")
        assert verdict.ok, verdict.illegal
    return [[json.loads(line) for line in text.splitlines()[1:]] for text in texts]


def test_the_tables_parse() -> None:
    events = schemas()
    assert set(events) == {
        "register", "unregister", "stop", "start", "create_pool", "join", "leave", "provide",
        "send", "reject", "route", "enqueue", "park", "dequeue", "dead_letter", "retry",
        "resolve", "subscribe", "unsubscribe",
    }  # fmt: skip
    assert events["send"] == (
        {"msg", "from", "to", "kind"},
        {"corr", "deadline", "key", "dup_of", "copy_of"},
    )
    ops = operations()
    assert ops["stop"] == {"stop", "dead_letter", "resolve"}
    assert ops["register"] == {"register"}
    assert {"route", "enqueue", "retry", "reject", "park", "resolve"} <= ops["fire"]


def test_the_models_schema_is_the_spec_table() -> None:
    """model.EVENT_FIELDS (what conform checks each event line against) is 9.4 as data."""
    data = {
        kind: (
            {k for k in fields if not k.endswith("?")},
            {k.rstrip("?") for k in fields if k.endswith("?")},
        )
        for kind, fields in EVENT_FIELDS.items()
    }
    assert data == schemas()


def test_the_brokers_event_methods_are_the_spec_table() -> None:
    """broker.Events' methods take each kind's fields in 9.4's order, as the model lists them:
    the table `Events.observe` reads a dict by, and each method's own parameters."""
    assert {kind: list(fields) for kind, fields in FIELDS.items()} == {
        kind: [k.rstrip("?") for k in fields] for kind, fields in EVENT_FIELDS.items()
    }
    for kind, fields in FIELDS.items():
        parameters = list(inspect.signature(getattr(Events, kind)).parameters)[1:]
        assert parameters == [{"from": "sender"}.get(f, f) for f in fields], kind


def test_events_given_as_dicts_come_back_the_same(corpus: list[list[dict[str, Any]]]) -> None:
    """`Events.observe` hands a dict's fields to the kind's method, which builds them again:
    every event of the corpus comes back equal, its optional fields only where they were."""
    back: list[tuple[str, dict[str, Any]]] = []
    events = Events(lambda name, fields: back.append((name, fields)))
    n = 0
    for lines in corpus:
        for line in lines:
            if "ev" in line and line["ev"] != "fault":
                name = line["ev"]
                fields = {k: v for k, v in line.items() if k not in ("t", "seq", "ev")}
                events.observe(name, fields)
                assert back[-1] == (name, fields)
                n += 1
    assert n == len(back) > 1000


def test_every_event_has_exactly_its_fields(corpus: list[list[dict[str, Any]]]) -> None:
    tables = schemas()
    seen: dict[str, set[str]] = defaultdict(set)
    for lines in corpus:
        for line in lines:
            kind = line.get("ev")
            if kind is None or kind == "fault":
                continue
            assert kind in tables, f"spec 9.4 has no row for {kind!r}: {line}"
            required, optional = tables[kind]
            fields = set(line) - {"t", "seq", "ev"}
            assert required <= fields <= required | optional, (kind, fields, line)
            seen[kind] |= fields
    for kind, (required, optional) in tables.items():
        assert seen[kind] == required | optional, f"{kind}: never saw {optional - seen[kind]}"


def test_every_operation_emits_only_what_its_row_lists(
    corpus: list[list[dict[str, Any]]],
) -> None:
    table = operations()
    emitted: dict[str, set[str]] = defaultdict(set)
    ops: set[str] = set()
    for lines in corpus:
        op = None
        for line in lines:
            if "op" in line:
                op = line["op"]
                ops.add(op)
            elif "ev" in line and line["ev"] != "fault":
                assert op is not None
                assert line["ev"] in table[op], f"spec 9.3 does not list {line['ev']} for {op}"
                emitted[op].add(line["ev"])
    listed = set().union(*table.values())
    assert set().union(*emitted.values()) == listed
    assert ops == set(table), set(table) ^ ops  # every operation of the table was logged
    assert set(emitted) == {op for op, kinds in table.items() if kinds}
