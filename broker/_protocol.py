"""`MessageBroker`: what a broker offers (the seed's `MessageBroker<M>` trait).

The simulator and the tests drive a broker only through this protocol, so another
implementation (a port behind an adapter, say) runs under them unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from broker._address import Address
from broker._broker import Network, OnOutcome
from broker._events import Listener
from broker._mailbox import Backpressure
from broker._records import Envelope, OutcomeKind, Priority, Stats
from broker._retry import RetryPolicy
from broker._rng import Rng
from broker._timers import Timers

P = TypeVar("P")


class MessageBroker(Protocol[P]):
    """Registry, routing, request-reply and delivery, driven by a timer service (spec 1)."""

    def register(
        self,
        name: str | None = None,
        *,
        capacity: int | None = None,
        backpressure: Backpressure = "reject",
        send_timeout: float | None = None,
        services: Iterable[str] = (),
        pools: Iterable[str] = (),
    ) -> int: ...

    def unregister(self, actor_id: int, reason: str = "unregistered") -> None: ...
    def stop(self, actor_id: int, reason: str = "crashed") -> None: ...
    def restart(self, actor_id: int) -> None: ...
    def create_pool(self, name: str, strategy: str = "round_robin") -> None: ...
    def join_pool(self, pool: str, actor_id: int) -> None: ...
    def leave_pool(self, pool: str, actor_id: int) -> None: ...
    def provide(self, service: str, actor_id: int) -> None: ...
    def subscribe(self, topic: str, actor_id: int) -> None: ...
    def unsubscribe(self, topic: str, actor_id: int) -> None: ...
    def resolve(self, to: Address | str, key: str | None = None) -> int: ...

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
    ) -> int: ...

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
    ) -> int: ...

    def reply(self, sender: int | None, corr: int, payload: P) -> int: ...
    def cancel(self, corr: int) -> bool: ...
    def outcome(self, corr: int) -> OutcomeKind | None: ...
    def dequeue(self, actor_id: int) -> Envelope[P] | None: ...
    def done(self, actor_id: int) -> None: ...
    def depth(self, actor_id: int) -> int: ...
    def load(self, actor_id: int) -> int: ...

    # -- what drivers and monitors read (spec 7.2, 9.2) --------------------------------------

    def stats(self) -> Stats: ...
    def pending_requests(self) -> list[int]: ...

    @property
    def latencies(self) -> Sequence[float]:
        """Issue-to-reply time of every replied request, in the order they were replied."""
        ...


class BrokerFactory(Protocol):
    """How a driver builds a broker: the signature of `Broker` itself (and of its mutants).

    `listener` receives every event (a `broker.Events`, or a plain function of the event's name
    and fields, which an `Events` also is), `network` decides each message's transit (spec 7.4), and
    `wake(actor)` is told when a message was enqueued for an idle actor, after the last event
    of the operation or timer that enqueued it (spec 1.6), so the driver may act on it at once.
    """

    def __call__(
        self,
        timers: Timers,
        rng: Rng,
        *,
        listener: Listener | None = None,
        network: Network | None = None,
        wake: Callable[[int], None] | None = None,
    ) -> MessageBroker[Any]: ...
