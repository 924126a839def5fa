"""Trace lines without a JSON parser: the commonest op lines read, the model's events written.

Conform's fast path (model/_replay.py) reads and writes most lines itself:

- an op line of the commonest kinds, as a trace writes it, is matched whole by a pattern that
  admits only its canonical text (docs/trace-format.md, Encoding: sorted keys, integers,
  strings without escapes, each operation's keys in order, a float's text checked to be its
  shortest round trip), so it needs neither `json` to read it nor `canonical` to check it;
  `_read_op` gives the action it names (as `_action` makes it), the logged result and `t`;
- an event of the model's is written as its canonical line (`_render`), by a function per
  kind and keys that puts its pieces together, to be compared with the trace's line.

Anything else is read by `json`, as the model's checker reads it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any, cast

from model._actions import Action, Ask, Dequeue, Done, Fire, Reply, Tell
from model._conform import _RETRY_SET, _retry_values, _scan, canonical
from model._engine import Fallback
from model._state import Retry

_INF = math.inf

# -- op lines read without a JSON parser --------------------------------------------------
#
# The commonest op lines, as a trace writes them, matched whole by a pattern that admits only
# their canonical text (sorted keys; integers, strings without escapes, the key order of each
# operation; a float's text is checked to be its shortest round trip): such a line needs
# neither `json` to read it nor `canonical` to check it. Any other line is read in full.

_INT = r"(0|-?[1-9][0-9]*)"
_NULL_INT = r"(null|0|-?[1-9][0-9]*)"
_NUM = r"(-?[0-9][0-9.e+-]*)"
_NULL_NUM = r"(null|-?[0-9][0-9.e+-]*)"
_NULL_STR = r'(null|"[^"\\\x00-\x1f]*")'
_STR = r'"([^"\\\x00-\x1f]*)"'
_WHEN = r',"seq":(?P<seq>0|-?[1-9][0-9]*),"t":(?P<t>-?[0-9][0-9.e+-]*)'
_PRIORITY = r'"priority":"(normal|high)"'
_RETRY_TEXT = r"(null|\{[^{}]*\})"


class _NotQuick(Exception):
    """Not an op line `_read_op` reads."""


def _float(text: str) -> float:
    value = float(text)
    if float.__repr__(value) != text:
        raise _NotQuick
    return value


def _opt_float(text: str) -> float | None:
    return None if text == "null" else _float(text)


def _opt_int(text: str) -> int | None:
    return None if text == "null" else int(text)


def _opt_str(text: str) -> str | None:
    return None if text == "null" else text[1:-1]


def _retry_text(text: str) -> Retry | None:
    if text == "null":
        return None
    found = _RETRY_TEXTS.get(text)
    if found is None:
        if len(_RETRY_TEXTS) > 64:
            _RETRY_TEXTS.clear()
        try:
            value = _scan(text, 0)[0]
            retry = _RETRIES[_retry_key(value)]
        except Exception:
            raise _NotQuick from None
        if retry is None or canonical(value) != text:
            raise _NotQuick
        found = _RETRY_TEXTS[text] = retry
    return found


_RETRY_TEXTS: dict[str, Retry] = {}
_FIRE = Fire()
_Read = tuple[Action, Any, float, str]  # the action, the logged result, `t` and its text


class _Made(dict[tuple[str, ...], Action]):
    """Actions made from op lines, by the texts of their arguments (a run sends many alike);
    it forgets them all past a size."""

    def put(self, key: tuple[str, ...], action: Action) -> Action:
        if len(self) >= 4096:
            self.clear()
        self[key] = action
        return action


_MADE = _Made()


def _request(m: re.Match[str]) -> tuple[Action, Any]:
    sender, key, priority, result, retry, wait, _, _, timeout, to = m.groups()
    args = ("request", sender, key, priority, retry, wait, timeout, to)
    made = _MADE.get(args)
    if made is not None:
        return made, int(result)
    action = _MADE.put(
        args,
        Ask(
            int(sender),
            to,
            _float(timeout),
            priority == "high",
            _retry_text(retry),
            _opt_float(wait),
            key=_opt_str(key),
        ),
    )
    return action, int(result)


def _send(m: re.Match[str]) -> tuple[Action, Any]:
    sender, key, priority, result, retry, wait, _, _, stamp, to, ttl = m.groups()
    args = ("send", sender, key, priority, retry, wait, stamp, to, ttl)
    made = _MADE.get(args)
    if made is not None:
        return made, int(result)
    action = _MADE.put(
        args,
        Tell(
            _opt_int(sender),
            to,
            priority == "high",
            _opt_float(ttl),
            _opt_float(stamp),
            _retry_text(retry),
            _opt_float(wait),
            key=_opt_str(key),
        ),
    )
    return action, int(result)


def _reply(m: re.Match[str]) -> tuple[Action, Any]:
    corr, sender, result = m.groups()[:3]
    return Reply(_opt_int(sender), int(corr)), int(result)


def _dequeue(m: re.Match[str]) -> tuple[Action, Any]:
    actor, result = m.groups()[:2]
    made = _DEQUEUES.get(actor)
    if made is None:
        if len(_DEQUEUES) >= 4096:
            _DEQUEUES.clear()
        made = _DEQUEUES[actor] = Dequeue(int(actor))
    return made, _opt_int(result)


_DEQUEUES: dict[str, Action] = {}


# Per operation: its line's pattern (the `seq` and `t` groups last but for the keys after
# `t`), and what makes the action and the logged result of the groups.
_OP_LINES: dict[str, tuple[re.Pattern[str], Callable[[re.Match[str]], tuple[Action, Any]]]] = {
    "dequeue": (
        re.compile(
            rf'\{{"actor":{_INT},"error":null,"op":"dequeue","result":{_NULL_INT}{_WHEN}\}}\n?'
        ),
        _dequeue,
    ),
    "reply": (
        re.compile(
            rf'\{{"corr":{_INT},"error":null,"from":{_NULL_INT},"op":"reply","result":{_INT}'
            rf"{_WHEN}\}}\n?"
        ),
        _reply,
    ),
    "request": (
        re.compile(
            rf'\{{"error":null,"from":{_INT},"key":{_NULL_STR},"op":"request",{_PRIORITY},'
            rf'"result":{_INT},"retry":{_RETRY_TEXT},"send_timeout":{_NULL_NUM}{_WHEN},'
            rf'"timeout":{_NUM},"to":{_STR}\}}\n?'
        ),
        _request,
    ),
    "send": (
        re.compile(
            rf'\{{"error":null,"from":{_NULL_INT},"key":{_NULL_STR},"op":"send",{_PRIORITY},'
            rf'"result":{_INT},"retry":{_RETRY_TEXT},"send_timeout":{_NULL_NUM}{_WHEN},'
            rf'"timestamp":{_NULL_NUM},"to":{_STR},"ttl":{_NULL_NUM}\}}\n?'
        ),
        _send,
    ),
    "fire": (
        re.compile(rf'\{{"error":null,"op":"fire","result":null{_WHEN}\}}\n?'),
        lambda m: (_FIRE, None),
    ),
    "done": (
        re.compile(rf'\{{"actor":{_INT},"error":null,"op":"done","result":null{_WHEN}\}}\n?'),
        lambda m: (Done(int(m[1])), None),
    ),
}


def _read_op(line: str, seq: int, last_t: float) -> _Read | None:
    """The action, logged result and time of op line `line`, if `_OP_LINES` reads it, it is
    line `seq` and its time is not before `last_t`; None: read it in full."""
    at = line.find('"op":"') + 6
    known = _OP_LINES.get(line[at : line.find('"', at)])
    if known is None:
        return None
    pattern, make = known
    m = pattern.fullmatch(line)
    if m is None:
        return None
    try:
        action, result = make(m)
        t = _float(m["t"])
    except (_NotQuick, ValueError):
        return None
    if int(m["seq"]) != seq or not last_t <= t:
        return None
    return action, result, t, m["t"]


def _quick(op: dict[str, Any]) -> Action | None:
    """The action of the commonest op lines, when every argument has its exact type (as a
    trace writes it): `_action`'s, read at once. None: `_action` reads it in full."""
    try:
        name = op["op"]
        if name == "dequeue":
            actor = op["actor"]
            return Dequeue(actor) if type(actor) is int else None
        if name == "reply":
            sender, corr = op["from"], op["corr"]
            if (sender is None or type(sender) is int) and type(corr) is int:
                return Reply(sender, corr)
            return None
        if name == "fire":
            return _FIRE
        if name == "done":
            actor = op["actor"]
            return Done(actor) if type(actor) is int else None
        if name != "request" and name != "send":
            return None
        sender, to, priority, retry = op["from"], op["to"], op["priority"], op["retry"]
        wait, key = op["send_timeout"], op["key"]
        if (
            type(to) is not str
            or (priority != "normal" and priority != "high")
            or not (wait is None or type(wait) is float)
            or not (key is None or type(key) is str)
        ):
            return None
        if retry is not None:
            retry = _RETRIES[_retry_key(retry)]
            if retry is None:
                return None
        if name == "request":
            timeout = op["timeout"]
            if type(sender) is not int or type(timeout) is not float:
                return None
            return Ask(sender, to, timeout, priority == "high", retry, wait, key=key)
        ttl, stamp = op["ttl"], op["timestamp"]
        if (
            not (sender is None or type(sender) is int)
            or not (ttl is None or type(ttl) is float)
            or not (stamp is None or type(stamp) is float)
        ):
            return None
        return Tell(sender, to, priority == "high", ttl, stamp, retry, wait, key=key)
    except (KeyError, TypeError):
        return None


