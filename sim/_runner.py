"""The simulator: a scenario's pools, actors, clients and faults driving a broker in virtual time.

One run: register everything at t = 0, start arrivals and faults, run until `until` (arrivals
stop there), then drain until no event is left, with a hard stop at `hard_stop(until)` for work
that never ends. Every draw comes from a named stream of the scenario's seed, so a run is a pure
function of its scenario: the same scenario gives the same trace, byte for byte.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from broker import (
    IMMEDIATE,
    ActorNotFound,
    Address,
    Broker,
    BrokerError,
    Envelope,
    MessageBroker,
    Outcome,
    RetryPolicy,
)
from broker import Transit as _Transit
from sim._dists import Dist
from sim._monitors import InvariantViolation, Monitor
from sim._rng import Streams
from sim._scheduler import Scheduler
from sim._script import ScriptStep
from sim._trace import TraceWriter, header
from sim.scenario import ClientSpec, Closed, ConstantArrivals, Faults, Scenario

BrokerFactory = Callable[..., MessageBroker[Any]]
Progress = Callable[[float, float], None]


def hard_stop(until: float) -> float:
    """When a drain that has not finished is cut off: ten times the arrival window plus 1000."""
    return 10.0 * until + 1000.0


class _Network:
    """Transit faults (spec 7.4): drop, duplicate and delay, each drawn from the fault stream."""

    __slots__ = ("delay", "drop", "duplicate", "rng")

    def __init__(self, faults: Faults, streams: Streams) -> None:
        self.drop, self.duplicate, self.delay = faults.drop, faults.duplicate, faults.delay
        self.rng = streams.get("faults/transit")

    def transit(self, env: Envelope[Any]) -> _Transit:
        rng = self.rng
        if self.drop and rng.random() < self.drop:
            return _Transit(drop=True)
        delay = self.delay.sample(rng)
        copy = self.delay.sample(rng) if self.duplicate and rng.random() < self.duplicate else None
        if copy is None and delay == 0.0:
            return IMMEDIATE
        return _Transit(delay=delay, duplicate=copy)


class _Worker:
    """A pool member or a named actor: takes one message at a time, serves it, replies."""

    __slots__ = (
        "base_speed", "broker", "busy", "busy_time", "clock", "current", "dist", "hung", "id",
        "label", "rng", "served", "speed", "started", "timer",
    )  # fmt: skip

    def __init__(self, sim: Simulation, actor: int, label: str, dist: Dist, speed: float) -> None:
        self.broker, self.clock = sim.broker, sim.clock
        self.id, self.label, self.dist = actor, label, dist
        self.rng = sim.streams.get(f"service/{label}")
        self.base_speed = self.speed = speed
        self.busy = self.hung = False
        self.busy_time = 0.0
        self.served = 0
        self.started = 0.0
        self.timer: Any = None
        self.current: Any = None

    def kick(self) -> None:
        if self.busy or self.hung:
            return
        env = self.broker.dequeue(self.id)
        if env is None:
            return
        self.busy = True
        self.current = env
        self.started = now = self.clock.now
        duration = self.dist.sample(self.rng) / self.speed
        self.timer = self.clock.call_at(now + duration, self.finish)

    def finish(self) -> None:
        env: Envelope[Any] = self.current
        self.busy = False
        self.timer = None
        self.busy_time += self.clock.now - self.started
        self.served += 1
        if env.kind == "request":
            self.broker.reply(self.id, env.corr, env.payload)  # type: ignore[arg-type]
        if self.hung:
            self.broker.done(self.id)
        else:
            self.kick()

    def crash(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
            self.busy_time += self.clock.now - self.started
        self.busy = False


class _Client:
    """Arrivals of one `[[client]]`: open loop (Poisson, constant) or closed loop."""

    __slots__ = (
        "broker",
        "clock",
        "id",
        "issued",
        "keys",
        "on",
        "retry",
        "rng",
        "sim",
        "spec",
        "to",
    )

    def __init__(self, sim: Simulation, spec: ClientSpec, actor: int) -> None:
        self.sim, self.broker, self.clock = sim, sim.broker, sim.clock
        self.spec, self.id = spec, actor
        self.rng = sim.streams.get(f"client/{spec.name}")
        self.to = Address.parse(spec.target)
        self.keys = spec.keys
        r = spec.retry
        self.retry = (
            None
            if r is None
            else RetryPolicy(r.max_attempts, r.backoff, r.multiplier, r.max_backoff, r.jitter)
        )
        self.issued = 0
        self.on = self.closed_done if isinstance(spec.arrivals, Closed) else None

    def start(self) -> None:
        arrivals = self.spec.arrivals
        if isinstance(arrivals, Closed):
            for _ in range(arrivals.concurrency):
                self.clock.call_at(0.0, self.issue)
        else:
            self.clock.call_at(self.gap(), self.open_arrival)

    def gap(self) -> float:
        arrivals = self.spec.arrivals
        if isinstance(arrivals, ConstantArrivals):
            return self.clock.now + arrivals.interval
        return self.clock.now + self.rng.expovariate(arrivals.rate)  # type: ignore[union-attr]

    def more(self) -> bool:
        count = self.spec.count
        return self.clock.now < self.sim.until and (count is None or self.issued < count)

    def open_arrival(self) -> None:
        self.issue()
        nxt = self.gap()
        count = self.spec.count
        if nxt < self.sim.until and (count is None or self.issued < count):
            self.clock.call_at(nxt, self.open_arrival)

    def issue(self) -> None:
        if not self.more():
            return
        self.issued += 1
        spec = self.spec
        key = None if self.keys is None else str(self.keys.sample_key(self.rng))
        if spec.pattern == "request":
            self.broker.request(
                self.id,
                self.to,
                self.issued,
                timeout=spec.timeout,  # type: ignore[arg-type]  # requests always have one
                priority=spec.priority,
                key=key,
                retry=self.retry,
                on_outcome=self.on,
            )
            return
        # A refused tell is reported by the broker as a `reject`; the client moves on.
        with contextlib.suppress(BrokerError):
            self.broker.send(
                self.id, self.to, self.issued, priority=spec.priority, key=key, retry=self.retry
            )
        if self.on is not None:
            self.think()

    def closed_done(self, outcome: Outcome[Any]) -> None:
        self.think()

    def think(self) -> None:
        think = self.spec.arrivals.think  # type: ignore[union-attr]
        wait = self.rng.expovariate(1.0 / think) if think > 0 else 0.0
        self.clock.call_at(self.clock.now + wait, self.issue)


@dataclass(slots=True)
class Result:
    """What a run produced: its summary and, if one broke, the invariant violation."""

    summary: dict[str, Any]
    violation: InvariantViolation | None = None
    events: int = 0

    @property
    def ok(self) -> bool:
        return self.violation is None


class Simulation:
    """One run of one scenario. Use `simulate(scenario)` unless you need the parts."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        trace: IO[str] | None = None,
        monitors: bool = True,
        broker_factory: BrokerFactory = Broker,
    ) -> None:
        self.scenario = scenario
        self.until = scenario.until
        self.clock = Scheduler()
        self.streams = Streams(scenario.seed)
        capacity: dict[str, int | None] = {}
        for pool in scenario.pools:
            for i in range(1, pool.size + 1):
                capacity[f"{pool.name}-{i}"] = pool.capacity
        for actor in scenario.actors:
            capacity[actor.name] = actor.capacity
        self.monitor = Monitor(capacity) if monitors else None
        self.writer = (
            TraceWriter(trace, header(scenario.seed, scenario.to_dict())) if trace else None
        )
        f = scenario.faults
        transit = f.drop or f.duplicate or f.delay.to_dict() != {"dist": "constant", "value": 0.0}
        self.broker: MessageBroker[Any] = broker_factory(
            self.clock,
            self.streams.get("broker"),
            listener=self.observe if (self.monitor or self.writer) else None,
            network=_Network(f, self.streams) if transit else None,
            wake=self._wake,
        )
        self.workers: dict[int, _Worker] = {}
        self.by_label: dict[str, _Worker] = {}
        self.clients: list[_Client] = []
        self.actor_ids: dict[str, int] = {}  # every actor by label, for scripts
        self.script_errors: list[str] = []
        self._build()

    # -- set-up ------------------------------------------------------------------------------

    def _build(self) -> None:
        b, s = self.broker, self.scenario
        for pool in s.pools:
            b.create_pool(pool.name, pool.strategy)
            for i in range(1, pool.size + 1):
                label = f"{pool.name}-{i}"
                actor = b.register(
                    label,
                    capacity=pool.capacity,
                    backpressure=pool.backpressure,  # type: ignore[arg-type]
                    send_timeout=pool.send_timeout,
                    pools=[pool.name],
                )
                speed = pool.speeds[i - 1] if pool.speeds else 1.0
                self._add_worker(_Worker(self, actor, label, pool.service, speed))
        for spec in s.actors:
            actor = b.register(
                spec.name,
                capacity=spec.capacity,
                backpressure=spec.backpressure,  # type: ignore[arg-type]
                send_timeout=spec.send_timeout,
                services=spec.services,
            )
            self._add_worker(_Worker(self, actor, spec.name, spec.service, 1.0))
        for spec_c in s.clients:
            actor = b.register(spec_c.name)
            self.actor_ids[spec_c.name] = actor
            self.clients.append(_Client(self, spec_c, actor))

    def _add_worker(self, worker: _Worker) -> None:
        self.workers[worker.id] = worker
        self.by_label[worker.label] = worker
        self.actor_ids[worker.label] = worker.id

    def _wake(self, actor: int) -> None:
        worker = self.workers.get(actor)
        if worker is not None:
            worker.kick()

    def _schedule_faults(self) -> None:
        f, clock = self.scenario.faults, self.clock
        for crash in f.crash:
            w = self.by_label[crash.actor]
            clock.call_at(crash.at, lambda w=w: self._crash(w))  # type: ignore[misc]
            if crash.restart_after is not None:
                at = crash.at + crash.restart_after
                clock.call_at(at, lambda w=w: self._restart(w))  # type: ignore[misc]
        for slow in f.slow:
            w = self.by_label[slow.actor]
            clock.call_at(slow.at, lambda w=w, s=slow.speed: self._slow(w, s))  # type: ignore[misc]
            clock.call_at(slow.until, lambda w=w: self._slow(w, 1.0))  # type: ignore[misc]
        for hang in f.hang:
            w = self.by_label[hang.actor]
            clock.call_at(hang.at, lambda w=w: self._hang(w, True))  # type: ignore[misc]
            clock.call_at(hang.until, lambda w=w: self._hang(w, False))  # type: ignore[misc]

    def _fault(self, kind: str, **fields: Any) -> None:
        if self.monitor or self.writer:
            self.observe("fault", {"kind": kind, **fields})

    def _crash(self, w: _Worker) -> None:
        self._fault("crash", actor=w.label)
        w.crash()
        self.broker.stop(w.id, "crashed")
        if self.monitor is not None:
            self.monitor.settled(self.clock.now, self._counters())

    # -- scripts (sim/_script.py) ---------------------------------------------------------------

    def _schedule_script(self, n: int = 1) -> None:
        """Steps are scheduled one at a time, each when the previous one has run: so a timer
        that an earlier step set for time t fires before a step at t, as in the model, where
        time advances (firing timers) before the next action."""
        script = self.scenario.script
        if n <= len(script):
            step = script[n - 1]
            at = max(step.at, self.clock.now)
            self.clock.call_at(at, lambda: self._script_step(n, step))

    def _script_step(self, n: int, step: ScriptStep) -> None:
        try:
            self._do(n, step)
        except BrokerError as err:
            self.script_errors.append(f"step {n} ({step.do} at t={step.at!r}): {err.code}: {err}")
        if self.monitor is not None:
            self.monitor.settled(self.clock.now, self._counters())
        self._schedule_script(n + 1)

    def _actor(self, ref: int | str) -> int:
        if isinstance(ref, int):
            return ref
        found = self.actor_ids.get(ref)
        if found is None:
            raise ActorNotFound(f"the script names no actor {ref!r}")
        return found

    def _do(self, n: int, step: ScriptStep) -> None:
        b, get, do = self.broker, step.get, step.do
        if do == "register":
            actor = b.register(
                get("name"),
                capacity=get("capacity"),
                backpressure=get("backpressure", "reject"),
                send_timeout=get("send_timeout"),
                services=get("services", ()),
                pools=get("pools", ()),
            )
            label = get("name") or f"id:{actor}"
            self.actor_ids[label] = actor
            if self.monitor is not None:  # the capacity monitor covers scripted actors too
                self.monitor.capacity[label] = get("capacity")
        elif do == "create_pool":
            b.create_pool(get("pool"), get("strategy", "round_robin"))
        elif do in ("join", "leave"):
            (b.join_pool if do == "join" else b.leave_pool)(get("pool"), self._actor(get("actor")))
        elif do == "provide":
            b.provide(get("service"), self._actor(get("actor")))
        elif do in ("unregister", "stop", "restart", "deliver", "done"):
            actor = self._actor(get("actor"))
            {"unregister": b.unregister, "stop": b.stop, "restart": b.restart,
             "deliver": b.dequeue, "done": b.done}[do](actor)  # fmt: skip
        elif do in ("send", "request"):
            retry = get("retry")
            policy = None if retry is None else RetryPolicy(**dict(retry))
            sender = get("from")
            common: dict[str, Any] = {
                "priority": get("priority", "normal"),
                "key": get("key"),
                "retry": policy,
                "send_timeout": get("send_timeout"),
            }
            payload = get("payload", n)
            if do == "send":
                src = None if sender is None else self._actor(sender)
                b.send(
                    src, get("to"), payload, ttl=get("ttl"), timestamp=get("timestamp"), **common
                )
            else:
                b.request(self._actor(sender), get("to"), payload, timeout=get("timeout"), **common)
        elif do == "reply":
            sender = get("from")
            b.reply(None if sender is None else self._actor(sender), get("corr"), get("payload", n))
        else:
            assert do == "cancel"
            b.cancel(get("corr"))

    def _restart(self, w: _Worker) -> None:
        self._fault("restart", actor=w.label)
        self.broker.restart(w.id)
        w.kick()

    def _slow(self, w: _Worker, factor: float) -> None:
        self._fault("slow", actor=w.label, speed=factor)
        w.speed = w.base_speed * factor

    def _hang(self, w: _Worker, hung: bool) -> None:
        self._fault("hang" if hung else "unhang", actor=w.label)
        w.hung = hung
        if not hung:
            w.kick()

    # -- running -----------------------------------------------------------------------------

    def observe(self, ev: str, fields: dict[str, Any]) -> None:
        t = self.clock.now
        if self.writer is not None:
            self.writer.write(t, ev, fields)
        if self.monitor is not None:
            self.monitor.observe(t, ev, fields)

    def run(self, progress: Progress | None = None) -> Result:
        clock = self.clock
        for client in self.clients:
            client.start()
        self._schedule_faults()
        self._schedule_script()
        violation = None
        try:
            if progress is None:
                clock.run(until=self.until)
            else:
                for k in range(1, 101):
                    clock.run(until=self.until * k / 100)
                    progress(clock.now, self.until)
            stop = hard_stop(self.until)
            clock.run(until=stop)
            if clock.pending:
                raise InvariantViolation(
                    self.monitor.seq if self.monitor else 0,
                    clock.now,
                    "drained",
                    f"{clock.pending} events still scheduled at the hard stop t={stop!r}",
                )
            if self.monitor is not None:
                self.monitor.finish(clock.now, self._counters(), bool(self.scenario.script))
        except InvariantViolation as err:
            violation = err
        return Result(self.summary(violation), violation, self._events())

    def _events(self) -> int:
        if self.writer is not None:
            return self.writer.seq
        return self.monitor.seq if self.monitor is not None else 0

    def _counters(self) -> dict[str, int]:
        b: Any = self.broker
        return {
            "sent": b.sent,
            "rejected": b.rejected,
            "delivered": b.delivered,
            "dead_lettered": b.dead_lettered,
        }

    def summary(self, violation: InvariantViolation | None = None) -> dict[str, Any]:
        """The run's figures (the `--summary` JSON); see docs/trace-format.md."""
        b: Any = self.broker
        end = self.clock.now
        issued = sum(c.issued for c in self.clients if c.spec.pattern == "request")
        latencies = sorted(b.latencies)
        return {
            "seed": self.scenario.seed,
            "end_time": end,
            "events": self._events(),
            "messages": {
                "accepted": b.accepted,
                "delivered": b.delivered,
                "dead_lettered": b.dead_lettered,
                "rejected": b.rejected,
                "in_flight": b.in_flight,
            },
            "dead_letters": dict(sorted(b.dead_letters.items())),
            "requests": {"issued": issued, **b.outcomes},
            "latency": latency_summary(latencies),
            "members": {
                w.label: {
                    "served": w.served,
                    "utilization": w.busy_time / end if end > 0 else 0.0,
                }
                for w in self.workers.values()
            },
            "retries": b.retries,
            **({"script_errors": list(self.script_errors)} if self.scenario.script else {}),
            "invariants": {
                "ok": violation is None,
                "violations": [] if violation is None else [str(violation)],
            },
        }


def latency_summary(ordered: list[float]) -> dict[str, float | int | None]:
    """Count, mean and nearest-rank percentiles of sorted latencies (None when there are none)."""
    n = len(ordered)
    if n == 0:
        return {"count": 0, "mean": None, "p50": None, "p90": None, "p99": None, "max": None}

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p * n) - 1)]

    return {
        "count": n,
        "mean": math.fsum(ordered) / n,
        "p50": rank(0.50),
        "p90": rank(0.90),
        "p99": rank(0.99),
        "max": ordered[-1],
    }


def simulate(
    scenario: Scenario,
    *,
    trace: IO[str] | None = None,
    monitors: bool = True,
    progress: Progress | None = None,
    broker_factory: BrokerFactory = Broker,
) -> Result:
    """Run `scenario` once and return its summary (and violation, if any)."""
    sim = Simulation(scenario, trace=trace, monitors=monitors, broker_factory=broker_factory)
    return sim.run(progress)
