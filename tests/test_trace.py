"""Trace encoding (docs/trace-format.md): the fast encoder is canonical JSON, byte for byte."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from model import TraceUnreadable, check_trace
from sim.run._replay import _Comparer
from sim.run._trace import TraceWriter, canonical, encode_event, header

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
values = st.one_of(scalars, st.lists(scalars, max_size=4), st.dictionaries(st.text(), scalars))
keys = st.text(min_size=1).filter(lambda k: k not in ("t", "seq", "ev"))


@given(
    st.floats(min_value=0, allow_nan=False, allow_infinity=False),
    st.integers(min_value=1),
    st.text(),
    st.dictionaries(keys, values, max_size=6),
)
def test_fast_encoder_is_canonical_json(t: float, seq: int, ev: str, fields: dict) -> None:  # type: ignore[type-arg]
    expected = canonical({"t": t, "seq": seq, "ev": ev, **fields})
    assert encode_event(t, seq, ev, fields) == expected
    assert json.loads(expected) == {"t": t, "seq": seq, "ev": ev, **fields}


def test_canonical_form_details() -> None:
    line = encode_event(1.0, 2, "send", {"to": "pool:w", "msg": 3, "from": None, "x": 1e-07})
    assert line == '{"ev":"send","from":null,"msg":3,"seq":2,"t":1.0,"to":"pool:w","x":1e-07}'
    with pytest.raises(ValueError):
        encode_event(float("nan"), 1, "x", {})


def test_reader_checks_every_line_as_it_streams() -> None:
    """Format 2's line rules (docs/trace-format.md), enforced by the checker's reader."""
    head = canonical(header(1, {}))
    good = ['{"t":0.0,"seq":1,"op":"done","actor":1,"result":null,"error":null}']
    assert check_trace([head, *good], "x", complete=False).illegal is not None  # no actor 1
    fire = '{"t":1.0,"seq":1,"op":"fire"}'
    for bad, why in [
        ([fire, '{"t":0.5,"seq":2,"op":"fire"}'], "x:3: 't'"),
        (
            ['{"t":1.0,"seq":1,"op":"fire"}', '{"t":1.0,"seq":3,"op":"fire"}'],
            "x:3: 'seq' must be 2",
        ),
        (['{"t":1.0,"seq":2,"op":"fire"}'], "'seq' must be 1"),
        (['{"t":1.0,"seq":1,"op":"fire","ev":"send"}'], "exactly one of"),
        (['{"t":1.0,"seq":1,"ev":3}'], "exactly one of"),
        (['{"t":NaN,"seq":1,"ev":"a"}'], "not valid JSON"),
        (["[" * 40 + "]" * 40], "nested deeper"),
    ]:
        with pytest.raises(TraceUnreadable, match=why):
            check_trace([head, *bad], "x", complete=False)


@given(st.floats(), st.floats(), st.sampled_from(["deadline", "at", "x"]))
def test_every_float_is_written_as_canonical_json_or_refused_alike(
    t: float, value: float, key: str
) -> None:
    """Over all floats, NaN and infinities included: the per-layout formats write `repr`, as
    `json.dumps` does, and refuse a non-finite float with the same ValueError."""
    fields = {"msg": 1, key: value}
    try:
        expected = canonical({"t": t, "seq": 1, "ev": "send", **fields})
    except ValueError:
        with pytest.raises(ValueError):
            encode_event(t, 1, "send", fields)
        return
    assert encode_event(t, 1, "send", fields) == expected


@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), scalars), min_size=1, max_size=8))
def test_one_layout_with_values_of_every_type_in_turn(events: list[tuple[str, object]]) -> None:
    """A line's layout includes its values' types: the same keys with an int, then a bool, then
    null (`%d` would write True as 1) each come out canonical."""
    for other, value in events:
        fields = {"msg": value, "actor": other}
        assert encode_event(2.5, 7, "route", fields) == canonical(
            {"t": 2.5, "seq": 7, "ev": "route", **fields}
        )


def test_the_writer_holds_lines_and_writes_them_whole_in_blocks() -> None:
    """Lines are held and written a block at a time, each ending in a newline; `flush` writes
    the rest. The bytes are those of one canonical line per event."""
    out = io.StringIO()
    writer = TraceWriter(out, {"format": "x"})
    lines = [(float(i // 3), "ev", "route", {"msg": i, "actor": f"w{i}"}) for i in range(600)]
    for t, tag, name, fields in lines:
        writer.write(t, tag, name, fields)
    assert out.getvalue().count("\n") < 600  # some are held
    writer.flush()
    expected = "".join(
        canonical({"t": t, "seq": seq, tag: name, **fields}) + "\n"
        for seq, (t, tag, name, fields) in enumerate(lines, 1)
    )
    assert out.getvalue() == '{"format":"x"}\n' + expected


def test_replay_compares_a_block_line_by_line_splitting_at_newlines_only() -> None:
    """A JSON string may hold U+2028 (a line separator to `str.splitlines`) as itself."""
    recorded = ['{"a":"x\u2028y"}\n', '{"b":1}\n']
    comparer = _Comparer(iter(recorded), any_broker=False)
    comparer.write('{"a":"x\u2028y"}\n{"b":1}\n')
    assert comparer.line == 2
