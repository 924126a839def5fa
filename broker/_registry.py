"""The registry: actors, unique names, services and pools (docs/spec.md sections 2 and 3).

Every mutating method validates everything first and only then changes state, so an operation
that raises leaves nothing behind (spec 2.6).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from broker._address import Address, check_name
from broker._mailbox import Mailbox
from broker._rng import Rng
from broker._strategies import (
    STRATEGY_FUNCTIONS,
    Strategy,
    StrategyName,
    check_strategy,
    leave_cursor,
)
from broker.errors import (
    ActorNotFound,
    DuplicateRegistration,
    MailboxClosed,
    PoolEmpty,
    PoolNotFound,
    RouteError,
    ServiceUnavailable,
)

if TYPE_CHECKING:
    from broker._records import Envelope  # noqa: F401


class Actor:
    """One registered actor: its mailbox, its registrations and its counters."""

    __slots__ = (
        "address",
        "alive",
        "busy",
        "dead_lettered",
        "delivered",
        "id",
        "label",
        "mailbox",
        "name",
        "pending",
        "pools",
        "received",
        "send_timeout",
        "sent",
        "services",
        "shared",
        "shared_by",
        "topics",
    )

    def __init__(
        self, actor_id: int, name: str | None, mailbox: Mailbox, send_timeout: float | None
    ) -> None:
        self.id = actor_id
        self.name = name
        self.label = name if name is not None else f"id:{actor_id}"
        self.address = Address("id", str(actor_id)) if actor_id else None  # replies go here
        self.mailbox = mailbox
        self.send_timeout = send_timeout
        self.alive = True
        self.busy = 0  # 1 while the actor works on the message it dequeued last
        self.services: list[str] = []
        self.pools: list[str] = []
        self.topics: list[str] = []  # in the order subscribed
        self.pending: dict[int, Any] = {}  # corr -> Pending, in issue order
        self.shared: list[Pool] = []  # shared pools this actor pulls from (spec 3.8)
        self.shared_by: Pool | None = None  # set on a shared pool's queue, which is no actor
        self.sent = self.received = self.delivered = self.dead_lettered = 0

    @property
    def load(self) -> int:
        """Queued plus in service: what least_loaded compares (spec 3.4)."""
        return self.mailbox.size + self.busy


class Pool:
    __slots__ = ("choose", "cursor", "members", "name", "queue", "strategy")

    def __init__(self, name: str, strategy: StrategyName) -> None:
        self.name = name
        self.strategy = strategy
        self.choose: Strategy = STRATEGY_FUNCTIONS[strategy]
        self.members: list[Actor] = []
        self.cursor = 0
        # A shared pool's one queue (spec 3.8): an unbounded mailbox that looks like an actor
        # to routing, labelled `pool:<name>`, from which idle members pull.
        self.queue: Actor | None = None
        if strategy == "shared":
            self.queue = Actor(0, None, Mailbox(), None)
            self.queue.label = f"pool:{name}"
            self.queue.shared_by = self

    def any_alive(self) -> bool:
        return any(m.alive for m in self.members)


class Registry:
    """Lookup tables with O(1) resolution of `id:` and `name:` (spec 2.4)."""

    __slots__ = (
        "actors", "broadcasts", "by_text", "names", "next_id", "pools", "rng", "services",
        "topics",
    )  # fmt: skip

    def __init__(self, rng: Rng) -> None:
        self.rng = rng
        self.actors: dict[int, Actor] = {}
        self.by_text: dict[str, Actor] = {}  # the same, keyed by the id's text as in `id:N`
        self.names: dict[str, Actor] = {}
        self.services: dict[str, list[Actor]] = {}
        self.pools: dict[str, Pool] = {}
        self.broadcasts: dict[str, Pool] = {}  # the broadcast pools: sends there fan out (3.7)
        # Subscribers per topic, in subscription order; a topic exists while it has one (2.10).
        self.topics: dict[str, list[Actor]] = {}
        self.next_id = 1

    # -- registration -----------------------------------------------------------------------

    def add(
        self,
        name: str | None,
        mailbox: Mailbox,
        send_timeout: float | None,
        services: Iterable[str],
        pools: Iterable[str],
    ) -> Actor:
        services, pools = list(services), list(pools)
        if name is not None:
            check_name(name)
            if name in self.names:
                raise DuplicateRegistration(f"name:{name}")
        for s in services:
            check_name(s, "service name")
        for p in pools:
            self.pool(p)
        for seq, what in ((services, "service"), (pools, "pool")):
            for i, item in enumerate(seq):
                if item in seq[:i]:
                    raise DuplicateRegistration(f"{what}:{item}", "the registration")
        actor = Actor(self.next_id, name, mailbox, send_timeout)
        self.next_id += 1
        self.actors[actor.id] = actor
        self.by_text[str(actor.id)] = actor
        if name is not None:
            self.names[name] = actor
        for s in services:
            self._provide(s, actor)
        for p in pools:
            self._join(self.pools[p], actor)
        return actor

    def remove(self, actor: Actor) -> None:
        for p in list(actor.pools):
            self.leave(p, actor)
        for s in actor.services:
            self.services[s].remove(actor)
        actor.services.clear()
        for t in list(actor.topics):
            self.unsubscribe(t, actor)
        del self.actors[actor.id]
        del self.by_text[str(actor.id)]
        if actor.name is not None:
            del self.names[actor.name]

    def actor(self, actor_id: int) -> Actor:
        found = self.actors.get(actor_id)
        if found is None:
            raise ActorNotFound(f"id:{actor_id}")
        return found

    def provide(self, service: str, actor: Actor) -> None:
        check_name(service, "service name")
        if service in actor.services:
            raise DuplicateRegistration(f"id:{actor.id}", f"service:{service}")
        self._provide(service, actor)

    def _provide(self, service: str, actor: Actor) -> None:
        self.services.setdefault(service, []).append(actor)
        actor.services.append(service)

    # -- topics (spec 2.10) ------------------------------------------------------------------

    def subscribe(self, topic: str, actor: Actor) -> None:
        check_name(topic, "topic name")
        if topic in actor.topics:
            raise DuplicateRegistration(f"id:{actor.id}", f"topic:{topic}")
        self.topics.setdefault(topic, []).append(actor)
        actor.topics.append(topic)

    def unsubscribe(self, topic: str, actor: Actor) -> None:
        check_name(topic, "topic name")
        if topic not in actor.topics:
            raise ActorNotFound(f"id:{actor.id}", f"topic:{topic}")
        subscribers = self.topics[topic]
        subscribers.remove(actor)
        if not subscribers:
            del self.topics[topic]
        actor.topics.remove(topic)

    # -- pools -------------------------------------------------------------------------------

    def create_pool(self, name: str, strategy: str) -> Pool:
        check_name(name, "pool name")
        known = check_strategy(strategy)
        if name in self.pools:
            raise DuplicateRegistration(f"pool:{name}")
        pool = self.pools[name] = Pool(name, known)
        if strategy == "broadcast":
            self.broadcasts[name] = pool
        return pool

    def pool(self, name: str) -> Pool:
        found = self.pools.get(name)
        if found is None:
            raise PoolNotFound(name)
        return found

    def join(self, name: str, actor: Actor) -> None:
        pool = self.pool(name)
        if actor in pool.members:
            raise DuplicateRegistration(f"id:{actor.id}", f"pool:{name}")
        self._join(pool, actor)

    def _join(self, pool: Pool, actor: Actor) -> None:
        pool.members.append(actor)  # a joiner goes last in rotation (spec 3.2.2)
        actor.pools.append(pool.name)
        if pool.queue is not None:
            actor.shared.append(pool)

    def leave(self, name: str, actor: Actor) -> None:
        pool = self.pool(name)
        if actor not in pool.members:
            raise ActorNotFound(f"id:{actor.id}", f"pool:{name}")
        index = pool.members.index(actor)
        del pool.members[index]
        pool.cursor = leave_cursor(pool.cursor, index, len(pool.members))
        actor.pools.remove(name)
        if pool.queue is not None:
            actor.shared.remove(pool)

    # -- resolution (spec 2.5) ---------------------------------------------------------------

    def resolve(self, to: Address, key: str | None) -> Actor:
        kind = to.kind
        if kind == "pool":
            pool = self.pools.get(to.value)
            if pool is None:
                raise PoolNotFound(to.value)
            members = pool.members
            for m in members:  # a plain loop: cheaper than any() on this hot path
                if m.alive:
                    break
            else:
                raise PoolEmpty(to.value)
            if pool.queue is not None:
                return pool.queue
            try:
                index, pool.cursor = pool.choose(members, pool.cursor, self.rng, key)
            except RouteError as error:  # consistent_hash without a key names no pool
                raise RouteError(str(to), error.fields["reason"]) from None
            return members[index]
        if kind == "service":
            for provider in self.services.get(to.value, ()):
                if provider.alive:
                    return provider
            raise ServiceUnavailable(to.value)
        if kind == "topic":
            raise RouteError(str(to), "a topic has no one actor: it fans out to its subscribers")
        found = (self.by_text if kind == "id" else self.names).get(to.value)
        if found is None:
            raise ActorNotFound(str(to))
        if not found.alive:
            raise MailboxClosed(str(to))
        return found
