"""The trace checker: replay a trace's operations on the model and compare (docs/spec.md 10).

It imports nothing from `broker` or `sim`: it is how a port in another language is checked.

A trace (docs/trace-format.md, version 2) is an operation/effect log. Each `op` line is one call
into the broker (or `fire`: one broker timer running), with its arguments and its result or
error code; the `choice` and `ev` lines after it, up to the next `op`, are what the environment
chose during it (what the network did to the operation's message) and the events the broker
emitted for it. The checker turns each `op` into the model action it names, moves the model's
clock to the line's time (illegal if a model timer fell due before it), applies the action and
requires the result and the events to be the logged ones, in order. No inference, no search.

The only values read from the log rather than computed are the broker's random draws: the member
a `random` or `power_of_two` pool chose (its `route` event, checked to be one the strategy may
choose) and the time of a jittered retry (its `retry` event's `at`, checked against spec 6.2's
bounds); and what the network did (the `choice` line: the environment's, not the broker's).

Memory follows what is open, not the trace's length: ended requests leave the model's state (two
bytes per correlation id keep how each ended and who issued it), dead letters are counted, not
kept.
"""

from __future__ import annotations

import json
import math
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from itertools import islice, repeat
from json.scanner import make_scanner
from operator import itemgetter
from typing import Any, TypeGuard, cast

from model._actions import (
    EVENT_FIELDS,
    Action,
    Ask,
    Cancel,
    CreatePool,
    Dequeue,
    Done,
    Event,
    Fire,
    Join,
    Leave,
    NeedChoice,
    NeedRetryAt,
    Provide,
    Refused,
    Register,
    Reply,
    Restart,
    Result,
    Stop,
    Subscribe,
    Tell,
    Unregister,
    Unsubscribe,
    as_event,
    event_problem,
)
from model._engine import Engine, Memory
from model._semantics import Effect, _replace, apply
from model._state import Msg, OutcomeKind, Request, Retry, State

FORMAT, VERSION, SPEC_VERSION = "brokerlab-trace", 2, "1.2"  # docs/trace-format.md, docs/spec.md
_OUTCOMES: tuple[OutcomeKind, ...] = ("replied", "timed_out", "cancelled", "failed")
_TAGS = ("op", "choice", "ev", "end")
_ENDS = ("drained", "hard_stop", "violation")
_MAX_DEPTH = 16  # JSON nesting a trace line may have (the header's scenario is the deepest)
_CHUNK = 256  # lines read, parsed and checked for canonical form at a time
_INF = math.inf
_RETRY_KEYS = ("max_attempts", "backoff", "multiplier", "max_backoff", "jitter")
_RETRY_SORTED = sorted(_RETRY_KEYS)
_RETRY_SET = frozenset(_RETRY_KEYS)
_retry_values = itemgetter(*_RETRY_KEYS)
_NOT_FIELDS = frozenset({"t", "seq", "ev"})  # the keys of an `ev` line not its event's fields
_SHAPES = 4096  # the most well-formed event shapes a check remembers (memory stays bounded)


class TraceUnreadable(ValueError):
    """Not a trace this checker can read (exit code 2): the message names the line."""


