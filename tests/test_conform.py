"""Spec 10: the trace checker. Simulator traces conform; edited traces and mutants' do not."""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import random
from typing import Any

import pytest

import model._conform as conform
from model import TraceUnreadable, Verdict, canonical, check_trace
from sim import Scenario, parse_scenario, simulate
from sim.checking.mutants import MUTANTS, conform_result, trace_scenario
from sim.cli import main

STRATEGIES = (
    "round_robin", "random", "least_loaded", "power_of_two", "consistent_hash", "broadcast",
    "shared",
)  # fmt: skip
BACKPRESSURES = ("reject", "drop_newest", "drop_oldest", "block")


def random_scenario(seed: int, until: float = 10.0) -> Scenario:
    """A small scenario with everything switched on at random: strategies, bounded and
    blocking mailboxes, retries with jitter, transit faults, crashes, slow and hung workers."""
    r = random.Random(seed)
    pools: list[dict[str, Any]] = []
    members: list[str] = []
    for i in range(r.randint(1, 2)):
        pool: dict[str, Any] = {
            "name": f"p{i}",
            "size": r.randint(1, 3),
            "strategy": r.choice(STRATEGIES),
            "service": r.choice(
                [
                    {"dist": "exponential", "mean": r.choice([0.3, 1.0, 2.0])},
                    {"dist": "constant", "value": r.choice([0.5, 1.0])},
                ]
            ),
        }
        if r.random() < 0.6:
            pool["capacity"] = r.randint(1, 3)
            pool["backpressure"] = r.choice(BACKPRESSURES)
            if pool["backpressure"] == "block" and r.random() < 0.5:
                pool["send_timeout"] = r.choice([0.5, 2.0])
        pools.append(pool)
        members += [f"p{i}-{k}" for k in range(1, pool["size"] + 1)]
    db: dict[str, Any] = {"name": "db", "services": ["store"]}
    db["service"] = {"dist": "exponential", "mean": 0.5}
    if r.random() < 0.5:
        db.update(capacity=1, backpressure=r.choice(BACKPRESSURES))
    targets = [f"pool:{p['name']}" for p in pools] + ["service:store", "name:db", "name:nobody"]
    clients = []
    for i in range(r.randint(1, 3)):
        c: dict[str, Any] = {
            "name": f"c{i}",
            "target": r.choice(targets),
            "pattern": r.choice(["request", "request", "tell"]),
            "arrivals": {"process": "poisson", "rate": r.choice([0.5, 1.5, 4.0])},
            "priority": r.choice(["normal", "high"]),
        }
        if c["pattern"] == "request":
            c["timeout"] = r.choice([0.5, 1.0, 3.0, 10.0])
            if r.random() < 0.3:
                concurrency = r.randint(1, 3)
                c["arrivals"] = {"process": "closed", "concurrency": concurrency, "think": 0.5}
        if r.random() < 0.5:
            c["retry"] = {
                "max_attempts": r.randint(2, 4),
                "backoff": r.choice([0.0, 0.1, 0.5]),
                "jitter": r.choice([0.0, 0.0, 0.3]),
            }
        if c["target"].startswith("pool:") or r.random() < 0.3:
            c["keys"] = {"dist": "uniform", "n": 5}
        clients.append(c)
    faults: dict[str, Any] = {}
    if r.random() < 0.8:
        victims = [*members, "db"]
        faults = {
            "drop": r.choice([0.0, 0.05, 0.2]),
            "duplicate": r.choice([0.0, 0.1, 0.3]),
            "crash": [
                {"actor": r.choice(victims), "at": r.uniform(0, 8)}
                | ({"restart_after": r.uniform(0, 4)} if r.random() < 0.7 else {})
                for _ in range(r.randint(0, 2))
            ],
        }
        if r.random() < 0.6:
            faults["delay"] = r.choice(
                [{"dist": "exponential", "mean": 0.3}, {"dist": "uniform", "low": 0.0, "high": 1.0}]
            )
        if r.random() < 0.4:
            faults["slow"] = [{"actor": r.choice(victims), "at": 1.0, "until": 5.0, "speed": 0.25}]
        if r.random() < 0.4:
            faults["hang"] = [{"actor": r.choice(victims), "at": 2.0, "until": 4.0}]
    data = {"seed": seed, "until": until, "pool": pools, "actor": [db], "client": clients}
    return parse_scenario(data | {"faults": faults}, f"random scenario {seed}")


def trace_of(scenario: Scenario) -> str:
    out = io.StringIO()
    result = simulate(scenario, trace=out)
    assert result.ok, result.violation
    return out.getvalue()


def check(text: str) -> Verdict:
    return check_trace(io.StringIO(text), "test")


