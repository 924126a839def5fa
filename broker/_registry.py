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
        # rule 3.4: load = queued + 1 while working
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
            # rule 3.8: a shared pool has one unbounded queue
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
            # rule 2.2, 2.6: the name's grammar
            check_name(name)
            if name in self.names:
                # rule 2.6, 8.4: a taken name is DuplicateRegistration
                raise DuplicateRegistration(f"name:{name}")
        for s in services:
            # rule 2.2, 2.6: each service name's grammar, in order
            check_name(s, "service name")
        for p in pools:
            # rule 2.6: each pool exists (else PoolNotFound), in order
            self.pool(p)
        for seq, what in ((services, "service"), (pools, "pool")):
            for i, item in enumerate(seq):
                if item in seq[:i]:
                    # rule 2.6, 8.4: a service or pool listed twice
                    raise DuplicateRegistration(f"{what}:{item}", "the registration")
        # rule 1.3, 2.6: the id only once every check passed
        actor = Actor(self.next_id, name, mailbox, send_timeout)
        self.next_id += 1
        self.actors[actor.id] = actor
        # rule 2.4: id: and name: resolve by exact-key table lookup
        self.by_text[str(actor.id)] = actor
        if name is not None:
            self.names[name] = actor
        for s in services:
            # rule 2.6: it provides its services in the order given
            self._provide(s, actor)
        for p in pools:
            # rule 2.6: and joins its pools in the order given
            self._join(self.pools[p], actor)
        return actor

    def remove(self, actor: Actor) -> None:
        for p in list(actor.pools):
            # rule 2.7, 3.2.3: removed from its pools
            self.leave(p, actor)
        for s in actor.services:
            # rule 2.7: removed as a provider of its services
            self.services[s].remove(actor)
        actor.services.clear()
        for t in list(actor.topics):
            # rule 2.7, 2.10: removed from its topics
            self.unsubscribe(t, actor)
        del self.actors[actor.id]
        del self.by_text[str(actor.id)]
        if actor.name is not None:
            # rule 2.7: its name is free again
            del self.names[actor.name]

    def actor(self, actor_id: int) -> Actor:
        found = self.actors.get(actor_id)
        if found is None:
            # rule 8.4: an id of no registered actor is ActorNotFound
            raise ActorNotFound(f"id:{actor_id}")
        return found

    def provide(self, service: str, actor: Actor) -> None:
        check_name(service, "service name")
        if service in actor.services:
            # rule 8.4: providing a service twice is DuplicateRegistration
            raise DuplicateRegistration(f"id:{actor.id}", f"service:{service}")
        self._provide(service, actor)

    def _provide(self, service: str, actor: Actor) -> None:
        # rule 1.4, 2.5: providers in registration order
        self.services.setdefault(service, []).append(actor)
        actor.services.append(service)

    # -- topics (spec 2.10) ------------------------------------------------------------------

    def subscribe(self, topic: str, actor: Actor) -> None:
        # rule 2.2, 2.10: then the topic name's grammar
        check_name(topic, "topic name")
        if topic in actor.topics:
            # rule 2.10, 8.4: subscribing twice is DuplicateRegistration
            raise DuplicateRegistration(f"id:{actor.id}", f"topic:{topic}")
        # rule 2.10: appended to the subscribers
        self.topics.setdefault(topic, []).append(actor)
        actor.topics.append(topic)

    def unsubscribe(self, topic: str, actor: Actor) -> None:
        # rule 2.2, 2.10: then the topic name's grammar
        check_name(topic, "topic name")
        if topic not in actor.topics:
            # rule 2.10, 8.4: unsubscribing a non-subscriber is ActorNotFound
            raise ActorNotFound(f"id:{actor.id}", f"topic:{topic}")
        subscribers = self.topics[topic]
        # rule 2.10: removed from the topic's subscribers
        subscribers.remove(actor)
        if not subscribers:
            # rule 2.10, 9.2: a topic without subscribers is unknown
            del self.topics[topic]
        actor.topics.remove(topic)

    # -- pools -------------------------------------------------------------------------------

    def create_pool(self, name: str, strategy: str) -> Pool:
        # rule 2.2: a pool name's grammar
        check_name(name, "pool name")
        # rule 3.1: the strategy is a known name
        known = check_strategy(strategy)
        if name in self.pools:
            # rule 2.9, 8.4: a pool name that exists is a duplicate
            raise DuplicateRegistration(f"pool:{name}")
        # rule 9.2: pools kept in the order created
        pool = self.pools[name] = Pool(name, known)
        if strategy == "broadcast":
            # rule 3.7: sends to a broadcast pool fan out
            self.broadcasts[name] = pool
        return pool

    def pool(self, name: str) -> Pool:
        found = self.pools.get(name)
        if found is None:
            # rule 8.4: an unknown pool is PoolNotFound (checked for 2.6 and 2.9)
            raise PoolNotFound(name)
        return found

    def join(self, name: str, actor: Actor) -> None:
        # rule 2.9: joining an unknown pool is PoolNotFound
        pool = self.pool(name)
        if actor in pool.members:
            # rule 2.9, 8.4: joining a pool twice is DuplicateRegistration
            raise DuplicateRegistration(f"id:{actor.id}", f"pool:{name}")
        self._join(pool, actor)

    def _join(self, pool: Pool, actor: Actor) -> None:
        # rule 3.2.2: a joining member is appended at the end
        pool.members.append(actor)  # a joiner goes last in rotation (spec 3.2.2)
        actor.pools.append(pool.name)
        if pool.queue is not None:
            # rule 3.8: shared pools pulled from in the order joined
            actor.shared.append(pool)

    def leave(self, name: str, actor: Actor) -> None:
        # rule 2.9: leaving an unknown pool is PoolNotFound
        pool = self.pool(name)
        if actor not in pool.members:
            # rule 2.9, 8.4: leaving a pool it is not in is ActorNotFound
            raise ActorNotFound(f"id:{actor.id}", f"pool:{name}")
        index = pool.members.index(actor)
        # rule 3.2.3: the members after the leaver move down by one
        del pool.members[index]
        # rule 3.2.3: and round robin's cursor is adjusted
        pool.cursor = leave_cursor(pool.cursor, index, len(pool.members))
        actor.pools.remove(name)
        if pool.queue is not None:
            actor.shared.remove(pool)

    # -- resolution (spec 2.5) ---------------------------------------------------------------

    def resolve(self, to: Address, key: str | None) -> Actor:
        kind = to.kind
        if kind == "pool":
            # rule 2.5: pool: resolution
            pool = self.pools.get(to.value)
            if pool is None:
                # rule 2.5, 8.4: pool: of an unknown pool is PoolNotFound
                raise PoolNotFound(to.value)
            members = pool.members
            for m in members:  # a plain loop: cheaper than any() on this hot path
                if m.alive:
                    break
            else:
                # rule 2.5, 8.4: a pool without a live member is PoolEmpty
                raise PoolEmpty(to.value)
            if pool.queue is not None:
                # rule 3.8: a shared pool chooses no member: its queue takes it
                return pool.queue
            try:
                # rule 2.5, 3.1: the strategy chooses among live members
                index, pool.cursor = pool.choose(members, pool.cursor, self.rng, key)
            except RouteError as error:  # consistent_hash without a key names no pool
                # rule 3.6, 8.4: a key-less message is a RouteError
                raise RouteError(str(to), error.fields["reason"]) from None
            return members[index]
        if kind == "service":
            # rule 1.4, 2.5: service: providers in registration order
            for provider in self.services.get(to.value, ()):
                if provider.alive:
                    # rule 2.5, 2.8: the first live provider serves (failover)
                    return provider
            # rule 2.5, 8.4: no live provider: ServiceUnavailable
            raise ServiceUnavailable(to.value)
        if kind == "topic":
            raise RouteError(str(to), "a topic has no one actor: it fans out to its subscribers")
        # rule 2.4, 2.5: an exact-key lookup
        found = (self.by_text if kind == "id" else self.names).get(to.value)
        if found is None:
            # rule 2.5, 8.4: id:/name: of no registered actor
            raise ActorNotFound(str(to))
        if not found.alive:
            # rule 2.5, 2.8, 8.4: id:/name: of a stopped actor
            raise MailboxClosed(str(to))
        return found
