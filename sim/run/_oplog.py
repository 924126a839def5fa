"""The operation/effect log (docs/trace-format.md, version 2): what a run asked of the broker.

A trace records, in order, every call the driver made into the broker (an `op` line with its
arguments and its result or error code), every choice the environment made during it (a
`choice` line: what the network did to a message), and the events the broker emitted for it
(`ev` lines). A broker timer running is an operation too (`op: fire`). So the trace checker
replays the log operation by operation against the model and compares events exactly: it
never has to guess which operation caused an event.

`LoggedBroker` wraps a broker and logs every call; `LoggedTimers` wraps the clock the broker is
given and logs each of its timers as it runs. A driver told to wake an actor (`wake`) may act
on it at once, inside the operation that woke it (the broker wakes only after the operation's
last event, spec 1.6): such a nested operation is logged right after the one that woke it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import partial
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from broker import (
    Address,
    Backpressure,
    BrokerError,
    Envelope,
    MessageBroker,
    OnOutcome,
    OutcomeKind,
    Priority,
    RetryPolicy,
    Stats,
    TimerHandle,
    Timers,
)
from sim.run._scheduler import Scheduler
from sim.run._trace import TraceWriter

P = TypeVar("P")
T = TypeVar("T")


Line = tuple[str, str, dict[str, Any]]
_OPEN: Line = ("op", "", {})


class OpLog:
    """Groups each operation's lines: the `op` line (with its result) first, then, in order, the
    choices and events it caused, and the operations nested in it (each a group of its own).
    Lines outside an operation (`fault`) are written at once."""

    __slots__ = ("clock", "frames", "held", "writer")

    def __init__(self, writer: TraceWriter, clock: Scheduler) -> None:
        self.writer = writer
        self.clock = clock
        self.frames: list[list[Line]] = []  # the open operations' lines, outermost first
        self.held = 0  # lines not yet written, open operations' `op` lines included

    def line(self, tag: str, name: str, fields: dict[str, Any]) -> int:
        """Log one line; return its `seq` (see `last_seq`)."""
        if self.frames:
            self.frames[-1].append((tag, name, fields))
            self.held += 1
            return self.writer.seq + self.held
        self.writer.write(self.clock.now, tag, name, fields)
        return self.writer.seq

    def last_seq(self) -> int:
        """The `seq` the line written last will have (an operation's lines are numbered when
        the outermost one returns: each `op` line before its own lines)."""
        return self.writer.seq + self.held

    def call(self, op: str, args: dict[str, Any], fn: Callable[[], T]) -> T:
        """Run one operation, then log its `op` line and everything it caused. `args` becomes
        the `op` line: a dict of this call's own, which gets its `result` and `error`."""
        self.frames.append([_OPEN])  # the `op` line's place, filled when it returns
        self.held += 1
        try:
            value = fn()
        except BrokerError as err:
            self._close(op, {**args, "result": None, "error": err.code, "error_fields": err.fields})
            raise
        except BaseException:
            self._close(op, {**args, "result": None, "error": "interrupted"})
            raise
        # `args` is this call's own dict: completed in place, not copied (the hot path)
        args["result"] = value.msg if isinstance(value, Envelope) else value
        args["error"] = None
        self._close(op, args)
        return value

    def _close(self, op: str, fields: dict[str, Any]) -> None:
        lines = self.frames.pop()
        lines[0] = ("op", op, fields)
        if self.frames:  # nested: a group of the operation that woke it
            self.frames[-1] += lines
            return
        self.held = 0
        self.writer.write_all(self.clock.now, lines)

    def end(self, how: str, stats: Stats, pending: list[int]) -> None:
        """The last line: how the run ended, with the broker's counters and pending requests."""
        sent, rejected, delivered, dead_lettered, retries = stats.counters()
        counters = {
            "sent": sent,
            "rejected": rejected,
            "delivered": delivered,
            "dead_lettered": dead_lettered,
            "retries": retries,
        }
        self.writer.write(
            self.clock.now, "end", how, {"counters": counters, "pending": list(pending)}
        )


