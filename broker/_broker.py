"""`Broker`: the in-memory, sans-IO reference broker (docs/spec.md).

The life of a message (spec 4, 5, 7):

    send/request/reply --> [send] --> transit --> arrive --> route --> enqueue --> dequeue
                              |          |          |          |          |           |
                              |      dropped     reply:     failed:   full: reject /  expired:
                              |      (dead)     resolve     retry /   drop / park     dead letter
                              |                 or dead     reject /
                              |                 letter      dead letter

Time comes only from the injected `Timers`, randomness only from the injected `Rng` (spec 1.2:
`SplitMix64` for traces a port can match),
ids only from counters. Observers get every step through the optional `listener`: a
`broker.Events` is told each event's fields as arguments, a plain `listener(name, fields)` gets
them as the dict `Events` builds; with no listener the broker builds no event records at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

from broker._address import Address
from broker._events import Events, Listener
from broker._mailbox import Backpressure, Mailbox
from broker._records import (
    PRIORITIES,
    Envelope,
    Outcome,
    OutcomeKind,
    Priority,
    Stats,
    new_envelope,
)
from broker._registry import Actor, Registry
from broker._retry import RetryPolicy, check_number
from broker._rng import Rng
from broker._timers import TimerHandle, Timers
from broker.errors import (
    ActorNotFound,
    BrokerError,
    InvalidConfig,
    MailboxFull,
    NoResponse,
    RequestTimeout,
    SendTimeout,
)

P = TypeVar("P")
OnOutcome = Callable[[Outcome[Any]], None]

# What became of a correlation id once resolved, one byte per request (spec 5.6).
_FATES: tuple[OutcomeKind, ...] = ("replied", "timed_out", "cancelled", "failed")
_FATE_CODE = {kind: i + 1 for i, kind in enumerate(_FATES)}
_INF = float("inf")
_LATE_REASON = {0: "duplicate_reply", 1: "late_reply", 2: "orphan_reply", 3: "orphan_reply"}


@dataclass(frozen=True, slots=True)
class Transit:
    """What the network does to one message (spec 7.4): lose it, delay it, or copy it."""

    drop: bool = False
    delay: float = 0.0
    duplicate: float | None = None  # delay of a transit duplicate; None: no duplicate


IMMEDIATE = Transit()


class Network(Protocol):
    """Decides each accepted message's transit; the simulator's fault injector is one."""

    def transit(self, env: Envelope[Any]) -> Transit: ...


class _Pending:
    """A request's pending entry (spec 5.1), built by `_new_pending`."""

    __slots__ = (
        "broker", "corr", "deadline", "issued_at", "on_outcome", "requester", "timeout", "timer",
        "to",
    )  # fmt: skip

    broker: Broker[Any]
    corr: int
    requester: Actor
    issued_at: float
    timeout: float
    deadline: float
    to: Address  # for the RequestTimeout an outcome carries (spec 8.4)
    on_outcome: OnOutcome | None
    timer: TimerHandle | None

    def __call__(self) -> None:
        """A pending request is its own timeout timer's callback: no closure, nor bound
        method, per request."""
        self.broker._expire(self.corr)


def _new_pending(
    broker: Broker[Any],
    corr: int,
    requester: Actor,
    issued_at: float,
    timeout: float,
    to: Address,
    on: OnOutcome | None,
) -> _Pending:
    """A pending entry, once per request: without an `__init__`, whose class call CPython 3.11
    runs in a C-level frame of its own (as `new_envelope`)."""
    pending = _Pending()
    pending.broker = broker
    pending.corr = corr
    pending.requester = requester
    pending.issued_at = issued_at
    pending.timeout = timeout
    # rule 1.1, 4.7: a request's deadline is issue time + timeout, one addition
    pending.deadline = issued_at + timeout  # spec 1.1: one addition
    pending.to = to
    pending.on_outcome = on
    pending.timer = None
    return pending


