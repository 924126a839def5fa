"""Loading scenario files: TOML into the records of sim/scenario/_records.py.

Every check happens here, with a message naming the file, the table and the key.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Mapping

from broker import (
    ADDRESS_KINDS,
    BACKPRESSURES,
    PRIORITIES,
    STRATEGIES,
    Backpressure,
    Priority,
)
from sim.scenario._dists import Constant, read_dist, read_keys
from sim.scenario._records import (
    DEFAULT_REQUEST_TIMEOUT,
    PATTERNS,
    VERSION,
    ActorSpec,
    Arrivals,
    ClientSpec,
    Closed,
    ConstantArrivals,
    Crash,
    Faults,
    Hang,
    Poisson,
    PoolSpec,
    RetrySpec,
    Scenario,
    Slow,
)
from sim.scenario._script import read_script
from sim.scenario._tables import ScenarioError, Table, describe

# Names end up in addresses (`name:X`) and traces: keep them free of ':' and whitespace.
# Bounds on what one key can ask for, so that no file makes the loader or a run build without
# end before its first event (a pool of 10^12 members): far beyond any simulation here.
MAX_POOL_SIZE = 10_000
MAX_CONCURRENCY = 10_000
_NAME = re.compile(r"[A-Za-z0-9_.\-/@+]+\Z")  # docs/spec.md 2.2, the broker's own grammar

# --- loading --------------------------------------------------------------------------------

_TOP_KEYS = ("version", "seed", "until", "pool", "actor", "client", "faults", "script")
_MAILBOX_KEYS = ("capacity", "backpressure", "send_timeout")
_POOL_KEYS = ("name", "size", "strategy", *_MAILBOX_KEYS, "service", "speeds")
_ACTOR_KEYS = ("name", "services", "topics", "service", *_MAILBOX_KEYS)
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
            f"{json.dumps(name)} is not a valid name (one or more of the characters "
            "A-Z a-z 0-9 _ . - / @ +)",
        )
    return name


def _read_mailbox(t: Table) -> tuple[int | None, Backpressure, float | None]:
    capacity = t.optional_integer("capacity", low=1)
    backpressure = t.choice("backpressure", BACKPRESSURES, "reject")
    send_timeout = t.optional_number("send_timeout", above=0)
    if send_timeout is not None and backpressure != "block":
        raise t.error("send_timeout", 'applies only with backpressure = "block"')
    return capacity, backpressure, send_timeout


def _read_pool(t: Table, label: str, names: _Names) -> PoolSpec:
    t.check_keys(_POOL_KEYS)
    name = _read_name(t)
    size = t.integer("size", low=1, high=MAX_POOL_SIZE)
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
    services, topics = _read_names(t, "services"), _read_names(t, "topics")
    capacity, backpressure, send_timeout = _read_mailbox(t)
    return ActorSpec(
        name=name,
        services=services,
        topics=topics,
        service=read_dist(t.table("service")),
        capacity=capacity,
        backpressure=backpressure,
        send_timeout=send_timeout,
    )


def _read_names(t: Table, key: str) -> tuple[str, ...]:
    """An array of distinct names (services provided, topics subscribed), in order."""
    items = t.array(key)
    entries = Table({str(i): v for i, v in enumerate(items, start=1)}, t.where, f"{key} #")
    names = tuple(_read_name(entries, str(i)) for i in range(1, len(items) + 1))
    for i, name in enumerate(names, start=1):
        if names.index(name) != i - 1:
            raise entries.error(str(i), f"{json.dumps(name)} is listed twice")
    return names


def _read_target(t: Table) -> str:
    target = t.text("target")
    kind, colon, rest = target.partition(":")
    if not colon or kind not in ADDRESS_KINDS or not rest.strip():
        raise t.error(
            "target",
            f"{json.dumps(target)} is not an address (id:N, name:X, service:X, pool:X or topic:X)",
        )
    return target


def _read_arrivals(t: Table) -> Arrivals:
    process = t.choice("process", tuple(_ARRIVAL_KEYS))
    t.check_keys(("process", *_ARRIVAL_KEYS[process]))
    if process == "poisson":
        return Poisson(t.number("rate", above=0))
    if process == "constant":
        return ConstantArrivals(t.number("interval", above=0))
    concurrency = t.integer("concurrency", low=1, high=MAX_CONCURRENCY)
    return Closed(concurrency, t.number("think", 0.0, low=0))


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
    pattern = t.choice("pattern", PATTERNS, "request")
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
    priority: Priority = t.choice("priority", PRIORITIES, "normal")
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
