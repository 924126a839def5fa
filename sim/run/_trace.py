"""Trace files: canonical JSON Lines (docs/trace-format.md).

Line 1 is the header; every later line has `t` and `seq` and one tag naming what it is: `op` (a
call into the broker), `choice` (what the environment chose during one), `ev` (an event the
broker emitted) or `end` (how the run ended). Canonical means sorted keys, no spaces, shortest
round-trip floats, UTF-8, so the same run gives the same bytes whatever PYTHONHASHSEED is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from json.encoder import encode_basestring
from operator import call, itemgetter, pos
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


# A line is written with a `%` format per layout (below). What each value's slot is, by the
# value's exact type: the format and the function giving what it formats. These are the very
# functions `json.dumps` applies (its C encoder writes an exact str with `encode_basestring` when
# ensure_ascii is off, an exact int with int.__repr__ (`%d`), a finite float with float.__repr__
# (`%r`)), so a line is canonical by construction; any other type (containers, subclasses) goes
# through `canonical` itself, and a non-finite float through `canonical` to raise its ValueError.
_SLOTS: dict[type, tuple[str, Callable[[Any], Any]]] = {
    str: ("%s", encode_basestring),
    int: ("%d", pos),
    float: ("%r", pos),
    bool: ("%s", {True: "true", False: "false"}.__getitem__),
    type(None): ("%s", {None: "null"}.__getitem__),
}
_OTHER = ("%s", canonical)


def _text(value: Any) -> str:
    """The canonical text of one value (`t`: the writer keeps it for the lines that share it)."""
    if type(value) is float and value - value == 0.0:
        return float.__repr__(value)  # the usual `t`, directly
    fmt, convert = _SLOTS.get(type(value), _OTHER)
    if type(value) is float and value - value != 0.0:
        canonical(value)  # raises ValueError, as json.dumps does
    text: str = fmt % convert(value)
    return text


class _Layout:
    """How to write one kind of line: its tag, its name, its field keys in the order the fields
    dict has them, and their values' types. `fmt` is the line with the tag's value in place and
    a slot per other key, in sorted order; `order` puts (seq, t's text, the converted field
    values, in the dict's order) in the slots' order."""

    __slots__ = ("convert", "floats", "fmt", "order")

    def __init__(self, tag: str, name: str, keys: tuple[str, ...], types: tuple[type, ...]) -> None:
        slots = [_SLOTS.get(kind, _OTHER) for kind in types]
        self.convert = tuple(convert for _, convert in slots)
        self.floats = tuple(i for i, kind in enumerate(types) if kind is float)
        where = {"seq": (0, "%d"), "t": (1, "%s")}
        where |= {
            key: (i + 2, slot[0]) for i, (key, slot) in enumerate(zip(keys, slots, strict=True))
        }
        parts, order = [], []
        for key in sorted((*keys, "seq", "t", tag)):
            prefix = canonical(key).replace("%", "%%") + ":"
            if key == tag:
                parts.append(prefix + canonical(name).replace("%", "%%"))
            else:
                index, slot = where[key]
                parts.append(prefix + slot)
                order.append(index)
        self.fmt = "{" + ",".join(parts) + "}"
        self.order = itemgetter(*order)


# Layouts by the line's signature: (tag, name, its keys in the dict's order, their values'
# types; its length gives the number of keys): one dict lookup finds a line's layout, or tells
# that it has none yet. None: the line
# takes no layout (a key or name not a string, or a field named `t`, `seq` or like the tag):
# it is written by `canonical` itself.
_LAYOUTS: dict[tuple[Any, ...], _Layout | None] = {}


def _new_layout(signature: tuple[Any, ...], tag: str, name: str, n: int) -> _Layout | None:
    keys, types = signature[2 : 2 + n], signature[2 + n :]
    layout = None
    strings = type(name) is str and all(type(key) is str for key in keys)
    if strings and not {"t", "seq", tag} & set(keys):
        layout = _Layout(tag, name, keys, types)
    _LAYOUTS[signature] = layout
    return layout


def encode_line(t_text: str, seq: int, name: str, fields: dict[str, Any], tag: str = "ev") -> str:
    """The line `canonical({"t": t, "seq": seq, tag: name, **fields})`, given `t`'s text.

    The trace's hot path, run for every line (so written tighter than the rest): the line's
    layout is looked up by its signature, not worked out, and its values are converted by C
    functions mapped over them. The tests check it agrees with `canonical` byte for byte on
    arbitrary lines.
    """
    values = tuple(fields.values())
    signature = (tag, name, *fields, *map(type, values))
    layout = _LAYOUTS.get(signature, _MISSING)
    if layout is _MISSING:
        layout = _new_layout(signature, tag, name, len(values))
    if layout is None:
        return canonical({"t": json.loads(t_text), "seq": seq, tag: name, **fields})
    for i in layout.floats:
        x = values[i]
        if x - x != 0.0:
            canonical(x)  # a non-finite float: raises ValueError, as json.dumps does
    line: str = layout.fmt % layout.order((seq, t_text, *map(call, layout.convert, values)))
    return line


_MISSING: Any = object()


def encode_event(t: float, seq: int, ev: str, fields: dict[str, Any], tag: str = "ev") -> str:
    """`canonical({"t": t, "seq": seq, tag: ev, **fields})`, several times faster."""
    return encode_line(_text(t), seq, ev, fields, tag)


class TextSink(Protocol):
    """Where a trace goes: any text stream, or replay's line-by-line comparer."""

    def write(self, text: str, /) -> int: ...


# Lines held before they are written out: one `write` per block, not per line.
_BLOCK = 256


class TraceWriter:
    """Numbers lines and writes them to a text stream, canonical, in blocks of whole lines.

    `flush()` writes what is held; the runner calls it when the run ends, however it ends.
    """

    __slots__ = ("held", "out", "seq", "t", "t_text")

    def __init__(self, out: TextSink, head: dict[str, Any]) -> None:
        self.out = out
        self.seq = 0
        self.held: list[str] = []
        # The text of the last line's `t`: the lines of one operation share it (and a float's
        # repr is the dearest part of a line).
        self.t: float | None = None
        self.t_text = ""
        out.write(canonical(head) + "\n")

    def write(self, t: float, tag: str, name: str, fields: dict[str, Any]) -> None:
        """One line."""
        self.write_all(t, ((tag, name, fields),))

    def write_all(self, t: float, lines: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        """Lines that share their `t` (an operation's: its `op` line and what it caused), each a
        (tag, name, fields), in order. The hot path: one call per operation, not per line."""
        if t is not self.t:
            self.t_text = _text(t)
            self.t = t
        t_text, seq, held = self.t_text, self.seq, self.held
        for tag, name, fields in lines:
            seq += 1
            held.append(encode_line(t_text, seq, name, fields, tag))
        self.seq = seq
        if len(held) >= _BLOCK:
            self.flush()

    def flush(self) -> None:
        """Write out the lines held, each ending in a newline."""
        if self.held:
            self.held.append("")
            text = "\n".join(self.held)
            self.held = []
            self.out.write(text)


def read_header(line: str, source: str) -> dict[str, Any]:
    """Parse and check line 1 of a trace, as the trace checker does (model.read_header)."""
    try:
        return model_read_header(line, source)
    except TraceUnreadable as err:
        raise TraceError(str(err)) from None
