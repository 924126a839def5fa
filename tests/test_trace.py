"""Trace encoding (docs/trace-format.md): the fast encoder is canonical JSON, byte for byte."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.run._trace import TraceError, canonical, encode_event, read_events

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


def test_reader_checks_order_as_it_streams() -> None:
    good = ['{"t":0.0,"seq":1,"ev":"a"}', '{"t":0.0,"seq":2,"ev":"b"}']
    assert [n for n, _ in read_events(iter(good), "x")] == [2, 3]
    for bad, why in [
        (['{"t":1.0,"seq":1,"ev":"a"}', '{"t":0.5,"seq":2,"ev":"b"}'], "'t'"),
        (['{"t":1.0,"seq":2,"ev":"a"}', '{"t":1.0,"seq":2,"ev":"b"}'], "'seq'"),
        (['{"t":1.0,"seq":1,"ev":3}'], "'ev'"),
        (['{"t":NaN,"seq":1,"ev":"a"}'], "not valid JSON"),
    ]:
        with pytest.raises(TraceError, match=why):
            list(read_events(iter(bad), "x"))