class _Retries(dict[tuple[Any, ...], Retry | None]):
    """Retry policies as a trace writes them (every value of its exact type), by their values
    and types (`_retry_key`); None for any other."""

    def __missing__(self, key: tuple[Any, ...]) -> Retry | None:
        if len(self) > 64:
            self.clear()
        m, b, x, mb, j = key[:5]
        ok = type(m) is int and type(b) is type(x) is type(mb) is type(j) is float
        self[key] = retry = Retry(m, b, x, mb, j) if ok else None
        return retry


_RETRIES = _Retries()


def _retry_key(value: Any) -> tuple[Any, ...]:
    if type(value) is not dict or value.keys() != _RETRY_SET:
        raise TypeError("not as a trace writes it")
    values = cast(tuple[Any, ...], _retry_values(value))
    return (*values, *map(type, values))  # 3 == 3.0: the types tell them apart


# -- the model's events as trace lines -------------------------------------------------------

_string = json.encoder.encode_basestring  # what `json.dumps(..., ensure_ascii=False)` uses


def _json(value: Any) -> str:
    """`canonical(value)` for the values events hold."""
    kind = type(value)
    if kind is int:
        return int.__repr__(value)
    if kind is str:
        return _string(value)
    if value is None:
        return "null"
    if kind is float:
        if not -_INF < value < _INF:
            raise Fallback("a number with no canonical text")
        return float.__repr__(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is tuple or kind is list:
        return "[" + ",".join(map(_json, value)) + "]"
    raise Fallback(f"no canonical text for {value!r}")


_Render = Callable[[dict[str, Any], int, str], str]
_LAYOUTS: dict[tuple[str, ...], _Render] = {}


def _render(kind: str, fields: dict[str, Any], seq: int, t: str) -> str:
    """The canonical line of event `kind` with `fields` at `seq` and time text `t`."""
    shape = (kind, *fields)
    layout = _LAYOUTS.get(shape)
    if layout is None:
        layout = _LAYOUTS[shape] = _layout(kind, tuple(fields))
    return layout(fields, seq, t)


def _layout(kind: str, keys: tuple[str, ...]) -> _Render:
    """A function writing the line of a `kind` event with fields `keys`: sorted keys, written
    out once (as `dataclasses` writes `__init__`), the pieces joined in one go."""
    parts = []
    for i, key in enumerate(sorted({*keys, "ev", "seq", "t"})):
        prefix = ("{" if i == 0 else ",") + json.dumps(key) + ":"
        if key == "ev":
            parts.append(repr(prefix + json.dumps(kind, ensure_ascii=False)))
            continue
        parts.append(repr(prefix))
        if key == "seq":
            parts.append("I(seq)")
        elif key == "t":
            parts.append("t")
        else:  # the commonest types inline, the rest through `_json`
            parts.append(
                f"(S(v) if (v := f[{key!r}]).__class__ is str "
                "else I(v) if v.__class__ is int else J(v))"
            )
    namespace: dict[str, Any] = {"J": _json, "S": _string, "I": int.__repr__}
    exec(f"def render(f, seq, t):\n    return ''.join(({', '.join(parts)}, '}}'))", namespace)
    render: _Render = namespace["render"]
    return render
