"""The trace checker: is every event of a trace a legal step of the model? (docs/spec.md 10).

It imports nothing from `broker` or `sim`: it is how a port in another language is checked.

How it reads a trace: the header's scenario says which pools exist (created first, in order)
and what each registered actor's mailbox is, which clients send with which priority, timeout and
retry policy. Then, event by event, it infers the model action that starts with that event:

    register / unregister / stop / start    Register / Unregister / Stop / Restart
    send (a fresh one)                      Tell / Ask / Reply, with the network's doing read off
                                            the next events: a `send` with `dup_of` (duplicate),
                                            `dead_letter dropped_in_transit` (drop), an event
                                            about the message at the same time (arrives now),
                                            anything else (delayed: in transit)
    dequeue / expired / an unpark enqueue   Dequeue by that actor (or a shared pool's member)
    anything at a timer's time              Fire (timeouts, send timeouts, retries)
    anything about a message in transit     Arrive
    time moving on                          Tick (illegal if a timer fell due in between)
    fault                                   nothing: the simulator's own business

It applies the action with `apply` and requires the model's events to be the trace's next
events, in order. Nondeterminism is read from the trace and checked by the model: the member a
`random` / `power_of_two` / key-less `consistent_hash` pool chose (its `route`), and the time of a
jittered retry (its `retry` event's `at`). A member's end of service is not in a trace when it
served a one-way message, so such a member's load is uncertain until it dequeues again; a route
to it by a load-based strategy is read as "it had finished" (`Done`), the only reading that can
make the route legal.

Memory follows what is open, not the trace's length: ended requests leave the model's state (one
byte per correlation id keeps how each ended), dead letters are counted, not kept.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from model._actions import (
    Action,
    Arrive,
    Ask,
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
    Register,
    Reply,
    Restart,
    Stop,
    Tell,
    Tick,
    Unregister,
    as_event,
)
from model._semantics import Effect, apply
from model._state import ANY_KEY, STRATEGIES, Addr, Msg, OutcomeKind, Request, Retry, State

FORMAT, VERSION = "brokerlab-trace", 1
_OUTCOMES: tuple[OutcomeKind, ...] = ("replied", "timed_out", "cancelled", "failed")
_RECENT = 1 << 16  # how many ended messages / requests remember the seq they ended at


class TraceUnreadable(ValueError):
    """Not a trace this checker can read (exit code 2): the message names the line."""


class Illegal(Exception):
    """An event that is not a legal model step; `seq` is the event's."""

    def __init__(self, seq: int, t: float, why: str) -> None:
        super().__init__(f"seq {seq} (t={t!r}): {why}")
        self.seq, self.t, self.why = seq, t, why


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of `check_trace`: `events` checked, and the first illegal one if any."""

    events: int
    illegal: Illegal | None = None

    @property
    def ok(self) -> bool:
        return self.illegal is None


def check_trace(
    lines: Iterable[str],
    source: str = "<trace>",
    *,
    complete: bool = True,
    progress: Callable[[int], None] | None = None,
) -> Verdict:
    """Check every event of a trace against the model (see the module docstring).

    With `complete`, the trace must end with nothing in flight and no request pending (a
    complete simulator run drains). Raises `TraceUnreadable` for input that is not a trace.
    """
    stream = _Stream(iter(lines), source)
    checker = _Checker(stream.header())
    try:
        checker.run(stream, progress)
        if complete:
            checker.finish()
    except Illegal as illegal:
        return Verdict(stream.count, illegal)
    return Verdict(stream.count)


# -- reading ----------------------------------------------------------------------------------


def _parse(line: str, source: str, number: int) -> dict[str, Any]:
    try:
        obj = json.loads(line, parse_constant=_no_constant)
    except ValueError as err:
        raise TraceUnreadable(f"{source}:{number}: not valid JSON ({err})") from None
    if not isinstance(obj, dict):
        raise TraceUnreadable(f"{source}:{number}: expected a JSON object")
    return obj


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed")


class _Stream:
    """The events after the header, parsed lazily, with a look-ahead buffer."""

    def __init__(self, lines: Iterator[str], source: str) -> None:
        self.lines, self.source = lines, source
        self.buf: deque[dict[str, Any]] = deque()
        self.number = 1
        self.count = 0
        self.last_t, self.last_seq = -math.inf, 0

    def header(self) -> dict[str, Any]:
        first = next(self.lines, None)
        if first is None:
            raise TraceUnreadable(f"{self.source}: empty file, no header")
        head = _parse(first, self.source, 1)
        if head.get("format") != FORMAT:
            raise TraceUnreadable(f"{self.source}:1: not a brokerlab trace header")
        version = head.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise TraceUnreadable(f"{self.source}:1: header has no valid 'version'")
        if version > VERSION:
            raise TraceUnreadable(
                f"{self.source}:1: trace format version {version} is newer than this checker "
                f"understands ({VERSION})"
            )
        if not isinstance(head.get("scenario"), dict):
            raise TraceUnreadable(f"{self.source}:1: header has no 'scenario' object")
        return head

    def peek(self, i: int) -> dict[str, Any] | None:
        while len(self.buf) <= i:
            line = next(self.lines, None)
            if line is None:
                return None
            if not line.strip():
                continue
            self.number += 1
            self.buf.append(self._check(_parse(line, self.source, self.number)))
        return self.buf[i]

    def _check(self, e: dict[str, Any]) -> dict[str, Any]:
        t, seq, ev = e.get("t"), e.get("seq"), e.get("ev")
        where = f"{self.source}:{self.number}"
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise TraceUnreadable(f"{where}: 'seq' must be an integer")
        if not isinstance(t, int | float) or isinstance(t, bool) or not isinstance(ev, str):
            raise TraceUnreadable(f"{where}: an event needs a number 't' and a string 'ev'")
        if seq <= self.last_seq:
            raise Illegal(seq, t, f"seq does not increase (after seq {self.last_seq})")
        if t < self.last_t:
            raise Illegal(seq, t, f"time goes back (from t={self.last_t!r})")
        self.last_t, self.last_seq = t, seq
        return e

    def take(self, indices: list[int]) -> None:
        for i in sorted(indices, reverse=True):
            del self.buf[i]
        self.count += len(indices)


# -- the trace's vocabulary and the model's ---------------------------------------------------


def _event(e: dict[str, Any]) -> Event:
    """A trace event as the model's `Event` (the fields the model determines)."""
    try:
        return as_event(e["ev"], e)
    except KeyError as missing:
        raise Illegal(e["seq"], e["t"], f"a {e['ev']!r} event lacks {missing}") from None
    except ValueError as unknown:
        raise Illegal(e["seq"], e["t"], str(unknown)) from None