def test_random_simulator_traces_conform() -> None:
    """Spec 10.2, 10.3, 10.4: 240 runs with faults and every strategy (random draws read from
    the trace, fault lines skipped); every event is a legal model step."""
    seen: set[str] = set()
    for seed in range(240):
        scenario = random_scenario(seed)
        seen.update(p.strategy for p in scenario.pools)
        verdict = check(trace_of(scenario))
        assert verdict.ok, f"seed {seed}: {verdict.illegal}"
    assert seen == set(STRATEGIES)


def test_default_scenario_conforms() -> None:
    from sim import default_scenario

    scenario = default_scenario()
    text = trace_of(parse_scenario(scenario.to_dict() | {"until": 100.0}, "default"))
    verdict = check(text)
    assert verdict.ok, verdict.illegal
    lines = [json.loads(line) for line in text.splitlines()[1:]]
    assert verdict.events == sum(1 for e in lines if e.get("ev", "fault") != "fault")
    assert verdict.ops == sum(1 for e in lines if "op" in e)
    assert verdict.end == "drained"


# -- edited traces are rejected, naming the seq -----------------------------------------------
# `events` below are all the lines after the header (op, choice, ev and end lines): line i of
# the list has seq i + 1.


def _lines(text: str) -> tuple[str, list[dict[str, Any]]]:
    head, *rest = text.splitlines()
    return head, [json.loads(line) for line in rest]


def _text(head: str, events: list[dict[str, Any]], renumber: bool = True) -> str:
    if renumber:
        for i, e in enumerate(events, start=1):
            e["seq"] = i
    return "\n".join([head, *(canonical(e) for e in events)]) + "\n"


def _rejected(text: str) -> str:
    verdict = check(text)
    assert not verdict.ok
    assert verdict.illegal is not None
    return str(verdict.illegal)


REQUESTS = {
    "seed": 3,
    "until": 20.0,
    "pool": [
        {"name": "w", "size": 2, "capacity": 1, "service": {"dist": "exponential", "mean": 1}}
    ],
    "client": [
        {"name": "load", "target": "pool:w", "arrivals": {"process": "poisson", "rate": 2}}
        | {"timeout": 1.5}
    ],
    "faults": {"duplicate": 0.3, "crash": [{"actor": "w-1", "at": 5.0, "restart_after": 2.0}]},
}


@pytest.fixture(scope="module")
def base() -> tuple[str, list[dict[str, Any]]]:
    text = trace_of(parse_scenario(REQUESTS, "requests"))
    assert check(text).ok
    return _lines(text)


def test_resolve_moved_before_its_reply(base: tuple[str, list[dict[str, Any]]]) -> None:
    head, events = base
    i = next(
        i for i, e in enumerate(events) if e.get("ev") == "resolve" and e["outcome"] == "replied"
    )
    j = max(j for j in range(i) if events[j].get("ev") == "send")
    events = [dict(e) for e in events]
    events[j], events[i] = events[i], events[j]
    assert _rejected(_text(head, events)).startswith(f"seq {j + 1} ")


def test_duplicate_reply_turned_into_a_replied_resolve(
    base: tuple[str, list[dict[str, Any]]],
) -> None:
    head, events = base
    i = next(
        i
        for i, e in enumerate(events)
        if e.get("ev") == "dead_letter" and e["reason"] == "duplicate_reply"
    )
    events = [dict(e) for e in events]
    send = next(e for e in events[:i] if e.get("ev") == "send" and e["msg"] == events[i]["msg"])
    events[i] = {
        "t": events[i]["t"], "seq": 0, "ev": "resolve", "corr": send["corr"],
        "outcome": "replied", "msg": send["msg"], "requester": "load",
    }  # fmt: skip
    message = _rejected(_text(head, events))
    assert message.startswith(f"seq {i + 1} ")
    assert f"resolve m{send['msg']} c{send['corr']}" in message and "duplicate_reply" in message


def test_dequeue_of_a_dead_lettered_message(base: tuple[str, list[dict[str, Any]]]) -> None:
    head, events = base
    i = next(
        i
        for i, e in enumerate(events)
        if e.get("ev") == "dead_letter" and e["reason"] in ("actor_stopped", "mailbox_full")
    )
    events = [dict(e) for e in events]
    dead = events[i]
    events.insert(i + 1, {"t": dead["t"], "seq": 0, "ev": "dequeue", "msg": dead["msg"],
                          "actor": "w-2"})  # fmt: skip
    message = _rejected(_text(head, events))
    assert message.startswith(f"seq {i + 2} ") and f"dequeue m{dead['msg']} w-2" in message


