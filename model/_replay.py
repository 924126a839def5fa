"""Conform's fast path: a trace's lines compared, byte for byte, with the model's own.

A trace in canonical form (docs/trace-format.md, Encoding) has one text for each line, so the
checker need not read an event line at all: it writes the line the model's event would be, at
the line's `seq` and the operation's `t`, and compares the two strings. Equal text is an equal
event, in canonical form, at the right place. The commonest op lines are read by patterns that
admit only their canonical text (model/_lines.py), and a transit choice of no fault is compared
whole; only the other op, choice, fault and end lines go through `json`, and their canonical
form is checked a batch at a time.

The operations run on an engine (model/_engine.py) that keeps the state between them:
`FastEngine` (model/_fast.py) unless the caller names another. The fast path never refuses
anything itself: whenever a line is not what it expects (any difference, a line it cannot
read, a step the engine will not decide, a trace cut short), it hands over to the model's
checker (`_Checker` in model/_conform.py) at the last checkpoint, which checks every line from
there as it always did and says what is wrong, in its own words. So the verdict, the line it
names and the message are the checker's, whichever path found them; the fast path only
decides, faster, that lines are right. A checkpoint (the engine's state and the counters) is
taken every `_CHECKPOINT` operations, after the batch's canonical form is checked: a handover
re-checks at most that many operations, and memory follows the batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from itertools import chain
from typing import Any

from model._actions import Refused, Result
from model._conform import (
    _ACTIONS,
    _MAX_DEPTH,
    _Args,
    _canonical_lines,
    _Checker,
    _Group,
    _scan,
    _Stream,
    logged_result,
)
from model._engine import Engine, Fallback, Memory
from model._fast import FastEngine
from model._lines import _LAYOUTS, _json, _layout, _quick, _read_op
from model._state import Msg, OutcomeKind, State

MakeEngine = Callable[[State, Memory], Engine]
_CHECKPOINT = 512  # operations between checkpoints (what a handover re-checks, at most)
_INF = math.inf
# A transit choice of no fault (docs/trace-format.md), up to its message: what nearly every
# choice line is. It is compared with the line the operation's message gives, not parsed.
_PLAIN = '{"choice":"transit","delay":0.0,"drop":false,"duplicate":null,"msg":'


def replay(
    checker: _Checker,
    stream: _Stream,
    progress: Callable[[int], None] | None,
    make: MakeEngine | None = None,
) -> bool:
    """Check the trace's lines after the header on the fast path. True: the trace was checked
    to its `end` line (an `Illegal` the end line causes is raised). False: the fast path handed
    over; `checker` and `stream` stand at the last checkpoint, and `checker.run(stream, ...)`
    checks the rest."""
    return _Fast(checker, stream, make or FastEngine).run(progress)


class _Fast:
    def __init__(self, checker: _Checker, stream: _Stream, make: MakeEngine) -> None:
        self.checker, self.stream = checker, stream
        self.journal = _Journal(checker)
        self.draws = _Draws()
        self.route, self.retry_at = self.draws.route, self.draws.retry_at
        self.engine = make(checker.state, self.journal)
        self.buffer: list[str] = []  # the lines since the checkpoint
        self.parsed: list[str] = []  # of them, those parsed (canonical form not yet checked)
        self.objs: list[dict[str, Any]] = []  # and their objects
        self.last_t, self.last_seq = stream.last_t, stream.last_seq
        self.saved = (checker.state, 0, 0, stream.number, self.last_t, self.last_seq)

    def run(self, progress: Callable[[int], None] | None) -> bool:
        checker, buffer = self.checker, self.buffer
        lines = self.stream._read()  # stops at a line that cannot be read (`stream.unread`)
        start = -1  # where the group of the operation being read starts in `buffer`
        ops = 0
        for line in lines:
            buffer.append(line)
            if '"op":"' not in line and not line.startswith('{"counters":'):
                continue  # a choice, event or fault line: part of the group (or an end line
                # not in canonical form, refused as an event the model does not emit)
            try:
                if start >= 0:
                    self._group(buffer, start, len(buffer) - 1)
                else:
                    self._prelude(buffer[:-1])
                if '"op":"' in line:
                    if ops >= _CHECKPOINT:
                        self._checkpoint()
                        ops = 0
                    if progress is not None and checker.ops % 4096 == 0:
                        progress(self.last_seq + 1)
                    start, ops = len(self.buffer) - 1, ops + 1
                    continue
                self._end(line)
            except Fallback:
                return self._hand_over(lines)
            extra = next(lines, None)
            if extra is not None:  # a line after the end line: the checker says so
                buffer.append(extra)
                return self._hand_over(lines)
            checker.last_seq = self.last_seq
            return self.stream.unread is None or self._hand_over(lines)
        return self._hand_over(lines)  # no end line (or a line that cannot be read)

    # -- handing over ------------------------------------------------------------------------

    def _checkpoint(self) -> None:
        """Everything before the current operation is checked: its state is the new start."""
        self._check_canonical()
        self.saved = (
            self.engine.state(),
            self.checker.ops,
            self.checker.events,
            self.last_seq + 1,  # the line number (line 1 is the header)
            self.last_t,
            self.last_seq,
        )
        del self.buffer[:-1]
        self.journal.undo.clear()

    def _check_canonical(self) -> None:
        if self.parsed and not _canonical_lines(self.parsed, self.objs):
            raise Fallback("a line not in canonical form")
        self.parsed, self.objs = [], []

    def _hand_over(self, rest: Iterator[str]) -> bool:
        state, ops, events, number, last_t, last_seq = self.saved
        c, s = self.checker, self.stream
        c.state, c.ops, c.events, c.end = state, ops, events, None
        self.journal.rewind()
        s.number, s.last_t, s.last_seq = number, last_t, last_seq
        s.lines = chain(self.buffer, rest)
        return False

    # -- lines -------------------------------------------------------------------------------

    def _parse(self, line: str, tag: str) -> dict[str, Any]:
        """A line the fast path reads: an object with the next `seq`, a `t` not before the
        last, and exactly the one tag `tag` (a string)."""
        if line.count("[") + line.count("{") > _MAX_DEPTH:
            raise Fallback("deep")
        try:
            obj, end = _scan(line, 0)
        except Exception:
            raise Fallback("unreadable") from None
        if type(obj) is not dict or (end != len(line) and line[end:] != "\n"):
            raise Fallback("not one object")
        t, seq = obj.get("t"), obj.get("seq")
        if (
            type(t) is not float
            or not self.last_t <= t < _INF
            or type(seq) is not int
            or seq != self.last_seq + 1
            or type(obj.get(tag)) is not str
            or ("op" in obj) + ("choice" in obj) + ("ev" in obj) + ("end" in obj) != 1
        ):
            raise Fallback("not the next line")
        self.last_t, self.last_seq = t, seq
        self.parsed.append(line)
        self.objs.append(obj)
        return obj

    def _fault(self, line: str) -> bool:
        """Whether `line` is a `fault` line (the simulator's own, skipped)."""
        if '"ev":"fault"' not in line:
            return False
        if self._parse(line, "ev")["ev"] != "fault":
            raise Fallback("not a fault line")
        return True

    def _prelude(self, lines: list[str]) -> None:
        """The lines before the first operation: fault lines only."""
        for line in lines:
            if not self._fault(line):
                raise Fallback("a line before any operation")

    def _end(self, line: str) -> None:
        obj = self._parse(line, "end")
        self._check_canonical()
        c = self.checker
        c.state = self.engine.state()
        c._end(obj)  # the model's checker's own check of the end line

    # -- one operation -----------------------------------------------------------------------

    def _group(self, buffer: list[str], start: int, stop: int) -> None:
        """The operation whose lines are `buffer[start:stop]`: run it, compare."""
        read = _read_op(buffer[start], self.last_seq + 1, self.last_t)
        op: dict[str, Any] = {}
        if read is None:
            op = self._parse(buffer[start], "op")
            t = op["t"]
            when = float.__repr__(t)
        else:
            t, when = read[2], read[3]
            self.last_t, self.last_seq = t, self.last_seq + 1
        events: list[str] = []  # the event lines
        seqs: list[int] = []  # and their places
        choices: list[dict[str, Any]] = []
        plain: tuple[str, int] | None = None  # a transit choice of no fault, and its place
        seq = self.last_seq  # the last line's, as the lines are taken in turn
        late = False  # a fault line at a later time came: no event of this operation may follow
        for line in buffer[start + 1 : stop]:
            if line.startswith('{"choice":'):
                if line.startswith(_PLAIN):  # checked once the message is known
                    if plain is not None or choices:
                        raise Fallback("two choices")
                    seq += 1
                    plain = (line, seq)
                    continue
                self.last_seq = seq
                choice = self._parse(line, "choice")
                seq = self.last_seq
                if choice["t"] != t or plain is not None:
                    raise Fallback("a choice at another time, or two")
                choices.append(choice)
            elif '"ev":"fault"' in line:
                self.last_seq = seq
                if not self._fault(line):
                    raise Fallback("not a fault line")
                seq = self.last_seq
                late = late or self.last_t != t
            else:
                if late:
                    raise Fallback("an event after the operation's time")
                seq += 1
                events.append(line)
                seqs.append(seq)
        self.last_seq = seq
        if read is not None and choices:  # read in full after all, with its choice
            op = _scan(buffer[start], 0)[0]
            read = None
        action = read[0] if read is not None else _quick(op) if not choices else None
        if action is None:
            g = _Group(op, self.checker.source, choices, [])
            try:
                make = _ACTIONS[op["op"]]
                action = make(_Args(g), self.checker._transit(g))
            except Exception:
                raise Fallback("the op line or its choice") from None
        self.draws.events = events
        result, emitted = self.engine.step(t, action, self.route, self.retry_at)
        if read is not None:
            answer = read[1]
            if isinstance(result, Msg):
                if type(answer) is not int or answer != result.id:
                    raise Fallback("another result")
            elif answer != result or type(answer) is not type(result):
                raise Fallback("another result")
        else:
            _compare_result(op, result)
        if len(emitted) != len(events):
            raise Fallback("a different number of events")
        for (kind, fields), line, seq in zip(emitted, events, seqs, strict=True):
            shape = (kind, *fields)
            layout = _LAYOUTS.get(shape)
            if layout is None:
                layout = _LAYOUTS[shape] = _layout(kind, tuple(fields))
            text = layout(fields, seq, when)
            if line != text and line != text + "\n":
                raise Fallback("a different event")
        if plain is not None or choices:
            sent = None
            for kind, fields in emitted:
                if kind == "send":
                    sent = fields["msg"]
                    break
            if plain is not None:
                text = f'{_PLAIN}{_json(sent)},"seq":{plain[1]},"t":{when}}}'
                if plain[0] != text and plain[0] != text + "\n":
                    raise Fallback("a choice about another message")
            elif choices[0]["msg"] != sent:
                raise Fallback("a choice about another message")
        self.checker.ops += 1
        self.checker.events += len(events)


class _Journal:
    """The checker's memory of ended requests (`Memory`), with what each change overwrote
    since the checkpoint: a handover puts it back, so the re-check does not see a request end
    before it does."""

    def __init__(self, checker: _Checker) -> None:
        self.checker = checker
        self.undo: list[tuple[int, int, int]] = []  # corr, its fate and requester before

    def remember(self, corr: int, requester: int, outcome: OutcomeKind) -> None:
        c = self.checker
        before = (c.fates[corr], c.requesters[corr]) if corr < len(c.fates) else (0, 0)
        self.undo.append((corr, *before))
        c.remember(corr, requester, outcome)

    def recall(self, corr: int) -> tuple[int, OutcomeKind] | None:
        return self.checker.recall(corr)

    def rewind(self) -> None:
        c = self.checker
        for corr, fate, requester in reversed(self.undo):
            c.fates[corr], c.requesters[corr] = fate, requester
        self.undo.clear()


def _compare_result(op: dict[str, Any], result: Result) -> None:
    """`_Checker._compare_result`'s test, without its message."""
    want = logged_result(result)
    got = (op.get("result"), op.get("error"))
    if got != want or type(got[0]) is not type(want[0]):
        raise Fallback("another result")
    if isinstance(result, Refused) and result.fields_problem(op.get("error_fields")) is not None:
        raise Fallback("other error fields")


def _logged(events: list[str], kind: str, msg: int) -> dict[str, Any] | None:
    """`_find`: the first event line of `kind` about `msg` (the fast path reads only these)."""
    mark, about = f'"ev":"{kind}"', f'"msg":{msg},'
    for line in events:
        if mark in line and about in line:
            try:
                obj, _ = _scan(line, 0)
            except Exception:
                raise Fallback("unreadable") from None
            if type(obj) is dict and obj.get("ev") == kind and obj.get("msg") == msg:
                return obj
    return None


class _Draws:
    """The broker's draws an operation's event lines show (`Route`, `RetryAt`)."""

    def __init__(self) -> None:
        self.events: list[str] = []  # the operation's event lines

    def route(self, msg: int) -> str | None:
        found = _logged(self.events, "route", msg)
        label = found.get("actor") if found is not None else None
        return label if isinstance(label, str) else None

    def retry_at(self, msg: int) -> float:
        found = _logged(self.events, "retry", msg)
        if found is None:
            return _INF
        at = found.get("at")
        if type(at) is not float:
            raise Fallback("a retry time that is not a float")
        return at
