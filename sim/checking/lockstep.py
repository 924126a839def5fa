"""The lockstep test: a `broker.Broker` and the reference model driven side by side.

Every rule performs one operation on both: the broker on a virtual clock, the model by `apply`.
After each step the two must agree on the operation's result, on the events it produced (in
order: routing, enqueueing, dead letters with reasons, resolutions), and on everything observable
(counters, pending requests, outcomes, depths and loads, time). The invariants also check the
properties the brief names directly on the broker: routing, correlation, timeouts at the
deadline, conservation, no pending request without a live requester, depth within capacity.

`random` and `power_of_two` pools are the only nondeterminism the model does not own: the machine
reads the broker's choice from its `route` event and hands it to the model as part of the action
(spec 3.3, 3.5); the model still checks that the choice was one the strategy could make (a live
member; for power_of_two, one that wins some pair). `consistent_hash` is computed by both from the
message key (spec 3.6); `broadcast` and `shared` are deterministic (spec 3.7, 3.8).

Every operation goes through sim/checking/bridge.py (`perform`, the two halves of
`disagreement`), and the machine
reads the broker only through `broker.MessageBroker`, so any broker behind that protocol (a
mutant, a port's adapter) is tested the same way. Run it as a test with
`TestLockstep = LockstepMachine.TestCase`, or against another broker with
`sim.checking.hunt.run_lockstep(factory, settings)`, which returns the failure instead of
raising it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
)

import model as m
from broker import BACKPRESSURES, Broker, BrokerError, BrokerFactory, MessageBroker, SplitMix64
from sim.checking.bridge import (
    answer_at_once,
    model_addr,
    model_counters,
    perform,
    refusal_disagreement,
    value_disagreement,
)
from sim.checking.refinement import refinement
from sim.run import Scheduler

# "a"/"i" and "ab"/"ba" collide under a lossy hash such as sum(map(ord, name)) % 8.
NAMES = ("a", "i", "ab", "ba")
POOLS = ("p", "q")
SERVICES = ("s", "t")
TOPICS = ("news", "ops")
KEYS: tuple[str | None, ...] = (None, "k1", "k2", "a")
RETRIES: tuple[tuple[int, float, float, float] | None, ...] = (
    None,
    (3, 1.0, 1.0, 5.0),
    (2, 0.5, 2.0, 1.0),
    (4, 0.5, 2.0, 1.5),
)


class Divergence(AssertionError):
    """The broker and the model (or a property) disagree; `check` names what caught it."""

    def __init__(self, check: str, detail: str) -> None:
        super().__init__(f"[{check}] {detail}")
        self.check = check


def _expect(check: str, ok: bool, detail: str) -> None:
    if not ok:
        raise Divergence(check, detail)


def _retry(spec: tuple[int, float, float, float] | None) -> m.Retry | None:
    return None if spec is None else m.Retry(*spec)


_TARGETS = st.sampled_from(
    [f"name:{n}" for n in NAMES]
    + [f"pool:{p}" for p in POOLS]
    + [f"service:{s}" for s in SERVICES]
    + [f"topic:{t}" for t in TOPICS]
)


# Round robin four times as often: its rotation under leaves is the subtlest rule (3.2.3).
_STRATEGY_MIX: tuple[m.StrategyName, ...] = (
    "round_robin",
    "round_robin",
    "round_robin",
    *m.STRATEGIES,
)


_SKIPPED = m.Refused("skipped")  # an action the port under test does not have: not performed


def fit(action: m.Action, features: frozenset[str]) -> m.Action | None:
    """`action` within a port's features (docs/port-protocol.md): what it lacks is left out
    (a high priority becomes normal, a TTL or retry policy goes, an unsupported strategy or
    backpressure mode becomes a supported one); None when nothing of it is left."""
    strategies = [s for s in m.STRATEGIES if f"strategy:{s}" in features]
    modes = [b for b in BACKPRESSURES if f"backpressure:{b}" in features]
    if isinstance(action, m.CreatePool):
        if not strategies:
            return None
        return action if action.strategy in strategies else replace(action, strategy=strategies[0])
    if isinstance(action, m.Join | m.Leave):
        return action if strategies else None
    if isinstance(action, m.Provide):
        return action if "services" in features else None
    if isinstance(action, m.Subscribe | m.Unsubscribe):
        return action if "topics" in features else None
    if isinstance(action, m.Register):
        reg = action
        if "services" not in features:
            reg = replace(reg, services=())
        if not strategies:
            reg = replace(reg, pools=())
        if reg.capacity is not None and reg.backpressure not in modes:
            reg = replace(reg, backpressure=modes[0]) if modes else replace(reg, capacity=None)
        if "backpressure:block" not in features:
            reg = replace(reg, send_timeout=None)
        return reg
    if isinstance(action, m.Tell | m.Ask):
        kind = str(action.to).partition(":")[0]
        if (kind == "service" and "services" not in features) or (
            kind == "topic" and "topics" not in features
        ):
            return None
        if kind == "pool" and not strategies:
            return None
        fitted: m.Tell | m.Ask = action
        if "priority" not in features:
            fitted = replace(fitted, high=False)
        if "retry" not in features:
            fitted = replace(fitted, retry=None)
        if "backpressure:block" not in features:
            fitted = replace(fitted, send_timeout=None)
        if isinstance(fitted, m.Tell) and "ttl" not in features:
            fitted = replace(fitted, ttl=None, timestamp=None)
        return fitted
    return action


class LockstepMachine(RuleBasedStateMachine):
    """Broker and model in lockstep; subclass with another `factory` to test another broker."""

    factory: ClassVar[BrokerFactory] = Broker
    # A port's features (docs/port-protocol.md): the machine performs only what it has; None:
    # everything (the reference and its mutants).
    features: ClassVar[frozenset[str] | None] = None

    actors = Bundle("actors")
    requests = Bundle("requests")

    def __init__(self) -> None:
        super().__init__()
        self.clock = Scheduler()
        self.seen: list[m.Event] = []  # this step's broker events
        self.resolutions: Counter[int] = Counter()
        self.timed_out_at: list[tuple[int, float]] = []
        self.msg_corr: dict[int, int | None] = {}
        self.msg_to: dict[int, str | None] = {}
        self.eager = False  # the next actor woken answers at once (`_reply_at_once`)
        self.answered_by: int | None = None
        self.broker: MessageBroker[Any] = type(self).factory(
            self.clock, SplitMix64(0), listener=self._listen, wake=self._reply_at_once
        )
        self.model = m.State()

    # -- the broker's events, in the model's vocabulary --------------------------------------

    def _listen(self, name: str, f: dict[str, Any]) -> None:
        self.seen.append(m.as_event(name, f))
        if name == "send":
            self.msg_corr[f["msg"]] = f.get("corr")
            self.msg_to[f["msg"]] = f["to"]
        elif name == "resolve":
            corr = f["corr"]
            self.resolutions[corr] += 1
            if f["outcome"] == "timed_out":
                self.timed_out_at.append((corr, self.clock.now))
            if f["msg"] is not None:
                _expect("correlation", self.msg_corr.get(f["msg"]) == corr, f"{f} answers {corr}")

    def _reply_at_once(self, actor: int) -> None:
        """A server woken by the operation that answers at once, inside it (spec 1.6): the
        race of spec 5.1 shows if its reply finds no pending request."""
        if not self.eager:
            return
        self.eager = False
        self.answered_by = actor
        answer_at_once(self.broker, actor, "at once")

    def _id_of(self, label: str) -> int:
        if label.startswith("id:"):
            return int(label[3:])
        found = next(a.id for a in self.model.actors if a.name == label)
        return found

    def _choices(self, before: m.State) -> tuple[int, ...]:
        """The members the broker picked in `random` pools this step, in routing order."""
        out = []
        for ev in self.seen:
            if ev.name != "route" or ev.msg is None:
                continue
            to = self.msg_to.get(ev.msg) or ""
            pool = before.pool(to[5:]) if to.startswith("pool:") else None
            if pool is not None and pool.strategy in ("random", "power_of_two"):
                assert ev.actor is not None
                out.append(self._id_of(ev.actor))
        return tuple(out)

    # -- one operation on both ---------------------------------------------------------------

    def _both(self, action: m.Action, payload: Any = None) -> tuple[Any, m.Result]:
        """Perform `action` on the broker (through the bridge) and on the model; compare."""
        if self.features is not None:
            fitted = fit(action, self.features)
            if fitted is None:
                return None, _SKIPPED
            action = fitted
        before = self.model
        self.seen = []
        fields = None
        try:
            value, error = perform(self.broker, action, payload, self.clock), None
        except BrokerError as e:
            value, error, fields = None, e.code, e.fields
        if isinstance(action, m.Tell | m.Ask | m.Advance):
            action = replace(action, choices=self._choices(before))
        effect = m.apply(before, action)
        self.model = effect.state
        expected = list(effect.events)
        if self.answered_by is not None:
            expected += self._eager_model_steps()
        refused = refusal_disagreement(action, error, effect.result, fields)
        _expect("result", refused is None, f"{action}: {refused}")
        alike = len(self.seen) == len(expected) and all(
            got.same(want) for got, want in zip(self.seen, expected, strict=True)
        )
        _expect(
            "events",
            alike,
            f"{action}:\n broker {[e.fields for e in self.seen]}\n"
            f" model  {[e.fields for e in expected]}",
        )
        if error is None:
            wrong = value_disagreement(action, value, effect.result)
            check = "routing" if isinstance(action, m.Dequeue) else "result"
            _expect(check, wrong is None, f"{action}: {wrong}")
        return value, effect.result

    def _eager_model_steps(self) -> list[m.Event]:
        """The model's side of `_reply_at_once`: after the operation, the actor the broker woke
        dequeues, and replies if it took a request (the model has no wakes: whom to wake is the
        driver's business, spec 1.6; what the answer does is the model's)."""
        actor, self.answered_by = self.answered_by, None
        assert actor is not None
        got = m.apply(self.model, m.Dequeue(actor))
        events = list(got.events)
        self.model = got.state
        if isinstance(got.result, m.Msg) and got.result.kind == "request":
            assert got.result.corr is not None
            answered = m.apply(self.model, m.Reply(actor, got.result.corr))
            self.model = answered.state
            events += answered.events
        return events

    # -- a populated start, so that short runs reach pools and full mailboxes ----------------

    @initialize(
        target=actors,
        strategies=st.tuples(st.sampled_from(_STRATEGY_MIX), st.sampled_from(_STRATEGY_MIX)),
        specs=st.lists(
            st.tuples(
                st.sampled_from([None, 1, 2]),
                st.sampled_from(BACKPRESSURES),
                st.lists(st.sampled_from(POOLS), unique=True, min_size=1),
                st.lists(st.sampled_from(SERVICES), unique=True, max_size=1),
                st.lists(st.sampled_from(TOPICS), unique=True, max_size=2),
            ),
            min_size=1,
            max_size=4,
        ),
    )
    def populate(
        self,
        strategies: tuple[m.StrategyName, m.StrategyName],
        specs: list[tuple[int | None, Any, list[str], list[str], list[str]]],
    ) -> Any:
        for pool, strategy in zip(POOLS, strategies, strict=True):
            self.create_pool(pool, strategy)
        ids = []
        for i, (capacity, backpressure, pools, services, topics) in enumerate(specs):
            name = NAMES[i] if i % 2 == 0 else None
            actor = self.register(name, capacity, backpressure, None, services, pools)
            for topic in topics:
                self.subscribe(topic, actor)
            ids.append(actor)
        return multiple(*ids)

    # -- registry ----------------------------------------------------------------------------

    @rule(
        target=actors,
        name=st.none() | st.sampled_from(NAMES),
        capacity=st.sampled_from([None, 1, 2]),
        backpressure=st.sampled_from(BACKPRESSURES),
        send_timeout=st.sampled_from([None, 1.0, 2.0]),
        services=st.lists(st.sampled_from(SERVICES), max_size=2),
        pools=st.lists(st.sampled_from(POOLS), max_size=2),
    )
    def register(
        self,
        name: str | None,
        capacity: int | None,
        backpressure: Any,
        send_timeout: float | None,
        services: list[str],
        pools: list[str],
    ) -> Any:
        value, result = self._both(
            m.Register(name, capacity, backpressure, send_timeout, tuple(services), tuple(pools))
        )
        return multiple() if isinstance(result, m.Refused) else value

    @rule(actor=actors)
    def unregister(self, actor: int) -> None:
        self._both(m.Unregister(actor))

    @rule(actor=actors)
    def crash(self, actor: int) -> None:
        self._both(m.Stop(actor))

    @rule(actor=actors)
    def restart(self, actor: int) -> None:
        self._both(m.Restart(actor))

    @rule(pool=st.sampled_from(POOLS), strategy=st.sampled_from(m.STRATEGIES))
    def create_pool(self, pool: str, strategy: m.StrategyName) -> None:
        self._both(m.CreatePool(pool, strategy))

    @rule(pool=st.sampled_from(POOLS), actor=actors)
    def join(self, pool: str, actor: int) -> None:
        self._both(m.Join(pool, actor))

    @rule(pool=st.sampled_from(POOLS), actor=actors)
    def leave(self, pool: str, actor: int) -> None:
        self._both(m.Leave(pool, actor))

    @rule(service=st.sampled_from(SERVICES), actor=actors)
    def provide(self, service: str, actor: int) -> None:
        self._both(m.Provide(service, actor))

    @rule(topic=st.sampled_from(TOPICS), actor=actors)
    def subscribe(self, topic: str, actor: int) -> None:
        self._both(m.Subscribe(topic, actor))

    @rule(topic=st.sampled_from(TOPICS), actor=actors)
    def unsubscribe(self, topic: str, actor: int) -> None:
        self._both(m.Unsubscribe(topic, actor))

    # -- sending -----------------------------------------------------------------------------

    @rule(
        sender=st.none() | actors,
        to=_TARGETS | actors.map(lambda a: f"id:{a}"),
        high=st.booleans(),
        ttl=st.sampled_from([None, 1.0, 2.0]),
        stamp=st.sampled_from([None, -1.0, 0.5, 3.0]),
        retry=st.sampled_from(RETRIES),
        send_timeout=st.sampled_from([None, 0.5]),
        key=st.sampled_from(KEYS),
    )
    def tell(
        self,
        sender: int | None,
        to: str,
        high: bool,
        ttl: float | None,
        stamp: float | None,
        retry: tuple[int, float, float, float] | None,
        send_timeout: float | None,
        key: str | None = None,
    ) -> None:
        timestamp = None if stamp is None or ttl is None else self.clock.now + stamp
        policy = _retry(retry)
        self._both(
            m.Tell(sender, model_addr(to), high, ttl, timestamp, policy, send_timeout, key=key),
            "tell",
        )

    @rule(
        to=_TARGETS | actors.map(lambda a: f"id:{a}"),
        n=st.integers(2, 4),
        high=st.booleans(),
        key=st.sampled_from(KEYS),
    )
    def burst(self, to: str, n: int, high: bool, key: str | None) -> None:
        """Several one-way sends to one address in one step: fills mailboxes, turns rotations."""
        for _ in range(n):
            self.tell(None, to, high, None, None, None, None, key)

    @rule(
        pool=st.sampled_from(POOLS),
        before=st.integers(1, 3),
        leaver=st.integers(0, 3),
        after=st.integers(2, 4),
    )
    def rotate_across_leave(self, pool: str, before: int, leaver: int, after: int) -> None:
        """Spec 3.2.3: turn a rotation, take a member out, turn it again. A cursor that does not
        follow the leave makes the broker skip or double-serve a member the model would not."""
        for _ in range(before):
            self.tell(None, f"pool:{pool}", False, None, None, None, None, None)
        state = self.model.pool(pool)
        if state is None or not state.members:
            return
        self.leave(pool, state.members[leaver % len(state.members)])
        for _ in range(after):
            self.tell(None, f"pool:{pool}", False, None, None, None, None, None)

    def _request(
        self,
        sender: int,
        to: str,
        timeout: float,
        high: bool,
        retry: tuple[int, float, float, float] | None,
        key: str | None = None,
    ) -> Any:
        value, result = self._both(
            m.Ask(sender, model_addr(to), timeout, high, _retry(retry), key=key), "ask"
        )
        return multiple() if isinstance(result, m.Refused) else value

    @rule(
        target=requests,
        sender=actors,
        to=_TARGETS | actors.map(lambda a: f"id:{a}"),
        timeout=st.sampled_from([1.0, 2.0, 3.5]),
        high=st.booleans(),
        retry=st.sampled_from(RETRIES),
        key=st.sampled_from(KEYS),
    )
    def request(
        self,
        sender: int,
        to: str,
        timeout: float,
        high: bool,
        retry: tuple[int, float, float, float] | None,
        key: str | None,
    ) -> Any:
        return self._request(sender, to, timeout, high, retry, key)

    @rule(
        target=requests,
        sender=actors,
        to=_TARGETS | actors.map(lambda a: f"id:{a}"),
        timeout=st.sampled_from([1.0, 2.0]),
    )
    def request_answered_at_once(self, sender: int, to: str, timeout: float) -> Any:
        """The first actor the request wakes dequeues and replies at once, inside the call
        (spec 1.6): a subscriber on the caller's thread. Spec 5.1's race shows here."""
        self.eager = True
        try:
            return self._request(sender, to, timeout, False, None)
        finally:
            self.eager = False

    @rule(sender=st.none() | actors, corr=requests)
    def reply(self, sender: int | None, corr: int) -> None:
        self._both(m.Reply(sender, corr), "re")

    @rule(sender=actors, corr=requests)
    def reply_twice(self, sender: int, corr: int) -> None:
        self.reply(sender, corr)
        self.reply(sender, corr)

    @rule(sender=st.none() | actors, offset=st.integers(0, 3))
    def reply_unknown(self, sender: int | None, offset: int) -> None:
        self.reply(sender, self.model.next_corr + offset)

    @rule(corr=requests)
    def cancel(self, corr: int) -> None:
        self._both(m.Cancel(corr))

    # -- the actor's side --------------------------------------------------------------------

    @rule(actor=actors, done=st.booleans())
    def deliver(self, actor: int, done: bool) -> None:
        _, result = self._both(m.Dequeue(actor))
        if done and not isinstance(result, m.Refused):
            self._both(m.Done(actor))

    # -- time --------------------------------------------------------------------------------

    def _advance(self, to: float) -> None:
        self._both(m.Advance(to))

    @rule(dt=st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0]))
    def advance(self, dt: float) -> None:
        self._advance(self.clock.now + dt)

    @rule(corr=requests)
    def advance_to_deadline(self, corr: int) -> None:
        req = self.model.request(corr)
        deadline = req.deadline if req is not None else self.clock.now
        self._advance(max(deadline, self.clock.now))

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def same_observable_state(self) -> None:
        b, s = self.broker, self.model
        stats = b.stats()
        counters = stats.counters()
        expected = model_counters(s)
        _expect("counters", counters == expected, f"{counters} != {expected}")
        reasons = Counter(d.reason for d in s.dead_letters)
        _expect(
            "dead_letters",
            dict(stats.dead_letters) == dict(reasons),
            f"{dict(stats.dead_letters)} != {dict(reasons)}",
        )
        _expect(
            "pending",
            tuple(b.pending_requests()) == s.pending(),
            f"{b.pending_requests()} != {s.pending()}",
        )
        for r in s.requests:
            _expect(
                "outcomes",
                b.outcome(r.corr) == r.outcome,
                f"corr {r.corr}: {b.outcome(r.corr)} != {r.outcome}",
            )
        outcomes = Counter(r.outcome for r in s.requests if r.outcome is not None)
        _expect(
            "outcomes",
            {k: v for k, v in stats.outcomes.items() if v} == dict(outcomes),
            f"{dict(stats.outcomes)} != {dict(outcomes)}",
        )
        for a in s.actors:
            got = (b.depth(a.id), b.load(a.id))
            _expect("mailboxes", got == (a.size, a.load), f"actor {a.id}: {got} vs model {a}")
        _expect("time", self.clock.now == s.now, f"{self.clock.now} != {s.now}")

    @invariant()
    def refines(self) -> None:
        """The broker's state maps onto the model's (sim/checking/refinement.py): a corrupted
        cursor or a leaked entry is caught at the step that made it, not when it shows."""
        if isinstance(self.broker, Broker):
            problem = refinement(self.broker, self.model)
            _expect("refinement", problem is None, str(problem))

    @invariant()
    def conservation(self) -> None:
        """Spec 7.2: accepted = delivered + dead-lettered + in flight (counted where they are)."""
        b = self.broker.stats()
        _expect(
            "conservation",
            b.accepted == b.delivered + b.dead_lettered + self.model.in_flight and b.in_flight >= 0,
            f"accepted {b.accepted} != {b.delivered} + {b.dead_lettered} + {self.model.in_flight}",
        )

    @invariant()
    def requests_have_live_requesters_and_future_deadlines(self) -> None:
        """Spec 2.8, 5.5, 5.8: a pending request has a live requester and a deadline ahead."""
        for corr in self.broker.pending_requests():
            req = self.model.request(corr)
            _expect("pending", req is not None, f"broker has unknown pending {corr}")
            assert req is not None
            if isinstance(self.broker, Broker):  # a port cannot be asked (not an operation)
                try:
                    self.broker.resolve(f"id:{req.requester}")
                except BrokerError as e:
                    raise Divergence("pending_requester", f"{corr}: requester {e.code}") from e
            _expect("timeouts", req.deadline > self.clock.now, f"{corr} pending at deadline")

    @invariant()
    def timeouts_exactly_at_deadline(self) -> None:
        """Spec 5.5: a request times out at its deadline, never before."""
        for corr, at in self.timed_out_at:
            req = self.model.request(corr)
            _expect("timeouts", req is not None and at == req.deadline, f"{corr} at {at}")
        self.timed_out_at.clear()

    @invariant()
    def resolved_at_most_once(self) -> None:
        """Spec 5.3: one outcome per request."""
        twice = [c for c, n in self.resolutions.items() if n > 1]
        _expect("correlation", not twice, f"resolved more than once: {twice}")

    @invariant()
    def depth_within_capacity(self) -> None:
        """Spec 4.6."""
        for a in self.model.actors:
            depth = self.broker.depth(a.id)
            ok = a.capacity is None or depth <= a.capacity
            _expect("capacity", ok, f"actor {a.id}: {depth} > {a.capacity}")