class Broker(Generic[P]):
    """The in-memory implementation of `MessageBroker` (the seed's InMemoryMessageBroker)."""

    def __init__(
        self,
        timers: Timers,
        rng: Rng,
        *,
        listener: Listener | None = None,
        network: Network | None = None,
        wake: Callable[[int], None] | None = None,
    ) -> None:
        self.timers = timers
        # A request's timeout is most likely cancelled before it is due (broker/_timers.py).
        self._call_at_lazily: Callable[[float, Callable[[], None]], TimerHandle] = getattr(
            timers, "call_at_lazily", timers.call_at
        )
        self.rng = rng
        self.registry = Registry(rng)
        # Events go to the listener's methods when it is an `Events`, so the monitors read them
        # without a dict being built; a plain listener gets the dicts `Events` builds.
        self._events: Events | None = (
            listener if isinstance(listener, Events) or listener is None else Events(listener)
        )
        self._network = network
        # Told the actor id when a message was enqueued for an idle actor, so a driver need not
        # poll: at the end of the operation or timer that enqueued it, after its last event, so
        # the driver may act on it at once (spec 1.6).
        self._wake = wake
        self._woken: list[int] = []
        self._next_msg = 1
        self._pending: dict[int, _Pending] = {}
        # Lists, not arrays: `array.append` parses its argument (PyArg_Parse) at every call, once
        # per request here; a list of actor ids takes the same 8 bytes an entry, and the
        # latencies become floats all the same when the summary sorts them.
        self._requester: list[int] = [0]  # corr -> requester id (index 0 unused)
        self._fate = bytearray(1)  # corr -> 0 pending, 1 + index into _FATES once resolved
        # Conservation counters (spec 7.2): accepted = sent - rejected.
        self.sent = self.rejected = self.delivered = self.dead_lettered = 0
        self.retries = 0
        self.dead_letters: dict[str, int] = {}
        self.outcomes: dict[OutcomeKind, int] = dict.fromkeys(_FATES, 0)
        self.latencies: list[float] = []  # issue-to-reply time of every replied request

    # -- registry ----------------------------------------------------------------------------

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
        """Register an actor and return its id (spec 2.6). Raises before changing anything."""
        if send_timeout is not None:
            # rule 2.6, 8.3: the send timeout is a registration's first check
            send_timeout = check_number(send_timeout, "send_timeout", strict=True)
        # rule 2.6: then capacity (4.1), backpressure (4.3), then the registry's checks
        actor = self.registry.add(
            name, Mailbox(capacity, backpressure), send_timeout, services, pools
        )
        if self._events is not None:
            # rule 2.6, 9.4: the addresses in order: id, name, services, pools
            addresses = [f"id:{actor.id}"]
            if name is not None:
                addresses.append(f"name:{name}")
            addresses += [f"service:{s}" for s in actor.services]
            addresses += [f"pool:{p}" for p in actor.pools]
            box = actor.mailbox
            # rule 9.1: the register event
            self._events.register(
                actor.label, name, addresses, box.capacity, box.backpressure, actor.send_timeout
            )
        return actor.id

    def unregister(self, actor_id: int, reason: str = "unregistered") -> None:
        """Remove an actor for good: its mail is dead-lettered, its requests cancelled (2.7)."""
        # rule 2.7: unregistering an unknown actor is ActorNotFound
        actor = self.registry.actor(actor_id)
        if self._events is not None:
            # rule 2.7, 9.1, 9.3: the unregister event, with its reason, comes first
            self._events.unregister(actor.label, reason)
        if actor.alive:
            # rule 2.7, 9.3: then a live actor's shutdown (dead letters, cancellations)
            self._shut(actor)
        # rule 2.7: removed from its name, services, pools and topics
        self.registry.remove(actor)

    def stop(self, actor_id: int, reason: str = "crashed") -> None:
        """Stop an actor but keep its registrations, so it can `restart` (spec 2.8)."""
        actor = self.registry.actor(actor_id)
        if not actor.alive:
            # rule 2.8: stopping a stopped actor changes nothing and emits nothing
            return
        if self._events is not None:
            # rule 2.8, 9.1, 9.3: the stop event, with its reason, before the shutdown
            self._events.stop(actor.label, reason)
        # rule 2.8: a stop does to mail and requests what unregistering does
        self._shut(actor)

    def restart(self, actor_id: int) -> None:
        """Bring a stopped actor back with an empty mailbox (spec 2.8)."""
        actor = self.registry.actor(actor_id)
        if actor.alive:
            # rule 2.8: restarting a live actor changes nothing and emits nothing
            return
        # rule 2.8: restarting makes it live again (its mailbox emptied at stop)
        actor.alive = True
        if self._events is not None:
            # rule 9.1: the start event
            self._events.start(actor.label)

    def create_pool(self, name: str, strategy: str = "round_robin") -> None:
        self.registry.create_pool(name, strategy)
        if self._events is not None:
            # rule 9.1: the create_pool event
            self._events.create_pool(name, strategy)

    def join_pool(self, pool: str, actor_id: int) -> None:
        actor = self.registry.actor(actor_id)
        self.registry.join(pool, actor)
        if self._events is not None:
            # rule 9.1: the join event
            self._events.join(pool, actor.label)

    def leave_pool(self, pool: str, actor_id: int) -> None:
        actor = self.registry.actor(actor_id)
        self.registry.leave(pool, actor)
        if self._events is not None:
            # rule 9.1, 9.3: the leave event, before any orphaned dead letters
            self._events.leave(pool, actor.label)
        shared = self.registry.pools[pool]
        if shared.queue is not None and not shared.any_alive():
            # rule 3.8, 9.3: the last live member left: the shared queue is orphaned
            self._orphaned(shared)  # the last live member left its shared pool (spec 3.8)

    def provide(self, service: str, actor_id: int) -> None:
        actor = self.registry.actor(actor_id)
        self.registry.provide(service, actor)
        if self._events is not None:
            # rule 9.1: the provide event
            self._events.provide(service, actor.label)

    def subscribe(self, topic: str, actor_id: int) -> None:
        """Add the actor to the topic's subscribers, at the end (spec 2.10)."""
        # rule 2.10: the first check: the actor is registered (ActorNotFound)
        actor = self.registry.actor(actor_id)
        self.registry.subscribe(topic, actor)
        if self._events is not None:
            # rule 9.1: the subscribe event
            self._events.subscribe(topic, actor.label)

    def unsubscribe(self, topic: str, actor_id: int) -> None:
        """Remove the actor from the topic's subscribers (spec 2.10)."""
        # rule 2.10: the first check: the actor is registered (ActorNotFound)
        actor = self.registry.actor(actor_id)
        self.registry.unsubscribe(topic, actor)
        if self._events is not None:
            # rule 9.1: the unsubscribe event
            self._events.unsubscribe(topic, actor.label)

    def resolve(self, to: Address | str, key: str | None = None) -> int:
        """The id of the actor a message to `to` would reach now (advances round robin)."""
        return self.registry.resolve(_address(to), key).id

    def label(self, actor_id: int) -> str:
        return self.registry.actor(actor_id).label

    # -- sending -----------------------------------------------------------------------------

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
        """Send a one-way message and return its id (spec 4, 6).

        Raises the routing or backpressure error when the message is refused during the call
        and no retry is scheduled; a refused message is never counted as accepted (spec 7.3).
        """
        # rule 7.3: misuse checks, in order: the sender (ActorNotFound) first
        src = self._sender(sender)
        deadline = None
        if ttl is not None:
            # rule 4.7: a TTL's timestamp defaults to the send time
            stamp = self.timers.now if timestamp is None else timestamp
            # rule 1.1, 4.7, 7.3, 8.3: a TTL's deadline is timestamp + ttl, one addition
            deadline = stamp + check_number(ttl, "ttl", strict=True)
        # rule 7.3: then the address (2.3), the priority and the send timeout
        address = to if type(to) is Address else _address(to)
        high = False if priority == "normal" else _high(priority)
        wait = None if send_timeout is None else _timeout(send_timeout)
        # rule 1.3, 7.3: a message id, consumed only once the misuse checks pass
        msg = self._next_msg
        self._next_msg = msg + 1
        env = new_envelope(msg, sender, address, "tell", payload, None, deadline, high, key)
        if src is not None:
            src.sent += 1
        try:
            self._send(env, retry, wait)
        finally:
            if self._woken:
                # rule 1.6: wakes go out at the end of the operation
                self._flush_wakes()
        return msg

    def publish(self, sender: int | None, topic: str, payload: P, **options: Any) -> int:
        """Send to every live subscriber of `topic` (spec 3.9): `send` to `topic:<topic>`."""
        # rule 3.9: publish is a send to topic:<topic>
        return self.send(sender, Address("topic", topic), payload, **options)

    def publish_request(
        self, sender: int, topic: str, payload: P, *, timeout: float, **options: Any
    ) -> int:
        """A request to every live subscriber of `topic`: the first reply ends it (spec 3.9)."""
        # rule 3.9, 5.1: a request to topic:<topic>; the entry exists first
        return self.request(sender, Address("topic", topic), payload, timeout=timeout, **options)

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
        """Issue a request and return its correlation id (spec 5).

        The pending entry exists before the request is routed. The request ends in exactly one
        outcome, reported once to `on_outcome`; this call does not raise for delivery errors
        (they end the request as `failed`), only for misuse (bad arguments, unknown sender).
        """
        # rule 5.10: the request's checks, in order: the timeout first
        if not (type(timeout) is float and 0.0 < timeout < _INF):  # the common case, fast
            # rule 5.10, 8.3: a timeout not a finite number > 0 is InvalidConfig
            timeout = check_number(timeout, "timeout", strict=True)
        # rule 5.10: then the address, the priority, the send timeout
        address = to if type(to) is Address else _address(to)
        high = False if priority == "normal" else _high(priority)
        wait = None if send_timeout is None else _timeout(send_timeout)
        # rule 5.10: then the requester
        requester = self.registry.actors.get(sender)
        if requester is None or not requester.alive:
            # rule 5.10, 8.4: an unknown or stopped requester is ActorNotFound
            raise ActorNotFound(f"id:{sender}")
        # rule 1.3, 5.2: the next correlation id from its counter
        corr = len(self._fate)
        self._fate.append(0)
        self._requester.append(sender)
        # rule 5.1: the pending entry (corr, requester, issue time, deadline)
        pending = _new_pending(self, corr, requester, self.timers.now, timeout, address, on_outcome)
        deadline = pending.deadline
        # rule 1.4, 5.1: pending requests kept in insertion (issue) order
        self._pending[corr] = requester.pending[corr] = pending
        # rule 1.1, 5.1: the timeout timer exists before the request is routed
        pending.timer = self._call_at_lazily(deadline, pending)
        # rule 1.3: the request message's id from the message counter
        msg = self._next_msg
        self._next_msg = msg + 1
        env = new_envelope(msg, sender, address, "request", payload, corr, deadline, high, key)
        requester.sent += 1
        try:
            # rule 5.1: only now is the request sent and routed
            self._send(env, retry, wait)
        finally:
            if self._woken:
                # rule 1.6: wakes go out at the end of the operation
                self._flush_wakes()
        return corr

    def reply(self, sender: int | None, corr: int, payload: P) -> int:
        """Answer request `corr`; returns the reply's message id (spec 5.4, 5.5)."""
        # rule 5.4: any registered actor, or the outside world, may reply
        if sender is not None and sender not in self.registry.actors:
            # rule 5.4, 8.4: a reply from an unregistered actor id is ActorNotFound
            raise ActorNotFound(f"id:{sender}")
        pending = self._pending.get(corr)
        if pending is not None:
            # rule 5.4: a reply is addressed to id:<requester>
            to = pending.requester.address
        else:
            # rule 5.4: an ended request's reply still goes to its requester's id
            requester = self._requester[corr] if 0 < corr < len(self._fate) else 0
            # rule 5.4: to null when the correlation id was never issued
            to = Address.id(requester) if requester else None
        # rule 1.3: the reply's message id from the message counter
        msg = self._next_msg
        self._next_msg = msg + 1
        env = new_envelope(msg, sender, to, "reply", payload, corr)  # type: ignore[arg-type]
        self._send(env, None, None)
        return msg

    def cancel(self, corr: int) -> bool:
        """Cancel a pending request; False when it had already ended (spec 5.7)."""
        pending = self._pending.get(corr)
        if pending is None:
            # rule 5.7: cancelling an ended or unknown request changes nothing: False
            return False
        # rule 5.7: cancelling a pending request ends it cancelled
        self._resolve(pending, "cancelled")
        return True

    def outcome(self, corr: int) -> OutcomeKind | None:
        """How request `corr` ended, or None while it is pending or unknown."""
        fate = self._fate[corr] if 0 < corr < len(self._fate) else 0
        # rule 5.3: the one outcome a request ended with
        return _FATES[fate - 1] if fate else None

    # -- the actor's side --------------------------------------------------------------------

    def dequeue(self, actor_id: int) -> Envelope[P] | None:
        """Hand the actor its next message, dead-lettering expired ones on the way (spec 4.7).

        The actor counts as busy with the returned message (its load includes it) until it
        calls `done` or dequeues again.
        """
        actor = self.registry.actors.get(actor_id)
        if actor is None:
            # rule 8.4: a dequeue by an unknown actor id is ActorNotFound
            raise ActorNotFound(f"id:{actor_id}")
        # rule 3.4: dequeuing again ends the work on the last message
        actor.busy = 0
        if not actor.alive:
            # rule 4.8: a dequeue by a stopped actor returns nothing
            return None
        box = actor.mailbox
        while True:
            # rule 4.5: the own mailbox in dequeue order (high, then normal); a shared pool's
            # member has none of its own, usually: no call then (the hot path of M/M/c)
            env = box.pop() if box.size else None
            if env is None:
                # rule 3.8: own mailbox empty: the oldest message of the first shared pool (in
                # join order) that has one (a loop here, not a call: the M/M/c hot path)
                for pool in actor.shared:
                    env = pool.queue.mailbox.pop()  # type: ignore[union-attr]
                    if env is not None:
                        break
                else:
                    return None
            elif box.parked:
                # rule 4.4, 9.3: the freed slot goes to the oldest parked message
                self._unpark(actor)
            # rule 4.7: at dequeue, now >= deadline is expired
            if env.deadline is not None and self.timers.now >= env.deadline:
                # rule 4.7, 7.5: an expired message is dead-lettered, never handed over
                self._dead_letter(env, "expired", actor)
                continue
            # rule 3.4: the actor works on the message it dequeued (its load)
            actor.busy = 1
            actor.delivered += 1
            # rule 7.1, 7.2: dequeued by its actor: delivered
            self.delivered += 1
            if self._events is not None:
                # rule 9.1: the dequeue event
                self._events.dequeue(env.msg, actor.label)
            return env

    def done(self, actor_id: int) -> None:
        """The actor finished the message it dequeued last."""
        # rule 3.4: done: the actor no longer works on a message
        self.registry.actor(actor_id).busy = 0

    def depth(self, actor_id: int) -> int:
        return self.registry.actor(actor_id).mailbox.size

    def load(self, actor_id: int) -> int:
        return self.registry.actor(actor_id).load

    def pending_requests(self) -> list[int]:
        # rule 9.2: pending correlation ids in increasing order
        return sorted(self._pending)

    def stats(self) -> Stats:
        # rule 7.2, 9.2: a snapshot of the counters and of what is registered
        return Stats(
            self.sent,
            self.rejected,
            self.delivered,
            self.dead_lettered,
            self.retries,
            dict(self.dead_letters),  # a reason is counted when it first happens: never 0
            dict(self.outcomes),
            len(self.registry.actors),
            {name: len(pool.members) for name, pool in self.registry.pools.items()},
            {name: len(subs) for name, subs in self.registry.topics.items()},
        )

    @property
    def accepted(self) -> int:
        # rule 7.2: accepted = sent - rejected
        return self.sent - self.rejected

    @property
    def in_flight(self) -> int:
        # rule 7.2: in flight = accepted - delivered - dead-lettered
        return self.accepted - self.delivered - self.dead_lettered

    # -- the pipeline ------------------------------------------------------------------------

    def _send(self, env: Envelope[Any], retry: RetryPolicy | None, wait: float | None) -> None:
        # Timers get a `partial`, not a lambda: a lambda would make `self` and `env` cells of
        # every call of this function, the path of every message.
        # rule 7.2: every message sent counts in sent
        self.sent += 1
        events = self._events
        if events is not None:
            # rule 9.1, 9.3, 9.4: the send event comes first (`_trace_send`, inline: every
            # message is sent here)
            sender = None if env.sender is None else self.registry.actors.get(env.sender)
            to = env.to
            events.send(
                env.msg, None if sender is None else sender.label, None if to is None else to.text,
                env.kind, env.corr, env.deadline, env.key, env.dup_of, env.copy_of,
            )  # fmt: skip
        if self._network is None:
            # rule 9.3: no network: arrival during the call
            self._arrive(env, retry, wait, True)
            return
        # rule 7.4: the network decides the message's transit
        transit = self._network.transit(env)
        if transit.duplicate is not None:
            # rule 7.4: a duplicate: own id, dup_of, same kind/target/corr/deadline
            copy = new_envelope(
                self._msg_id(), env.sender, env.to, env.kind, env.payload, env.corr,
                env.deadline, env.high, env.key, dup_of=env.msg,
            )  # fmt: skip
            # rule 7.2, 7.4: a transit duplicate counts as sent
            self.sent += 1
            if self._events is not None:
                # rule 7.4, 9.3: the duplicate's send right after the original's
                self._trace_send(self._events, copy)
            # rule 1.1, 7.4: the duplicate arrives later, at now + delay
            self.timers.call_at(
                self.timers.now + transit.duplicate, partial(self._later, copy, None, None)
            )
        if transit.drop:
            # rule 7.4, 7.5: dropped in transit: dead-lettered
            self._dead_letter(env, "dropped_in_transit")
        elif transit.delay > 0.0:
            # rule 1.1, 7.4: delayed: the arrival is a timer at now + delay
            self.timers.call_at(
                self.timers.now + transit.delay, partial(self._later, env, retry, wait)
            )
        else:
            # rule 9.3: no transit fault: arrival during the call
            self._arrive(env, retry, wait, True)

    def _later(self, env: Envelope[Any], retry: RetryPolicy | None, wait: float | None) -> None:
        """A timer's arrival (transit delay, duplicate, retry): wakes go out when it ends."""
        try:
            # rule 6.5: a timer's arrival: a failure now is dead-lettered, not raised
            self._arrive(env, retry, wait, False)
        finally:
            if self._woken:
                self._flush_wakes()

    def _flush_wakes(self) -> None:
        """Spec 1.6: tell the driver, after the operation's last event, whom to wake."""
        woken, self._woken = self._woken, []
        for actor in woken:
            # rule 1.6: tell the driver whom to wake, after the last event
            self._wake(actor)  # type: ignore[misc]  # only queued with a wake hook

    def _arrive(
        self, env: Envelope[Any], retry: RetryPolicy | None, wait: float | None, sync: bool
    ) -> None:
        if env.kind == "reply":
            # rule 5.4, 9.3: a reply goes to its request, not through a mailbox
            self._arrive_reply(env)
            return
        if env.to.kind == "topic":
            # rule 3.9: a message to a topic fans out to its live subscribers
            self._publish(env)
            return
        try:
            # rule 2.5, 6.3: the address resolves (again, on a retry)
            actor = self.registry.resolve(env.to, env.key)
        except BrokerError as error:
            # rule 9.3: resolution failed: the failure sequence, no route
            self._fail(env, error, retry, wait, sync)
            return
        if self._events is not None:
            # rule 9.1, 9.3: the route event names the actor (or pool:<name>, 3.8)
            self._events.route(env.msg, actor.label)
        broadcasts = self.registry.broadcasts  # empty unless a broadcast pool exists
        if broadcasts and env.to.kind == "pool" and env.copy_of is None:
            pool = broadcasts.get(env.to.value)
            if pool is not None:
                # rule 3.7, 9.3: a broadcast original: copies right after its route
                self._broadcast(env, actor, pool)
        box = actor.mailbox
        # rule 4.2, 4.6: enqueue only with room
        if box.capacity is not None and box.size >= box.capacity:
            # rule 4.3: a full mailbox: its backpressure mode decides
            mode = box.backpressure
            if mode == "reject":
                # rule 4.4, 8.4: reject: the delivery fails with MailboxFull (transient)
                self._fail(env, MailboxFull(actor.label, box.capacity), retry, wait, sync)
                return
            if mode == "drop_newest":
                # rule 4.4, 7.5: drop_newest: the new message is dead-lettered
                self._dead_letter(env, "dropped_newest", actor)
                return
            if mode == "drop_oldest":
                # rule 4.4, 7.5, 9.3: drop_oldest: the victim first, then enqueue
                self._dead_letter(box.pop_oldest_droppable(), "dropped_oldest", actor)
            else:
                # rule 4.4: block: the message is parked
                self._park(actor, env, wait)
                return
        # rule 4.2, 4.4: enqueued (room, or room made by drop_oldest)
        box.push(env)
        actor.received += 1
        if self._events is not None:
            # rule 4.5, 9.1, 9.4: the enqueue event; depth counts both classes
            self._events.enqueue(env.msg, actor.label, box.size)
        if self._wake is not None and not actor.busy:
            if actor.shared_by is None:
                # rule 1.6: an idle actor got mail: wake it at the end
                self._woken.append(actor.id)
            else:
                # rule 1.6, 3.8: a shared queue got mail: wake idle members
                self._wake_idle_members(actor)

    def _wake_idle_members(self, queue: Actor) -> None:
        """Spec 3.8: a message in a shared queue is pulled by idle live members, in order."""
        pool: Any = queue.shared_by
        for member in pool.members:
            if not queue.mailbox.size:
                return
            if member.alive and not member.busy and not member.mailbox.size:
                # rule 1.6, 3.8: an idle live member, in membership order
                self._woken.append(member.id)

    def _broadcast(self, env: Envelope[Any], first: Actor, pool: Any) -> None:
        """Spec 3.7: every other live member gets its own copy, sent to its `id:` address."""
        for member in list(pool.members):
            if member is not first and member.alive:
                # rule 1.4, 3.7: each other live member, in membership order, a copy
                self._copy_to(env, member)

    def _publish(self, env: Envelope[Any]) -> None:
        """Spec 3.9: a message to a topic is delivered to the topic, and each live subscriber,
        in subscription order, gets its own copy; with none, it is dead-lettered."""
        topic = env.to.value
        # rule 2.8, 2.10, 3.9: the live subscribers, in order
        live = [a for a in self.registry.topics.get(topic, ()) if a.alive]
        if not live:
            # rule 3.9, 5.9, 7.5: no live subscriber: dead-lettered
            self._dead_letter(env, "no_subscribers")
            return
        # rule 3.9, 7.1: delivered to the topic
        self.delivered += 1
        if self._events is not None:
            # rule 3.9, 9.1, 9.3: the route event names topic:<name>
            self._events.route(env.msg, f"topic:{topic}")
        for subscriber in live:
            # rule 3.9, 9.3: each live subscriber, in subscription order, a copy
            self._copy_to(env, subscriber)

    def _copy_to(self, env: Envelope[Any], actor: Actor) -> None:
        """A copy of `env` for one actor (3.7, 3.9): its own id, sent and arriving at once."""
        to: Address = actor.address  # type: ignore[assignment]  # a real actor, not a queue
        # rule 1.3, 3.7, 3.9: a copy: its own id, the same fields, copy_of
        copy = new_envelope(
            self._msg_id(), env.sender, to, env.kind, env.payload, env.corr, env.deadline,
            env.high, env.key, copy_of=env.msg,
        )  # fmt: skip
        # rule 7.2: a copy counts as sent
        self.sent += 1
        if self._events is not None:
            # rule 9.1, 9.3: the copy's send, then its arrival
            self._trace_send(self._events, copy)
        # rule 3.7, 3.9: copies are not transit-faulted or retried
        self._arrive(copy, None, None, False)

    def _fail(
        self,
        env: Envelope[Any],
        error: BrokerError,
        retry: RetryPolicy | None,
        wait: float | None,
        sync: bool,
    ) -> None:
        """Spec 6: retry a transient failure if the policy and deadline allow, else give up.
        A retry keeps the send's own send timeout (spec 4.4)."""
        # rule 6.1, 6.3: only a transient error with attempts left is retried
        if error.transient and retry is not None and env.attempt + 1 < retry.max_attempts:
            # rule 1.1, 6.2, 6.4: the retry time first (drawing u), then the check
            at = self.timers.now + retry.delay(env.attempt + 1, self.rng)
            # rule 6.4: no retry at or after the deadline
            if env.deadline is None or at < env.deadline:
                # rule 6.3: the retry is scheduled, keeping the send timeout
                env.attempt += 1
                # rule 7.2, 9.2: retries scheduled
                self.retries += 1
                if self._events is not None:
                    # rule 9.1: the retry event
                    self._events.retry(env.msg, env.attempt, at)
                # rule 6.3: the retry resolves the address again at its time
                self.timers.call_at(at, partial(self._later, env, retry, wait))
                return
        if sync:
            # rule 6.5, 7.2, 7.3: failed during the call: rejected, never accepted
            self.rejected += 1
            if self._events is not None:
                # rule 9.1, 9.3: the reject event (then, for a request, resolve)
                self._events.reject(env.msg, error.code)
        else:
            # rule 6.5, 7.5: failed later: dead-lettered with the error code
            self._dead_letter(env, error.code)
        if env.kind == "request":
            # Only the request itself fails it: an undeliverable broadcast copy or transit
            # duplicate is dead-lettered and nothing more (spec 5.9).
            # rule 5.9: only the request's own message can fail it
            pending = self._pending.get(env.corr)  # type: ignore[arg-type]
            if pending is not None and env.copy_of is None and env.dup_of is None:
                # rule 5.9, 6.5, 8.2: the request ends failed, with the error
                self._resolve(pending, "failed", error=error)
        elif sync:
            # rule 6.5, 7.3: a one-way send refused during the call raises
            raise error

    def _park(self, actor: Actor, env: Envelope[Any], wait: float | None) -> None:
        """Spec 4.4 `block`: the sender waits for room, at most its send timeout."""
        # rule 4.4: the send's own send timeout, else the mailbox's
        wait = wait if wait is not None else actor.send_timeout
        timer = None
        if wait is not None:
            # rule 1.1, 4.4: the send timeout's timer at now + wait
            timer = self.timers.call_at(
                self.timers.now + wait, partial(self._park_timeout, actor, env, wait)
            )
        # rule 4.4: parked in FIFO order
        actor.mailbox.parked.append((env, timer))
        if self._events is not None:
            # rule 9.1: the park event
            self._events.park(env.msg, actor.label)

    def _park_timeout(self, actor: Actor, env: Envelope[Any], wait: float) -> None:
        """Spec 4.4, 6.5: the wait is over; a request's own message fails its request."""
        parked = actor.mailbox.parked
        for i, (waiting, _) in enumerate(parked):
            if waiting is env:
                # rule 4.4: the wait is over and the message is still parked
                del parked[i]
                # rule 4.4, 7.5, 9.3: dead-lettered send_timeout
                self._dead_letter(env, "send_timeout", actor)
                # rule 5.9: only the request's own message
                if env.kind == "request" and env.copy_of is None and env.dup_of is None:
                    pending = self._pending.get(env.corr)  # type: ignore[arg-type]
                    if pending is not None:
                        # rule 4.4, 5.9, 8.2: the request ends failed with SendTimeout
                        self._resolve(pending, "failed", error=SendTimeout(actor.label, wait))
                return

    def _unpark(self, actor: Actor) -> None:
        box = actor.mailbox
        # rule 4.4: the oldest parked message takes the freed slot
        env, timer = box.parked.popleft()
        if timer is not None:
            # rule 4.4: its send timeout no longer applies
            timer.cancel()
        box.push(env)
        actor.received += 1
        if self._events is not None:
            # rule 9.1, 9.3: its enqueue comes before the dequeue
            self._events.enqueue(env.msg, actor.label, box.size)

    def _arrive_reply(self, env: Envelope[Any]) -> None:
        corr: int = env.corr  # type: ignore[assignment]
        pending = self._pending.get(corr)
        if pending is None:
            # rule 5.6: a reply that ends no request: why (ended or never issued)
            fate = self._fate[corr] if 0 < corr < len(self._fate) else 0
            # rule 3.7, 3.9, 5.6, 7.5: late/duplicate/orphan/unknown reply
            self._dead_letter(env, _LATE_REASON[fate - 1] if fate else "unknown_correlation")
            return
        now = self.timers.now
        # rule 5.5: a reply at now >= deadline is late
        if now >= pending.deadline:  # exclusive deadline (spec 5.5)
            # rule 5.5, 9.3: processed at the deadline: timed_out first
            self._resolve(pending, "timed_out")
            # rule 5.5, 5.6: then the reply is dead-lettered late_reply
            self._dead_letter(env, "late_reply")
            return
        # rule 5.4, 7.1: a reply matched to its request counts as delivered
        self.delivered += 1
        # rule 5.4: a reply before the deadline ends it replied
        self._resolve(pending, "replied", env, now=now)

    def _resolve(
        self,
        pending: _Pending,
        kind: OutcomeKind,
        reply: Envelope[Any] | None = None,
        error: BrokerError | None = None,
        now: float | None = None,  # the time, when the caller has just read it
    ) -> None:
        corr = pending.corr
        # rule 5.3: an ended request has no pending entry
        del self._pending[corr]
        del pending.requester.pending[corr]
        if pending.timer is not None:
            # rule 5.3: and no live timer
            pending.timer.cancel()
        # rule 5.3, 5.6: exactly one outcome, remembered for later replies
        self._fate[corr] = _FATE_CODE[kind]
        # rule 7.2, 9.2: outcomes per kind
        self.outcomes[kind] += 1
        if now is None:
            now = self.timers.now
        if kind == "replied":
            # rule 9.2: issue-to-reply time, in reply order
            self.latencies.append(now - pending.issued_at)
        if self._events is not None:
            # rule 9.1: the resolve event
            self._events.resolve(
                corr, kind, pending.requester.label, None if reply is None else reply.msg
            )
        if pending.on_outcome is not None:
            if kind == "timed_out":
                # rule 5.5, 8.2: a timed-out request carries RequestTimeout
                error = RequestTimeout(str(pending.to), pending.timeout)
            elif kind == "cancelled":
                # rule 5.7, 5.8, 8.2: a cancelled request carries NoResponse
                error = NoResponse(corr)
            # rule 5.3, 8.2: the one outcome, with its error, reported once
            pending.on_outcome(
                Outcome(
                    corr,
                    kind,
                    pending.requester.id,
                    pending.issued_at,
                    now,
                    reply.payload if reply is not None else None,
                    reply.msg if reply is not None else None,
                    error,
                )
            )

    def _expire(self, corr: int) -> None:
        pending = self._pending.get(corr)
        if pending is not None:
            pending.timer = None
            # rule 5.5: the timer fires at the deadline: timed_out
            self._resolve(pending, "timed_out")

    def _shut(self, actor: Actor) -> None:
        """Stopping: dead-letter the mailbox and parked senders, cancel own requests (2.7)."""
        # rule 2.8: a stopped actor is not live
        actor.alive = False
        actor.busy = 0
        for env in actor.mailbox.drain():
            # rule 2.7, 9.3: queued mail dead-lettered, dequeue order
            self._dead_letter(env, "actor_stopped", actor)
        while actor.mailbox.parked:
            env, timer = actor.mailbox.parked.popleft()
            if timer is not None:
                # rule 2.7: a parked message's send timeout is cancelled
                timer.cancel()
            # rule 2.7, 9.3: then parked mail, in the order it parked
            self._dead_letter(env, "actor_stopped", actor)
        for pending in list(actor.pending.values()):
            # rule 1.4, 2.7, 5.8, 9.3: its pending requests end cancelled
            self._resolve(pending, "cancelled")
        for pool in actor.shared:
            if not pool.any_alive():
                # rule 3.8, 9.3: a shared pool left without a live member is orphaned
                self._orphaned(pool)

    def _orphaned(self, pool: Any) -> None:
        """Spec 3.8: with no live member left to pull, a shared queue dies with its members."""
        for env in pool.queue.mailbox.drain():
            # rule 3.8, 9.3: the queue's messages dead-lettered, in order
            self._dead_letter(env, "actor_stopped")

    def _dead_letter(self, env: Envelope[Any], reason: str, actor: Actor | None = None) -> None:
        # rule 7.1, 7.2: dead-lettered with one reason
        self.dead_lettered += 1
        # rule 7.5, 9.2: dead letters per reason
        self.dead_letters[reason] = self.dead_letters.get(reason, 0) + 1
        if actor is not None:
            actor.dead_lettered += 1
        if self._events is not None:
            # rule 9.1: the dead_letter event
            self._events.dead_letter(env.msg, reason)

    def _trace_send(self, events: Events, env: Envelope[Any]) -> None:
        sender = None if env.sender is None else self.registry.actors.get(env.sender)
        to = env.to
        # rule 9.1, 9.4: the send event (to null for a never-issued corr, 5.4)
        events.send(
            env.msg,
            None if sender is None else sender.label,
            None if to is None else to.text,
            env.kind,
            env.corr,
            env.deadline,
            env.key,
            env.dup_of,
            env.copy_of,
        )

    def _msg_id(self) -> int:
        msg = self._next_msg
        # rule 1.3: message ids count up by one, never reused
        self._next_msg = msg + 1
        return msg

    def _sender(self, sender: int | None) -> Actor | None:
        return None if sender is None else self.registry.actor(sender)


def _address(to: Address | str) -> Address:
    return to if isinstance(to, Address) else Address.parse(to)


def _high(priority: str) -> bool:
    if priority not in PRIORITIES:
        # rule 8.3, 8.4: an unknown priority is InvalidConfig
        raise InvalidConfig("priority", priority, f"one of {', '.join(PRIORITIES)}")
    return priority == "high"


def _timeout(value: float | None) -> float | None:
    # rule 4.4, 8.3: a send timeout is finite > 0
    return None if value is None else check_number(value, "send_timeout", strict=True)