def test_timeout_resolved_before_its_deadline(base: tuple[str, list[dict[str, Any]]]) -> None:
    head, events = base
    i = next(
        i for i, e in enumerate(events) if e.get("ev") == "resolve" and e["outcome"] == "timed_out"
    )
    events = [dict(e) for e in events]
    moved = events.pop(i)
    j = next(j for j in range(i - 1, 0, -1) if events[j]["t"] < moved["t"] and "ev" in events[j])
    moved["t"] = events[j]["t"]
    events.insert(j + 1, moved)
    assert f"seq {j + 2}" in _rejected(_text(head, events))


def test_depth_above_capacity(base: tuple[str, list[dict[str, Any]]]) -> None:
    head, events = base
    i = next(i for i, e in enumerate(events) if e.get("ev") == "enqueue")
    events = [dict(e) for e in events]
    events[i]["depth"] = 2
    message = _rejected(_text(head, events))
    assert message.startswith(f"seq {i + 1} ") and f"enqueue m{events[i]['msg']} w-1 2" in message


def test_shifted_t(base: tuple[str, list[dict[str, Any]]]) -> None:
    head, events = base
    """An operation takes no time: each of its lines has its `t`. A shift that keeps `t`
    non-decreasing is illegal at the shifted line; one that does not makes the trace
    unreadable at the next line."""
    i = next(
        i
        for i, e in enumerate(events)
        if "ev" in e and e["t"] > 3.0 and events[i + 1]["t"] > e["t"]
    )
    events = [dict(e) for e in events]
    events[i]["t"] = (events[i]["t"] + events[i + 1]["t"]) / 2
    assert _rejected(_text(head, events)).startswith(f"seq {i + 1} ")
    events[i]["t"] = events[i + 1]["t"] + 1.0
    with pytest.raises(TraceUnreadable, match=f"test:{i + 3}: 't' must be"):
        check(_text(head, events))


def test_message_that_never_ends(base: tuple[str, list[dict[str, Any]]]) -> None:
    head, events = base
    """A trace cut short (no `end` line) is refused unless checked as partial; an `end` line
    whose counters or pending requests are not the model's is refused."""
    assert events[-1]["end"] == "drained"
    last = max(i for i, e in enumerate(events) if e.get("ev") in ("dequeue", "dead_letter"))
    truncated = _text(head, [dict(e) for e in events[: last + 1]])
    assert "cut short" in _rejected(truncated)
    assert check_trace(io.StringIO(truncated), complete=False).ok
    end = dict(events[-1])
    end["counters"] = end["counters"] | {"delivered": end["counters"]["delivered"] - 1}
    assert "counters" in _rejected(_text(head, [*events[:-1], end]))
    end = events[-1] | {"pending": [1]}
    assert "pending" in _rejected(_text(head, [*events[:-1], end]))


# -- mutants -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_traces_fail_conformance(name: str) -> None:
    """Every mutant that can show in a simulator trace is rejected by the checker; the same
    directed scenario under the real broker conforms."""
    scenario = trace_scenario(name)
    verdict = conform_result(name)
    if scenario is None:
        assert verdict is None
        return
    assert check(trace_of(scenario)).ok
    assert verdict is not None and verdict.illegal is not None
    assert verdict.illegal.seq >= 1


# -- unreadable input --------------------------------------------------------------------------


def test_unreadable_inputs() -> None:
    """Spec 10.5: input that is not a readable trace is refused (exit 2 on the command line)."""
    good = trace_of(parse_scenario(REQUESTS, "requests")).splitlines()
    for text in ("", "not json\n", '{"format":"x"}\n', good[0] + "\n{bad\n"):
        with pytest.raises(TraceUnreadable):
            check(text)
    newer = json.loads(good[0]) | {"version": 3}
    with pytest.raises(TraceUnreadable, match="newer"):
        check(json.dumps(newer) + "\n")
    older = json.loads(good[0]) | {"version": 1}
    with pytest.raises(TraceUnreadable, match="effects only"):
        check(json.dumps(older) + "\n")


