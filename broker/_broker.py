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
ids only from counters. Observers get every step through the optional `listener`; with no
listener the broker builds no event records at all.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

from broker._address import Address
from broker._mailbox import Backpressure, Mailbox
from broker._records import PRIORITIES, Envelope, Outcome, OutcomeKind, Priority, Stats
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
Listener = Callable[[str, dict[str, Any]], None]
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
    __slots__ = (
        "broker", "corr", "deadline", "issued_at", "on_outcome", "requester", "timeout", "timer",
        "to",
    )  # fmt: skip

    def __init__(
        self,
        broker: Broker[Any],
        corr: int,
        requester: Actor,
        issued_at: float,
        timeout: float,
        to: Address,
        on: OnOutcome | None,
    ) -> None:
        self.broker = broker
        self.corr = corr
        self.requester = requester
        self.issued_at = issued_at
        self.timeout = timeout
        self.deadline = issued_at + timeout  # spec 1.1: one addition
        self.to = to  # for the RequestTimeout an outcome carries (spec 8.4)
        self.on_outcome = on
        self.timer: TimerHandle | None = None

    def expire(self) -> None:
        """The timeout timer's callback (a bound method: no closure per request)."""
        self.broker._expire(self.corr)


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
        self.rng = rng
        self.registry = Registry(rng)
        self._emit = listener
        self._network = network
        # Told the actor id when a message was enqueued for an idle actor, so a driver need not
        # poll: at the end of the operation or timer that enqueued it, after its last event, so
        # the driver may act on it at once (spec 1.6).
        self._wake = wake
        self._woken: list[int] = []
        self._next_msg = 1
        self._pending: dict[int, _Pending] = {}
        self._requester = array("q", [0])  # corr -> requester id (index 0 unused)
        self._fate = bytearray(1)  # corr -> 0 pending, 1 + index into _FATES once resolved
        # Conservation counters (spec 7.2): accepted = sent - rejected.
        self.sent = self.rejected = self.delivered = self.dead_lettered = 0
        self.retries = 0
        self.dead_letters: dict[str, int] = {}
        self.outcomes: dict[OutcomeKind, int] = dict.fromkeys(_FATES, 0)
        self.latencies = array("d")  # issue-to-reply time of every replied request

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
            send_timeout = check_number(send_timeout, "send_timeout", strict=True)
        actor = self.registry.add(
            name, Mailbox(capacity, backpressure), send_timeout, services, pools
        )
        if self._emit:
            addresses = [f"id:{actor.id}"]
            if name is not None:
                addresses.append(f"name:{name}")
            addresses += [f"service:{s}" for s in actor.services]
            addresses += [f"pool:{p}" for p in actor.pools]
            box = actor.mailbox
            self._emit(
                "register",
                {
                    "actor": actor.label,
                    "name": name,
                    "addresses": addresses,
                    "capacity": box.capacity,
                    "backpressure": box.backpressure,
                    "send_timeout": actor.send_timeout,
                },
            )
        return actor.id

    def unregister(self, actor_id: int, reason: str = "unregistered") -> None:
        """Remove an actor for good: its mail is dead-lettered, its requests cancelled (2.7)."""
        actor = self.registry.actor(actor_id)
        if self._emit:
            self._emit("unregister", {"actor": actor.label, "reason": reason})
        if actor.alive:
            self._shut(actor)
        self.registry.remove(actor)

    def stop(self, actor_id: int, reason: str = "crashed") -> None:
        """Stop an actor but keep its registrations, so it can `restart` (spec 2.8)."""
        actor = self.registry.actor(actor_id)
        if not actor.alive:
            return
        if self._emit:
            self._emit("stop", {"actor": actor.label, "reason": reason})
        self._shut(actor)

    def restart(self, actor_id: int) -> None:
        """Bring a stopped actor back with an empty mailbox (spec 2.8)."""
        actor = self.registry.actor(actor_id)
        if actor.alive:
            return
        actor.alive = True
        if self._emit:
            self._emit("start", {"actor": actor.label})

    def create_pool(self, name: str, strategy: str = "round_robin") -> None:
        self.registry.create_pool(name, strategy)
        if self._emit:
            self._emit("create_pool", {"pool": name, "strategy": strategy})

    def join_pool(self, pool: str, actor_id: int) -> None:
        actor = self.registry.actor(actor_id)
        self.registry.join(pool, actor)
        if self._emit:
            self._emit("join", {"pool": pool, "actor": actor.label})

    def leave_pool(self, pool: str, actor_id: int) -> None:
        actor = self.registry.actor(actor_id)
        self.registry.leave(pool, actor)
        if self._emit:
            self._emit("leave", {"pool": pool, "actor": actor.label})
        shared = self.registry.pools[pool]
        if shared.queue is not None and not shared.any_alive():
            self._orphaned(shared)  # the last live member left its shared pool (spec 3.8)

    def provide(self, service: str, actor_id: int) -> None:
        actor = self.registry.actor(actor_id)
        self.registry.provide(service, actor)
        if self._emit:
            self._emit("provide", {"service": service, "actor": actor.label})

    def subscribe(self, topic: str, actor_id: int) -> None:
        """Add the actor to the topic's subscribers, at the end (spec 2.10)."""
        actor = self.registry.actor(actor_id)
        self.registry.subscribe(topic, actor)
        if self._emit:
            self._emit("subscribe", {"topic": topic, "actor": actor.label})

    def unsubscribe(self, topic: str, actor_id: int) -> None:
        """Remove the actor from the topic's subscribers (spec 2.10)."""
        actor = self.registry.actor(actor_id)
        self.registry.unsubscribe(topic, actor)
        if self._emit:
            self._emit("unsubscribe", {"topic": topic, "actor": actor.label})

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
        src = self._sender(sender)
        deadline = None
        if ttl is not None:
            stamp = self.timers.now if timestamp is None else timestamp
            deadline = stamp + check_number(ttl, "ttl", strict=True)
        address = to if type(to) is Address else _address(to)
        high = False if priority == "normal" else _high(priority)
        wait = None if send_timeout is None else _timeout(send_timeout)
        msg = self._next_msg
        self._next_msg = msg + 1
        env = Envelope(msg, sender, address, "tell", payload, None, deadline, high, key)
        if src is not None:
            src.sent += 1
        try:
            self._send(env, retry, wait)
        finally:
            if self._woken:
                self._flush_wakes()
        return msg

    def publish(self, sender: int | None, topic: str, payload: P, **options: Any) -> int:
        """Send to every live subscriber of `topic` (spec 3.9): `send` to `topic:<topic>`."""
        return self.send(sender, Address("topic", topic), payload, **options)

    def publish_request(
        self, sender: int, topic: str, payload: P, *, timeout: float, **options: Any
    ) -> int:
        """A request to every live subscriber of `topic`: the first reply ends it (spec 3.9)."""
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
        if not (type(timeout) is float and 0.0 < timeout < _INF):  # the common case, fast
            timeout = check_number(timeout, "timeout", strict=True)
        address = to if type(to) is Address else _address(to)
        high = False if priority == "normal" else _high(priority)
        wait = None if send_timeout is None else _timeout(send_timeout)
        requester = self.registry.actors.get(sender)
        if requester is None or not requester.alive:
            raise ActorNotFound(f"id:{sender}")
        corr = len(self._fate)
        self._fate.append(0)
        self._requester.append(sender)
        pending = _Pending(self, corr, requester, self.timers.now, timeout, address, on_outcome)
        deadline = pending.deadline
        self._pending[corr] = requester.pending[corr] = pending
        pending.timer = self.timers.call_at(deadline, pending.expire)
        msg = self._next_msg
        self._next_msg = msg + 1
        env = Envelope(msg, sender, address, "request", payload, corr, deadline, high, key)
        requester.sent += 1
        try:
            self._send(env, retry, wait)
        finally:
            if self._woken:
                self._flush_wakes()
        return corr

    def reply(self, sender: int | None, corr: int, payload: P) -> int:
        """Answer request `corr`; returns the reply's message id (spec 5.4, 5.5)."""
        if sender is not None and sender not in self.registry.actors:
            raise ActorNotFound(f"id:{sender}")
        pending = self._pending.get(corr)
        if pending is not None:
            to = pending.requester.address
        else:
            requester = self._requester[corr] if 0 < corr < len(self._fate) else 0
            to = Address.id(requester) if requester else None
        msg = self._next_msg
        self._next_msg = msg + 1
        env = Envelope(msg, sender, to, "reply", payload, corr)  # type: ignore[arg-type]
        self._send(env, None, None)
        return msg

    def cancel(self, corr: int) -> bool:
        """Cancel a pending request; False when it had already ended (spec 5.7)."""
        pending = self._pending.get(corr)
        if pending is None:
            return False
        self._resolve(pending, "cancelled")
        return True

    def outcome(self, corr: int) -> OutcomeKind | None:
        """How request `corr` ended, or None while it is pending or unknown."""
        fate = self._fate[corr] if 0 < corr < len(self._fate) else 0
        return _FATES[fate - 1] if fate else None

    # -- the actor's side --------------------------------------------------------------------

    def dequeue(self, actor_id: int) -> Envelope[P] | None:
        """Hand the actor its next message, dead-lettering expired ones on the way (spec 4.7).

        The actor counts as busy with the returned message (its load includes it) until it
        calls `done` or dequeues again.
        """
        actor = self.registry.actors.get(actor_id)
        if actor is None:
            raise ActorNotFound(f"id:{actor_id}")
        actor.busy = 0
        if not actor.alive:
            return None
        box = actor.mailbox
        now = self.timers.now
        while True:
            env = box.pop()
            if env is None:
                env = self._pull_shared(actor)
                if env is None:
                    return None
            elif box.parked:
                self._unpark(actor)
            if env.deadline is not None and now >= env.deadline:
                self._dead_letter(env, "expired", actor)
                continue
            actor.busy = 1
            actor.delivered += 1
            self.delivered += 1
            if self._emit:
                self._emit("dequeue", {"msg": env.msg, "actor": actor.label})
            return env

    def _pull_shared(self, actor: Actor) -> Envelope[Any] | None:
        """Spec 3.8: with its own mailbox empty, a member takes the oldest message of the first
        shared pool (in join order) that has one."""
        for pool in actor.shared:
            env = pool.queue.mailbox.pop()  # type: ignore[union-attr]
            if env is not None:
                return env
        return None

    def done(self, actor_id: int) -> None:
        """The actor finished the message it dequeued last."""
        self.registry.actor(actor_id).busy = 0

    def depth(self, actor_id: int) -> int:
        return self.registry.actor(actor_id).mailbox.size

    def load(self, actor_id: int) -> int:
        return self.registry.actor(actor_id).load

    def pending_requests(self) -> list[int]:
        return sorted(self._pending)

    def stats(self) -> Stats:
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
        return self.sent - self.rejected

    @property
    def in_flight(self) -> int:
        return self.accepted - self.delivered - self.dead_lettered

    # -- the pipeline ------------------------------------------------------------------------

    def _send(self, env: Envelope[Any], retry: RetryPolicy | None, wait: float | None) -> None:
        self.sent += 1
        if self._emit:
            self._trace_send(env)
        if self._network is None:
            self._arrive(env, retry, wait, True)
            return
        transit = self._network.transit(env)
        if transit.duplicate is not None:
            copy = Envelope(
                self._msg_id(), env.sender, env.to, env.kind, env.payload, env.corr,
                env.deadline, env.high, env.key, dup_of=env.msg,
            )  # fmt: skip
            self.sent += 1
            if self._emit:
                self._trace_send(copy)
            self.timers.call_at(
                self.timers.now + transit.duplicate, lambda: self._later(copy, None, None)
            )
        if transit.drop:
            self._dead_letter(env, "dropped_in_transit")
        elif transit.delay > 0.0:
            self.timers.call_at(
                self.timers.now + transit.delay, lambda: self._later(env, retry, wait)
            )
        else:
            self._arrive(env, retry, wait, True)

    def _later(self, env: Envelope[Any], retry: RetryPolicy | None, wait: float | None) -> None:
        """A timer's arrival (transit delay, duplicate, retry): wakes go out when it ends."""
        try:
            self._arrive(env, retry, wait, False)
        finally:
            if self._woken:
                self._flush_wakes()

    def _flush_wakes(self) -> None:
        """Spec 1.6: tell the driver, after the operation's last event, whom to wake."""
        woken, self._woken = self._woken, []
        for actor in woken:
            self._wake(actor)  # type: ignore[misc]  # only queued with a wake hook

    def _arrive(
        self, env: Envelope[Any], retry: RetryPolicy | None, wait: float | None, sync: bool
    ) -> None:
        if env.kind == "reply":
            self._arrive_reply(env)
            return
        if env.to.kind == "topic":
            self._publish(env)
            return
        try:
            actor = self.registry.resolve(env.to, env.key)
        except BrokerError as error:
            self._fail(env, error, retry, wait, sync)
            return
        if self._emit:
            self._emit("route", {"msg": env.msg, "actor": actor.label})
        broadcasts = self.registry.broadcasts  # empty unless a broadcast pool exists
        if broadcasts and env.to.kind == "pool" and env.copy_of is None:
            pool = broadcasts.get(env.to.value)
            if pool is not None:
                self._broadcast(env, actor, pool)
        box = actor.mailbox
        if box.capacity is not None and box.size >= box.capacity:
            mode = box.backpressure
            if mode == "reject":
                self._fail(env, MailboxFull(actor.label, box.capacity), retry, wait, sync)
                return
            if mode == "drop_newest":
                self._dead_letter(env, "dropped_newest", actor)
                return
            if mode == "drop_oldest":
                self._dead_letter(box.pop_oldest_droppable(), "dropped_oldest", actor)
            else:
                self._park(actor, env, wait)
                return
        box.push(env)
        actor.received += 1
        if self._emit:
            self._emit("enqueue", {"msg": env.msg, "actor": actor.label, "depth": box.size})
        if self._wake is not None and not actor.busy:
            if actor.shared_by is None:
                self._woken.append(actor.id)
            else:
                self._wake_idle_members(actor)

    def _wake_idle_members(self, queue: Actor) -> None:
        """Spec 3.8: a message in a shared queue is pulled by idle live members, in order."""
        pool: Any = queue.shared_by
        for member in pool.members:
            if not queue.mailbox.size:
                return
            if member.alive and not member.busy and not member.mailbox.size:
                self._woken.append(member.id)

    def _broadcast(self, env: Envelope[Any], first: Actor, pool: Any) -> None:
        """Spec 3.7: every other live member gets its own copy, sent to its `id:` address."""
        for member in list(pool.members):
            if member is not first and member.alive:
                self._copy_to(env, member)

    def _publish(self, env: Envelope[Any]) -> None:
        """Spec 3.9: a message to a topic is delivered to the topic, and each live subscriber,
        in subscription order, gets its own copy; with none, it is dead-lettered."""
        topic = env.to.value
        live = [a for a in self.registry.topics.get(topic, ()) if a.alive]
        if not live:
            self._dead_letter(env, "no_subscribers")
            return
        self.delivered += 1
        if self._emit:
            self._emit("route", {"msg": env.msg, "actor": f"topic:{topic}"})
        for subscriber in live:
            self._copy_to(env, subscriber)

    def _copy_to(self, env: Envelope[Any], actor: Actor) -> None:
        """A copy of `env` for one actor (3.7, 3.9): its own id, sent and arriving at once."""
        to: Address = actor.address  # type: ignore[assignment]  # a real actor, not a queue
        copy = Envelope(
            self._msg_id(), env.sender, to, env.kind, env.payload, env.corr, env.deadline,
            env.high, env.key, copy_of=env.msg,
        )  # fmt: skip
        self.sent += 1
        if self._emit:
            self._trace_send(copy)
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
        if error.transient and retry is not None and env.attempt + 1 < retry.max_attempts:
            at = self.timers.now + retry.delay(env.attempt + 1, self.rng)
            if env.deadline is None or at < env.deadline:
                env.attempt += 1
                self.retries += 1
                if self._emit:
                    self._emit("retry", {"msg": env.msg, "attempt": env.attempt, "at": at})
                self.timers.call_at(at, lambda: self._later(env, retry, wait))
                return
        if sync:
            self.rejected += 1
            if self._emit:
                self._emit("reject", {"msg": env.msg, "error": error.code})
        else:
            self._dead_letter(env, error.code)
        if env.kind == "request":
            # Only the request itself fails it: an undeliverable broadcast copy or transit
            # duplicate is dead-lettered and nothing more (spec 5.9).
            pending = self._pending.get(env.corr)  # type: ignore[arg-type]
            if pending is not None and env.copy_of is None and env.dup_of is None:
                self._resolve(pending, "failed", error=error)
        elif sync:
            raise error

    def _park(self, actor: Actor, env: Envelope[Any], wait: float | None) -> None:
        """Spec 4.4 `block`: the sender waits for room, at most its send timeout."""
        wait = wait if wait is not None else actor.send_timeout
        timer = None
        if wait is not None:
            timer = self.timers.call_at(
                self.timers.now + wait, partial(self._park_timeout, actor, env, wait)
            )
        actor.mailbox.parked.append((env, timer))
        if self._emit:
            self._emit("park", {"msg": env.msg, "actor": actor.label})

    def _park_timeout(self, actor: Actor, env: Envelope[Any], wait: float) -> None:
        """Spec 4.4, 6.5: the wait is over; a request's own message fails its request."""
        parked = actor.mailbox.parked
        for i, (waiting, _) in enumerate(parked):
            if waiting is env:
                del parked[i]
                self._dead_letter(env, "send_timeout", actor)
                if env.kind == "request" and env.copy_of is None and env.dup_of is None:
                    pending = self._pending.get(env.corr)  # type: ignore[arg-type]
                    if pending is not None:
                        self._resolve(pending, "failed", error=SendTimeout(actor.label, wait))
                return

    def _unpark(self, actor: Actor) -> None:
        box = actor.mailbox
        env, timer = box.parked.popleft()
        if timer is not None:
            timer.cancel()
        box.push(env)
        actor.received += 1
        if self._emit:
            self._emit("enqueue", {"msg": env.msg, "actor": actor.label, "depth": box.size})

    def _arrive_reply(self, env: Envelope[Any]) -> None:
        corr: int = env.corr  # type: ignore[assignment]
        pending = self._pending.get(corr)
        if pending is None:
            fate = self._fate[corr] if 0 < corr < len(self._fate) else 0
            self._dead_letter(env, _LATE_REASON[fate - 1] if fate else "unknown_correlation")
            return
        if self.timers.now >= pending.deadline:  # exclusive deadline (spec 5.5)
            self._resolve(pending, "timed_out")
            self._dead_letter(env, "late_reply")
            return
        self.delivered += 1
        self._resolve(pending, "replied", env)

    def _resolve(
        self,
        pending: _Pending,
        kind: OutcomeKind,
        reply: Envelope[Any] | None = None,
        error: BrokerError | None = None,
    ) -> None:
        corr = pending.corr
        del self._pending[corr]
        del pending.requester.pending[corr]
        if pending.timer is not None:
            pending.timer.cancel()
        self._fate[corr] = _FATE_CODE[kind]
        self.outcomes[kind] += 1
        now = self.timers.now
        if kind == "replied":
            self.latencies.append(now - pending.issued_at)
        if self._emit:
            self._emit(
                "resolve",
                {
                    "corr": corr,
                    "outcome": kind,
                    "requester": pending.requester.label,
                    "msg": reply.msg if reply is not None else None,
                },
            )
        if pending.on_outcome is not None:
            if kind == "timed_out":
                error = RequestTimeout(str(pending.to), pending.timeout)
            elif kind == "cancelled":
                error = NoResponse(corr)
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
            self._resolve(pending, "timed_out")

    def _shut(self, actor: Actor) -> None:
        """Stopping: dead-letter the mailbox and parked senders, cancel own requests (2.7)."""
        actor.alive = False
        actor.busy = 0
        for env in actor.mailbox.drain():
            self._dead_letter(env, "actor_stopped", actor)
        while actor.mailbox.parked:
            env, timer = actor.mailbox.parked.popleft()
            if timer is not None:
                timer.cancel()
            self._dead_letter(env, "actor_stopped", actor)
        for pending in list(actor.pending.values()):
            self._resolve(pending, "cancelled")
        for pool in actor.shared:
            if not pool.any_alive():
                self._orphaned(pool)

    def _orphaned(self, pool: Any) -> None:
        """Spec 3.8: with no live member left to pull, a shared queue dies with its members."""
        for env in pool.queue.mailbox.drain():
            self._dead_letter(env, "actor_stopped")

    def _dead_letter(self, env: Envelope[Any], reason: str, actor: Actor | None = None) -> None:
        self.dead_lettered += 1
        self.dead_letters[reason] = self.dead_letters.get(reason, 0) + 1
        if actor is not None:
            actor.dead_lettered += 1
        if self._emit:
            self._emit("dead_letter", {"msg": env.msg, "reason": reason})

    def _trace_send(self, env: Envelope[Any]) -> None:
        sender = self.registry.actors.get(env.sender) if env.sender is not None else None
        fields: dict[str, Any] = {
            "msg": env.msg,
            "from": sender.label if sender is not None else None,
            "to": str(env.to) if env.to is not None else None,
            "kind": env.kind,
        }
        if env.corr is not None:
            fields["corr"] = env.corr
        if env.kind == "request":
            fields["deadline"] = env.deadline
        if env.key is not None:
            fields["key"] = env.key
        if env.dup_of is not None:
            fields["dup_of"] = env.dup_of
        if env.copy_of is not None:
            fields["copy_of"] = env.copy_of
        self._emit("send", fields)  # type: ignore[misc]  # only called when a listener is set

    def _msg_id(self) -> int:
        msg = self._next_msg
        self._next_msg = msg + 1
        return msg

    def _sender(self, sender: int | None) -> Actor | None:
        return None if sender is None else self.registry.actor(sender)


def _address(to: Address | str) -> Address:
    return to if isinstance(to, Address) else Address.parse(to)


def _high(priority: str) -> bool:
    if priority not in PRIORITIES:
        raise InvalidConfig("priority", priority, f"one of {', '.join(PRIORITIES)}")
    return priority == "high"


def _timeout(value: float | None) -> float | None:
    return None if value is None else check_number(value, "send_timeout", strict=True)