def retry_fields(retry: RetryPolicy | None) -> dict[str, Any] | None:
    if retry is None:
        return None
    return {
        "max_attempts": retry.max_attempts,
        "backoff": retry.backoff,
        "multiplier": retry.multiplier,
        "max_backoff": retry.max_backoff,
        "jitter": retry.jitter,
    }


# The arguments of the `op` lines that carry more than ids (docs/trace-format.md, Operations).
# The trace (LoggedBroker) and the port protocol (sim/port, whose requests are op lines) both
# build them here, so the two vocabularies cannot part.


def register_args(
    name: str | None,
    capacity: int | None,
    backpressure: Backpressure,
    send_timeout: float | None,
    services: Iterable[str],
    pools: Iterable[str],
) -> dict[str, Any]:
    return {
        "name": name,
        "capacity": capacity,
        "backpressure": backpressure,
        "send_timeout": send_timeout,
        "services": list(services),
        "pools": list(pools),
    }


def send_args(
    sender: int | None,
    to: Address | str,
    priority: Priority,
    key: str | None,
    ttl: float | None,
    timestamp: float | None,
    retry: RetryPolicy | None,
    send_timeout: float | None,
) -> dict[str, Any]:
    return {
        "from": sender,
        "to": str(to),
        "priority": priority,
        "key": key,
        "ttl": ttl,
        "timestamp": timestamp,
        "retry": retry_fields(retry),
        "send_timeout": send_timeout,
    }


def request_args(
    sender: int,
    to: Address | str,
    timeout: float,
    priority: Priority,
    key: str | None,
    retry: RetryPolicy | None,
    send_timeout: float | None,
) -> dict[str, Any]:
    return {
        "from": sender,
        "to": str(to),
        "timeout": timeout,
        "priority": priority,
        "key": key,
        "retry": retry_fields(retry),
        "send_timeout": send_timeout,
    }


