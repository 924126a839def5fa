"""The simulated world around the broker: the network's transit faults, the workers that serve
pool members and named actors, and the clients that issue arrivals."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from broker import (
    IMMEDIATE,
    ActorNotFound,
    Address,
    BrokerError,
    Envelope,
    Outcome,
    RetryPolicy,
    Transit,
)
from sim.run._rng import Streams
from sim.run._scheduler import ScheduledCall
from sim.scenario import ClientSpec, Closed, ConstantArrivals, Dist, Faults, Poisson

if TYPE_CHECKING:
    from sim.run._oplog import OpLog
    from sim.run._runner import Simulation

# The world reads the time as `clock._now`, the scheduler's slot: its public `now` is a read-only
# property, which CPython 3.11 reads through a call, and the world reads the time on every
# arrival and every service (sim/run/_scheduler.py, in the same package, moves it).


class Network:
    """Transit faults (spec 7.4): drop, duplicate and delay, each drawn from the fault stream."""

    __slots__ = ("delay", "drop", "duplicate", "log", "rng")

    def __init__(self, faults: Faults, streams: Streams, log: OpLog | None) -> None:
        self.drop, self.duplicate, self.delay = faults.drop, faults.duplicate, faults.delay
        self.rng = streams.get("faults/transit")
        self.log = log

    def transit(self, env: Envelope[Any]) -> Transit:
        rng = self.rng
        if self.drop and rng.random() < self.drop:
            fate = Transit(drop=True)
        else:
            delay = self.delay.sample(rng)
            dup = self.duplicate and rng.random() < self.duplicate
            copy = self.delay.sample(rng) if dup else None
            fate = (
                IMMEDIATE if copy is None and delay == 0.0 else Transit(delay=delay, duplicate=copy)
            )
        if self.log is not None:  # the environment's choice, for the trace checker
            self.log.line(
                "choice",
                "transit",
                {
                    "msg": env.msg,
                    "drop": fate.drop,
                    "delay": fate.delay,
                    "duplicate": fate.duplicate,
                },
            )
        return fate


class Worker:
    """A pool member or a named actor: takes one message at a time, serves it, replies."""

    __slots__ = (
        "base_speed", "broker", "busy", "busy_time", "clock", "current", "dist", "gone", "hung",
        "id", "label", "on_finish", "rng", "served", "speed", "started", "timer",
    )  # fmt: skip

    def __init__(self, sim: Simulation, actor: int, label: str, dist: Dist, speed: float) -> None:
        self.broker, self.clock = sim.broker, sim.clock
        self.id, self.label, self.dist = actor, label, dist
        self.rng = sim.streams.get(f"service/{label}")
        self.base_speed = self.speed = speed
        self.busy = self.hung = False
        self.gone = False  # its actor was unregistered (a script): the worker stops for good
        self.busy_time = 0.0
        self.served = 0
        self.started = 0.0
        self.timer: ScheduledCall | None = None
        self.on_finish = self.finish  # bound once: scheduled once per message
        # `current` is set by `kick` before the `finish` it schedules: no None check per message.
        self.current: Envelope[Any]

    def kick(self) -> None:
        """Take the next message. A service time of zero is served at once, here: a subscriber
        on the caller's thread that answers synchronously (a loop, not recursion)."""
        while not (self.busy or self.hung or self.gone):
            try:
                env = self.broker.dequeue(self.id)
            except ActorNotFound:  # unregistered by a script: nothing to take, ever again
                self.gone = True
                return
            if env is None:
                return
            self.busy = True
            self.current = env
            self.started = now = self.clock._now
            duration = self.dist.sample(self.rng) / self.speed
            if duration > 0.0:
                self.timer = self.clock.call_at(now + duration, self.on_finish)
                return
            self._complete()

    def finish(self) -> None:
        self._complete()
        self.kick()

    def _complete(self) -> None:
        """The message is served: reply to a request; a hung worker then reports done."""
        env = self.current
        self.busy = False
        self.timer = None
        self.busy_time += self.clock._now - self.started
        self.served += 1
        try:
            if env.kind == "request" and env.corr is not None:
                self.broker.reply(self.id, env.corr, env.payload)
            if self.hung:
                self.broker.done(self.id)
        except ActorNotFound:  # unregistered while it served: the reply is refused (5.4)
            self.gone = True

    def crash(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
            self.busy_time += self.clock._now - self.started
        self.busy = False


class Client:
    """Arrivals of one `[[client]]`: open loop (Poisson, constant) or closed loop."""

    __slots__ = (
        "broker",
        "clock",
        "id",
        "interval",
        "issued",
        "keys",
        "on",
        "on_arrival",
        "rate",
        "retry",
        "rng",
        "sim",
        "spec",
        "think_mean",
        "timeout",
        "to",
    )

    def __init__(self, sim: Simulation, spec: ClientSpec, actor: int) -> None:
        self.sim, self.broker, self.clock = sim, sim.broker, sim.clock
        self.spec, self.id = spec, actor
        self.rng = sim.streams.get(f"client/{spec.name}")
        self.to = Address.parse(spec.target)
        self.keys = spec.keys
        self.retry: RetryPolicy | None = None
        if spec.retry is not None:
            # The bridge loads the model: imported only by a client that retries.
            from sim.checking.bridge import policy

            self.retry = policy(spec.retry)
        # The loader gives every request client a timeout; a tell client has none and never uses it.
        self.timeout = 0.0 if spec.timeout is None else spec.timeout
        # Read once here, not per arrival: an open-loop client has an interval or a rate.
        arrivals = spec.arrivals
        self.interval = arrivals.interval if isinstance(arrivals, ConstantArrivals) else None
        self.rate = arrivals.rate if isinstance(arrivals, Poisson) else 0.0
        self.think_mean = arrivals.think if isinstance(arrivals, Closed) else 0.0
        self.issued = 0
        self.on = self.closed_done if isinstance(spec.arrivals, Closed) else None
        self.on_arrival = self.open_arrival  # bound once: scheduled once per arrival

    def start(self) -> None:
        arrivals = self.spec.arrivals
        if isinstance(arrivals, Closed):
            for _ in range(arrivals.concurrency):
                self.clock.call_at(0.0, self.issue)
        else:
            self.clock.call_at(self.gap(), self.on_arrival)

    def gap(self) -> float:
        if self.interval is not None:
            return self.clock._now + self.interval
        return self.clock._now + self.rng.expovariate(self.rate)

    def open_arrival(self) -> None:
        self.issue()
        # `gap()`, inline: this runs once per arrival
        if self.interval is not None:
            nxt = self.clock._now + self.interval
        else:
            nxt = self.clock._now + self.rng.expovariate(self.rate)
        count = self.spec.count
        if nxt < self.sim.until and (count is None or self.issued < count):
            self.clock.call_at(nxt, self.on_arrival)

    def issue(self) -> None:
        # Arrivals stop at `until` or after `count` requests.
        count = self.spec.count
        if not (self.clock._now < self.sim.until and (count is None or self.issued < count)):
            return
        self.issued += 1
        spec = self.spec
        key = None if self.keys is None else str(self.keys.sample_key(self.rng))
        # try/except, not contextlib.suppress: free when nothing is raised, and this runs once
        # per arrival (suppress builds a context manager each time)
        if spec.pattern == "request":
            try:  # noqa: SIM105
                self.broker.request(
                    self.id,
                    self.to,
                    self.issued,
                    timeout=self.timeout,
                    priority=spec.priority,
                    key=key,
                    retry=self.retry,
                    on_outcome=self.on,
                )
            except ActorNotFound:
                # Refused (and logged) when a script stopped or unregistered the client (5.10):
                # a closed-loop user then waits for no outcome and stops.
                pass
            return
        try:  # noqa: SIM105
            self.broker.send(
                self.id, self.to, self.issued, priority=spec.priority, key=key, retry=self.retry
            )
        except BrokerError:
            pass  # a refused tell is reported by the broker as a `reject`; the client moves on
        if self.on is not None:
            self.think()

    def closed_done(self, outcome: Outcome[Any]) -> None:
        self.think()

    def think(self) -> None:
        think = self.think_mean
        wait = self.rng.expovariate(1.0 / think) if think > 0 else 0.0
        self.clock.call_at(self.clock._now + wait, self.issue)
