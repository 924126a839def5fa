"""Trace files: canonical JSON Lines (docs/trace-format.md).

Line 1 is the header; every later line has `t` and `seq` and one tag naming what it is: `op` (a
call into the broker), `choice` (what the environment chose during one), `ev` (an event the
broker emitted) or `end` (how the run ended). Canonical means sorted keys, no spaces, shortest
round-trip floats, UTF-8, so the same run gives the same bytes whatever PYTHONHASHSEED is.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from model import canonical

FORMAT = "brokerlab-trace"
VERSION = 2
SPEC_VERSION = "1.1"
TAGS = ("op", "choice", "ev", "end")


class TraceError(ValueError):
    """An unreadable trace; the message names the file and line."""


def header(seed: int, scenario: dict[str, Any], broker: str = "reference") -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
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
    """Parse and check line 1 of a trace."""
    head = parse_line(line, source, 1)
    if head.get("format") != FORMAT:
        raise TraceError(f"{source}:1: not a brokerlab trace (format is {head.get('format')!r})")
    version = head.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise TraceError(f"{source}:1: header has no integer 'version'")
    if version > VERSION:
        raise TraceError(
            f"{source}:1: trace format version {version} is newer than this brokerlab "
            f"understands (version {VERSION}); upgrade brokerlab to read it"
        )
    if version < VERSION:
        raise TraceError(
            f"{source}:1: trace format version {version} records effects only; record the run "
            f"again with this brokerlab (format version {VERSION})"
        )
    for key in ("seed", "scenario"):
        if key not in head:
            raise TraceError(f"{source}:1: header lacks {key!r}")
    return head


def parse_line(line: str, source: str, number: int) -> dict[str, Any]:
    try:
        obj = json.loads(line, parse_constant=_no_constants)
    except (json.JSONDecodeError, ValueError) as err:
        raise TraceError(f"{source}:{number}: not valid JSON ({err})") from None
    if not isinstance(obj, dict):
        raise TraceError(f"{source}:{number}: expected a JSON object")
    return obj


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not allowed in a trace")