def test_cli_conform(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Spec 10.5: the exit codes and messages of `brokerlab conform`."""
    text = trace_of(parse_scenario(REQUESTS, "requests"))
    good = tmp_path / "good.jsonl"
    good.write_text(text)
    assert main(["conform", str(good)]) == 0
    assert "operations conform" in capsys.readouterr().out
    head, events = _lines(text)
    i = next(i for i, e in enumerate(events) if e.get("ev") == "enqueue")
    events[i]["depth"] = 9
    bad = tmp_path / "bad.jsonl"
    bad.write_text(_text(head, events))
    assert main(["conform", str(bad)]) == 1
    assert f"seq {i + 1} " in capsys.readouterr().out
    assert main(["conform", str(tmp_path / "missing.jsonl")]) == 2
    (tmp_path / "junk.jsonl").write_text("{nope\n")
    assert main(["conform", str(tmp_path / "junk.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error" in err


def test_consistent_hash_route_to_the_wrong_member() -> None:
    """With `key` in the trace, conform computes the ring itself (spec 3.6)."""
    scenario = {
        "seed": 2,
        "until": 10.0,
        "pool": [{"name": "w", "size": 3, "strategy": "consistent_hash",
                  "service": {"dist": "exponential", "mean": 0.5}}],
        "client": [{"name": "c", "target": "pool:w", "timeout": 5.0,
                    "arrivals": {"process": "poisson", "rate": 2.0},
                    "keys": {"dist": "uniform", "n": 50}}],
    }  # fmt: skip
    head, events = _lines(trace_of(parse_scenario(scenario, "hash")))
    assert check(_text(head, events)).ok
    route = next(e for e in events if e.get("ev") == "route")
    wrong = {"w-1": "w-2", "w-2": "w-3", "w-3": "w-1"}[route["actor"]]
    for e in events:
        if e.get("msg") == route["msg"] and e.get("ev") in ("route", "enqueue", "dequeue"):
            e["actor"] = wrong
    assert f"seq {route['seq']}" in _rejected(_text(head, events))


# -- strict: what v1 let through -------------------------------------------------------------


def test_canonical_bytes_are_required_unless_lenient(
    base: tuple[str, list[dict[str, Any]]],
) -> None:
    head, events = base
    text = _text(head, events).splitlines()
    text[40] = json.dumps(json.loads(text[40]))  # the same object, with spaces
    spaced = "\n".join(text) + "\n"
    assert _rejected(spaced).startswith("seq 40 ") and "canonical" in _rejected(spaced)
    assert check_trace(io.StringIO(spaced), "test", strict=False).ok


def _edited(
    base: tuple[str, list[dict[str, Any]]], pick: Any, change: dict[str, Any]
) -> tuple[int, str]:
    head, events = base
    events = [dict(e) for e in events]
    i = next(i for i, e in enumerate(events) if pick(e))
    events[i].update(change)
    return i + 1, _rejected(_text(head, events))


def test_a_hand_edited_deadline_is_refused(base: tuple[str, list[dict[str, Any]]]) -> None:
    """v1 trusted the trace's deadline; the model computes it from the request's timeout."""
    seq, why = _edited(
        base, lambda e: e.get("ev") == "send" and e["kind"] == "request", {"deadline": 99.0}
    )
    assert why.startswith(f"seq {seq} ") and "'deadline' is 99.0" in why


def test_wrong_fields_are_refused_where_they_show(base: tuple[str, list[dict[str, Any]]]) -> None:
    cases: list[tuple[Any, dict[str, Any], str]] = [
        (lambda e: e.get("ev") == "register", {"addresses": ["id:9"]}, "'addresses'"),
        (lambda e: e.get("ev") == "send" and e["kind"] == "reply", {"to": "name:load"}, "'to'"),
        (lambda e: e.get("ev") == "send" and e["kind"] == "request", {"from": "w-1"}, "'from'"),
        (lambda e: e.get("ev") == "stop", {"reason": "bored"}, "'reason'"),
        (lambda e: e.get("ev") == "route", {"extra": 1}, "'extra'"),
    ]
    for pick, change, needle in cases:
        seq, why = _edited(base, pick, change)
        assert why.startswith(f"seq {seq} ") and needle in why, why


def test_a_missing_field_is_refused(base: tuple[str, list[dict[str, Any]]]) -> None:
    head, events = base
    events = [dict(e) for e in events]
    i = next(i for i, e in enumerate(events) if e.get("ev") == "enqueue")
    del events[i]["depth"]
    assert _rejected(_text(head, events)).startswith(f"seq {i + 1} ")


def test_a_member_registered_before_its_pool_is_refused_not_looped() -> None:
    """v1 looped forever on this 2-line trace; v2 replays the op and compares its result."""
    head = canonical(json.loads(trace_of(parse_scenario(REQUESTS, "r")).splitlines()[0]))
    op = {"t": 0.0, "seq": 1, "op": "register", "name": "w-1", "capacity": None,
          "backpressure": "reject", "send_timeout": None, "services": [], "pools": ["w"],
          "result": 1, "error": None}  # fmt: skip
    ev = {"t": 0.0, "seq": 2, "ev": "register", "actor": "w-1", "name": "w-1",
          "addresses": ["id:1", "name:w-1", "pool:w"], "capacity": None,
          "backpressure": "reject", "send_timeout": None}  # fmt: skip
    why = _rejected("\n".join([head, canonical(op), canonical(ev)]) + "\n")
    assert why.startswith("seq 1 ") and "error pool_not_found" in why


# -- reading in chunks: what one line at a time refuses, at the same line ----------------------
# The reader parses and checks lines a chunk at a time (model._conform._CHUNK); small chunks here
# put the edits at a chunk's first, middle and last lines.

CHUNKS = (1, 3, 8)


def _alone(line: str, number: int) -> str:
    """Why `parse_line` refuses the line on its own, as line `number` of the file "test"."""
    with pytest.raises(TraceUnreadable) as refused:
        conform.parse_line(line, f"test:{number}")
    return str(refused.value)


@pytest.mark.parametrize("chunk", CHUNKS)
def test_json_fragments_are_refused_at_their_line(
    base: tuple[str, list[dict[str, Any]]], chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spec 10.5: lines that are not one JSON object each are refused where they are, even
    when lines around them, joined, would be JSON (a value split over lines, two on one)."""
    monkeypatch.setattr(conform, "_CHUNK", chunk)
    head, events = base
    body = [canonical(e) for e in events]
    fragments = [
        ["1,2"],
        ["]"],
        [""],
        ["{} x"],
        ["{},{}"],
        ['{"a":[1', "2]}", "{},{}"],
        ['{"a":"x', 'y"}', "{},{}"],
        ['{"a":[{},"]}",{}', '{"x":"[{"}]}', "{},{}"],
        [body[0][:-1], "}"],
    ]
    for lines in fragments:
        for at in (1, 8, 9, 13):  # the line's seq; the file's line is seq + 1
            text = [head, *body[: at - 1], *lines, *body[at - 1 + len(lines) :]]
            with pytest.raises(TraceUnreadable) as refused:
                check_trace(text, "test")
            assert str(refused.value) == _alone(lines[0], at + 1), (lines, at)


@pytest.mark.parametrize("chunk", CHUNKS)
def test_times_seqs_and_tags_are_checked_at_their_line(
    base: tuple[str, list[dict[str, Any]]], chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/trace-format.md: each line has a finite `t`, not before the last, the next `seq`
    and one tag (a string); an integer time is a time."""
    monkeypatch.setattr(conform, "_CHUNK", chunk)
    head, events = base
    for at in (1, 8, 9, 13):
        e = events[at - 1]
        cases: list[tuple[dict[str, Any], str]] = [
            ({"t": 1234.5}, "'t' must be a finite"),  # written 1e999 below: infinite
            ({"t": -1234.5}, "'t' must be a finite"),
            ({"t": True}, "'t' must be a finite"),
            ({"t": str(e["t"])}, "'t' must be a finite"),
            ({"seq": True}, f"'seq' must be {at} "),
            ({"seq": float(at)}, f"'seq' must be {at} "),
            ({"seq": at + 1}, f"'seq' must be {at} "),
            ({"end": "drained"}, "a line has exactly one of"),
            ({"choice": None}, "a line has exactly one of"),
            ({next(k for k in ("op", "ev", "choice") if k in e): 1}, "a line has exactly one of"),
        ]
        if at > 1:
            cases.append(({"t": events[at - 2]["t"] - 1}, "'t' must be a finite"))  # goes back
        for change, why in cases:
            lines = [canonical(x) for x in events]
            lines[at - 1] = canonical(e | change).replace("1234.5", "1e999")
            for strict in (True, False):
                with pytest.raises(TraceUnreadable) as refused:
                    check_trace([head, *lines], "test", strict=strict)
                assert str(refused.value).startswith(f"test:{at + 1}: {why}"), (at, change)
        text = [head, *[canonical(x) for x in events[: at - 1]], "{}", "{} x"]
        with pytest.raises(TraceUnreadable, match=rf"^test:{at + 1}: 't' must be a finite"):
            check_trace(text, "test")
    lines = [canonical(e | {"t": int(e["t"])} if e["t"] == 0 else e) for e in events]
    assert [type(json.loads(line)["t"]) for line in lines[:3]] == [int, int, int]
    assert check_trace([head, *lines], "test").ok


def _fault(events: list[dict[str, Any]], at: int, kind: Any) -> list[dict[str, Any]]:
    """A copy of the events with a `fault` line (which the checker skips) at index `at`."""
    fault = {"t": events[at - 1]["t"], "seq": 0, "ev": "fault", "kind": kind, "actor": "w-1"}
    return [dict(e) for e in events[:at]] + [fault] + [dict(e) for e in events[at:]]


@pytest.mark.parametrize("chunk", CHUNKS)
def test_nesting_is_bounded_in_every_chunk(
    base: tuple[str, list[dict[str, Any]]], chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A line nested deeper than 16 levels is refused before `json` recurses into it; brackets
    in strings do not count, and 16 levels are read."""
    monkeypatch.setattr(conform, "_CHUNK", chunk)
    head, events = base
    deep: Any = []
    for _ in range(14):
        deep = [deep]  # 15 lists: the line is 16 deep
    assert check(_text(head, _fault(events, 10, deep))).ok
    assert check(_text(head, _fault(events, 10, "[{" * 20))).ok
    with pytest.raises(TraceUnreadable, match=r"^test:12: JSON nested deeper than 16 levels"):
        check(_text(head, _fault(events, 10, [deep])))


@pytest.mark.parametrize("chunk", CHUNKS)
def test_the_first_line_not_in_canonical_form_is_named(
    base: tuple[str, list[dict[str, Any]]], chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/trace-format.md, Encoding: the first line not written canonically is named, whichever
    chunk it is in; a line ending in a newline is read as without it, one inside is not."""
    monkeypatch.setattr(conform, "_CHUNK", chunk)
    head, events = base
    body = [canonical(e) for e in events]
    for at in (1, 8, 9, 13, 200):
        spaced = [*body]
        spaced[at - 1] = json.dumps(events[at - 1])
        spaced[at + 30] = json.dumps(events[at + 30])
        assert _rejected("\n".join([head, *spaced])).startswith(f"seq {at} "), at
        for edit in (lambda line: line.replace(",", ",\n", 1), " {}".format, "{}\r\n".format):
            lines = [*body]
            lines[at - 1] = edit(lines[at - 1])
            why = str(check_trace([head, *lines], "test").illegal)
            assert why.startswith(f"seq {at} ") and "canonical" in why
    ragged = [line + "\n" if i % 3 else line for i, line in enumerate([head, *body])]
    assert check_trace(ragged, "test").ok


@pytest.mark.parametrize("chunk", CHUNKS)
def test_an_illegal_line_and_a_noncanonical_one_the_first_is_named(
    base: tuple[str, list[dict[str, Any]]], chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Of a line that does not conform and one not in canonical form, the first is named."""
    monkeypatch.setattr(conform, "_CHUNK", chunk)
    head, events = base
    i = next(i for i, e in enumerate(events) if e.get("ev") == "enqueue" and i > 20)
    body = [canonical(e | {"depth": 9}) if j == i else canonical(e) for j, e in enumerate(events)]
    for at in (i - 3, i + 3):
        lines = [*body]
        lines[at] = json.dumps(events[at])
        assert _rejected("\n".join([head, *lines])).startswith(f"seq {min(at, i) + 1} ")


def test_a_trace_longer_than_a_chunk_conforms() -> None:
    """Read from a file (lines ending in newlines) or as lines, chunk after chunk."""
    text = trace_of(parse_scenario(REQUESTS | {"until": 200.0}, "long"))
    lines = text.splitlines()
    assert len(lines) > 4 * conform._CHUNK
    verdict = check(text)
    assert verdict.ok and verdict.end == "drained"
    assert check_trace(lines, "test") == verdict
    assert verdict.events == sum(1 for line in lines if '"ev":"' in line and "fault" not in line)
    at = 3 * conform._CHUNK + 100
    lines[at] = json.dumps(json.loads(lines[at]))
    assert _rejected("\n".join(lines)).startswith(f"seq {at} ")


def test_lines_are_read_a_chunk_at_a_time(base: tuple[str, list[dict[str, Any]]]) -> None:
    """Memory follows what is open: a trace refused early is not read to its end."""
    head, events = base
    taken = 0

    def lines() -> Any:
        nonlocal taken
        for line in itertools.chain([head, "{nope"], itertools.repeat(canonical(events[0]), 10**6)):
            taken += 1
            yield line

    with pytest.raises(TraceUnreadable, match=r"^test:2: not valid JSON"):
        check_trace(lines(), "test")
    assert taken <= 2 + conform._CHUNK


def test_every_event_line_is_typed_however_many_alike_came_before(
    base: tuple[str, list[dict[str, Any]]],
) -> None:
    """Spec 9.4: an event line like others already checked (the same fields, the same types)
    is still checked for its own values' types: a float depth, a list of texts with a number."""
    last = max(e["seq"] for e in base[1] if e.get("ev") == "enqueue")
    seq, why = _edited(base, lambda e: e["seq"] == last, {"depth": 1.0})
    assert seq == last > 100
    assert why.startswith(f"seq {seq} ") and "'depth' of a enqueue event is a int" in why
    w1, w2 = (e for e in base[1] if e.get("ev") == "register" and e["actor"] in ("w-1", "w-2"))
    assert [*map(type, w1.values())] == [*map(type, w2.values())]  # w-2's is shaped as w-1's
    change = {"addresses": [*w2["addresses"], 7]}
    seq, why = _edited(base, lambda e: e.get("ev") == "register" and e["actor"] == "w-2", change)
    assert why.startswith(f"seq {seq} ") and "'addresses' of a register event" in why


def test_op_arguments_are_read_with_their_exact_types(
    base: tuple[str, list[dict[str, Any]]],
) -> None:
    """A boolean is not an integer, a number not a text; an integer is a number."""
    head, events = base
    cases: list[tuple[str, str, Any, str]] = [
        ("dequeue", "actor", True, "'actor' must be an integer, got True"),
        ("request", "to", 5, "'to' must be a string, got 5"),
        ("request", "timeout", "1.5", "'timeout' must be a number or null, got '1.5'"),
        ("reply", "from", 1.0, "'from' must be an integer, got 1.0"),
    ]
    for op, key, value, why in cases:
        edited = [dict(e) for e in events]
        i = next(i for i, e in enumerate(edited) if e.get("op") == op)
        edited[i][key] = value
        with pytest.raises(TraceUnreadable) as refused:
            check(_text(head, edited))
        assert str(refused.value) == f"test:{i + 2} ({op}): {why}"
    i = next(i for i, e in enumerate(events) if e.get("op") == "request")
    edited = [dict(e) for e in events]
    edited[i]["send_timeout"] = 1  # unused: the pool rejects rather than blocks
    assert check(_text(head, edited)).ok


def test_the_models_replace_is_dataclasses_replace() -> None:
    """The trace checker and `apply` copy the model's records by position (`_replace`): what
    `dataclasses.replace` makes, for every kind of record the checker replaces."""
    from model import State
    from model._semantics import _replace
    from model._state import Request

    request = Request(corr=1, requester=2, issued_at=0.5, deadline=3.0)
    cases: list[tuple[Any, dict[str, Any]]] = [
        (State(), {"now": 2.5}),
        (State(now=1.0, sent=3), {"sent": 4, "dead_letters": ()}),
        (State(requests=(request,)), {"requests": ()}),
        (request, {"deadline": 4.0}),
    ]
    for obj, changes in cases:
        made = _replace(obj, **changes)
        assert made == dataclasses.replace(obj, **changes) and type(made) is type(obj)


def test_a_line_that_cannot_be_read_is_refused_in_its_turn(
    base: tuple[str, list[dict[str, Any]]],
    tmp_path: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Spec 10.5: bytes that are not UTF-8 end the check where they are (exit 2), but a line
    before them that does not conform is what is reported (exit 1), in the same chunk too."""
    head, events = base
    monkeypatch.setattr(conform, "_CHUNK", 2 * len(events))
    i = next(i for i, e in enumerate(events) if e.get("ev") == "enqueue")
    bad = [e | {"depth": 9} if j == i else e for j, e in enumerate(events)]
    path = tmp_path / "t.jsonl"
    path.write_bytes(_text(head, bad).encode() + b"\xff\n")
    assert main(["conform", str(path)]) == 1
    assert f"seq {i + 1} " in capsys.readouterr().out
    path.write_bytes(_text(head, events).encode() + b"\xff\n")
    assert main(["conform", str(path)]) == 2
    assert "not UTF-8" in capsys.readouterr().err

    def lines(text: str) -> Any:
        yield from text.splitlines()
        raise OSError("the disk is gone")

    assert str(check_trace(lines(_text(head, bad)), "test").illegal).startswith(f"seq {i + 1} ")
    with pytest.raises(OSError, match="the disk is gone"):
        check_trace(lines(_text(head, events)), "test")


def test_a_number_out_of_range_is_unreadable_not_a_crash(
    base: tuple[str, list[dict[str, Any]]], tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """JSON reads `1e999` as an infinity, which has no canonical text: the line is refused,
    named, with exit 2 (it used to end in a ValueError traceback)."""
    head, events = base
    lines = _text(head, events).splitlines()
    lines[1] = lines[1].replace('"seq":1,', '"seq":1,"x":1e999,', 1)
    assert '"x":1e999' in lines[1]
    with pytest.raises(TraceUnreadable, match=r":2: a number out of range"):
        check_trace(lines, "t.jsonl")
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert main(["conform", str(path)]) == 2
    assert "out of range" in capsys.readouterr().err
    head_line = lines[0].replace('"seed":', '"big":1e999,"seed":', 1)
    assert '"big"' in head_line
    with pytest.raises(TraceUnreadable, match=r":1: a number out of range"):
        check_trace([head_line, *lines[2:]], "t.jsonl")


def test_the_models_copies_are_field_for_field() -> None:
    """`_replace` copies every kind of record the model keeps (a copier written out per class):
    each field kept, or changed, as `dataclasses.replace` makes it, the original untouched."""
    from model._semantics import _replace
    from model._state import (
        ActorState,
        Addr,
        DeadLetter,
        InTransit,
        Msg,
        Parked,
        PoolState,
        Request,
        Retry,
        ServiceState,
        State,
        Timer,
        TopicState,
    )

    msg = Msg(3, "request", 1, Addr("pool", "p"), 2, 4.0, True, 1, "k", None, 2)
    retry = Retry(4, 0.2, 3.0, 1.0, 0.1)
    actor = ActorState(1, "a", True, 2, "block", 0.5, (msg,), (), (Parked(msg, 7),), True, ("s",))
    state = State(
        1.5,
        (actor,),
        (ServiceState("s", (1,)),),
        (PoolState("p", "shared", (1,), 0, (msg,)),),
        (TopicState("t", (1,)),),
        (Request(2, 1, 0.5, 4.0, "failed"),),
        (Timer(4.0, 7, "retry", None, 1, msg, retry, 0.5),),
        2,
        4,
        3,
        8,
        5,
        1,
        2,
        1,
        1,
        (DeadLetter(3, "expired"),),
        (InTransit(msg, retry, 0.5),),
    )
    records: list[Any] = [state]
    for record in records:  # every record reachable from the state, the state first
        for f in dataclasses.fields(record):
            value = getattr(record, f.name)
            for item in value if isinstance(value, tuple) else (value,):
                if dataclasses.is_dataclass(item):
                    records.append(item)
    assert {type(r).__name__ for r in records} >= {
        "State", "ActorState", "Msg", "Addr", "Parked", "ServiceState", "PoolState",
        "TopicState", "Request", "Timer", "Retry", "DeadLetter", "InTransit",
    }  # fmt: skip
    for record in records:
        before = dataclasses.astuple(record)
        copy = _replace(record)
        assert copy == record and copy is not record and type(copy) is type(record)
        for f in dataclasses.fields(record):
            made = _replace(record, **{f.name: None})
            assert made == dataclasses.replace(record, **{f.name: None})
        assert dataclasses.astuple(record) == before


def test_a_late_reply_finds_how_its_request_ended_and_who_issued_it() -> None:
    """Memory follows what is open (spec 10.5): an ended request leaves the model's state, and
    a reply to it later finds how it ended and its requester (kept as an index into the actors
    that issued requests, a byte each until 256 of them have, wider after)."""
    from model._semantics import Effect
    from model._state import Request, State

    outcomes: tuple[Any, ...] = ("replied", "timed_out", "cancelled", "failed")
    checker = conform._Checker("test")
    for corr in range(1, 700):
        ended = Request(corr, 1000 + corr % 300, 0.0, 1.0, outcomes[corr % 4])
        checker._after(Effect(State(requests=(ended,)), None, ()))
        assert checker.state.requests == ()
        if corr == 255:
            assert checker.requesters.itemsize == 1 and len(checker.fates) == 256
    assert checker.requesters.itemsize == 8 and len(checker.issuers) == 300
    for corr in (699, 1, 255, 256, 299, 300, 555):
        checker._recall(corr)
        req = checker.state.request(corr)
        assert req is not None and (req.requester, req.outcome) == (
            1000 + corr % 300,
            outcomes[corr % 4],
        )
    assert [r.corr for r in checker.state.requests] == [1, 255, 256, 299, 300, 555, 699]
    checker._recall(700)  # never issued: nothing to recall
    assert checker.state.request(700) is None


def test_the_models_events_are_those_as_event_makes() -> None:
    """The model makes its own events without `as_event`'s cleaning of a trace line
    (`own_event`): the same events, every field included, lists as tuples."""
    from model import (
        Ask,
        CreatePool,
        Dequeue,
        Register,
        Reply,
        State,
        Stop,
        Subscribe,
        Tell,
        apply,
    )
    from model._actions import as_event

    actions: list[Any] = [
        CreatePool("p"),
        Register("w", 1, services=("svc",), pools=("p",)),
        Register("c"),
        Subscribe("news", 2),
        Tell(None, "pool:p"),
        Tell(2, "service:svc", ttl=5.0),
        Tell(None, "topic:news"),
        Ask(2, "name:w", 1.0),
        Dequeue(1),
        Reply(1, 1),
        Stop(1),
    ]
    state, seen = State(), set()
    for action in actions:
        effect = apply(state, action)
        for e in effect.events:
            seen.add(e.name)
            assert as_event(e.name, dict(e.fields)).same(e), e
            assert not any(isinstance(v, list) for _, v in e.fields)
        state = effect.state
    assert seen >= {"create_pool", "register", "send", "route", "enqueue", "reject", "resolve"}