def describe(e: Event) -> str:
    """An event in words: `resolve c917 replied by m5120`, `dequeue m12 by workers-1`."""
    n, m = e.name, f"m{e.msg}"
    if n == "send":
        corr = f" c{e.corr}" if e.corr is not None else ""
        return f"send {m} ({e.detail}{corr})"
    if n == "resolve":
        by = f" by m{e.msg}" if e.msg is not None else ""
        return f"resolve c{e.corr} {e.detail}{by} (requester {e.actor})"
    if n == "enqueue":
        return f"enqueue {m} at {e.actor} (depth {e.detail})"
    if n in ("route", "park"):
        return f"{n} {m} to {e.actor}"
    if n == "dequeue":
        return f"dequeue {m} by {e.actor}"
    if n in ("dead_letter", "reject"):
        return f"{n} {m} ({e.detail})"
    if n == "retry":
        return f"retry {m} (attempt {e.detail})"
    return f"{n} {e.actor}"


def _about(e: dict[str, Any], msg: int, corr: int | None) -> bool:
    """Does trace event `e` belong to the arrival of message `msg`?"""
    if e.get("msg") == msg and e["ev"] != "send":
        return True
    return e["ev"] == "resolve" and corr is not None and e.get("corr") == corr and not e["msg"]


# -- the checker ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Client:
    high: bool
    timeout: float | None
    retry: Retry | None


