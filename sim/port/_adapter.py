"""`PortBroker`: a port behind the `MessageBroker` protocol (docs/port-protocol.md).

The simulator, the model checker, the lockstep tester and the vectors drive a broker through
`broker.MessageBroker`, built by a `BrokerFactory`. `PortFactory("node port.js")` is one: each
broker it builds is a `reset` of one port process, and each call is a request line whose answer
(the result or error, and the effects: events, timers, wakes) is played back to the driver in
order: events to its listener, timers to its clock, wakes to its wake hook. The driver cannot
tell a port from the reference, so everything that checks the reference checks a port.

Payloads never cross the pipe: the adapter keeps each message's payload (and what a dequeue
returns) from the `send` events. It computes the issue-to-reply times from `resolve` events.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from broker import (
    Address,
    Backpressure,
    BrokerError,
    Envelope,
    Listener,
    Network,
    NoResponse,
    OnOutcome,
    Outcome,
    OutcomeKind,
    Priority,
    RequestTimeout,
    RetryPolicy,
    Rng,
    SplitMix64,
    Stats,
    TimerHandle,
    Timers,
)
from broker.errors import ALL_ERRORS
from model import EVENT_FIELDS
from sim.port._link import DEFAULT_TIMEOUT, Link, PortError
from sim.run import register_args, request_args, send_args

_ERRORS = {cls.code: cls for cls in ALL_ERRORS}
_NUMBERS = ("deadline", "at", "send_timeout")  # event fields of type number (spec 9.4)
# A reply to a correlation id never issued goes nowhere (`to` null); an Envelope needs an address.
_NOWHERE = Address("name", "-")
_OUTCOMES: tuple[OutcomeKind, ...] = ("replied", "timed_out", "cancelled", "failed")


def _encode(request: dict[str, Any]) -> str:
    return json.dumps(request, separators=(",", ":"), allow_nan=False)  # insertion order: stable


def op_features(op: str, args: dict[str, Any]) -> set[str]:
    """The port features (docs/port-protocol.md, Features) an operation needs."""
    needs: set[str] = set()
    to = args.get("to")
    if isinstance(to, str):
        kind = to.partition(":")[0]
        needs |= {"service": {"services"}, "topic": {"topics"}, "pool": set()}.get(kind, set())
    if op == "register":
        if args.get("capacity") is not None:
            needs.add(f"backpressure:{args.get('backpressure')}")
        if args.get("services"):
            needs.add("services")
    elif op == "create_pool":
        needs.add(f"strategy:{args.get('strategy')}")
    elif op == "provide":
        needs.add("services")
    elif op in ("subscribe", "unsubscribe"):
        needs.add("topics")
    if args.get("priority") == "high":
        needs.add("priority")
    if args.get("ttl") is not None or args.get("timestamp") is not None:
        needs.add("ttl")
    if args.get("retry") is not None:
        needs.add("retry")
    return needs


@dataclass(slots=True)
class _Request:
    """What the driver needs when a request ends: its `Outcome`."""

    requester: int
    issued_at: float
    timeout: float
    to: str
    on_outcome: OnOutcome | None


@dataclass(slots=True)
class _Call:
    """The operation in progress: what its new message carries that the pipe does not."""

    payload: Any = None
    high: bool = False
    request: _Request | None = None


class PortFactory:
    """A `BrokerFactory` for the port started by `command` (one process, reset per broker).

    With `replay=True` (the model checker) it remembers every request sequence it sent since a
    reset and the answers, so a broker that repeats a known prefix costs one round trip
    (docs/port-protocol.md, Round trips).
    """

    def __init__(
        self, command: str, *, timeout: float = DEFAULT_TIMEOUT, replay: bool = False
    ) -> None:
        self.command = command
        self.timeout = timeout
        self.replay = replay
        self.brokerlab_name = f"cmd:{command}"  # what a trace header names
        self._link: Link | None = None
        self._root: dict[str, Any] = {}  # request line -> (answer line, next requests)

    @property
    def link(self) -> Link:
        if self._link is None or self._link.closed:
            self._link = Link(self.command, self.timeout)
        return self._link

    @property
    def features(self) -> frozenset[str]:
        return self.link.features

    @property
    def name(self) -> str:
        return self.link.name

    def close(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None

    def __call__(
        self,
        timers: Timers,
        rng: Rng,
        *,
        listener: Listener | None = None,
        network: Network | None = None,
        wake: Callable[[int], None] | None = None,
    ) -> PortBroker:
        if not isinstance(rng, SplitMix64):
            raise TypeError("a port draws from its own SplitMix64: pass SplitMix64(seed)")
        return PortBroker(self, timers, rng.state, listener, network, wake)


class PortBroker:
    """One broker of a port: a `MessageBroker` whose calls are request lines."""

    def __init__(
        self,
        factory: PortFactory,
        timers: Timers,
        seed: int,
        listener: Listener | None,
        network: Network | None,
        wake: Callable[[int], None] | None,
    ) -> None:
        self._factory = factory
        self._link = factory.link
        self.features = self._link.features
        self.timers = timers
        self._emit = listener
        self._network = network
        self._wake = wake
        self._handles: dict[int, TimerHandle] = {}  # the port's timer id -> the driver's timer
        self._msgs: dict[int, Envelope[Any]] = {}  # messages in flight, from their send events
        self._ids: dict[str, int] = {}  # actor label -> id, from register events
        self._requests: dict[int, _Request] = {}
        self._reads: dict[str, Any] = {}  # answers to reads since the last operation
        self.latencies: list[float] = []
        # Replaying a known prefix (PortFactory.replay; not with a network, whose choices are
        # the driver's): requests not yet sent, answers expected.
        self._recording = factory.replay and network is None
        self._replaying = self._recording
        self._node: dict[str, Any] = factory._root
        self._unsent: list[str] = []
        self._expected: list[str] = []
        self._call_now = _Call()
        if network is not None and "transit" not in self.features:
            raise PortError(f"port {factory.command!r} lacks the feature `transit`", 2)
        self._exchange({"op": "reset", "seed": str(seed), "transit": network is not None})

    # -- the pipe ------------------------------------------------------------------------------

    def _exchange(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one request, handle the port's asks, return its answer."""
        line = _encode(request)
        link = self._link
        if self._replaying:
            known = self._node.get(line)
            if known is not None:  # (the answer as written, the requests that came next)
                self._unsent.append(line)
                self._expected.append(known[0])
                self._node = known[1]
                return link.parse(known[0])
            link.write([*self._unsent, line])
            for expected in self._expected:
                got = link.read_line()
                if got != expected:
                    raise link.fail(
                        f"not deterministic: after a reset, the same requests got another "
                        f"answer\n  first: {expected[:300]}\n  now:   {got[:300]}"
                    )
            self._replaying = False
            self._unsent, self._expected = [], []
        else:
            link.write([line])
        raw, answer = link.read_raw()
        while "ask" in answer:
            self._ask(answer)
            raw, answer = link.read_raw()
        if self._recording:
            child: dict[str, Any] = {}
            self._node[line] = (raw, child)
            self._node = child
        return answer

    def _ask(self, ask: dict[str, Any]) -> None:
        if ask.get("ask") != "transit" or self._network is None:
            raise self._link.fail(f"it asked {ask.get('ask')!r}, which nobody asks it for here")
        self._effects(ask.get("effects"), self._call_now, [])
        env = self._msgs.get(ask.get("msg"))  # type: ignore[arg-type]
        if env is None:
            raise self._link.fail(f"it asked about message {ask.get('msg')!r}, never sent")
        fate = self._network.transit(env)
        choice = {"drop": fate.drop, "delay": fate.delay, "duplicate": fate.duplicate}
        self._link.write([_encode({"transit": choice})])

    def _operation(self, op: str, args: dict[str, Any], call: _Call | None = None) -> Any:
        """Perform one operation: send it, play back its effects, return or raise."""
        missing = op_features(op, args) - self.features
        if missing:
            raise PortError(
                f"port {self._factory.command!r} lacks {', '.join(sorted(missing))}, "
                f"which {op} {json.dumps(args, sort_keys=True)} needs",
                2,
            )
        self._reads = {}
        self._call_now = call or _Call()
        answer = self._exchange({"op": op, "t": self.timers.now, **args})
        wakes: list[int] = []
        self._effects(answer.get("effects"), self._call_now, wakes)
        for actor in wakes:
            if self._wake is not None:
                self._wake(actor)
        error = answer.get("error")
        if error is not None:
            raise self._error(error, answer.get("error_fields"))
        return answer.get("result")

    def _error(self, code: Any, fields: Any) -> BrokerError:
        cls = _ERRORS.get(code)
        if cls is None or not isinstance(fields, dict):
            raise self._link.fail(f"error {code!r}, fields {fields!r}: no such error (spec 8.4)")
        try:
            return cls(**fields)
        except TypeError as err:
            raise self._link.fail(f"error {code!r}: {err} (spec 8.4)") from None

    # -- effects -------------------------------------------------------------------------------

    def _effects(self, effects: Any, call: _Call, wakes: list[int]) -> None:
        if not isinstance(effects, list):
            raise self._link.fail("its answer has no list `effects`")
        for effect in effects:
            if not isinstance(effect, dict):
                raise self._link.fail(f"effect {effect!r} is not an object")
            if "ev" in effect:
                self._event(effect, call)
            elif "timer" in effect:
                tid, at = effect["timer"], effect.get("at")
                if not isinstance(at, int | float) or at < self.timers.now:
                    raise self._link.fail(f"timer {tid!r} at {at!r}, before now {self.timers.now}")
                handle = self.timers.call_at(float(at), partial(self._fire, tid))
                self._handles[tid] = handle
            elif "cancel" in effect:
                gone = self._handles.pop(effect["cancel"], None)
                if gone is not None:
                    gone.cancel()
            elif "wake" in effect:
                wakes.append(effect["wake"])
            else:
                raise self._link.fail(f"effect {effect!r} is none of ev, timer, cancel, wake")

    def _event(self, effect: dict[str, Any], call: _Call) -> None:
        fields = dict(effect)
        name = fields.pop("ev")
        if name not in EVENT_FIELDS:
            raise self._link.fail(f"event {name!r} is not an event of spec 9.4")
        for key in _NUMBERS:
            value = fields.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                fields[key] = float(value)
        try:
            self._track(name, fields, call)
        except (KeyError, TypeError, ValueError) as err:
            raise self._link.fail(f"event {effect!r}: {err!r} (spec 9.4)") from None
        if self._emit is not None:
            self._emit(name, fields)
        if name == "resolve":
            self._resolved(fields)

    def _track(self, name: str, f: dict[str, Any], call: _Call) -> None:
        """Keep what the driver will ask of a message or request the pipe does not carry."""
        if name == "register":
            self._ids[f["actor"]] = int(f["addresses"][0][3:])
        elif name == "send":
            msg = f["msg"]
            original = f.get("copy_of") or f.get("dup_of")
            source = self._msgs.get(original) if original is not None else None
            payload = source.payload if source is not None else call.payload
            high = source.high if source is not None else call.high
            sender = None if f["from"] is None else self._ids.get(f["from"])
            to = Address.parse(f["to"]) if f["to"] is not None else _NOWHERE
            self._msgs[msg] = Envelope(
                msg, sender, to, f["kind"], payload, f.get("corr"), f.get("deadline"), high,
                f.get("key"), f.get("dup_of"), f.get("copy_of"),
            )  # fmt: skip
            if f["kind"] == "request" and source is None and call.request is not None:
                self._requests[f["corr"]] = call.request
                call.request = None
        elif name in ("reject", "dead_letter"):
            self._msgs.pop(f["msg"], None)

    def _resolved(self, f: dict[str, Any]) -> None:
        corr, kind = f["corr"], f["outcome"]
        request = self._requests.pop(corr, None)
        if request is None:
            return
        now = self.timers.now
        reply = self._msgs.pop(f["msg"], None) if f["msg"] is not None else None
        if kind == "replied":
            self.latencies.append(now - request.issued_at)
        if request.on_outcome is None:
            return
        error: BrokerError | None = None
        if kind == "timed_out":
            error = RequestTimeout(request.to, request.timeout)
        elif kind == "cancelled":
            error = NoResponse(corr)
        # A `failed` outcome's delivery error is not on the pipe (docs/port-protocol.md).
        request.on_outcome(
            Outcome(
                corr,
                kind,
                request.requester,
                request.issued_at,
                now,
                reply.payload if reply is not None else None,
                reply.msg if reply is not None else None,
                error,
            )
        )

    def _fire(self, tid: int) -> None:
        self._handles.pop(tid, None)
        self._operation("fire", {"timer": tid})

    # -- operations ----------------------------------------------------------------------------

    def register(
        self,
        name: str | None = None,
        *,
        capacity: int | None = None,
        backpressure: Backpressure = "reject",
        send_timeout: float | None = None,
        services: Iterable[str] = (),
        pools: Iterable[str] = (),
    ) -> int:
        args = register_args(name, capacity, backpressure, send_timeout, services, pools)
        result: int = self._operation("register", args)
        return result

    def unregister(self, actor_id: int, reason: str = "unregistered") -> None:
        self._operation("unregister", {"actor": actor_id, "reason": reason})

    def stop(self, actor_id: int, reason: str = "crashed") -> None:
        self._operation("stop", {"actor": actor_id, "reason": reason})

    def restart(self, actor_id: int) -> None:
        self._operation("start", {"actor": actor_id})

    def create_pool(self, name: str, strategy: str = "round_robin") -> None:
        self._operation("create_pool", {"pool": name, "strategy": strategy})

    def join_pool(self, pool: str, actor_id: int) -> None:
        self._operation("join", {"pool": pool, "actor": actor_id})

    def leave_pool(self, pool: str, actor_id: int) -> None:
        self._operation("leave", {"pool": pool, "actor": actor_id})

    def provide(self, service: str, actor_id: int) -> None:
        self._operation("provide", {"service": service, "actor": actor_id})

    def subscribe(self, topic: str, actor_id: int) -> None:
        self._operation("subscribe", {"topic": topic, "actor": actor_id})

    def unsubscribe(self, topic: str, actor_id: int) -> None:
        self._operation("unsubscribe", {"topic": topic, "actor": actor_id})

    def resolve(self, to: Address | str, key: str | None = None) -> int:
        raise NotImplementedError("resolve is not in the port protocol (it is not an operation)")

    def send(
        self,
        sender: int | None,
        to: Address | str,
        payload: Any,
        *,
        priority: Priority = "normal",
        key: str | None = None,
        ttl: float | None = None,
        timestamp: float | None = None,
        retry: RetryPolicy | None = None,
        send_timeout: float | None = None,
    ) -> int:
        args = send_args(sender, to, priority, key, ttl, timestamp, retry, send_timeout)
        result: int = self._operation("send", args, _Call(payload, priority == "high"))
        return result

    def request(
        self,
        sender: int,
        to: Address | str,
        payload: Any,
        *,
        timeout: float,
        priority: Priority = "normal",
        key: str | None = None,
        retry: RetryPolicy | None = None,
        on_outcome: OnOutcome | None = None,
        send_timeout: float | None = None,
    ) -> int:
        args = request_args(sender, to, timeout, priority, key, retry, send_timeout)
        pending = _Request(sender, self.timers.now, timeout, str(to), on_outcome)
        result: int = self._operation("request", args, _Call(payload, priority == "high", pending))
        return result

    def reply(self, sender: int | None, corr: int, payload: Any) -> int:
        result: int = self._operation("reply", {"from": sender, "corr": corr}, _Call(payload))
        return result

    def cancel(self, corr: int) -> bool:
        result: bool = self._operation("cancel", {"corr": corr})
        return result

    def dequeue(self, actor_id: int) -> Envelope[Any] | None:
        msg = self._operation("dequeue", {"actor": actor_id})
        if msg is None:
            return None
        env = self._msgs.pop(msg, None)
        if env is None:
            raise self._link.fail(f"dequeue returned message {msg!r}, which it never sent")
        return env

    def done(self, actor_id: int) -> None:
        self._operation("done", {"actor": actor_id})

    # -- reads (spec 9.2): one request each, remembered until the next operation ---------------

    def _read(self, request: dict[str, Any], key: str) -> Any:
        line = _encode(request)
        if line not in self._reads:
            answer = self._exchange(request)
            if key not in answer:
                raise self._link.fail(f"its answer to {request['op']} has no {key!r}")
            self._reads[line] = answer[key]
        return self._reads[line]

    def outcome(self, corr: int) -> OutcomeKind | None:
        result: OutcomeKind | None = self._read({"op": "outcome", "corr": corr}, "outcome")
        return result

    def depth(self, actor_id: int) -> int:
        result: int = self._read({"op": "depth", "actor": actor_id}, "depth")
        return result

    def load(self, actor_id: int) -> int:
        result: int = self._read({"op": "load", "actor": actor_id}, "load")
        return result

    def pending_requests(self) -> list[int]:
        return list(self._read({"op": "pending"}, "pending"))

    def stats(self) -> Stats:
        s = self._read({"op": "stats"}, "stats")
        try:
            return Stats(
                s["sent"], s["rejected"], s["delivered"], s["dead_lettered"], s["retries"],
                dict(s["dead_letters"]), {k: s["outcomes"].get(k, 0) for k in _OUTCOMES},
                s["actors"], dict(s["pools"]), dict(s["topics"]),
            )  # fmt: skip
        except (KeyError, TypeError, AttributeError) as err:
            raise self._link.fail(f"its stats {s!r} lack {err} (docs/port-protocol.md)") from None