class Illegal(Exception):
    """A line where the log and the model part ways; `seq` is the line's."""

    def __init__(self, seq: int, t: float, why: str) -> None:
        super().__init__(f"seq {seq} (t={t!r}): {why}")
        self.seq, self.t, self.why = seq, t, why


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of `check_trace`: `events` and `ops` checked, the first illegal line if any,
    how the run ended (the `end` line's kind; None if the trace has none), and the model's state
    after the last operation it applied (for tools that compare it with a broker's)."""

    events: int
    illegal: Illegal | None = None
    ops: int = 0
    end: str | None = None
    state: State | None = field(default=None, compare=False, repr=False)  # the model's, last

    @property
    def ok(self) -> bool:
        return self.illegal is None


def check_trace(
    lines: Iterable[str],
    source: str = "<trace>",
    *,
    complete: bool = True,
    strict: bool = True,
    progress: Callable[[int], None] | None = None,
    fast: bool = True,
    engine: Callable[[State, Memory], Engine] | None = None,
) -> Verdict:
    """Replay every operation of a trace on the model and compare (see the module docstring).

    With `complete`, the trace must end with its `end` line (one cut short is refused), and
    the broker's counters and pending requests written there must be the model's. With
    `strict`, every line must also be written in canonical form (docs/trace-format.md), byte
    for byte. Raises `TraceUnreadable` for input that is not a trace.

    A strict check takes the fast path unless `fast` is false (model/_replay.py: lines
    compared with the model's own, operations run on `engine`, by default the fast engine),
    which hands over to the model's checker at the last checkpoint wherever a line is not what
    it expects: the verdict is the same either way (tests/test_replay.py).
    """
    stream = _Stream(iter(lines), source, strict)
    stream.header()
    checker = _Checker(source)
    illegal: Illegal | None = None
    try:
        if not (strict and fast and _replay(checker, stream, progress, engine)):
            checker.run(stream, progress)
        if complete and checker.end is None:
            raise Illegal(
                checker.last_seq,
                checker.state.now,
                "the trace ends without its `end` line: the run was cut short "
                "(check it with --partial)",
            )
    except Illegal as found:
        illegal = found
    if stream.noncanonical is not None and (
        illegal is None or stream.noncanonical[0] < illegal.seq
    ):
        seq, t = stream.noncanonical
        where = "the header" if seq == 0 else "the line"
        illegal = Illegal(
            seq, t, f"{where} is not in canonical form (docs/trace-format.md, Encoding)"
        )
    return Verdict(checker.events, illegal, checker.ops, checker.end, checker.state)


def _replay(
    checker: _Checker,
    stream: _Stream,
    progress: Callable[[int], None] | None,
    engine: Callable[[State, Memory], Engine] | None,
) -> bool:
    from model._replay import replay  # it builds on this module

    return replay(checker, stream, progress, engine)


# -- reading ----------------------------------------------------------------------------------


def parse_line(line: str, where: str) -> dict[str, Any]:
    """One trace line as a JSON object; `where` (file:line) names it in the error."""
    if line.count("[") + line.count("{") > _MAX_DEPTH and _depth(line) > _MAX_DEPTH:
        raise TraceUnreadable(f"{where}: JSON nested deeper than {_MAX_DEPTH} levels")
    try:
        obj = json.loads(line, parse_constant=_no_constants)
    except (json.JSONDecodeError, ValueError) as err:
        raise TraceUnreadable(f"{where}: not valid JSON ({err})") from None
    if not isinstance(obj, dict):
        raise TraceUnreadable(f"{where}: expected a JSON object")
    return obj


def read_header(line: str, source: str) -> dict[str, Any]:
    """Line 1 of a trace, checked (docs/trace-format.md): the format, a version this reader
    reads, the spec version it checks, and the keys every header has."""
    where = f"{source}:1"
    head = parse_line(line, where)
    if head.get("format") != FORMAT:
        raise TraceUnreadable(f"{where}: not a brokerlab trace (format is {head.get('format')!r})")
    version = head.get("version")
    if not _is_int(version):
        raise TraceUnreadable(f"{where}: header has no integer 'version'")
    if version > VERSION:
        raise TraceUnreadable(
            f"{where}: trace format version {version} is newer than this brokerlab "
            f"understands (version {VERSION}); upgrade brokerlab to read it"
        )
    if version < VERSION:
        raise TraceUnreadable(
            f"{where}: trace format version {version} records effects only; record the run "
            f"again with this brokerlab (format version {VERSION})"
        )
    for key, kind in (("spec_version", str), ("broker", str), ("scenario", dict)):
        if not isinstance(head.get(key), kind):
            raise TraceUnreadable(f"{where}: header lacks {key!r} ({kind.__name__})")
    if head["spec_version"] != SPEC_VERSION:
        raise TraceUnreadable(
            f"{where}: the trace follows spec version {head['spec_version']!r}; this brokerlab "
            f"reads version {SPEC_VERSION!r} (docs/spec.md section 12)"
        )
    if not _is_int(head.get("seed")):
        raise TraceUnreadable(f"{where}: header lacks 'seed' (an integer)")
    return head


class _Stream:
    """Numbered, parsed lines; checks what every line has (`t`, `seq`, one tag) and, when
    `strict`, that each is written in canonical form.

    Lines are read `_CHUNK` at a time (memory follows the chunk, not the trace). `_parsed`
    reads each line with `json`'s scanner, and `_canonical_lines` compares the chunk with one
    encoding of its objects. A line `_parsed` does not take, and those after it in the chunk, go
    through `parse_line`, and a chunk not canonical as a whole is compared line by line: what is
    refused, in which order and with which message, is as when lines were read one at a time
    (even an error reading a line waits for the lines before it to be checked).
    """

    def __init__(self, lines: Iterator[str], source: str, strict: bool = False) -> None:
        self.lines, self.source, self.strict = lines, source, strict
        self.noncanonical: tuple[int, float] | None = None  # the first such line's seq and t
        self.unread: Exception | None = None
        self.number = 0
        self.last_t = -math.inf
        self.last_seq = 0

    def _parse(self, line: str) -> dict[str, Any]:
        self.number += 1
        return parse_line(line, f"{self.source}:{self.number}")

    def header(self) -> dict[str, Any]:
        first = next(self.lines, None)
        if first is None:
            raise TraceUnreadable(f"{self.source}: empty file, not a trace")
        self.number = 1
        head = read_header(first, self.source)
        if self.strict and _canonical_text(head, f"{self.source}:1") != first.rstrip("\n"):
            self.noncanonical = (0, 0.0)
        return head

    def __iter__(self) -> Iterator[tuple[str, dict[str, Any]]]:
        lines = self._read()
        while chunk := list(islice(lines, _CHUNK)):
            objs = _parsed(chunk)
            if self.strict and self.noncanonical is None and not _canonical_lines(chunk, objs):
                yield from self._one_by_one(chunk, objs)  # finds the first line that is not
                continue
            number, last_t, last_seq = self.number, self.last_t, self.last_seq
            for obj in objs:  # `_checked`, unrolled for the lines that pass it
                number += 1
                t: Any = obj.get("t")
                seq: Any = obj.get("seq")
                if "ev" in obj:
                    tag = "ev"
                elif "op" in obj:
                    tag = "op"
                else:
                    tag = "choice" if "choice" in obj else "end"
                if (
                    type(t) is not float
                    or not -_INF < t < _INF
                    or t < last_t
                    or type(seq) is not int
                    or seq != last_seq + 1
                    or type(obj.get(tag)) is not str
                    or ("op" in obj) + ("choice" in obj) + ("ev" in obj) + ("end" in obj) != 1
                ):
                    self.number, self.last_t, self.last_seq = number, last_t, last_seq
                    tag = self._checked(obj)
                last_t, last_seq = t, seq
                yield tag, obj
            self.number, self.last_t, self.last_seq = number, last_t, last_seq
            yield from self._one_by_one(chunk[len(objs) :], [])
        if self.unread is not None:
            raise self.unread

    def _read(self) -> Iterator[str]:
        """The lines, up to one that cannot be read (a file's bytes that are not UTF-8): its
        error is kept in `unread`, and raised once the lines before it are checked."""
        try:
            yield from self.lines
        except Exception as err:
            self.unread = err

    def _one_by_one(
        self, lines: list[str], objs: list[dict[str, Any]]
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """The lines parsed (but for those whose `objs` are given), checked and compared with
        their canonical text one at a time."""
        for i, line in enumerate(lines):
            if i < len(objs):
                obj = objs[i]
                self.number += 1
            else:
                obj = self._parse(line)
            tag = self._checked(obj)
            where = f"{self.source}:{self.number}"
            if (
                self.strict
                and self.noncanonical is None
                and _canonical_text(obj, where) != line.rstrip("\n")
            ):
                self.noncanonical = (obj["seq"], obj["t"])
            yield tag, obj

    def _checked(self, obj: dict[str, Any]) -> str:
        """The line's tag, once it has a `t`, the next `seq` and one tag."""
        t, seq = obj.get("t"), obj.get("seq")
        if not _is_number(t) or not math.isfinite(t) or t < self.last_t:
            raise TraceUnreadable(
                f"{self.source}:{self.number}: 't' must be a finite number, non-decreasing"
            )
        if not _is_int(seq) or seq != self.last_seq + 1:
            raise TraceUnreadable(
                f"{self.source}:{self.number}: 'seq' must be {self.last_seq + 1} (seq counts "
                "lines from 1)"
            )
        tags = [tag for tag in _TAGS if tag in obj]
        if len(tags) != 1 or not isinstance(obj[tags[0]], str):
            raise TraceUnreadable(
                f"{self.source}:{self.number}: a line has exactly one of 'op', 'choice', 'ev', "
                "'end' (a string)"
            )
        self.last_t, self.last_seq = t, seq
        return tags[0]


def _parsed(chunk: list[str]) -> list[dict[str, Any]]:
    """The objects of the chunk's first lines, as `json.loads` reads them, up to a line that
    may nest too deep or is not an object from its first character to its end (a newline
    aside): `parse_line` reads that one, and says why if it is refused."""
    objs: list[dict[str, Any]] = []
    for line in chunk:
        try:
            if line.count("[") + line.count("{") > _MAX_DEPTH:
                break
            obj, end = _scan(line, 0)
        except Exception:  # whatever it is, `parse_line` raises it again, in its turn
            break
        if type(obj) is not dict or (end != len(line) and line[end:] != "\n"):
            break
        objs.append(obj)
    return objs


def _canonical_lines(chunk: list[str], objs: list[dict[str, Any]]) -> bool:
    """Whether each of the chunk's first `len(objs)` lines is the canonical text of its object.
    Each holds exactly its object (`_parsed`), so the lines joined by commas are the list's
    canonical text if and only if each line is its object's: of the first line and text to
    differ, one would go on past the other's end, with a comma, after its closing brace."""
    text = ",".join(chunk[: len(objs)])
    ends = text.count("\n")
    if ends:  # the newlines `_parsed` allowed after each object, or one inside a line
        if ends != sum(1 for line in chunk[: len(objs)] if line[-1] == "\n"):
            return False
        text = text.replace("\n", "")
    try:
        return canonical(objs) == f"[{text}]"
    except ValueError:  # an infinity (1e999): `canonical` refuses it again, in its line's turn
        return False


def _depth(line: str) -> int:
    """How deep the line's brackets nest (strings skipped), before `json` recurses into it."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in line:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def canonical(obj: object) -> str:
    """The canonical JSON text of `obj` (docs/trace-format.md, "Encoding"): sorted keys, no
    whitespace, UTF-8 as itself, shortest round-trip floats, no NaN or infinities."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _canonical_text(obj: object, where: str) -> str:
    """`canonical(obj)` of a line read from `where`; a number JSON reads as an infinity
    (`1e999`) has no canonical text, and is refused as unreadable."""
    try:
        return canonical(obj)
    except ValueError:
        raise TraceUnreadable(
            f"{where}: a number out of range (a trace's numbers are finite)"
        ) from None


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not allowed in a trace")


# The scanner `json.loads(line, parse_constant=_no_constants)` runs, without its per-call setup.
_scan = make_scanner(cast(Any, json.JSONDecoder(parse_constant=_no_constants)))


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


# -- one operation ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Group:
    """An `op` line and the lines it caused."""

    op: dict[str, Any]
    source: str
    choices: list[dict[str, Any]]
    events: list[dict[str, Any]]

    @property
    def where(self) -> str:
        """The op line's file:line (line 1 is the header, and `seq` counts the lines after it)."""
        return f"{self.source}:{self.op['seq'] + 1}"


class _Fields:
    """The fields of the `ev` lines of one shape (their keys but `t`, `seq` and `ev`), read
    from a line in the line's order, as pairs."""

    __slots__ = ("get", "keys")

    def __init__(self, line: dict[str, Any]) -> None:
        self.keys = tuple(k for k in line if k not in _NOT_FIELDS)
        get = itemgetter(*self.keys)  # every event has a field (spec 9.4)
        self.get: Callable[[dict[str, Any]], tuple[Any, ...]] = (
            get if len(self.keys) > 1 else lambda line: (get(line),)
        )

    def items(self, line: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
        return tuple(zip(self.keys, self.get(line), strict=True))


class _Cut(Exception):
    """The last operation of a trace cut short needs a choice whose line the cut removed: the
    member a random route went to, or a retry's time; `options` are the ones to try."""

    def __init__(self, options: tuple[float, ...]) -> None:
        self.options = options


class _Checker:
    def __init__(self, source: str) -> None:
        self.source = source
        # A trace cut short (no end line) may stop in the middle of its last operation: its
        # lines so far must then be a prefix of what the model's operation writes, for some
        # choice the cut removed (`guesses`: members of random routes, retry times).
        self.cut = False  # checking the last operation of a trace that has no end line
        self.guesses: list[float] = []
        self.state = State()
        # What a late reply to an ended request needs, in two bytes per correlation id (while
        # fewer than 256 actors issue requests): how it ended, and who issued it.
        self.fates = bytearray(1)  # corr -> 0 pending / unknown, 1 + outcome index once ended
        self.requesters = array("B", [0])  # corr -> its requester's index in `issuers`
        self.issuers: list[int] = []  # the requesters' actor ids, in order of first ending
        self.issuer: dict[int, int] = {}  # actor id -> index in `issuers`
        self.events = self.ops = 0
        self.last_seq = 0
        self.end: str | None = None
        self.interrupted = False
        self.shapes: dict[tuple[Any, ...], _Fields] = {}  # well formed, and their fields

    def run(self, stream: _Stream, progress: Callable[[int], None] | None) -> None:
        group: _Group | None = None
        for tag, line in stream:
            if self.end is not None:
                raise Illegal(line["seq"], line["t"], "a line after the `end` line")
            if tag == "ev" and line["ev"] == "fault":
                continue  # the simulator's own business (docs/trace-format.md)
            if tag == "op":
                if group is not None:
                    self._check(group)
                group = _Group(line, self.source, [], [])
                if progress is not None and self.ops % 4096 == 0:
                    progress(line["seq"])
            elif tag == "end":
                if group is not None:
                    self._check(group)
                    group = None
                self._end(line)
            elif group is None:
                raise Illegal(line["seq"], line["t"], f"a {tag!r} line before any operation")
            elif tag == "choice":
                group.choices.append(line)
            else:
                group.events.append(line)
        self.last_seq = stream.last_seq
        if group is not None:
            self.cut = True
            self._check_cut(group)

    def _check_cut(self, g: _Group) -> None:
        """The last operation of a trace with no end line: its lines must be a prefix of the
        model's for some choice whose line the cut removed (each tried in turn, depth first;
        the events before a `route` or `retry` line do not depend on its choice)."""
        saved = (self.state, self.ops, self.events, self.interrupted)
        tries: list[list[float]] = [[]]
        first: Illegal | None = None
        while tries:
            self.guesses = tries.pop()
            self.state, self.ops, self.events, self.interrupted = saved
            try:
                self._check(g)
                return
            except _Cut as need:
                tries.extend([*self.guesses, option] for option in reversed(need.options))
            except Illegal as found:
                first = first or found
        assert first is not None  # `options` are never empty: a random route has a live member
        raise first

    # -- applying ----------------------------------------------------------------------------

    def _check(self, g: _Group) -> None:
        op, seq, t = g.op, g.op["seq"], g.op["t"]
        if self.interrupted:
            raise Illegal(seq, t, "an operation after one the run interrupted")
        self.ops += 1
        self.events += len(g.events)
        if t != self.state.now:  # spec 1.5: time moves on only past timers that fired
            timers = self.state.timers
            if timers and timers[0].when < t:
                raise Illegal(
                    seq,
                    t,
                    f"a timer was due at {timers[0].when!r} and did not fire before this operation",
                )
            self.state = _replace(self.state, now=t)
        name = op["op"]
        if name == "fire":
            timers = self.state.timers
            if not timers or timers[0].when != t:
                nxt = f"the next is due at {timers[0].when!r}" if timers else "none is set"
                raise Illegal(seq, t, f"a timer fires at {t!r} but the model has none due ({nxt})")
            timer = timers[0]
            if timer.msg is not None and timer.msg.kind == "reply" and timer.msg.corr:
                self._recall(timer.msg.corr)
        action = _action(g, self._transit(g))
        if isinstance(action, Reply):
            self._recall(action.corr)
        effect = self._apply(g, action)
        self._compare_result(g, action, effect.result)
        self._compare_events(g, effect.events)
        if g.choices:  # the choice was about the operation's own message
            sent = next((e.msg for e in effect.events if e.name == "send"), None)
            if g.choices[0]["msg"] != sent:
                c = g.choices[0]
                raise Illegal(c["seq"], c["t"], f"a transit choice for m{c['msg']}, not m{sent}")
        self._after(effect)

    def _transit(self, g: _Group) -> dict[str, Any]:
        """The network's choice for the operation's message (none: it arrives at once)."""
        if not g.choices:
            return {}
        if len(g.choices) > 1:
            c = g.choices[1]
            raise Illegal(c["seq"], c["t"], "one operation sends one message: one transit choice")
        c = g.choices[0]
        if c["choice"] != "transit":
            raise TraceUnreadable(f"{self.source}: seq {c['seq']}: unknown choice {c['choice']!r}")
        drop, delay, dup = c.get("drop"), c.get("delay"), c.get("duplicate")
        if (  # as a trace writes it: taken at once
            type(delay) is float
            and 0.0 <= delay < _INF
            and type(drop) is bool
            and dup is None
            and type(c.get("msg")) is int
        ):
            return {"drop": drop, "delay": delay if delay > 0 else False, "duplicate": False}
        if (
            not isinstance(drop, bool)
            or not _is_number(delay)
            or not (dup is None or _is_number(dup))
            or not _is_int(c.get("msg"))
            or not math.isfinite(delay)
            or delay < 0
            or (dup is not None and not (math.isfinite(dup) and dup >= 0))
        ):
            raise TraceUnreadable(
                f"{self.source}: seq {c['seq']}: a transit choice has 'msg' (an integer), "
                "'drop' (a boolean), 'delay' (a number >= 0) and 'duplicate' (null or >= 0)"
            )
        return {
            "drop": drop,
            "delay": float(delay) if delay > 0 else False,
            "duplicate": False if dup is None else float(dup),
        }

    def _apply(self, g: _Group, action: Action) -> Effect:
        """Apply `action`, feeding it the draws the log shows (route members, retry times)."""
        seq, t = g.op["seq"], g.op["t"]
        choices: list[int] = []
        retry_at: list[float] = []
        guessed = 0  # of `self.guesses`
        while True:
            try:
                return apply(self.state, _with(action, choices, retry_at))
            except NeedChoice as need:
                route = _find(g, "route", need.msg)
                label = route.get("actor") if route is not None else None
                found = next((a.id for a in self.state.actors if a.label == label), None)
                if route is None and self.cut:
                    choices.append(int(self._guess(guessed, need.live)))
                    guessed += 1
                    continue
                if found is None:
                    raise Illegal(
                        seq,
                        t,
                        f"the model routes m{need.msg} to a member of its pool chosen at random, "
                        f"and the log shows no route of m{need.msg} to a registered actor",
                    ) from None
                choices.append(found)
            except NeedRetryAt as need:
                # No `retry` event: the broker's draw put the retry at or after the deadline
                # (spec 6.4), which the model checks is possible.
                retry = _find(g, "retry", need.msg)
                if retry is None and self.cut:  # no retry line: after the deadline, or cut off
                    retry_at.append(self._guess(guessed, (math.inf, need.low)))
                    guessed += 1
                    continue
                at = retry.get("at", math.nan) if retry is not None else math.inf
                if not _is_number(at):
                    raise Illegal(seq, t, f"a retry of m{need.msg} with no time") from None
                retry_at.append(at)
            except ValueError as err:
                raise Illegal(seq, t, f"{g.op['op']}: {err}") from None

    def _guess(self, i: int, options: tuple[float, ...]) -> float:
        if i < len(self.guesses):
            return self.guesses[i]
        raise _Cut(options)

    def _compare_result(self, g: _Group, action: Action, result: Result) -> None:
        op = g.op
        want = logged_result(result)
        got = (op.get("result"), op.get("error"))
        if got[1] == "interrupted":
            self.interrupted = True
            return
        if got != want or type(got[0]) is not type(want[0]):
            raise Illegal(
                op["seq"],
                op["t"],
                f"{op['op']} returned {_show(got)}, the model's {type(action).__name__} "
                f"returns {_show(want)}",
            )
        if isinstance(result, Refused):
            problem = result.fields_problem(op.get("error_fields"))
            if problem is not None:
                why = f"{op['op']}: error {result.code}: 'error_fields': {problem}"
                raise Illegal(op["seq"], op["t"], why)

    def _compare_events(self, g: _Group, expected: tuple[Event, ...]) -> None:
        t = g.op["t"]
        for lines in (g.choices, g.events):
            for line in lines:
                if line["t"] != t:
                    raise Illegal(
                        line["seq"],
                        line["t"],
                        f"a line at t={line['t']!r} in an operation at t={t!r} (seq "
                        f"{g.op['seq']}): an operation takes no time",
                    )
        shapes = self.shapes
        for i, line in enumerate(g.events):
            # Whether `event_problem` finds a problem depends only on the kind, the keys and
            # the types of their values (a list's items aside): a shape it passed, passes.
            # (Flat: the kind, the keys, then as many types.)
            shape = (line["ev"], *line, *map(type, line.values()))
            fields = shapes.get(shape)
            if fields is None:
                if line["ev"] not in EVENT_FIELDS:
                    raise TraceUnreadable(
                        f"{self.source}: seq {line['seq']}: unknown event kind {line['ev']!r}"
                    )
                problem = event_problem(line["ev"], line)
                if problem is not None:
                    raise Illegal(line["seq"], line["t"], problem)
                if list not in shape and len(shapes) < _SHAPES:
                    fields = shapes[shape] = _Fields(line)
            if i < len(expected) and fields is not None:
                # The model makes its events as `as_event` does (`own_event`), which derives
                # everything else from the kind and the fields: equal fields, equal events.
                # (A line whose keys are not in order, as `fields` are, is compared below.)
                want = expected[i]
                if line["ev"] == want.name and want.fields == fields.items(line):
                    continue
            got = as_event(line["ev"], line)
            if i >= len(expected):
                if self.interrupted:
                    return
                raise Illegal(
                    line["seq"],
                    line["t"],
                    f"{_describe(got)}: the model's {g.op['op']} (seq {g.op['seq']}) emits "
                    f"only {len(expected)} event(s)",
                )
            if got != expected[i]:
                raise Illegal(
                    line["seq"],
                    line["t"],
                    f"{_describe(got)}, but the model's {g.op['op']} (seq {g.op['seq']}) emits "
                    f"{_describe(expected[i])} here",
                )
            if got.fields != expected[i].fields:
                raise Illegal(line["seq"], line["t"], _field_difference(got, expected[i]))
        if len(expected) > len(g.events) and not (self.interrupted or self.cut):
            missing = expected[len(g.events)]
            seq = g.events[-1]["seq"] if g.events else g.op["seq"]
            raise Illegal(
                seq,
                g.op["t"],
                f"the model's {g.op['op']} (seq {g.op['seq']}) next emits {_describe(missing)}, "
                "and the log has no more events for it",
            )

    def _after(self, effect: Effect) -> None:
        s = effect.state
        ended = [r for r in s.requests if r.outcome is not None]
        for r in ended:  # leaves the state, keeping what a late reply to it needs (_recall)
            assert r.outcome is not None
            self.remember(r.corr, r.requester, r.outcome)
        if ended:
            s = _replace(s, requests=tuple(r for r in s.requests if r.pending))
        if s.dead_letters:
            s = _replace(s, dead_letters=())
        self.state = s

    def remember(self, corr: int, requester: int, outcome: OutcomeKind) -> None:
        """Request `corr` ended (it leaves the state): keep how, and who issued it."""
        issuer = self._issuer(requester)
        while len(self.fates) <= corr:  # both double
            self.requesters.extend(repeat(0, len(self.fates)))
            self.fates.extend(bytes(len(self.fates)))
        self.fates[corr] = 1 + _OUTCOMES.index(outcome)
        self.requesters[corr] = issuer

    def recall(self, corr: int) -> tuple[int, OutcomeKind] | None:
        """The requester and outcome of ended request `corr` (None: it never ended)."""
        fate = self.fates[corr] if 0 < corr < len(self.fates) else 0
        if not fate:
            return None
        return self.issuers[self.requesters[corr]], _OUTCOMES[fate - 1]

    def _issuer(self, actor: int) -> int:
        """The index of a requester in `issuers` (`requesters` widened when it needs to be)."""
        index = self.issuer.get(actor)
        if index is None:
            index = self.issuer[actor] = len(self.issuers)
            self.issuers.append(actor)
            if index == 256:
                self.requesters = array("q", self.requesters)
        return index

    def _recall(self, corr: int) -> None:
        """Put an ended request back for a reply to it (the reply's fate names how it ended)."""
        fate = self.recall(corr)
        if fate is not None and self.state.request(corr) is None:
            req = Request(corr, fate[0], 0.0, 0.0, fate[1])
            rest = self.state.requests
            at = next((i for i, r in enumerate(rest) if r.corr > corr), len(rest))
            self.state = _replace(self.state, requests=(*rest[:at], req, *rest[at:]))

    # -- the end -----------------------------------------------------------------------------

    def _end(self, line: dict[str, Any]) -> None:
        seq, t, how = line["seq"], line["t"], line["end"]
        if how not in _ENDS:
            raise TraceUnreadable(f"{self.source}: seq {seq}: 'end' is one of {', '.join(_ENDS)}")
        self.end = how
        s = self.state
        counters, pending = line.get("counters"), line.get("pending")
        if not isinstance(counters, dict) or not isinstance(pending, list):
            raise TraceUnreadable(
                f"{self.source}: seq {seq}: the end line has 'counters' and 'pending'"
            )
        want = {
            "sent": s.sent,
            "rejected": s.rejected,
            "delivered": s.delivered,
            "dead_lettered": s.dead_lettered,
            "retries": s.retries,
        }
        if counters != want:
            raise Illegal(seq, t, f"the broker's counters are {counters}, the model's {want}")
        if pending != list(s.pending()):
            raise Illegal(
                seq,
                t,
                f"requests {pending} are pending at the end, the model's {list(s.pending())}",
            )
        if how == "drained" and s.timers and not self.interrupted:
            raise Illegal(
                seq, t, f"the run drained, but the model has a timer due at {s.timers[0].when!r}"
            )


def logged_result(result: Result) -> tuple[Any, Any]:
    """How an op line logs the model's `result`: its `result` and its `error` code."""
    if isinstance(result, Refused):
        return None, result.code
    if isinstance(result, Msg):
        return result.id, None
    return result, None


def _find(g: _Group, name: str, msg: int | None) -> dict[str, Any] | None:
    """The event `name` about `msg` in the group (a message is routed or retried at most once
    per operation)."""
    return next((e for e in g.events if e.get("ev") == name and e.get("msg") == msg), None)


def _with(action: Action, choices: list[int], retry_at: list[float]) -> Action:
    if not (choices or retry_at) or not hasattr(action, "choices"):
        return action  # `_action` leaves both empty
    return cast(
        Action, replace(cast(Any, action), choices=tuple(choices), retry_at=tuple(retry_at))
    )


def _show(pair: tuple[Any, Any]) -> str:
    return f"error {pair[1]}" if pair[1] is not None else json.dumps(pair[0])


def _field_difference(got: Event, want: Event) -> str:
    """What differs between two events alike in their reduced form (spec 9.4's fields)."""
    have, need = dict(got.fields), dict(want.fields)
    for key in sorted(need.keys() | have.keys()):
        if key not in have:
            return f"{_describe(got)}: the field {key!r} is missing (the model's is {need[key]!r})"
        if key not in need:
            return f"{_describe(got)}: a field {key!r} a {got.name} event does not have here"
        if have[key] != need[key] or type(have[key]) is not type(need[key]):
            return f"{_describe(got)}: {key!r} is {have[key]!r}, the model's {need[key]!r}"
    raise AssertionError("the events are the same")


def _describe(e: Event) -> str:
    parts = [e.name]
    if e.msg is not None:
        parts.append(f"m{e.msg}")
    if e.corr is not None:
        parts.append(f"c{e.corr}")
    if e.actor is not None:
        parts.append(e.actor)
    if e.detail is not None:
        parts.append(str(e.detail))
    return " ".join(parts)


# -- op lines as model actions ----------------------------------------------------------------


class _Args:
    """An op line's arguments, type-checked as they are read."""

    def __init__(self, g: _Group) -> None:
        self.op, self.group = g.op, g

    @property
    def where(self) -> str:
        return f"{self.group.where} ({self.op['op']})"

    def bad(self, key: str, what: str) -> TraceUnreadable:
        return TraceUnreadable(f"{self.where}: {key!r} must be {what}, got {self.op.get(key)!r}")

    def has(self, key: str) -> Any:
        if key not in self.op:
            raise TraceUnreadable(f"{self.where}: the op line lacks {key!r}")
        return self.op[key]

    # Each reader returns a value of its exact type at once; anything else is read in full.

    def integer(self, key: str) -> int:
        value = self.op.get(key)
        if type(value) is int:
            return value
        value = self.has(key)
        if not _is_int(value):
            raise self.bad(key, "an integer")
        return int(value)

    def opt_integer(self, key: str) -> int | None:
        value = self.op.get(key)
        if type(value) is int:
            return value
        return None if self.has(key) is None else self.integer(key)

    def opt_number(self, key: str) -> float | None:
        value = self.op.get(key)
        if type(value) is float:
            return value
        value = self.has(key)
        if value is None:
            return None
        if not _is_number(value):
            raise self.bad(key, "a number or null")
        try:
            return float(value)
        except OverflowError:  # an integer too large for a binary64: not a time
            raise self.bad(key, "a number a binary64 can hold") from None

    def number(self, key: str) -> float:
        value = self.opt_number(key)
        if value is None:
            raise self.bad(key, "a number")
        return value

    def text(self, key: str) -> str:
        value = self.op.get(key)
        if type(value) is str:
            return value
        value = self.has(key)
        if not isinstance(value, str):
            raise self.bad(key, "a string")
        return value

    def opt_text(self, key: str) -> str | None:
        value = self.op.get(key)
        if type(value) is str:
            return value
        return None if self.has(key) is None else self.text(key)

    def names(self, key: str) -> tuple[str, ...]:
        value = self.has(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.bad(key, "a list of strings")
        return tuple(value)

    def high(self) -> bool:
        value = self.has("priority")
        if value not in ("high", "normal"):
            raise self.bad("priority", "'high' or 'normal'")
        return bool(value == "high")

    def retry(self) -> Retry | None:
        value = self.has("retry")
        if value is None:
            return None
        if type(value) is dict and value.keys() == _RETRY_SET:  # as a trace writes it: at once
            m, b, x, mb, j = _retry_values(value)
            if type(m) is int and type(b) is type(x) is type(mb) is type(j) is float:
                return Retry(m, b, x, mb, j)
        if (
            not isinstance(value, dict)
            or sorted(value) != _RETRY_SORTED
            or not _is_int(value["max_attempts"])
            or not all(_is_number(value[k]) for k in _RETRY_KEYS[1:])
        ):
            raise self.bad("retry", f"null or an object of {', '.join(_RETRY_KEYS)}")
        return Retry(
            value["max_attempts"],
            float(value["backoff"]),
            float(value["multiplier"]),
            float(value["max_backoff"]),
            float(value["jitter"]),
        )


def _action(g: _Group, net: dict[str, Any]) -> Action:
    """The model action an op line names."""
    make = _ACTIONS.get(g.op["op"])
    if make is None:
        raise TraceUnreadable(f"{g.where}: unknown operation {g.op['op']!r}")
    return make(_Args(g), net)


def _register(a: _Args, net: dict[str, Any]) -> Action:
    return Register(
        a.opt_text("name"),
        a.opt_integer("capacity"),
        a.text("backpressure"),  # type: ignore[arg-type]  # the model checks the mode
        a.opt_number("send_timeout"),
        a.names("services"),
        a.names("pools"),
    )


def _tell(a: _Args, net: dict[str, Any]) -> Action:
    return Tell(
        a.opt_integer("from"),
        a.text("to"),
        a.high(),
        a.opt_number("ttl"),
        a.opt_number("timestamp"),
        a.retry(),
        a.opt_number("send_timeout"),
        key=a.opt_text("key"),
        **net,
    )


def _ask(a: _Args, net: dict[str, Any]) -> Action:
    return Ask(
        a.integer("from"),
        a.text("to"),
        a.number("timeout"),
        a.high(),
        a.retry(),
        a.opt_number("send_timeout"),
        key=a.opt_text("key"),
        **net,
    )


# Per operation (docs/trace-format.md), the model action its line names.
_ACTIONS: dict[str, Callable[[_Args, dict[str, Any]], Action]] = {
    "fire": lambda a, net: Fire(),
    "register": _register,
    "unregister": lambda a, net: Unregister(a.integer("actor"), a.text("reason")),
    "stop": lambda a, net: Stop(a.integer("actor"), a.text("reason")),
    "start": lambda a, net: Restart(a.integer("actor")),
    "create_pool": lambda a, net: CreatePool(a.text("pool"), a.text("strategy")),  # type: ignore[arg-type]
    "join": lambda a, net: Join(a.text("pool"), a.integer("actor")),
    "leave": lambda a, net: Leave(a.text("pool"), a.integer("actor")),
    "provide": lambda a, net: Provide(a.text("service"), a.integer("actor")),
    "subscribe": lambda a, net: Subscribe(a.text("topic"), a.integer("actor")),  # spec 2.10
    "unsubscribe": lambda a, net: Unsubscribe(a.text("topic"), a.integer("actor")),
    "send": _tell,
    "request": _ask,
    "reply": lambda a, net: Reply(a.opt_integer("from"), a.integer("corr"), **net),
    "cancel": lambda a, net: Cancel(a.integer("corr")),
    "dequeue": lambda a, net: Dequeue(a.integer("actor")),
    "done": lambda a, net: Done(a.integer("actor")),
}  # fmt: skip