class _Checker:
    def __init__(self, head: dict[str, Any]) -> None:
        scenario = head["scenario"]
        self.state = State()
        self.ids: dict[str, int] = {}
        self.mailbox: dict[str, tuple[int | None, Any, float | None]] = {}
        self.clients: dict[str, _Client] = {}
        self.uncertain: set[int] = set()  # members whose end of service the trace hides
        self.fates = bytearray(1)  # corr -> 0 pending / unknown, 1 + outcome index once ended
        self.ended_at: dict[int, int] = {}  # recent corr -> seq of its resolve
        self.open: dict[int, tuple[int, str]] = {}  # msg in flight -> (seq of its send, kind)
        self.closed_at: dict[int, tuple[int, str]] = {}  # recent msg -> (seq, how it ended)
        self.scripted = bool(scenario.get("script")) if isinstance(scenario, dict) else False
        try:
            self._read_scenario(scenario)
        except (KeyError, TypeError, ValueError) as err:
            raise TraceUnreadable(f"header scenario: {err!r}") from None

    def _read_scenario(self, sc: dict[str, Any]) -> None:
        for pool in sc.get("pool", []):  # pools themselves come with `create_pool` events
            if pool.get("strategy", "round_robin") not in STRATEGIES:
                raise ValueError(f"unknown strategy {pool.get('strategy')!r}")
            for i in range(1, int(pool["size"]) + 1):
                self.mailbox[f"{pool['name']}-{i}"] = _box(pool)
        for actor in sc.get("actor", []):
            self.mailbox[actor["name"]] = _box(actor)
        for c in sc.get("client", []):
            r = c.get("retry")
            retry = None
            if r is not None:
                retry = Retry(
                    r.get("max_attempts", 3),
                    r.get("backoff", 0.1),
                    r.get("multiplier", 2.0),
                    r.get("max_backoff", 5.0),
                    r.get("jitter", 0.0),
                )
            self.clients[c["name"]] = _Client(c.get("priority") == "high", c.get("timeout"), retry)

    # -- the loop -----------------------------------------------------------------------------

    def run(self, stream: _Stream, progress: Callable[[int], None] | None) -> None:
        reported = 0
        while (e := stream.peek(0)) is not None:
            if progress is not None and stream.count - reported >= 10_000:
                reported = stream.count
                progress(reported)
            if e["ev"] == "fault":
                stream.take([0])
                continue
            self._tick(e)
            self._step(stream, e)

    def _tick(self, e: dict[str, Any]) -> None:
        s = self.state
        if e["t"] <= s.now:
            return
        if s.timers and s.timers[0].when < e["t"]:
            timer = s.timers[0]
            what = {
                "timeout": f"request c{timer.corr} should have timed out",
                "park": f"parked m{timer.msg.id if timer.msg else '?'} should have timed out",
                "retry": f"m{timer.msg.id if timer.msg else '?'} should have been retried",
            }[timer.kind]
            raise Illegal(e["seq"], e["t"], f"{what} at t={timer.when!r}, before this event")
        self.state = apply(s, Tick(e["t"])).state

    def _step(self, stream: _Stream, e: dict[str, Any]) -> None:
        best: tuple[int, str, dict[str, Any] | None] | None = None
        for action in self._candidates(stream, e):
            for _ in range(len(self.uncertain) + 1):
                try:
                    effect = self._apply(stream, action)
                except ValueError as err:
                    best = best or (0, f"the model refuses it: {err}", None)
                    break
                got = self._match(stream, effect.events)
                if isinstance(got, list):
                    self._accept(stream, action, effect, got)
                    return
                if best is None or got[0] > best[0]:
                    best = got
                # A load-based route to a member whose end of service the trace hides: it had
                # finished (the only reading that can make the route legal); try again.
                other = got[2]
                if other is None or other["ev"] != "route":
                    break
                member = self.ids.get(other["actor"])
                if member not in self.uncertain:
                    break
                assert member is not None
                self.state = apply(self.state, Done(member)).state
                self.uncertain.discard(member)
        if best is not None and best[2] is not None and best[0] > 0:
            # The action started as the trace says and went wrong later: name that event.
            bad = best[2]
            raise Illegal(bad["seq"], bad["t"], self._explain(bad, best[1]))
        raise Illegal(e["seq"], e["t"], self._explain(e, best[1] if best else None))

    def _apply(self, stream: _Stream, action: Action) -> Effect:
        """`apply`, with choices and retry times read from the trace's next events."""
        base = self.state
        for _ in range(64):
            try:
                return apply(self.state, action)
            except NeedChoice as need:
                route = _find(stream, "route", need.msg)
                if route is None:
                    raise ValueError(f"no route of m{need.msg} follows") from None
                chosen = self.ids.get(route["actor"], -1)
                if chosen not in need.live and chosen in self.uncertain:
                    # Only a member that had finished could have been chosen.
                    self.state = apply(self.state, Done(chosen)).state
                    self.uncertain.discard(chosen)
                action = _with(action, choices=(*getattr(action, "choices", ()), chosen))
            except NeedRetryAt as need:
                retry = _find(stream, "retry", need.msg)
                at = retry["at"] if retry is not None else need.high
                action = _with(action, retry_at=(*getattr(action, "retry_at", ()), at))
        self.state = base
        raise ValueError("too many choices")

    def _match(
        self, stream: _Stream, events: tuple[Event, ...]
    ) -> list[int] | tuple[int, str, dict[str, Any] | None]:
        """Stream indices of `events`, in order; a nested dequeue (a member woken by a broadcast
        copy) may sit between them. Else (how many matched, what differed, the trace's event)."""
        taken: list[int] = []
        j = 0
        for i, want in enumerate(events):
            while True:
                got = stream.peek(j)
                if got is None:
                    return i, f"the trace ends where the model has {describe(want)}", None
                if _event(got) == want:
                    taken.append(j)
                    j += 1
                    break
                nested = got["ev"] == "dequeue" or (
                    got["ev"] == "dead_letter" and got.get("reason") == "expired"
                )
                if not (taken and nested):
                    return i, f"the model has {describe(want)} here", got
                j += 1
        return taken

    def _accept(self, stream: _Stream, action: Action, effect: Effect, taken: list[int]) -> None:
        events = [stream.peek(j) for j in taken]
        stream.take(taken)
        s = effect.state
        for e in events:
            assert e is not None
            self._bookkeep(e)
        if isinstance(action, Dequeue) and isinstance(effect.result, Msg):
            if effect.result.kind == "tell":
                self.uncertain.add(action.actor)
            else:
                self.uncertain.discard(action.actor)
        if isinstance(action, Stop | Unregister):
            self.uncertain.discard(action.actor)
        if isinstance(action, Register) and isinstance(effect.result, int):
            self.ids[effect.events[-1].actor or ""] = effect.result
        if isinstance(action, Reply) and action.sender is not None:
            s = apply(s, Done(action.sender)).state  # a reply ends the member's service
            self.uncertain.discard(action.sender)
        if any(r.outcome is not None for r in s.requests):
            s = replace(s, requests=tuple(r for r in s.requests if r.pending))
        if s.dead_letters:
            s = replace(s, dead_letters=())
        self.state = s

    def _bookkeep(self, e: dict[str, Any]) -> None:
        ev, seq = e["ev"], e["seq"]
        if ev == "send":
            self.open[e["msg"]] = (seq, e["kind"])
        elif ev in ("dequeue", "dead_letter", "reject"):
            self._close(
                e["msg"], seq, ev if ev != "dead_letter" else f"dead-lettered {e['reason']}"
            )
        elif ev == "resolve":
            corr = e["corr"]
            while len(self.fates) <= corr:
                self.fates.extend(bytes(len(self.fates)))
            self.fates[corr] = 1 + _OUTCOMES.index(e["outcome"])
            _remember(self.ended_at, corr, seq)
            if e["msg"] is not None:
                self._close(e["msg"], seq, "delivered to its requester")

    def _close(self, msg: int, seq: int, how: str) -> None:
        self.open.pop(msg, None)
        _remember(self.closed_at, msg, (seq, how))

    # -- which action starts with this event --------------------------------------------------

    def _candidates(self, stream: _Stream, e: dict[str, Any]) -> Iterator[Action]:
        ev, s = e["ev"], self.state
        if ev == "register":
            yield self._register(e)
        elif ev == "unregister":
            yield Unregister(self._id(e, e.get("actor")))
        elif ev == "stop":
            yield Stop(self._id(e, e.get("actor")))
        elif ev == "start":
            yield Restart(self._id(e, e.get("actor")))
        elif ev == "create_pool":
            yield CreatePool(str(e.get("pool")), e.get("strategy", "round_robin"))
        elif ev in ("join", "leave"):
            yield (Join if ev == "join" else Leave)(str(e.get("pool")), self._id(e, e.get("actor")))
        elif ev == "provide":
            yield Provide(str(e.get("service")), self._id(e, e.get("actor")))
        elif ev == "send" and "dup_of" not in e and "copy_of" not in e:
            yield self._send(stream, e)
        if ev in ("dequeue", "enqueue") and e.get("actor") in self.ids:
            yield Dequeue(self.ids[e["actor"]])
        if ev == "dead_letter" and e.get("reason") == "expired":
            yield from self._expiring(e["msg"])
        if s.timers and s.timers[0].when == s.now and ev != "send":
            yield Fire()
        msg = e.get("msg")
        if ev == "resolve" and msg is None:
            nxt = stream.peek(1)
            msg = nxt.get("msg") if nxt is not None else None
        found = next((x.msg for x in s.transit if x.msg.id == msg), None)
        if found is not None:
            if found.kind == "reply" and found.corr is not None:
                self._recall(found.corr)
            yield Arrive(found.id)

    def _id(self, e: dict[str, Any], label: Any) -> int:
        if label not in self.ids:
            raise Illegal(e["seq"], e["t"], f"{label!r} is not a registered actor")
        return self.ids[label]

    def _register(self, e: dict[str, Any]) -> Register:
        cap, bp, wait = self.mailbox.get(e.get("actor", ""), (None, "reject", None))
        if "capacity" in e:  # the event states the mailbox itself (docs/trace-format.md)
            cap, bp, wait = e["capacity"], e.get("backpressure", "reject"), e.get("send_timeout")
        addresses = [str(a) for a in e.get("addresses", [])]
        services = tuple(a[8:] for a in addresses if a.startswith("service:"))
        pools = tuple(a[5:] for a in addresses if a.startswith("pool:"))
        return Register(e.get("name"), cap, bp, wait, services, pools)

    def _send(self, stream: _Stream, e: dict[str, Any]) -> Action:
        msg, kind, corr = e.get("msg"), e.get("kind"), e.get("corr")
        sender = None if e.get("from") is None else self._id(e, e["from"])
        duplicate = False
        nxt = stream.peek(1)
        if nxt is not None and nxt["ev"] == "send" and nxt.get("dup_of") == msg:
            duplicate = True
            nxt = stream.peek(2)
        drop = bool(
            nxt is not None
            and nxt["ev"] == "dead_letter"
            and nxt.get("msg") == msg
            and nxt.get("reason") == "dropped_in_transit"
        )
        now = nxt is not None and nxt["t"] == e["t"] and _about(nxt, msg, corr)  # type: ignore[arg-type]
        delay = not (drop or now)
        if kind == "reply":
            if corr is None:
                raise Illegal(e["seq"], e["t"], "a reply without 'corr'")
            self._recall(corr)
            return Reply(sender, corr, drop, delay, duplicate)
        client = self.clients.get(e.get("from") or "", _Client(False, None, None))
        to = _addr(e)
        key = e.get("key", ANY_KEY)
        net: dict[str, Any] = {"drop": drop, "delay": delay, "duplicate": duplicate, "key": key}
        if kind == "tell":
            return Tell(sender, to, client.high, retry=client.retry, **net)
        if kind != "request" or sender is None or not isinstance(e.get("deadline"), int | float):
            raise Illegal(e["seq"], e["t"], "a request needs 'from' and a numeric 'deadline'")
        timeout = client.timeout if client.timeout is not None else e["deadline"] - e["t"]
        if e["t"] + timeout != e["deadline"]:
            raise Illegal(e["seq"], e["t"], f"deadline {e['deadline']!r} is not t + {timeout!r}")
        return Ask(sender, to, timeout, client.high, client.retry, **net)

    def _recall(self, corr: int) -> None:
        """Put an ended request back for a reply to it (it names the outcome, spec 5.6)."""
        fate = self.fates[corr] if corr < len(self.fates) else 0
        if fate and self.state.request(corr) is None:
            req = Request(corr, 0, 0.0, 0.0, _OUTCOMES[fate - 1])
            rest = self.state.requests
            at = next((i for i, r in enumerate(rest) if r.corr > corr), len(rest))
            self.state = replace(self.state, requests=(*rest[:at], req, *rest[at:]))

    def _expiring(self, msg: int) -> Iterator[Action]:
        """Dequeues that meet `msg` first: its actor's, or an idle member's of its shared pool."""
        s = self.state
        for a in s.actors:
            if a.queue and a.queue[0].id == msg:
                yield Dequeue(a.id)
        for p in s.pools:
            if p.queue and p.queue[0].id == msg:
                for member in p.members:
                    actor = s.actor(member)
                    if actor is not None and actor.alive and not actor.queue:
                        yield Dequeue(member)

    # -- the end, and explanations ------------------------------------------------------------

    def finish(self) -> None:
        """A complete run drains: nothing in flight, no request pending (docs/trace-format.md)."""
        s = self.state
        # A script's actors may leave mail undelivered in their mailboxes; a reply never waits
        # in a mailbox, so one left open is wrong even then.
        still = {m: v for m, v in self.open.items() if not self.scripted or v[1] == "reply"}
        if still:
            msg = min(still)
            seq, kind = still[msg]
            raise Illegal(seq, s.now, f"{kind} m{msg} never ends: the trace ends with it in flight")
        pending = s.pending()
        if pending:
            raise Illegal(0, s.now, f"the trace ends with request c{pending[0]} still pending")

    def _explain(self, e: dict[str, Any], why: str | None) -> str:
        what = describe(_event(e))
        msg, corr = e.get("msg"), e.get("corr")
        if e["ev"] == "resolve" and isinstance(corr, int) and 0 < corr < len(self.fates):
            fate = self.fates[corr]
            if fate:
                at = self.ended_at.get(corr)
                when = f" at seq {at}" if at is not None else ""
                return f"{what}, but c{corr} had already ended {_OUTCOMES[fate - 1]}{when}"
        if e["ev"] != "send" and isinstance(msg, int) and msg in self.closed_at:
            seq, how = self.closed_at[msg]
            return f"{what}, but m{msg} had already ended ({how}) at seq {seq}"
        if e["ev"] == "send" and ("dup_of" in e or "copy_of" in e):
            return f"{what}: no model step sends this duplicate or copy here"
        return f"{what} is not a legal step: {why or 'no model step starts with it'}"


def _with(action: Action, **changes: Any) -> Action:
    changed: Action = replace(action, **changes)
    return changed


def _box(spec: dict[str, Any]) -> tuple[int | None, Any, float | None]:
    return spec.get("capacity"), spec.get("backpressure", "reject"), spec.get("send_timeout")


def _addr(e: dict[str, Any]) -> Addr:
    text = e.get("to")
    kind, _, value = str(text).partition(":")
    if kind not in ("id", "name", "service", "pool") or not value:
        raise Illegal(e["seq"], e["t"], f"'to' {text!r} is not an address")
    return Addr(kind, value)  # type: ignore[arg-type]


def _find(stream: _Stream, ev: str, msg: int | None) -> dict[str, Any] | None:
    """The next `ev` event about `msg` at the current time, in the look-ahead."""
    first = stream.peek(0)
    j = 0
    while (e := stream.peek(j)) is not None and first is not None and e["t"] == first["t"]:
        if e["ev"] == ev and e.get("msg") == msg:
            return e
        j += 1
        if j > 100_000:
            break
    return None


def _remember(table: dict[int, Any], key: int, value: Any) -> None:
    table[key] = value
    if len(table) > _RECENT:
        del table[next(iter(table))]
