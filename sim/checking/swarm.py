"""Swarm testing: many small random worlds, each checked online and by `conform`, every
failure shrunk to a small scenario file that `brokerlab run` replays (docs/swarm.md).

A world is generated from a choice tape (sim/checking/_tape.py) whose draws come from a seed
derived from the swarm's master seed and the world's index, so world `i` of `--seed S` is the
same world on every machine, whatever the executor and the number of workers. It covers every
feature of a scenario: the seven strategies, the four backpressure modes and send timeouts,
priorities, retries with jitter, keys, the three arrival processes, named actors with services
and topics, every fault (drop, duplicate, delay, crash with restart, slow, hang), scripts with
cancel, unregister, stop, restart, leave, join, subscribe, provide, sends with TTLs and
timestamps and outside replies, and ties (the order of same-time steps, `ties = N`).

Every world ends with a tail in which nothing new happens: arrivals stop at `until`, crashed
actors restart and slow or hung ones recover before it, and each client's `count` bounds the
work, so a correct broker drains long before the hard stop (`10 * until + 1000`). A world that
does not drain is therefore a liveness violation (`liveness:undrained`), shrunk like any other.

Outcomes of a world, each with a signature that deduplicates failures:
- `ok`;
- `violation`: an online monitor fired (`invariant:<name>`);
- `nonconform`: the trace does not conform to the model (`conform:<first words of why>`);
- `undrained`: cut off at the hard stop (`liveness:undrained`);
- `crash`: an exception no world should cause, in the broker or the simulator
  (`crash:<type>:<file>:<line>`), a bug in brokerlab.
"""

from __future__ import annotations

import atexit
import io
import json
import re
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from broker import STRATEGIES, BrokerFactory, SplitMix64
from model import check_trace
from sim.checking._tape import Tape, shrink
from sim.checking.mutants import broker_class
from sim.run import Result, simulate
from sim.scenario import Scenario, parse_scenario, scenario_toml

__all__ = [
    "SwarmWorld",
    "WorldOutcome",
    "generate",
    "run_world",
    "shrink_world",
    "world_seed",
]

_GAMMA = 0x9E3779B97F4A7C15
_MASK = (1 << 64) - 1
_DISTS = ("constant", "exponential", "uniform", "lognormal")
_BACKPRESSURE = ("reject", "drop_newest", "drop_oldest", "block")
_SCRIPT_ACTIONS = (
    "cancel", "send", "request", "reply", "leave", "join", "unregister", "stop", "restart",
    "subscribe", "unsubscribe", "provide",
)  # fmt: skip


def world_seed(master: int, index: int) -> int:
    """World `index`'s seed: the `index`-th output of SplitMix64 seeded with `master`, read
    directly (random access, so a resumed or distributed swarm needs no earlier draws)."""
    return SplitMix64((master + index * _GAMMA) & _MASK).next64()


# -- the generator ---------------------------------------------------------------------------


def _dist(t: Tape, top: float) -> dict[str, Any]:
    """A service time distribution with a mean of at most `top`."""
    kind = t.pick(_DISTS)
    mean = t.grid(0.02, top, 24)
    if kind == "constant":
        return {"dist": "constant", "value": mean}
    if kind == "exponential":
        return {"dist": "exponential", "mean": mean}
    if kind == "uniform":
        return {"dist": "uniform", "low": 0.0, "high": round(2 * mean, 6)}
    return {"dist": "lognormal", "mean": mean, "sigma": t.grid(0.1, 1.0, 9)}


class Features:
    """What a world may use: all of it, or what a port declares (docs/port-protocol.md,
    Features): a port is swarmed with the worlds it can run."""

    __slots__ = ("declared",)

    def __init__(self, declared: Sequence[str] | None = None) -> None:
        self.declared = None if declared is None else frozenset(declared)

    def has(self, feature: str) -> bool:
        return self.declared is None or feature in self.declared

    def strategies(self) -> tuple[str, ...]:
        return tuple(s for s in STRATEGIES if self.has(f"strategy:{s}"))

    def modes(self) -> tuple[str, ...]:
        return tuple(m for m in _BACKPRESSURE if self.has(f"backpressure:{m}"))


def _mailbox(t: Tape, table: dict[str, Any], f: Features) -> None:
    modes = f.modes()
    if modes and t.chance(60):
        table["capacity"] = 1 + t.below(6)
        table["backpressure"] = t.pick(modes)
        if table["backpressure"] == "block" and t.chance(50):
            table["send_timeout"] = t.grid(0.1, 5.0, 49)