class LoggedTimers:
    """The clock as the broker sees it: each broker timer is an operation (`op: fire`)."""

    __slots__ = ("clock", "log")

    def __init__(self, clock: Timers, log: OpLog) -> None:
        self.clock, self.log = clock, log

    if TYPE_CHECKING:

        @property
        def now(self) -> float: ...

    else:
        now = property(attrgetter("clock.now"))  # C code: read by every operation

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        return self.clock.call_at(when, partial(self.log.call, "fire", {}, callback))

    def call_at_lazily(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        call: Callable[[float, Callable[[], None]], TimerHandle] = getattr(
            self.clock, "call_at_lazily", self.clock.call_at
        )
        return call(when, partial(self.log.call, "fire", {}, callback))


class LoggedBroker(Generic[P]):
    """A `MessageBroker` that logs every call into it (the reads are not operations)."""

    def __init__(self, inner: MessageBroker[P], log: OpLog) -> None:
        self.inner, self.log = inner, log

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
        call = partial(
            self.inner.register, name, capacity=capacity, backpressure=backpressure,
            send_timeout=send_timeout, services=args["services"], pools=args["pools"],
        )  # fmt: skip
        return self.log.call("register", args, call)

    def unregister(self, actor_id: int, reason: str = "unregistered") -> None:
        args = {"actor": actor_id, "reason": reason}
        self.log.call("unregister", args, lambda: self.inner.unregister(actor_id, reason))

    def stop(self, actor_id: int, reason: str = "crashed") -> None:
        args = {"actor": actor_id, "reason": reason}
        self.log.call("stop", args, lambda: self.inner.stop(actor_id, reason))

    def restart(self, actor_id: int) -> None:
        self.log.call("start", {"actor": actor_id}, lambda: self.inner.restart(actor_id))

    def create_pool(self, name: str, strategy: str = "round_robin") -> None:
        args = {"pool": name, "strategy": strategy}
        self.log.call("create_pool", args, lambda: self.inner.create_pool(name, strategy))

    def join_pool(self, pool: str, actor_id: int) -> None:
        args = {"pool": pool, "actor": actor_id}
        self.log.call("join", args, lambda: self.inner.join_pool(pool, actor_id))

    def leave_pool(self, pool: str, actor_id: int) -> None:
        args = {"pool": pool, "actor": actor_id}
        self.log.call("leave", args, lambda: self.inner.leave_pool(pool, actor_id))

    def provide(self, service: str, actor_id: int) -> None:
        args = {"service": service, "actor": actor_id}
        self.log.call("provide", args, lambda: self.inner.provide(service, actor_id))

    def subscribe(self, topic: str, actor_id: int) -> None:
        args = {"topic": topic, "actor": actor_id}
        self.log.call("subscribe", args, lambda: self.inner.subscribe(topic, actor_id))

    def unsubscribe(self, topic: str, actor_id: int) -> None:
        args = {"topic": topic, "actor": actor_id}
        self.log.call("unsubscribe", args, lambda: self.inner.unsubscribe(topic, actor_id))

    def resolve(self, to: Address | str, key: str | None = None) -> int:
        raise NotImplementedError("resolve moves a round-robin cursor and is not loggable")

    def send(
        self,
        sender: int | None,
        to: Address | str,
        payload: P,
        *,
        priority: Priority = "normal",
        key: str | None = None,
        ttl: float | None = None,
        timestamp: float | None = None,
        retry: RetryPolicy | None = None,
        send_timeout: float | None = None,
    ) -> int:
        args = send_args(sender, to, priority, key, ttl, timestamp, retry, send_timeout)
        call = partial(
            self.inner.send, sender, to, payload, priority=priority, key=key, ttl=ttl,
            timestamp=timestamp, retry=retry, send_timeout=send_timeout,
        )  # fmt: skip
        return self.log.call("send", args, call)

    def request(
        self,
        sender: int,
        to: Address | str,
        payload: P,
        *,
        timeout: float,
        priority: Priority = "normal",
        key: str | None = None,
        retry: RetryPolicy | None = None,
        on_outcome: OnOutcome | None = None,
        send_timeout: float | None = None,
    ) -> int:
        args = request_args(sender, to, timeout, priority, key, retry, send_timeout)
        call = partial(
            self.inner.request, sender, to, payload, timeout=timeout, priority=priority, key=key,
            retry=retry, on_outcome=on_outcome, send_timeout=send_timeout,
        )  # fmt: skip
        return self.log.call("request", args, call)

    def reply(self, sender: int | None, corr: int, payload: P) -> int:
        args = {"from": sender, "corr": corr}
        return self.log.call("reply", args, lambda: self.inner.reply(sender, corr, payload))

    def cancel(self, corr: int) -> bool:
        return self.log.call("cancel", {"corr": corr}, lambda: self.inner.cancel(corr))

    def dequeue(self, actor_id: int) -> Envelope[P] | None:
        return self.log.call("dequeue", {"actor": actor_id}, lambda: self.inner.dequeue(actor_id))

    def done(self, actor_id: int) -> None:
        self.log.call("done", {"actor": actor_id}, lambda: self.inner.done(actor_id))

    # -- reads: not operations ---------------------------------------------------------------

    def outcome(self, corr: int) -> OutcomeKind | None:
        return self.inner.outcome(corr)

    def depth(self, actor_id: int) -> int:
        return self.inner.depth(actor_id)

    def load(self, actor_id: int) -> int:
        return self.inner.load(actor_id)

    def stats(self) -> Stats:
        return self.inner.stats()

    def pending_requests(self) -> list[int]:
        return self.inner.pending_requests()

    @property
    def latencies(self) -> Sequence[float]:
        return self.inner.latencies
