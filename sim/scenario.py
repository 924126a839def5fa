"""Scenario files: what to simulate (docs/scenario-format.md, format version 1).

A scenario is a TOML file read into frozen records. Every check happens here, at load time, with
a message naming the file, the table and the key; the records themselves trust their inputs. To
check a scenario built in code, round-trip it: `parse_scenario(s.to_dict())`.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from broker import BACKPRESSURES, STRATEGIES
from sim._dists import Constant, Dist, Exponential, KeySpec, UniformKeys, Zipf, read_dist, read_keys
from sim._script import ScriptStep, read_script
from sim._tables import ScenarioError, Table, describe

__all__ = [
    "ActorSpec",
    "ClientSpec",
    "Closed",
    "ConstantArrivals",
    "Crash",
    "Faults",
    "Hang",
    "Poisson",
    "PoolSpec",
    "RetrySpec",
    "Scenario",
    "ScenarioError",
    "Slow",
    "default_scenario",
    "load_scenario",
    "parse_scenario",
]

VERSION = 1
DEFAULT_REQUEST_TIMEOUT = 30.0
PATTERNS = ("request", "tell")
PRIORITIES = ("normal", "high")
ADDRESS_KINDS = ("id", "name", "service", "pool")
# Names end up in addresses (`name:X`) and traces: keep them free of ':' and whitespace.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")

Pattern: TypeAlias = Literal["request", "tell"]
Priority: TypeAlias = Literal["normal", "high"]


def _drop_none(d: dict[str, object]) -> dict[str, object]:
    """to_dict leaves out absent optional values (TOML has no null)."""
    return {k: v for k, v in d.items() if v is not None}


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolSpec:
    """A pool of `size` identical actors named `{name}-1` .. `{name}-{size}`."""

    name: str
    size: int
    strategy: str = "round_robin"
    capacity: int | None = None
    backpressure: str = "reject"
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
    """One named actor, optionally providing services (in order: the first is preferred)."""

    name: str
    services: tuple[str, ...] = ()
    service: Dist
    capacity: int | None = None
    backpressure: str = "reject"
    send_timeout: float | None = None

    def to_dict(self) -> dict[str, object]:
        return _drop_none(
            {
                "name": self.name,
                "services": list(self.services),
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
    """One simulation: arrivals run until `until`, then the run drains."""

    seed: int = 0
    until: float
    pools: tuple[PoolSpec, ...] = ()
    actors: tuple[ActorSpec, ...] = ()
    clients: tuple[ClientSpec, ...] = ()
    faults: Faults = field(default=Faults())
    script: tuple[ScriptStep, ...] = ()

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
        return out


# --- loading --------------------------------------------------------------------------------

_TOP_KEYS = ("version", "seed", "until", "pool", "actor", "client", "faults", "script")
_MAILBOX_KEYS = ("capacity", "backpressure", "send_timeout")
_POOL_KEYS = ("name", "size", "strategy", *_MAILBOX_KEYS, "service", "speeds")
_ACTOR_KEYS = ("name", "services", "service", *_MAILBOX_KEYS)
_CLIENT_KEYS = (
    "name",
    "target",
    "pattern",
    "arrivals",
    "timeout",
    "count",
    "retry",
    "keys",
    "priority",
)
_RETRY_KEYS = ("max_attempts", "backoff", "multiplier", "max_backoff", "jitter")
_ARRIVAL_KEYS = {
    "poisson": ("rate",),
    "constant": ("interval",),
    "closed": ("concurrency", "think"),
}
_FAULT_KEYS = ("drop", "duplicate", "delay", "crash", "slow", "hang")
_TOML_POSITION = re.compile(r"^(?P<msg>.*) \(at line (?P<line>\d+), column (?P<col>\d+)\)$", re.S)


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and validate a scenario file; every problem is a `ScenarioError` naming the file."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ScenarioError(f"{source}: cannot read: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise ScenarioError(f"{source}: not UTF-8 text: {e.reason} at byte {e.start}") from e
    except tomllib.TOMLDecodeError as e:
        match = _TOML_POSITION.match(str(e))
        if match is None:
            raise ScenarioError(f"{source}: invalid TOML: {e}") from e
        where = f"line {match['line']}, column {match['col']}"
        raise ScenarioError(f"{source}: {where}: invalid TOML: {match['msg']}") from e
    return parse_scenario(data, source)


def parse_scenario(data: Mapping[str, object], source: str = "<scenario>") -> Scenario:
    """Validate an already parsed scenario (a TOML document, or `Scenario.to_dict()` output)."""
    if not isinstance(data, Mapping):
        raise ScenarioError(f"{source}: expected a table at the top level, got {describe(data)}")
    top = Table(data, source)
    top.check_keys(_TOP_KEYS)
    top.integer("version", VERSION, low=VERSION, high=VERSION)
    seed = top.integer("seed", 0, low=0)
    until = top.number("until", above=0)
    names = _Names()
    pools = tuple(_read_pool(t, label, names) for label, t in _array_of_tables(top, "pool"))
    actors = tuple(_read_actor(t, label, names) for label, t in _array_of_tables(top, "actor"))
    client_tables = _array_of_tables(top, "client")
    clients = tuple(_read_client(t, label, names) for label, t in client_tables)
    hashed = {f"pool:{p.name}" for p in pools if p.strategy == "consistent_hash"}
    for client, (_, t) in zip(clients, client_tables, strict=True):
        if client.target in hashed and client.keys is None:
            raise t.error("keys", f"required: {client.target} routes by key (consistent_hash)")
    faults_table = top.get("faults")
    if faults_table is None:
        faults = Faults()
    elif isinstance(faults_table, Mapping):
        faults = _read_faults(Table(faults_table, f"{source}: [faults]"), names)
    else:
        raise top.error("faults", f"expected a table ([faults]), got {describe(faults_table)}")
    script = read_script(top.array("script"), source)
    return Scenario(
        seed=seed,
        until=until,
        pools=pools,
        actors=actors,
        clients=clients,
        faults=faults,
        script=script,
    )


class _Names:
    """The one namespace of pools, pool members, actors and clients; which of them are actors."""

    def __init__(self) -> None:
        self.owner: dict[str, str] = {}
        self.actors: list[str] = []

    def claim(self, t: Table, name: str, owner: str, *, actor: bool) -> None:
        if name in self.owner:
            raise t.error("name", f"{json.dumps(name)} is already used by {self.owner[name]}")
        self.owner[name] = owner
        if actor:
            self.actors.append(name)

    def check_actor(self, t: Table, key: str, name: str) -> None:
        if name in self.actors:
            return
        close = difflib.get_close_matches(name, self.actors, n=1)
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        raise t.error(key, f"{json.dumps(name)} is not a pool member or an actor{hint}")


def _array_of_tables(top: Table, key: str) -> list[tuple[str, Table]]:
    """The tables of `[[key]]`, each with its label for messages: `[[pool]] #1 "workers"`.

    The label is 1-based and carries the name when there is a string one, even before it is checked.
    """
    tables = []
    for i, item in enumerate(top.array(key), start=1):
        label = f"[[{key}]] #{i}"
        if not isinstance(item, Mapping):
            raise ScenarioError(f"{top.where}: {label}: expected a table, got {describe(item)}")
        name = item.get("name")
        if isinstance(name, str):
            label = f"{label} {json.dumps(name)}"
        tables.append((label, Table(item, f"{top.where}: {label}")))
    return tables


def _read_name(t: Table, key: str = "name") -> str:
    name = t.text(key)
    if not _NAME.match(name):
        raise t.error(
            key,
            f"{json.dumps(name)} is not a valid name (letters, digits, '_', '-', '.'; "
            "not starting with '-' or '.')",
        )
    return name


def _read_mailbox(t: Table) -> tuple[int | None, str, float | None]:
    capacity = t.optional_integer("capacity", low=1)
    backpressure = t.choice("backpressure", BACKPRESSURES, "reject")
    send_timeout = t.optional_number("send_timeout", above=0)
    if send_timeout is not None and backpressure != "block":
        raise t.error("send_timeout", 'applies only with backpressure = "block"')
    return capacity, backpressure, send_timeout


def _read_pool(t: Table, label: str, names: _Names) -> PoolSpec:
    t.check_keys(_POOL_KEYS)
    name = _read_name(t)
    size = t.integer("size", low=1)
    names.claim(t, name, label, actor=False)
    for member in (f"{name}-{i}" for i in range(1, size + 1)):
        names.claim(t, member, f"{label} (its member {member})", actor=True)
    strategy = t.choice("strategy", STRATEGIES, "round_robin")
    capacity, backpressure, send_timeout = _read_mailbox(t)
    service = read_dist(t.table("service"))
    speeds = None
    if t.get("speeds") is not None:
        raw = t.array("speeds")
        if len(raw) != size:
            raise t.error("speeds", f"has {len(raw)} entries, expected size = {size}")
        values = Table({str(i): v for i, v in enumerate(raw, start=1)}, t.where, "speeds #")
        speeds = tuple(values.number(str(i), above=0) for i in range(1, size + 1))
    return PoolSpec(
        name=name,
        size=size,
        strategy=strategy,
        capacity=capacity,
        backpressure=backpressure,
        service=service,
        speeds=speeds,
        send_timeout=send_timeout,
    )


def _read_actor(t: Table, label: str, names: _Names) -> ActorSpec:
    t.check_keys(_ACTOR_KEYS)
    name = _read_name(t)
    names.claim(t, name, label, actor=True)
    items = t.array("services")
    entries = Table({str(i): v for i, v in enumerate(items, start=1)}, t.where, "services #")
    services = tuple(_read_name(entries, str(i)) for i in range(1, len(items) + 1))
    for i, service in enumerate(services, start=1):
        if services.index(service) != i - 1:
            raise entries.error(str(i), f"{json.dumps(service)} is listed twice")
    capacity, backpressure, send_timeout = _read_mailbox(t)
    return ActorSpec(
        name=name,
        services=services,
        service=read_dist(t.table("service")),
        capacity=capacity,
        backpressure=backpressure,
        send_timeout=send_timeout,
    )


def _read_target(t: Table) -> str:
    target = t.text("target")
    kind, colon, rest = target.partition(":")
    if not colon or kind not in ADDRESS_KINDS or not rest.strip():
        raise t.error(
            "target",
            f"{json.dumps(target)} is not an address (id:N, name:X, service:X or pool:X)",
        )
    return target


def _read_arrivals(t: Table) -> Arrivals:
    process = t.choice("process", tuple(_ARRIVAL_KEYS))
    t.check_keys(("process", *_ARRIVAL_KEYS[process]))
    if process == "poisson":
        return Poisson(t.number("rate", above=0))
    if process == "constant":
        return ConstantArrivals(t.number("interval", above=0))
    return Closed(t.integer("concurrency", low=1), t.number("think", 0.0, low=0))


def _read_retry(t: Table) -> RetrySpec:
    t.check_keys(_RETRY_KEYS)
    d = RetrySpec()
    return RetrySpec(
        max_attempts=t.integer("max_attempts", d.max_attempts, low=1),
        backoff=t.number("backoff", d.backoff, low=0),
        multiplier=t.number("multiplier", d.multiplier, low=1),
        max_backoff=t.number("max_backoff", d.max_backoff, low=0),
        jitter=t.number("jitter", d.jitter, low=0, high=1),
    )


def _read_client(t: Table, label: str, names: _Names) -> ClientSpec:
    t.check_keys(_CLIENT_KEYS)
    name = _read_name(t)
    names.claim(t, name, label, actor=False)
    target = _read_target(t)
    pattern: Pattern = "tell" if t.choice("pattern", PATTERNS, "request") == "tell" else "request"
    arrivals = _read_arrivals(t.table("arrivals"))
    if isinstance(arrivals, Closed) and pattern == "tell":
        raise t.error("arrivals", 'closed arrivals wait for replies: they need pattern = "request"')
    if pattern == "request":
        timeout: float | None = t.number("timeout", DEFAULT_REQUEST_TIMEOUT, above=0)
    elif t.get("timeout") is not None:
        raise t.error("timeout", 'applies only to pattern = "request"')
    else:
        timeout = None
    retry_table = t.optional_table("retry")
    keys_table = t.optional_table("keys")
    priority: Priority = (
        "high" if t.choice("priority", PRIORITIES, "normal") == "high" else "normal"
    )
    return ClientSpec(
        name=name,
        target=target,
        pattern=pattern,
        arrivals=arrivals,
        timeout=timeout,
        count=t.optional_integer("count", low=1),
        retry=None if retry_table is None else _read_retry(retry_table),
        keys=None if keys_table is None else read_keys(keys_table),
        priority=priority,
    )


def _fault_entries(t: Table, key: str) -> list[Table]:
    entries = []
    for i, item in enumerate(t.array(key), start=1):
        where = f"{t.where} {key} #{i}"
        if not isinstance(item, Mapping):
            raise ScenarioError(f"{where}: expected a table, got {describe(item)}")
        entries.append(Table(item, where))
    return entries


def _read_window(t: Table, names: _Names) -> tuple[str, float, float]:
    actor = t.text("actor")
    names.check_actor(t, "actor", actor)
    at = t.number("at", low=0)
    until = t.number("until", above=at)
    return actor, at, until


def _read_faults(t: Table, names: _Names) -> Faults:
    t.check_keys(_FAULT_KEYS)
    drop = t.number("drop", 0.0, low=0, high=1)
    duplicate = t.number("duplicate", 0.0, low=0, high=1)
    delay_table = t.optional_table("delay")
    delay = Constant(0.0) if delay_table is None else read_dist(delay_table)
    crashes = []
    for e in _fault_entries(t, "crash"):
        e.check_keys(("actor", "at", "restart_after"))
        actor = e.text("actor")
        names.check_actor(e, "actor", actor)
        at = e.number("at", low=0)
        crashes.append(Crash(actor, at, e.optional_number("restart_after", low=0)))
    slows = []
    for e in _fault_entries(t, "slow"):
        e.check_keys(("actor", "at", "until", "speed"))
        slows.append(Slow(*_read_window(e, names), speed=e.number("speed", above=0)))
    hangs = []
    for e in _fault_entries(t, "hang"):
        e.check_keys(("actor", "at", "until"))
        hangs.append(Hang(*_read_window(e, names)))
    return Faults(
        drop=drop,
        duplicate=duplicate,
        delay=delay,
        crash=tuple(crashes),
        slow=tuple(slows),
        hang=tuple(hangs),
    )


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