def generate(t: Tape, size: float = 1.0, features: Sequence[str] | None = None) -> dict[str, Any]:
    """A random world as a scenario's normalized form (`parse_scenario` checks it), using only
    the port `features` given (None: everything).

    `size` scales the work: the arrival window is up to `100 * size` long, and each client
    sends at most `400 * size` messages, so a world is about a thousand events at the median at
    size 1. The clients' counts together stay under `0.45 * hard stop` messages whatever the
    size: served at a mean of at most 0.5 at a speed of at least 0.5, with at most 30%
    duplicates, that is 0.6 of the hard stop if all of it went to one actor, so a correct
    broker drains before it: which is what makes `undrained` a liveness verdict.
    """
    f = Features(features)
    if not f.strategies():
        raise ValueError("a swarm needs a pool strategy: the port declares none")
    until = t.grid(10.0, max(10.0, 100.0 * size), 90)
    data: dict[str, Any] = {"seed": t.below(1 << 32), "until": until}
    if t.chance(50):
        data["ties"] = t.below(1 << 16)
    pools, members = [], []
    for i in t.many(1, 2, 40):
        pool: dict[str, Any] = {"name": f"p{i}", "size": 1 + t.below(4)}
        pool["strategy"] = t.pick(f.strategies())
        _mailbox(t, pool, f)
        pool["service"] = _dist(t, 0.5)
        if t.chance(30):
            pool["speeds"] = [t.grid(0.5, 2.0, 6) for _ in range(pool["size"])]
        pools.append(pool)
        members += [f"p{i}-{k}" for k in range(1, pool["size"] + 1)]
    actors, services, topics = [], [], []
    for i in t.many(0, 2, 50):
        actor: dict[str, Any] = {"name": f"a{i}", "service": _dist(t, 0.5)}
        actor["services"] = [s for s in ("s1", "s2") if f.has("services") and t.chance(50)]
        actor["topics"] = [s for s in ("t1", "t2") if f.has("topics") and t.chance(40)]
        _mailbox(t, actor, f)
        actors.append(actor)
        services += actor["services"]
        topics += actor["topics"]
    targets = [f"pool:{p['name']}" for p in pools]
    targets += [f"name:{a['name']}" for a in actors]
    targets += [f"service:{s}" for s in dict.fromkeys(services)]
    targets += [f"topic:{s}" for s in dict.fromkeys(topics)]
    hashed = {f"pool:{p['name']}" for p in pools if p["strategy"] == "consistent_hash"}
    clients = []
    budget = int(0.45 * (10 * until + 1000))  # messages, for all clients (see above)
    for i in t.many(1, 4, 55):
        client: dict[str, Any] = {"name": f"c{i}", "target": targets[t.below(len(targets))]}
        client["pattern"] = "tell" if t.chance(30) else "request"
        process = t.pick(("poisson", "constant", "closed"))
        if process == "closed" and client["pattern"] == "request":
            arrivals: dict[str, Any] = {"process": "closed", "concurrency": 1 + t.below(4)}
            arrivals["think"] = t.grid(0.0, 2.0, 20)
        elif process == "constant":
            arrivals = {"process": "constant", "interval": t.grid(0.05, 1.0, 19)}
        else:
            arrivals = {"process": "poisson", "rate": t.grid(0.5, 10.0, 19)}
        client["arrivals"] = arrivals
        client["count"] = 1 + t.below(max(1, min(round(400 * size), budget)))
        budget -= client["count"]
        if client["pattern"] == "request":
            client["timeout"] = t.grid(0.5, 20.0, 39)
        if f.has("retry") and t.chance(40):
            client["retry"] = {
                "max_attempts": 1 + t.below(4),
                "backoff": t.grid(0.0, 1.0, 10),
                "multiplier": t.grid(1.0, 3.0, 4),
                "max_backoff": t.grid(0.0, 3.0, 6),
                "jitter": t.grid(0.0, 1.0, 4),
            }
        if client["target"] in hashed or t.chance(30):
            if t.chance(50):
                client["keys"] = {"dist": "zipf", "n": 1 + t.below(50), "s": t.grid(0.5, 2.0, 3)}
            else:
                client["keys"] = {"dist": "uniform", "n": 1 + t.below(50)}
        if f.has("priority") and t.chance(30):
            client["priority"] = "high"
        clients.append(client)
    data.update(pool=pools, actor=actors, client=clients)
    actors_all = members + [a["name"] for a in actors]
    data["faults"] = _faults(t, until, actors_all, f)
    script = _script(t, until, pools, actors_all, [c["name"] for c in clients], targets, f)
    if script:
        data["script"] = script
    return data


