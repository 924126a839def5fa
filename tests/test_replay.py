"""Conform's fast path (model/_replay.py) gives the model checker's verdict on every trace.

The fast path compares lines with the model's rendering and hands over to the model's checker
wherever it is unsure, so its verdict (ok or not, the counts, the line named, the message, the
state at the end) must be the checker's own on any input: traces the simulator writes, and
those traces edited line by line in every way a hand or a broken port might. And on the
simulator's own traces it must not hand over at all, or it is not a fast path.
"""

from __future__ import annotations

import io
import json
import tomllib
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scripts import scripts
from test_conform import random_scenario, trace_of

import model._lines as lines_
import model._replay as fast
from model import TraceUnreadable, canonical, check_trace
from model._conform import _Checker, _Stream
from model._engine import ModelEngine, Shadow
from model._fast import FastEngine
from sim import default_scenario, parse_scenario, simulate

Outcome = tuple[Any, ...]


def outcome(lines: list[str], *, fast_path: bool, complete: bool = True) -> Outcome:
    """Everything a check says: its verdict in full, or the unreadable input's message."""
    try:
        v = check_trace(lines, "t", fast=fast_path, complete=complete)
    except TraceUnreadable as err:
        return ("unreadable", str(err))
    illegal = None if v.illegal is None else (v.illegal.seq, v.illegal.t, v.illegal.why)
    return (v.ok, v.events, v.ops, v.end, illegal, v.state if v.ok else None)


@cache
def default_trace(until: float) -> tuple[str, ...]:
    scenario = parse_scenario(default_scenario().to_dict() | {"until": until}, "default")
    out = io.StringIO()
    simulate(scenario, trace=out)
    return tuple(out.getvalue().splitlines(keepends=True))


@cache
def random_trace(seed: int) -> tuple[str, ...]:
    return tuple(trace_of(random_scenario(seed)).splitlines(keepends=True))


def handed_over(lines: list[str]) -> bool:
    """Whether the fast path handed a trace over to the model's checker."""
    stream = _Stream(iter(lines), "t", True)
    stream.header()
    return not fast.replay(_Checker("t"), stream, None)


def test_the_simulators_traces_take_the_fast_path_to_the_end() -> None:
    """No handover on the simulator's own traces: every strategy, fault and backpressure mode
    of 60 random worlds, and the default scenario past several checkpoints."""
    long = list(default_trace(200.0))
    assert sum('"op":"' in line for line in long) > 3 * fast._CHECKPOINT
    assert not handed_over(long)
    for seed in range(60):
        lines = list(random_trace(seed))
        assert not handed_over(lines), f"seed {seed}"


def test_the_fast_path_agrees_on_conforming_traces() -> None:
    for lines in [list(default_trace(200.0)), *(list(random_trace(s)) for s in range(40))]:
        assert outcome(lines, fast_path=True) == outcome(lines, fast_path=False)


# -- edited traces ----------------------------------------------------------------------------

EDITS = ("delete", "duplicate", "swap", "digit", "space", "letter", "cut", "key")


def edit(lines: list[str], how: str, at: int, value: int) -> list[str]:
    """`lines` with one edit at line `at` (never the header)."""
    out = list(lines)
    if len(out) < 2:
        return out
    i = 1 + at % (len(out) - 1)
    line = out[i]
    if how == "delete":
        del out[i]
    elif how == "duplicate":
        out.insert(i, line)
    elif how == "swap" and i + 1 < len(out):
        out[i], out[i + 1] = out[i + 1], out[i]
    elif how == "digit":
        digits = [k for k, ch in enumerate(line) if ch.isdigit()]
        if digits:
            k = digits[value % len(digits)]
            out[i] = line[:k] + str((int(line[k]) + 1 + value % 9) % 10) + line[k + 1 :]
    elif how == "space":
        k = line.find(",", value % max(1, len(line) - 1))
        out[i] = line[: k + 1] + " " + line[k + 1 :] if k >= 0 else " " + line
    elif how == "letter":
        letters = [k for k, ch in enumerate(line) if ch.isalpha()]
        if letters:
            k = letters[value % len(letters)]
            out[i] = line[:k] + chr(ord("a") + value % 26) + line[k + 1 :]
    elif how == "cut":
        del out[i:]
    elif how == "key":  # a field dropped, or its value replaced by another line's value type
        obj = json.loads(line)
        keys = sorted(obj)
        key = keys[value % len(keys)]
        if value % 2:
            del obj[key]
        else:
            obj[key] = [None, 0, 1.5, "x", True, []][value % 6]
        out[i] = canonical(obj) + "\n"
    return out


