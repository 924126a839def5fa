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
from sim.scenario._limits import (
    MAX_ACTORS,
    MAX_CONCURRENCY,
    MAX_POOL_SIZE,
    MAX_SEED,
    MAX_USERS,
    MIN_RATE,
    MIN_SPEED,
    ZIPF_MAX_N,
)
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
_NAME = re.compile(r"[A-Za-z0-9_.\-/@+]+\Z")  # docs/spec.md 2.2, the broker's own grammar

# --- loading --------------------------------------------------------------------------------

_TOP_KEYS = ("version", "seed", "until", "ties", "pool", "actor", "client", "faults", "script")
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
# What `_Names.charge` counts: its cap and how a message names it.
_BUDGETS = {
    "actors": (MAX_ACTORS, "actors (pool members, actors and clients)"),
    "users": (MAX_USERS, "closed-loop users"),
    "keys": (ZIPF_MAX_N, "Zipf keys"),
}
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
        raise _invalid_toml(source, e) from e
    except RecursionError:  # tomllib recurses once per level of nested arrays and tables
        raise _too_deep(source) from None
    return parse_scenario(data, source)


def loads_scenario(text: str, source: str = "<string>") -> Scenario:
    """Read and validate a scenario from TOML text, as `load_scenario` reads a file; every
    problem is a `ScenarioError` naming `source`.

    >>> s = loads_scenario('''
    ... until = 5.0
    ... [[pool]]
    ... name = "w"
    ... size = 2
    ... service = { dist = "constant", value = 1.0 }
    ... ''')
    >>> s.pools[0].members
    ('w-1', 'w-2')
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise _invalid_toml(source, e) from e
    except RecursionError:
        raise _too_deep(source) from None
    return parse_scenario(data, source)


def _too_deep(source: str) -> ScenarioError:
    return ScenarioError(
        f"{source}: invalid TOML: nested too deeply (arrays or inline tables inside each "
        "other, thousands of levels)"
    )


def _invalid_toml(source: str, e: tomllib.TOMLDecodeError) -> ScenarioError:
    match = _TOML_POSITION.match(str(e))
    if match is None:
        return ScenarioError(f"{source}: invalid TOML: {e}")
    where = f"line {match['line']}, column {match['col']}"
    return ScenarioError(f"{source}: {where}: invalid TOML: {match['msg']}")


def parse_scenario(data: Mapping[str, object], source: str = "<scenario>") -> Scenario:
    """Validate an already parsed scenario (a TOML document, or `Scenario.to_dict()` output)."""
    if not isinstance(data, Mapping):
        raise ScenarioError(f"{source}: expected a table at the top level, got {describe(data)}")
    top = Table(data, source)
    top.check_keys(_TOP_KEYS)
    top.integer("version", VERSION, low=VERSION, high=VERSION)
    seed = top.integer("seed", 0, low=0, high=MAX_SEED)
    until = top.time("until", above=0)
    ties = top.integer("ties", low=0, high=MAX_SEED) if top.get("ties") is not None else None
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
        ties=ties,
    )


class _Names:
    """The one namespace of pools, pool members, actors and clients; which of them are actors.

    It also counts what a run builds at t = 0, against the caps of sim/scenario/_limits.py.
    """

    def __init__(self) -> None:
        self.owner: dict[str, str] = {}
        self.actors: list[str] = []
        self.built = {"actors": 0, "users": 0, "keys": 0}

    def charge(self, t: Table, key: str, what: str, amount: int) -> None:
        """Add `amount` to the total of `what`; refuse it past its cap, naming `key`."""
        cap, label = _BUDGETS[what]
        total = self.built[what] = self.built[what] + amount
        if total > cap:
            limits = 'docs/scenario-format.md, "Limits"'
            raise t.error(key, f"{total} {label} in all; at most {cap} ({limits})")

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
    send_timeout = t.optional_time("send_timeout", above=0)
    if send_timeout is not None and backpressure != "block":
        raise t.error("send_timeout", 'applies only with backpressure = "block"')
    return capacity, backpressure, send_timeout


def _read_pool(t: Table, label: str, names: _Names) -> PoolSpec:
    t.check_keys(_POOL_KEYS)
    name = _read_name(t)
    size = t.integer("size", low=1, high=MAX_POOL_SIZE)
    names.charge(t, "size", "actors", size)
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
        speeds = tuple(_read_speed(values, str(i)) for i in range(1, size + 1))
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


def _read_speed(t: Table, key: str) -> float:
    """A speed or a slow fault's factor: a service time is divided by both."""
    return t.limited(key, t.number(key, above=0), "the floor on speeds", low=MIN_SPEED)


def _read_actor(t: Table, label: str, names: _Names) -> ActorSpec:
    t.check_keys(_ACTOR_KEYS)
    name = _read_name(t)
    names.charge(t, "name", "actors", 1)
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


def _read_arrivals(t: Table, names: _Names) -> Arrivals:
    process = t.choice("process", tuple(_ARRIVAL_KEYS))
    t.check_keys(("process", *_ARRIVAL_KEYS[process]))
    if process == "poisson":
        rate = t.number("rate", above=0)
        return Poisson(t.limited("rate", rate, "the floor on rates", low=MIN_RATE))
    if process == "constant":
        return ConstantArrivals(t.time("interval", above=0))
    concurrency = t.integer("concurrency", low=1, high=MAX_CONCURRENCY)
    names.charge(t, "concurrency", "users", concurrency)
    return Closed(concurrency, t.time("think", 0.0, low=0))


def _read_retry(t: Table) -> RetrySpec:
    t.check_keys(_RETRY_KEYS)
    d = RetrySpec()
    return RetrySpec(
        max_attempts=t.integer("max_attempts", d.max_attempts, low=1),
        backoff=t.time("backoff", d.backoff, low=0),
        multiplier=t.number("multiplier", d.multiplier, low=1),
        max_backoff=t.time("max_backoff", d.max_backoff, low=0),
        jitter=t.number("jitter", d.jitter, low=0, high=1),
    )


def _read_client(t: Table, label: str, names: _Names) -> ClientSpec:
    t.check_keys(_CLIENT_KEYS)
    name = _read_name(t)
    names.charge(t, "name", "actors", 1)
    names.claim(t, name, label, actor=False)
    target = _read_target(t)
    pattern = t.choice("pattern", PATTERNS, "request")
    arrivals = _read_arrivals(t.table("arrivals"), names)
    if isinstance(arrivals, Closed) and pattern == "tell":
        raise t.error("arrivals", 'closed arrivals wait for replies: they need pattern = "request"')
    if pattern == "request":
        timeout: float | None = t.time("timeout", DEFAULT_REQUEST_TIMEOUT, above=0)
    elif t.get("timeout") is not None:
        raise t.error("timeout", 'applies only to pattern = "request"')
    else:
        timeout = None
    retry_table = t.optional_table("retry")
    keys_table = t.optional_table("keys")
    if keys_table is not None and keys_table.get("dist") == "zipf":
        n = keys_table.get("n")
        if isinstance(n, int) and 1 <= n <= ZIPF_MAX_N:  # read_keys refuses any other n
            names.charge(keys_table, "n", "keys", n)
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
    at = t.time("at", low=0)
    until = t.time("until", above=at)
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
        at = e.time("at", low=0)
        crashes.append(Crash(actor, at, e.optional_time("restart_after", low=0)))
    slows = []
    for e in _fault_entries(t, "slow"):
        e.check_keys(("actor", "at", "until", "speed"))
        slows.append(Slow(*_read_window(e, names), speed=_read_speed(e, "speed")))
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
