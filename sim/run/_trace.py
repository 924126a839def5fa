"""Trace files: canonical JSON Lines (docs/trace-format.md).

Line 1 is the header; every later line has `t` and `seq` and one tag naming what it is: `op` (a
call into the broker), `choice` (what the environment chose during one), `ev` (an event the
broker emitted) or `end` (how the run ended). Canonical means sorted keys, no spaces, shortest
round-trip floats, UTF-8, so the same run gives the same bytes whatever PYTHONHASHSEED is.
"""

from __future__ import annotations

from typing import Any, Protocol

from model import SPEC_VERSION, TRACE_FORMAT, TRACE_VERSION, TraceUnreadable, canonical
from model import read_header as model_read_header

TAGS = ("op", "choice", "ev", "end")


class TraceError(ValueError):
    """An unreadable trace; the message names the file and line."""


def header(seed: int, scenario: dict[str, Any], broker: str = "reference") -> dict[str, Any]:
    return {
        "format": TRACE_FORMAT,  # the checker's own constants: the two never part
        "version": TRACE_VERSION,
        "spec_version": SPEC_VERSION,
        "broker": broker,
        "seed": seed,
        "scenario": scenario,
    }


def _plain(text: str) -> bool:
    """True when `text` needs no JSON escaping (the common case: names, kinds, reasons)."""
    return text.isprintable() and '"' not in text and "\\" not in text


def encode_event(t: float, seq: int, ev: str, fields: dict[str, Any], tag: str = "ev") -> str:
    """`canonical({"t": t, "seq": seq, tag: ev, **fields})`, several times faster.

    Trace writing is on the simulator's hot path, so scalars are formatted directly; anything
    unusual (escapes, containers, non-finite floats) falls back to `json`. The tests check
    the two agree byte for byte on arbitrary events.
    """
    layout = (tag, *fields)
    order = _ORDER.get(layout)
    if order is None:
        keys = sorted(("t", "seq", tag, *fields))
        order = _ORDER[layout] = [(key, canonical(key) + ":") for key in keys]
    parts = []
    for key, prefix in order:
        value: Any = t if key == "t" else seq if key == "seq" else ev if key == tag else fields[key]
        kind = type(value)
        if kind is str and _plain(value):
            parts.append(f'{prefix}"{value}"')
        elif kind is int:
            parts.append(f"{prefix}{value}")
        elif kind is float and value - value == 0.0:  # finite
            parts.append(f"{prefix}{value!r}")
        elif value is None:
            parts.append(prefix + "null")
        else:
            parts.append(prefix + canonical(value))
    return "{" + ",".join(parts) + "}"


# Per layout (the line's tag, then its field keys in insertion order): its sorted keys, each
# with its encoded `"key":` prefix.
_ORDER: dict[tuple[str, ...], list[tuple[str, str]]] = {}


class TextSink(Protocol):
    """Where a trace goes: any text stream, or replay's line-by-line comparer."""

    def write(self, text: str, /) -> int: ...


class TraceWriter:
    """Numbers events and writes one canonical line each to a text stream."""

    __slots__ = ("out", "seq")

    def __init__(self, out: TextSink, head: dict[str, Any]) -> None:
        self.out = out
        self.seq = 0
        out.write(canonical(head) + "\n")

    def write(self, t: float, tag: str, name: str, fields: dict[str, Any]) -> None:
        self.seq = seq = self.seq + 1
        self.out.write(encode_event(t, seq, name, fields, tag) + "\n")


def read_header(line: str, source: str) -> dict[str, Any]:
    """Parse and check line 1 of a trace, as the trace checker does (model.read_header)."""
    try:
        return model_read_header(line, source)
    except TraceUnreadable as err:
        raise TraceError(str(err)) from None
