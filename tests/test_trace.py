"""Trace encoding (docs/trace-format.md): the fast encoder is canonical JSON, byte for byte."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from model import TraceUnreadable, check_trace
from sim.run._trace import canonical, encode_event, header

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