def _faults(t: Tape, until: float, actors: list[str], f: Features) -> dict[str, Any]:
    """Transit faults, and actor faults that all heal before `until` (the fault-free tail)."""
    faults: dict[str, Any] = {}
    transit = f.has("transit")
    if transit and t.chance(30):
        faults["drop"] = t.grid(0.01, 0.3, 29)
    if transit and t.chance(30):
        faults["duplicate"] = t.grid(0.01, 0.3, 29)
    if transit and t.chance(30):
        faults["delay"] = {"dist": "uniform", "low": 0.0, "high": t.grid(0.01, 2.0, 20)}

    def window() -> tuple[str, float, float]:
        actor = actors[t.below(len(actors))]
        at = t.grid(0.0, until, 20)
        return actor, at, round(at + (until - at) * t.grid(0.05, 1.0, 19), 6)

    crashes = []
    for _ in t.many(0, 2, 30):
        actor, at, end = window()
        crashes.append({"actor": actor, "at": at, "restart_after": round(end - at, 6)})
    slows = []
    for _ in t.many(0, 2, 20):
        actor, at, end = window()
        if end > at:
            slows.append({"actor": actor, "at": at, "until": end, "speed": t.grid(0.25, 4.0, 15)})
    hangs = []
    for _ in t.many(0, 2, 20):
        actor, at, end = window()
        if end > at:
            hangs.append({"actor": actor, "at": at, "until": end})
    return {**faults, "crash": crashes, "slow": slows, "hang": hangs}


def _script(
    t: Tape,
    until: float,
    pools: list[dict[str, Any]],
    actors: list[str],
    clients: list[str],
    targets: list[str],
    f: Features,
) -> list[dict[str, Any]]:
    """Timed operations on the world's actors, pools, services and topics (all before `until`)."""
    needs = {"subscribe": "topics", "unsubscribe": "topics", "provide": "services"}
    actions = tuple(a for a in _SCRIPT_ACTIONS if a not in needs or f.has(needs[a]))
    steps = []
    for _ in t.many(0, 8, 60):
        step: dict[str, Any] = {"at": t.grid(0.0, until, 40), "do": t.pick(actions)}
        do = step["do"]
        actor = actors[t.below(len(actors))]
        if do == "cancel":
            step["corr"] = 1 + t.below(30)
        elif do == "reply":
            step["corr"] = 1 + t.below(30)
            if t.chance(50):
                step["from"] = actor
        elif do in ("send", "request"):
            step["to"] = targets[t.below(len(targets))]
            step["from"] = clients[t.below(len(clients))]
            if f.has("priority") and t.chance(30):
                step["priority"] = "high"
            if do == "request":
                step["timeout"] = t.grid(0.5, 10.0, 19)
                if t.chance(30):  # the actor it wakes answers inside the call (spec 1.6)
                    step["answered_by"] = actor
            else:
                if f.has("ttl") and t.chance(50):
                    step["ttl"] = t.grid(0.1, 5.0, 49)
                if f.has("ttl") and t.chance(50):
                    step["timestamp"] = round(step["at"] + t.grid(-5.0, 2.0, 70), 6)
        elif do in ("leave", "join"):
            step["pool"] = pools[t.below(len(pools))]["name"]
            step["actor"] = actor
        elif do in ("subscribe", "unsubscribe"):
            step["topic"] = t.pick(("t1", "t2"))
            step["actor"] = actor
        elif do == "provide":
            step["service"] = t.pick(("s1", "s2"))
            step["actor"] = actor
        else:  # unregister, stop, restart: any actor, a client too (its requests end, 5.8)
            everyone = actors + clients
            step["actor"] = everyone[t.below(len(everyone))]
        steps.append(step)
    steps.sort(key=lambda s: s["at"])  # a stable sort: equal times keep their order
    return steps


# -- running a world -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorldOutcome:
    """What one world did: its `status` (ok, violation, nonconform, undrained, crash), the
    failure's `signature` and `detail` (None when ok), its `events`, and, for a failure, the
    `tape` that regenerates it."""

    index: int
    status: str
    events: int
    signature: str | None = None
    detail: str | None = None
    tape: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"world": self.index, "status": self.status, "events": self.events}
        if self.signature is not None:
            out.update(signature=self.signature, detail=self.detail, tape=list(self.tape or ()))
        return out