def agree(lines: list[str]) -> None:
    for complete in (True, False):
        got = outcome(lines, fast_path=True, complete=complete)
        want = outcome(lines, fast_path=False, complete=complete)
        assert got == want, f"fast {got[:5]}\nchecker {want[:5]}"


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(["default", 0, 1, 2, 3, 4, 5, 6, 7]),
    edits=st.lists(
        st.tuples(st.sampled_from(EDITS), st.integers(0, 10**6), st.integers(0, 10**6)),
        min_size=1,
        max_size=2,
    ),
)
def test_edited_traces_get_the_checkers_verdict(
    base: str | int, edits: list[tuple[str, int, int]]
) -> None:
    """One or two edits anywhere in a trace (past a checkpoint in the default one): the fast
    path finds what the checker finds, says it in the same words, or agrees it conforms."""
    lines = list(default_trace(120.0) if base == "default" else random_trace(int(base)))
    for how, at, value in edits:
        lines = edit(lines, how, at, value)
    agree(lines)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=scripts(), how=st.sampled_from(EDITS), at=st.integers(0, 10**6), value=st.integers())
def test_scripted_traces_edited_or_not_get_the_checkers_verdict(
    text: str, how: str, at: int, value: int
) -> None:
    """Scripts issue every operation (cancels, unregisters with mail, topics, blocked
    mailboxes, replies to anything): the fast path agrees on them, and on them edited."""
    out = io.StringIO()
    simulate(parse_scenario(tomllib.loads(text), "script"), trace=out)
    lines = out.getvalue().splitlines(keepends=True)
    agree(lines)
    agree(edit(lines, how, at, abs(value)))


def test_a_late_edit_is_found_from_the_last_checkpoint() -> None:
    """An edit after several checkpoints: the handover re-checks from the last one, with what
    it remembered of ended requests put back as it was there."""
    lines = list(default_trace(200.0))
    ops = [i for i, line in enumerate(lines) if '"op":"reply"' in line]
    i = ops[-3]
    lines[i] = lines[i].replace('"corr":', '"corr":1', 1)  # a reply to another request
    got = outcome(lines, fast_path=True)
    assert got == outcome(lines, fast_path=False)
    assert got[0] is False


def test_events_render_as_canonical_does() -> None:
    """The model's events written by the fast path's layouts are `canonical`'s text."""
    seen = 0
    for lines in [default_trace(50.0), *(random_trace(s) for s in range(10))]:
        for line in lines[1:]:
            obj = json.loads(line)
            if "ev" not in obj or obj["ev"] == "fault":
                continue
            fields = {k: v for k, v in obj.items() if k not in ("ev", "seq", "t")}
            fields = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
            text = lines_._render(obj["ev"], fields, obj["seq"], float.__repr__(obj["t"]))
            assert text == canonical(obj)
            seen += 1
    assert seen > 1000


def ops_of(lines: list[str]) -> Iterator[dict[str, Any]]:
    for line in lines[1:]:
        obj = json.loads(line)
        if "op" in obj:
            yield obj


def test_op_lines_read_without_json_are_read_as_json_reads_them() -> None:
    """`_read_op` takes only canonical op lines, and reads each as `_action` does."""
    from model._conform import _action, _Group

    read = 0
    for lines in [default_trace(50.0), *(random_trace(s) for s in range(20))]:
        for line in lines[1:]:
            obj = json.loads(line)
            if "op" in obj:
                got = lines_._read_op(line, obj["seq"], obj["t"])
                if got is not None:
                    read += 1
                    assert canonical(obj) == line.rstrip("\n")
                    assert got[0] == _action(_Group(obj, "t", [], []), {})
                    assert got[1] == obj["result"] and got[2:] == (obj["t"], repr(obj["t"]))
                    # and not a line later, or at an earlier time
                    assert lines_._read_op(line, obj["seq"] + 1, obj["t"]) is None
                    assert lines_._read_op(line, obj["seq"], obj["t"] + 1.0) is None
    assert read > 1000


