"""Scenario records: what to simulate (docs/scenario-format.md, format version 1).

Frozen records that trust their inputs: every check happens in the loader (sim/scenario/_load.py),
at load time. To check a scenario built in code, round-trip it: `parse_scenario(s.to_dict())`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from broker import Backpressure, Priority, StrategyName
from sim.scenario._dists import Constant, Dist, Exponential, KeySpec, UniformKeys, Zipf
from sim.scenario._script import ScriptStep

VERSION = 1
DEFAULT_REQUEST_TIMEOUT = 30.0
Pattern: TypeAlias = Literal["request", "tell"]
PATTERNS: tuple[Pattern, ...] = ("request", "tell")


def _drop_none(d: dict[str, object]) -> dict[str, object]:
    """to_dict leaves out absent optional values (TOML has no null)."""
    return {k: v for k, v in d.items() if v is not None}


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolSpec:
    """A pool of `size` identical actors named `{name}-1` .. `{name}-{size}`."""

    name: str
    size: int
    strategy: StrategyName = "round_robin"
    capacity: int | None = None
    backpressure: Backpressure = "reject"
    service: Dist
    speeds: tuple[float, ...] | None = None
    send_timeout: float | None = None

    @property
    def members(self) -> tuple[str, ...]:
        """Member names in registration order."""
        return tuple(f"{self.name}-{i}" for i in range(1, self.size + 1))

    def to_dict(self) -> dict[str, object]:
        return _drop_none(
            {
                "name": self.name,
                "size": self.size,
                "strategy": self.strategy,
                "capacity": self.capacity,
                "backpressure": self.backpressure,
                "service": self.service.to_dict(),
                "speeds": None if self.speeds is None else list(self.speeds),
                "send_timeout": self.send_timeout,
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ActorSpec:
    """One named actor, optionally providing services (in order: the first is preferred) and
    subscribed to topics (spec 2.10: subscribed in order, right after it registers)."""

    name: str
    services: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    service: Dist
    capacity: int | None = None
    backpressure: Backpressure = "reject"
    send_timeout: float | None = None

    def to_dict(self) -> dict[str, object]:
        return _drop_none(
            {
                "name": self.name,
                "services": list(self.services),
                "topics": list(self.topics) or None,
                "service": self.service.to_dict(),
                "capacity": self.capacity,
                "backpressure": self.backpressure,
                "send_timeout": self.send_timeout,
            }
        )


@dataclass(frozen=True, slots=True)
class Poisson:
    """Open loop: exponential inter-arrival times with mean 1 / rate."""

    rate: float

    def to_dict(self) -> dict[str, object]:
        return {"process": "poisson", "rate": self.rate}


@dataclass(frozen=True, slots=True)
class ConstantArrivals:
    """Open loop: one arrival every `interval`."""

    interval: float

    def to_dict(self) -> dict[str, object]:
        return {"process": "constant", "interval": self.interval}


@dataclass(frozen=True, slots=True)
class Closed:
    """Closed loop: `concurrency` users, each waiting for its outcome, then an exponentially
    distributed think time with mean `think` (0: none), then sending again."""

    concurrency: int
    think: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return {"process": "closed", "concurrency": self.concurrency, "think": self.think}


Arrivals: TypeAlias = Poisson | ConstantArrivals | Closed


@dataclass(frozen=True, slots=True)
class RetrySpec:
    """Retries of transient send errors; `max_attempts` counts the first attempt (1 = no retry)."""

    max_attempts: int = 3
    backoff: float = 0.1
    multiplier: float = 2.0
    max_backoff: float = 5.0
    jitter: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "max_attempts": self.max_attempts,
            "backoff": self.backoff,
            "multiplier": self.multiplier,
            "max_backoff": self.max_backoff,
            "jitter": self.jitter,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientSpec:
    """A source of messages to one address; the loader gives requests a default timeout of 30.0."""

    name: str
    target: str
    pattern: Pattern = "request"
    arrivals: Arrivals
    timeout: float | None = None
    count: int | None = None
    retry: RetrySpec | None = None
    keys: KeySpec | None = None
    priority: Priority = "normal"

    def to_dict(self) -> dict[str, object]:
        return _drop_none(
            {
                "name": self.name,
                "target": self.target,
                "pattern": self.pattern,
                "arrivals": self.arrivals.to_dict(),
                "timeout": self.timeout,
                "count": self.count,
                "retry": None if self.retry is None else self.retry.to_dict(),
                "keys": None if self.keys is None else self.keys.to_dict(),
                "priority": self.priority,
            }
        )


@dataclass(frozen=True, slots=True)
class Crash:
    """`actor` crashes at `at` (its mailbox is lost); restarts `restart_after` later, if given."""

    actor: str
    at: float
    restart_after: float | None = None

    def to_dict(self) -> dict[str, object]:
        return _drop_none({"actor": self.actor, "at": self.at, "restart_after": self.restart_after})


@dataclass(frozen=True, slots=True)
class Slow:
    """`actor`'s speed is multiplied by `speed` during [at, until)."""

    actor: str
    at: float
    until: float
    speed: float

    def to_dict(self) -> dict[str, object]:
        return {"actor": self.actor, "at": self.at, "until": self.until, "speed": self.speed}