@dataclass(frozen=True, slots=True)
class SwarmWorld:
    """What to run: the master `seed`, the world `size`, the `broker` (`reference`, a name of
    the mutant catalogue, or `cmd:COMMAND`, a port), and `conform_every` (check every Nth
    world's trace; 0: none). A picklable task for worker processes and Dask workers alike."""

    seed: int
    size: float = 1.0
    broker: str = "reference"
    conform_every: int = 1
    shrink_budget: int = 2000
    features: tuple[str, ...] | None = None  # a port's (None: every feature)


def _signature_of_crash(err: BaseException) -> str:
    frames = traceback.extract_tb(err.__traceback__)
    ours = [f for f in frames if re.search(r"/(broker|sim|model)/", f.filename)]
    where = ours[-1] if ours else (frames[-1] if frames else None)
    place = "" if where is None else f":{where.filename.rsplit('/', 2)[-2:][-1]}:{where.lineno}"
    return f"crash:{type(err).__name__}{place}"


_PORTS: dict[str, BrokerFactory] = {}  # per process: one port subprocess per command line


def factory_of(broker: str, port_timeout: float = 10.0) -> BrokerFactory:
    """The broker a swarm names: `reference`, a mutant, or `cmd:COMMAND`, a port, started once
    per process (a worker's port serves all its worlds, reset per world) and stopped at exit."""
    if not broker.startswith("cmd:"):
        return broker_class(broker)
    factory = _PORTS.get(broker)
    if factory is None:
        from sim.port import PortFactory

        port = PortFactory(broker[4:].strip(), timeout=port_timeout)
        atexit.register(port.close)
        factory = _PORTS[broker] = port
    return factory


def _judge(
    scenario: Scenario, broker: str, conform: bool
) -> tuple[str, int, str | None, str | None]:
    """Run one scenario: (status, events, signature, detail)."""
    factory = factory_of(broker)
    out = io.StringIO() if conform else None
    try:
        result: Result = simulate(scenario, trace=out, broker_factory=factory)
    except Exception as err:  # a bug in brokerlab: no world should cause an exception
        detail = " ".join(f"{type(err).__name__}: {err}".split())[:300]
        return "crash", 0, _signature_of_crash(err), detail
    if result.violation is not None:
        v = result.violation
        return "violation", result.events, f"invariant:{v.invariant}", str(v)
    if out is not None:
        verdict = check_trace(out.getvalue().splitlines(), "world")
        if verdict.illegal is not None:
            why = verdict.illegal.why
            words = " ".join(re.sub(r"-?\b\d[\w.+-]*", "N", why).split()[:6])
            return "nonconform", result.events, f"conform:{words}", str(verdict.illegal)
    if result.undrained is not None:
        return "undrained", result.events, "liveness:undrained", result.undrained
    return "ok", result.events, None, None


def build(tape: Tape, size: float, features: Sequence[str] | None = None) -> Scenario:
    """The scenario a tape generates (a generator bug shows as a ScenarioError here)."""
    return parse_scenario(generate(tape, size, features), "<swarm world>")


def run_world(task: tuple[SwarmWorld, int]) -> WorldOutcome:
    """World `index` of the swarm `spec`: generated, run, judged (a module-level function, so
    a process or a Dask worker can run it)."""
    spec, index = task
    tape = Tape(seed=world_seed(spec.seed, index))
    scenario = build(tape, spec.size, spec.features)
    conform = spec.conform_every > 0 and index % spec.conform_every == 0
    status, events, signature, detail = _judge(scenario, spec.broker, conform)
    if signature is None:
        return WorldOutcome(index, status, events)
    return WorldOutcome(index, status, events, signature, detail, tuple(tape.choices))


@dataclass(frozen=True, slots=True)
class Shrunk:
    """A failure shrunk: the simplest `tape` found, its `scenario`, its `detail`, the runs it
    took (`tried`), and the original tape's length."""

    tape: tuple[int, ...]
    scenario: Scenario
    detail: str
    tried: int
    original: int


