"""`[[script]]`: explicit, timed broker operations (docs/scenario-format.md, "Scripts").

A script removes all randomness from a run: each step calls one broker operation at its time
`at`, in file order for equal times. Counterexamples found by the model checker are written as
scripts, so that `brokerlab run` replays them in the simulator. Actors registered by a script
have no worker: their messages wait until a `deliver` step takes one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from broker import ADDRESS_KINDS, BACKPRESSURES, PRIORITIES, STRATEGIES
from sim.scenario._tables import ScenarioError, Table, describe

_KINDS = ", ".join(f"{k}:N" if k == "id" else f"{k}:X" for k in ADDRESS_KINDS)

# Per action: its keys, each with a kind: "actor" (a name or an id), "actor?" (optional),
# "name", "text", "address", "int", "number", "positive", "payload", "names", "retry", or a
# tuple of allowed strings. Keys marked "!" are required.
ACTIONS: dict[str, dict[str, Any]] = {
    "register": {"name": "name", "capacity": "int", "backpressure": BACKPRESSURES,
                 "send_timeout": "positive", "services": "names", "pools": "names"},
    "unregister": {"actor!": "actor"},
    "stop": {"actor!": "actor"},
    "restart": {"actor!": "actor"},
    "create_pool": {"pool!": "name", "strategy": STRATEGIES},
    "join": {"pool!": "name", "actor!": "actor"},
    "leave": {"pool!": "name", "actor!": "actor"},
    "provide": {"service!": "name", "actor!": "actor"},
    "subscribe": {"topic!": "name", "actor!": "actor"},
    "unsubscribe": {"topic!": "name", "actor!": "actor"},
    "send": {"from": "actor", "to!": "address", "payload": "payload", "priority": PRIORITIES,
             "key": "text", "ttl": "positive", "timestamp": "number",
             "send_timeout": "positive", "retry": "retry"},
    "request": {"from!": "actor", "to!": "address", "timeout!": "positive", "payload": "payload",
                "priority": PRIORITIES, "key": "text", "send_timeout": "positive",
                "retry": "retry", "answered_by": "actor"},
    "deliver": {"actor!": "actor"},
    "done": {"actor!": "actor"},
    "reply": {"from": "actor", "corr!": "int", "payload": "payload"},
    "cancel": {"corr!": "int"},
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ScriptStep:
    """One timed operation; `args` holds the validated keys in a fixed (sorted) order."""

    at: float
    do: str
    args: tuple[tuple[str, Any], ...] = ()

    def get(self, key: str, default: Any = None) -> Any:
        for k, v in self.args:
            if k == key:
                return v
        return default

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"at": self.at, "do": self.do}
        for k, v in self.args:
            out[k] = dict(v) if k == "retry" else list(v) if isinstance(v, tuple) else v
        return out


def read_script(items: list[object], source: str) -> tuple[ScriptStep, ...]:
    steps = []
    for i, item in enumerate(items, start=1):
        where = f"{source}: [[script]] #{i}"
        if not isinstance(item, Mapping):
            raise ScenarioError(f"{where}: expected a table, got {describe(item)}")
        steps.append(_read_step(Table(item, where)))
    return tuple(steps)


def _read_step(t: Table) -> ScriptStep:
    do = t.choice("do", tuple(ACTIONS))
    spec = ACTIONS[do]
    keys = {k.rstrip("!"): (kind, k.endswith("!")) for k, kind in spec.items()}
    t.check_keys(("at", "do", *keys))
    at = t.time("at", low=0)
    args = []
    for key, (kind, required) in sorted(keys.items()):
        if t.get(key) is None:
            if required:
                t.require(key)
            continue
        args.append((key, _value(t, key, kind)))
    return ScriptStep(at, do, tuple(args))


def _value(t: Table, key: str, kind: Any) -> Any:
    if isinstance(kind, tuple):
        return t.choice(key, kind)
    if kind == "int":
        return t.integer(key, low=1)
    if kind == "number":  # a timestamp (spec 4.7): any time, even one below 0
        return t.time(key)
    if kind == "positive":  # a TTL, a timeout or a send timeout
        return t.time(key, above=0)
    if kind in ("name", "text"):
        return t.text(key)
    if kind == "address":
        text = t.text(key)
        prefix, colon, rest = text.partition(":")
        if not colon or prefix not in ADDRESS_KINDS or not rest:
            raise t.error(key, f"{text!r} is not an address ({_KINDS})")
        return text
    if kind == "actor":
        value = t.get(key)
        if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
            if isinstance(value, int) and value < 1:
                raise t.error(key, f"an actor id is >= 1, got {value}")
            return value
        raise t.error(key, f"expected an actor name or id, got {describe(value)}")
    if kind == "payload":
        value = t.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return value
        raise t.error(key, f"expected a string or a number, got {describe(value)}")
    if kind == "names":
        values = t.array(key)
        if not all(isinstance(v, str) for v in values):
            raise t.error(key, "expected an array of names")
        return tuple(values)
    assert kind == "retry"
    r = t.table(key)
    r.check_keys(("max_attempts", "backoff", "multiplier", "max_backoff", "jitter"))
    return (
        ("backoff", r.time("backoff", 0.1, low=0)),
        ("jitter", r.number("jitter", 0.0, low=0, high=1)),
        ("max_attempts", r.integer("max_attempts", 3, low=1)),
        ("max_backoff", r.time("max_backoff", 5.0, low=0)),
        ("multiplier", r.number("multiplier", 2.0, low=1)),
    )
