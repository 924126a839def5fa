"""The reference broker behind the port protocol: `brokerlab port-serve` (docs/port-protocol.md).

It is the other end of `PortBroker`: it reads request lines on standard input, performs each on
a `broker.Broker` whose clock, timers, network and listener are the protocol's, and writes the
answer. The test suite runs every golden vector through `PortFactory` against it and requires
byte-identical traces to the in-process broker, so the protocol and the adapter are checked end
to end, and a porter has a working example of the other side.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import IO, Any

from broker import (
    IMMEDIATE,
    Broker,
    BrokerError,
    Envelope,
    RetryPolicy,
    SplitMix64,
    Transit,
)
from model import SPEC_VERSION
from sim.port._link import FEATURES, PROTOCOL

NAME = "reference"  # and it has every feature (docs/port-protocol.md, Features)


class _Timer:
    """A timer the broker asked for: an effect `{"timer": id, "at": t}`; cancel adds one."""

    __slots__ = ("id", "server")

    def __init__(self, server: Server, tid: int) -> None:
        self.server, self.id = server, tid

    def cancel(self) -> None:
        if self.server.callbacks.pop(self.id, None) is not None:
            self.server.effects.append({"cancel": self.id})


class Server:
    """One protocol session: `handle(request) -> answer`, with `ask` for the network's choices."""

    def __init__(self, ask: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.ask = ask
        self.now = 0.0
        self.effects: list[dict[str, Any]] = []
        self.callbacks: dict[int, Callable[[], None]] = {}
        self.next_timer = 1
        self.broker: Broker[None] | None = None

    # -- what the broker is given ----------------------------------------------------------------

    def call_at(self, when: float, callback: Callable[[], None]) -> _Timer:
        tid = self.next_timer
        self.next_timer += 1
        self.callbacks[tid] = callback
        self.effects.append({"timer": tid, "at": when})
        return _Timer(self, tid)

    def _listen(self, name: str, fields: dict[str, Any]) -> None:
        self.effects.append({"ev": name, **fields})

    def _wake(self, actor: int) -> None:
        self.effects.append({"wake": actor})

    def transit(self, env: Envelope[Any]) -> Transit:
        effects, self.effects = self.effects, []
        choice = self.ask({"ask": "transit", "msg": env.msg, "effects": effects})["transit"]
        if not choice["drop"] and choice["delay"] == 0.0 and choice["duplicate"] is None:
            return IMMEDIATE
        return Transit(choice["drop"], float(choice["delay"]), choice["duplicate"])

    # -- requests ----------------------------------------------------------------------------------

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "hello":
            return {
                "ok": True,
                "protocol": PROTOCOL,
                "spec_version": SPEC_VERSION,
                "name": NAME,
                "features": list(FEATURES),
            }
        if op == "reset":
            self.callbacks.clear()
            self.next_timer = 1
            self.broker = Broker(
                self,  # the clock: `now` and `call_at`
                SplitMix64(int(request["seed"])),
                listener=self._listen,
                network=self if request["transit"] else None,
                wake=self._wake,
            )
            return {"ok": True}
        b = self.broker
        if b is None:
            return {"ok": False, "problem": f"{op!r} before reset"}
        read = _READS.get(op)  # type: ignore[arg-type]
        if read is not None:
            try:
                return {"ok": True, **read(b, request)}
            except BrokerError as err:  # a read of an actor that is not registered
                return {"ok": False, "problem": f"{op}: {err.code}: {err}"}
        perform = _OPERATIONS.get(op)  # type: ignore[arg-type]
        if perform is None and op != "fire":
            return {"ok": False, "problem": f"no operation {op!r}"}
        self.now = request["t"]
        self.effects = []
        try:
            if perform is None:  # fire: run the broker's timer
                self.callbacks.pop(request["timer"])()
                result: Any = None
            else:
                result = perform(b, request)
        except BrokerError as err:
            return {
                "ok": True,
                "result": None,
                "error": err.code,
                "error_fields": err.fields,
                "effects": self.effects,
            }
        if isinstance(result, Envelope):
            result = result.msg
        return {"ok": True, "result": result, "error": None, "effects": self.effects}


def _policy(spec: dict[str, Any] | None) -> RetryPolicy | None:
    return None if spec is None else RetryPolicy(**spec)


Request = dict[str, Any]
# Every operation but `fire`, which runs the broker's timer (Server.handle).
_OPERATIONS: dict[str, Callable[[Broker[None], Request], Any]] = {
    "register": lambda b, r: b.register(
        r["name"],
        capacity=r["capacity"],
        backpressure=r["backpressure"],
        send_timeout=r["send_timeout"],
        services=r["services"],
        pools=r["pools"],
    ),
    "unregister": lambda b, r: b.unregister(r["actor"], r["reason"]),
    "stop": lambda b, r: b.stop(r["actor"], r["reason"]),
    "start": lambda b, r: b.restart(r["actor"]),
    "create_pool": lambda b, r: b.create_pool(r["pool"], r["strategy"]),
    "join": lambda b, r: b.join_pool(r["pool"], r["actor"]),
    "leave": lambda b, r: b.leave_pool(r["pool"], r["actor"]),
    "provide": lambda b, r: b.provide(r["service"], r["actor"]),
    "subscribe": lambda b, r: b.subscribe(r["topic"], r["actor"]),
    "unsubscribe": lambda b, r: b.unsubscribe(r["topic"], r["actor"]),
    "send": lambda b, r: b.send(
        r["from"],
        r["to"],
        None,
        priority=r["priority"],
        key=r["key"],
        ttl=r["ttl"],
        timestamp=r["timestamp"],
        retry=_policy(r["retry"]),
        send_timeout=r["send_timeout"],
    ),
    "request": lambda b, r: b.request(
        r["from"],
        r["to"],
        None,
        timeout=r["timeout"],
        priority=r["priority"],
        key=r["key"],
        retry=_policy(r["retry"]),
        send_timeout=r["send_timeout"],
    ),
    "reply": lambda b, r: b.reply(r["from"], r["corr"], None),
    "cancel": lambda b, r: b.cancel(r["corr"]),
    "dequeue": lambda b, r: b.dequeue(r["actor"]),
    "done": lambda b, r: b.done(r["actor"]),
}


def _stats(b: Broker[None], r: Request) -> dict[str, Any]:
    s = b.stats()
    return {
        "stats": {
            "sent": s.sent,
            "rejected": s.rejected,
            "delivered": s.delivered,
            "dead_lettered": s.dead_lettered,
            "retries": s.retries,
            "dead_letters": dict(s.dead_letters),
            "outcomes": dict(s.outcomes),
            "actors": s.actors,
            "pools": dict(s.pools),
            "topics": dict(s.topics),
        }
    }


_READS: dict[str, Callable[[Broker[None], Request], dict[str, Any]]] = {
    "stats": _stats,
    "pending": lambda b, r: {"pending": b.pending_requests()},
    "outcome": lambda b, r: {"outcome": b.outcome(r["corr"])},
    "depth": lambda b, r: {"depth": b.depth(r["actor"])},
    "load": lambda b, r: {"load": b.load(r["actor"])},
}


def serve(stdin: IO[str], stdout: IO[str]) -> int:
    """Answer requests until standard input ends (exit status 0)."""

    def write(answer: dict[str, Any]) -> None:
        stdout.write(json.dumps(answer, separators=(",", ":")) + "\n")
        stdout.flush()

    def ask(question: dict[str, Any]) -> dict[str, Any]:
        write(question)
        answer: dict[str, Any] = json.loads(stdin.readline())
        return answer

    server = Server(ask)
    for line in stdin:
        try:
            request = json.loads(line)
            answer = server.handle(request)
        except (ValueError, KeyError, TypeError) as err:
            answer = {"ok": False, "problem": f"bad request {line.strip()[:200]!r}: {err!r}"}
        write(answer)
    return 0


def main() -> int:
    return serve(sys.stdin, sys.stdout)