def shrink_world(
    failure: WorldOutcome, spec: SwarmWorld, progress: Callable[[int], None] | None = None
) -> Shrunk:
    """Shrink a failing world's tape to the simplest that fails with the same signature.
    Every candidate is conformed when the failure came from conform, else only run."""
    assert failure.tape is not None and failure.signature is not None
    conform = failure.status == "nonconform"

    def fails(candidate: Sequence[int]) -> Sequence[int] | None:
        tape = Tape(given=candidate)
        try:
            scenario = build(tape, spec.size, spec.features)
        except ValueError:  # a tape the generator reads into an invalid world: not a failure
            return None
        _, _, signature, _ = _judge(scenario, spec.broker, conform)
        if progress is not None:
            progress(1)
        return tape.choices if signature == failure.signature else None

    tape, tried = shrink(failure.tape, fails, budget=spec.shrink_budget)
    final = Tape(given=tape)
    scenario = build(final, spec.size, spec.features)
    _, _, signature, detail = _judge(scenario, spec.broker, conform)
    assert signature == failure.signature, (signature, failure.signature)
    return Shrunk(tuple(tape), scenario, detail or "", tried, len(failure.tape))


def shrunk_toml(failure: WorldOutcome, shrunk: Shrunk, spec: SwarmWorld) -> str:
    """The shrunk world as a scenario file, its comments saying how to replay it."""
    broker = "" if spec.broker == "reference" else f" --broker {spec.broker}"
    comments = [
        f"A world shrunk by `brokerlab swarm --seed {spec.seed}` (world {failure.index}).",
        f"signature: {failure.signature}",
        f"detail: {shrunk.detail}",
        f"tape: {shrunk.original} choices shrunk to {len(shrunk.tape)} in {shrunk.tried} runs",
        f"replay: brokerlab run THIS_FILE{broker}"
        + ("  (then `brokerlab conform` on its --trace)" if failure.status == "nonconform" else ""),
        f"choices: {json.dumps(list(shrunk.tape))}",
        "",
    ]
    return scenario_toml(shrunk.scenario, comments)


# -- a swarm: many worlds, counted; the first world of each failure kept for shrinking -----------

STATUSES = ("ok", "violation", "nonconform", "undrained", "crash")


@dataclass(slots=True)
class SwarmReport:
    """A swarm's figures so far: a pure function of its `spec`, its `worlds` and how many are
    `done` (worlds are counted in index order, whatever ran them), so it is the same bytes on
    any executor, and a report written after some worlds is where a resumed swarm starts."""

    spec: SwarmWorld
    worlds: int
    done: int = 0
    events: int = 0
    status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    histogram: dict[int, int] = field(default_factory=dict)  # events per world -> worlds
    failures: dict[str, dict[str, Any]] = field(default_factory=dict)  # signature -> first world

    def add(self, outcome: WorldOutcome) -> None:
        assert outcome.index == self.done  # worlds are counted in index order
        self.done += 1
        self.events += outcome.events
        self.status[outcome.status] += 1
        self.histogram[outcome.events] = self.histogram.get(outcome.events, 0) + 1
        if outcome.signature is None:
            return
        seen = self.failures.get(outcome.signature)
        if seen is None:
            self.failures[outcome.signature] = {"count": 1, **outcome.to_dict()}
        else:
            seen["count"] += 1

    def median_events(self) -> int | None:
        """The median world's events (the lower one for an even count)."""
        seen, half = 0, (self.done + 1) // 2
        for events in sorted(self.histogram):
            seen += self.histogram[events]
            if seen >= half:
                return events
        return None

    def first(self, signature: str) -> WorldOutcome:
        """The first world that failed with `signature`, to shrink."""
        f = self.failures[signature]
        return WorldOutcome(
            f["world"], f["status"], f["events"], signature, f["detail"], tuple(f["tape"])
        )

    def to_dict(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "swarm": {
                "seed": spec.seed,
                "worlds": self.worlds,
                "size": spec.size,
                "broker": spec.broker,
                "conform_every": spec.conform_every,
                "shrink_budget": spec.shrink_budget,
                **({} if spec.features is None else {"features": list(spec.features)}),
            },
            "done": self.done,
            "events": self.events,
            "median_events": self.median_events(),
            "status": self.status,
            "failures": sorted(self.failures.values(), key=lambda f: f["world"]),
            "histogram": [[k, self.histogram[k]] for k in sorted(self.histogram)],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SwarmReport:
        """A report read back (`--resume`); KeyError or TypeError if it is not one."""
        s = data["swarm"]
        spec = SwarmWorld(
            seed=s["seed"],
            size=s["size"],
            broker=s["broker"],
            conform_every=s["conform_every"],
            shrink_budget=s["shrink_budget"],
            features=None if s.get("features") is None else tuple(s["features"]),
        )
        failures = {f["signature"]: dict(f) for f in data["failures"]}
        return cls(
            spec,
            s["worlds"],
            done=data["done"],
            events=data["events"],
            status=dict(data["status"]),
            histogram={int(k): int(v) for k, v in data["histogram"]},
            failures=failures,
        )