@pytest.mark.parametrize(
    "line",
    [
        '{"actor":5,"error":null,"op":"dequeue","result":1,"seq":22,"t":0.5 }',
        '{"actor":05,"error":null,"op":"dequeue","result":1,"seq":22,"t":0.5}',
        '{"actor":5,"error":null,"op":"dequeue","result":1,"seq":22,"t":0.50}',
        '{"actor":5,"error":null,"op":"dequeue","result":1,"seq":22,"t":5e-1}',
        '{"actor":5,"error":null,"op":"dequeue","result":1,"seq":22,"t":1}',
        '{"error":null,"actor":5,"op":"dequeue","result":1,"seq":22,"t":0.5}',
        '{"corr":1,"error":null,"from":1,"op":"reply","result":5,"seq":22,"t":1e999}',
        '{"error":null,"from":6,"key":"a\\u0062","op":"request","priority":"normal","result":1,'
        '"retry":null,"send_timeout":null,"seq":22,"t":0.5,"timeout":10.0,"to":"pool:w"}',
        '{"error":null,"from":6,"key":null,"op":"request","priority":"normal","result":1,'
        '"retry":{"backoff":0.1,"jitter":0.1,"max_attempts":3.0,"max_backoff":2.0,'
        '"multiplier":2.0},"send_timeout":null,"seq":22,"t":0.5,"timeout":10.0,"to":"pool:w"}',
        '{"error":null,"from":6,"key":null,"op":"request","priority":"normal","result":1,'
        '"retry":null,"send_timeout":null,"seq":22,"t":0.5,"timeout":10,"to":"pool:w"}',
    ],
)
def test_op_lines_not_in_canonical_form_are_left_to_json(line: str) -> None:
    assert lines_._read_op(line, 22, 0.0) is None


def test_the_fast_path_runs_the_fast_engine_beside_the_model() -> None:
    """Through the fast path itself, `Shadow` holds the fast engine to `model.apply` on every
    operation (results, events, whole states), and the traces still conform through it."""

    made: list[Shadow] = []

    def shadowed(state: Any, memory: Any) -> Shadow:
        made.append(Shadow(FastEngine(state, memory), ModelEngine(state, memory)))
        return made[-1]

    for lines in [list(default_trace(50.0)), *(list(random_trace(s)) for s in range(20))]:
        made.clear()
        verdict = check_trace(lines, "t", engine=shadowed)
        assert verdict.ok, verdict.illegal
        assert len(made) == 1 and made[0].steps == verdict.ops  # every operation, no handover


def test_memory_follows_what_is_open_not_the_traces_length() -> None:
    """Spec 10.5 on the fast path: checking a long run of a steady load, the memory in use
    (measured at each progress call, garbage collected) stays where it was early on, beyond
    two bytes per request: the fast path keeps the lines since its last checkpoint, and the
    lines themselves are the caller's."""
    import gc
    import tracemalloc

    scenario = default_scenario().to_dict()
    scenario["client"][0]["arrivals"]["rate"] = 1.0  # a load the pool keeps up with
    out = io.StringIO()
    simulate(parse_scenario(scenario | {"until": 4000.0}, "steady"), trace=out)
    lines = out.getvalue().splitlines(keepends=True)
    check_trace(lines[:2000], "t", complete=False)  # the caches and imports, warm
    in_use: list[int] = []

    def measure(seq: int) -> None:
        gc.collect()
        in_use.append(tracemalloc.get_traced_memory()[0])

    tracemalloc.start()
    try:
        verdict = check_trace(lines, "t", progress=measure)
    finally:
        tracemalloc.stop()
    assert verdict.ok and len(in_use) >= 5, in_use
    assert max(in_use[2:]) < in_use[1] + 32_000, in_use