@dataclass(frozen=True, slots=True)
class Hang:
    """`actor` processes nothing during [at, until); its mailbox still accepts messages."""

    actor: str
    at: float
    until: float

    def to_dict(self) -> dict[str, object]:
        return {"actor": self.actor, "at": self.at, "until": self.until}


@dataclass(frozen=True, slots=True)
class Faults:
    """Transit faults (per message: drop, duplicate, extra delay) and scheduled actor faults."""

    drop: float = 0.0
    duplicate: float = 0.0
    delay: Dist = field(default=Constant(0.0))
    crash: tuple[Crash, ...] = ()
    slow: tuple[Slow, ...] = ()
    hang: tuple[Hang, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "drop": self.drop,
            "duplicate": self.duplicate,
            "delay": self.delay.to_dict(),
            "crash": [c.to_dict() for c in self.crash],
            "slow": [s.to_dict() for s in self.slow],
            "hang": [h.to_dict() for h in self.hang],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """One simulation: arrivals run until `until`, then the run drains. `ties`, when set, seeds
    the order of the world's steps at one instant (sim/run/_scheduler.py, `TieBreaker`)."""

    seed: int = 0
    until: float
    pools: tuple[PoolSpec, ...] = ()
    actors: tuple[ActorSpec, ...] = ()
    clients: tuple[ClientSpec, ...] = ()
    faults: Faults = field(default=Faults())
    script: tuple[ScriptStep, ...] = ()
    ties: int | None = None

    def to_dict(self) -> dict[str, object]:
        """The normalized form: every default filled in, absent optionals left out, TOML key names.

        `parse_scenario(s.to_dict()) == s` for every valid scenario; a trace header holds it.
        """
        out: dict[str, object] = {
            "version": VERSION,
            "seed": self.seed,
            "until": self.until,
            "pool": [p.to_dict() for p in self.pools],
            "actor": [a.to_dict() for a in self.actors],
            "client": [c.to_dict() for c in self.clients],
            "faults": self.faults.to_dict(),
        }
        if self.script:
            out["script"] = [step.to_dict() for step in self.script]
        if self.ties is not None:
            out["ties"] = self.ties
        return out


def default_scenario() -> Scenario:
    """The built-in demo (`brokerlab run` with no file): see docs/scenario-format.md."""
    return Scenario(
        seed=7,
        until=500.0,
        pools=(
            PoolSpec(
                name="workers",
                size=4,
                strategy="least_loaded",
                capacity=4,
                backpressure="reject",
                service=Exponential(1.0),
                speeds=(1.0, 1.0, 1.5, 0.5),
            ),
        ),
        actors=(ActorSpec(name="db", services=("storage",), service=Constant(0.5)),),
        clients=(
            ClientSpec(
                name="load",
                target="pool:workers",
                pattern="request",
                arrivals=Poisson(3.0),
                timeout=10.0,
                retry=RetrySpec(
                    max_attempts=3, backoff=0.1, multiplier=2.0, max_backoff=2.0, jitter=0.1
                ),
                keys=Zipf(100, 1.1),
            ),
            ClientSpec(
                name="audit",
                target="service:storage",
                pattern="tell",
                arrivals=Poisson(1.0),
                keys=UniformKeys(10),
            ),
        ),
        faults=Faults(duplicate=0.01, crash=(Crash("workers-2", 100.0, restart_after=50.0),)),
    )
