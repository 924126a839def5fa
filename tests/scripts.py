"""Random `[[script]]` scenarios (docs/scenario-format.md, "Scripts") for differential tests.

`scripts()` is a Hypothesis strategy of scenario files, as TOML text, whose script exercises every
broker operation a script can perform, including the ones random workloads never issue: explicit
`cancel`, `unregister` / `stop` / `restart` of actors with queued and parked mail, `join` /
`leave` / `provide` / `subscribe` / `unsubscribe` after registration, publishing to topics with
and without live subscribers, requests answered at once by a subscriber they wake (spec 1.6),
replies from anyone (or no one) to any correlation id,
`deliver` and `done`, one-way sends with a TTL, a timestamp, a key, a send timeout or a retry
policy, requests with short timeouts, bounded mailboxes under every backpressure mode, pools of
every strategy, and addresses of every kind, some of which name nothing.

Every scenario it draws is one the loader accepts (`sim.parse_scenario(tomllib.loads(text))`);
steps the broker refuses are fine: the simulator lists them as `script_errors` and goes on.
`scenario_toml(steps)` writes hand-made steps the same way.

Shrinking heads for a short script whose optional keys are left out: every "maybe" below is
drawn so that its simplest value means "absent".
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

# Every strategy and backpressure mode the broker has, which the scenario format accepts:
# round_robin, random, least_loaded, power_of_two, consistent_hash, broadcast, shared; reject,
# drop_newest, drop_oldest, block at the time of writing.
from broker import BACKPRESSURES, STRATEGIES

NAMES = ("c", "s", "w", "x")  # names scripts register actors under
POOLS = ("p", "q")  # pools scripts create
SERVICES = ("svc", "alt")  # services registrations and `provide` steps offer
TOPICS = ("news", "ops")  # topics `subscribe` steps subscribe to (the prelude too)
NOBODY, NO_POOL, NO_SERVICE = "nobody", "nopool", "nosvc"  # never registered or created
MAX_ID = 8  # actor ids and correlation ids are drawn from 1..MAX_ID: some exist, some do not
MAX_STEPS = 25
UNTIL = 10.0

# How often each operation is drawn: mail and its handling are the interesting part.
WEIGHTED_ACTIONS = (
    ("send", 6), ("request", 5), ("deliver", 5), ("done", 2), ("reply", 3), ("cancel", 2),
    ("register", 2), ("unregister", 1), ("stop", 2), ("restart", 2), ("create_pool", 1),
    ("join", 2), ("leave", 1), ("provide", 1), ("subscribe", 2), ("unsubscribe", 1),
)  # fmt: skip
ACTION_CHOICES = tuple(do for do, weight in WEIGHTED_ACTIONS for _ in range(weight))

# Gaps between consecutive steps: often none (steps, and timers they set, at equal times).
GAPS = (0.0, 0.0, 0.0, 0.5, 0.5, 1.0, 1.5)

Step = dict[str, Any]


# -- TOML ------------------------------------------------------------------------------------


def small_pool(seed: int, until: float, extra: str = "") -> str:
    """The small scenario many tests run: two exponential workers at a mean of 0.5 and a Poisson
    client at rate 2.0 (50% load), requests with a timeout of 5.0; `extra` TOML goes after it."""
    return f"""
seed = {seed}
until = {until!r}
[[pool]]
name = "workers"
size = 2
service = {{ dist = "exponential", mean = 0.5 }}
[[client]]
name = "load"
target = "pool:workers"
arrivals = {{ process = "poisson", rate = 2.0 }}
timeout = 5.0
{extra}"""


def toml_value(value: object) -> str:
    """`value` (a string, number, boolean, list or table of them) as a TOML value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # finite floats only: shortest round trip, always with . or e
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string of ASCII text is a TOML basic string
    if isinstance(value, Mapping):
        pairs = ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items())
        return "{ " + pairs + " }" if pairs else "{}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def scenario_toml(
    steps: Sequence[Mapping[str, object]],
    *,
    seed: int = 0,
    until: float = UNTIL,
    extra: str = "",
) -> str:
    """A scenario file: `seed`, `until`, the TOML text `extra` (tables of its own) and `steps`
    as `[[script]]` tables, `at` and `do` first."""
    lines = [f"seed = {seed}", f"until = {toml_value(until)}"]
    if extra:
        lines += ["", extra.strip()]
    for step in steps:
        lines += ["", "[[script]]"]
        ordered = {"at": step["at"], "do": step["do"]} | dict(step)
        lines += [f"{key} = {toml_value(value)}" for key, value in ordered.items()]
    return "\n".join(lines) + "\n"


# -- the pieces of a step --------------------------------------------------------------------


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each chosen with probability weight / total weight; shrinking
    heads for the first."""
    indices = [i for i, (weight, _) in enumerate(choices) for _ in range(weight)]
    return st.sampled_from(indices).flatmap(lambda i: choices[i][1])


@dataclass(frozen=True)
class Known:
    """The names the script's prelude registered and the pools it created: steps mostly refer
    to these, so that most of them do something, and now and then to anything at all."""

    names: tuple[str, ...]
    pools: tuple[str, ...]

    def actors(self) -> st.SearchStrategy[str | int]:
        """An actor reference: a registered name (mostly), any name (maybe never registered),
        an id (1..MAX_ID: a registration, or nothing), or an unnamed actor's label `id:N`."""
        return weighted(
            (8, st.sampled_from(self.names)),
            (1, st.sampled_from((*NAMES, NOBODY))),
            (1, st.integers(1, MAX_ID)),
            (1, st.integers(1, MAX_ID).map(lambda n: f"id:{n}")),
        )

    def pool_names(self) -> st.SearchStrategy[str]:
        """A pool the prelude created (mostly), or any pool, or one never created."""
        return weighted(
            (4, st.sampled_from(self.pools or POOLS)),
            (1, st.sampled_from(POOLS)),
            (1, st.just(NO_POOL)),
        )

    def addresses(self) -> st.SearchStrategy[str]:
        """An address of every kind; some name nothing."""
        return weighted(
            (6, st.sampled_from(self.names).map(lambda n: f"name:{n}")),
            (1, st.sampled_from((*NAMES, NOBODY)).map(lambda n: f"name:{n}")),
            (1, st.integers(1, MAX_ID).map(lambda n: f"id:{n}")),
            (2, st.sampled_from((*SERVICES, NO_SERVICE)).map(lambda n: f"service:{n}")),
            (3, self.pool_names().map(lambda n: f"pool:{n}")),
            (2, st.sampled_from((*TOPICS, "none")).map(lambda n: f"topic:{n}")),
            (1, st.sampled_from(("name:a b", "id:07", "topic:a%b"))),  # InvalidAddress (2.2)
        )


payloads: st.SearchStrategy[str | int | float] = st.one_of(
    st.sampled_from(("hello", "")), st.integers(-3, 3), st.sampled_from((0.5, 2.0))
)
keys = st.sampled_from(("k0", "k1", "k2", "k3"))
priorities = st.sampled_from(("normal", "high"))
send_timeouts = st.sampled_from((0.5, 1.0, 2.0))
ttls = st.sampled_from((0.5, 1.0, 3.0))
timestamps = st.sampled_from((0.0, 0.5, 1.0, 2.5, 5.0, 9.0))
request_timeouts = st.sampled_from((0.5, 1.0, 1.5, 2.0, 5.0, 9.0))
# Mostly the first few ids (the requests a script issues), sometimes one never issued.
correlations = weighted((3, st.integers(1, 3)), (1, st.integers(1, MAX_ID)))


def _maybe(draw: st.DrawFn, step: Step, key: str, values: st.SearchStrategy[Any]) -> None:
    """Set `step[key]` from `values` half of the time (else the step leaves it out)."""
    if draw(st.booleans()):
        step[key] = draw(values)


def _seldom(draw: st.DrawFn, step: Step, key: str, values: st.SearchStrategy[Any]) -> None:
    """Set `step[key]` from `values` a third of the time."""
    if draw(st.integers(0, 2)) == 2:
        step[key] = draw(values)


@st.composite
def retries(draw: st.DrawFn) -> dict[str, object]:
    """A `retry` table: any subset of its keys (the defaults fill in the rest), jitter often."""
    table: dict[str, object] = {}
    _maybe(draw, table, "max_attempts", st.integers(1, 4))
    _maybe(draw, table, "backoff", st.sampled_from((0.0, 0.25, 0.5, 1.0)))
    _maybe(draw, table, "multiplier", st.sampled_from((1.0, 2.0)))
    _maybe(draw, table, "max_backoff", st.sampled_from((0.0, 0.5, 5.0)))
    _maybe(draw, table, "jitter", st.sampled_from((0.0, 0.3, 1.0)))
    return table


# -- steps -----------------------------------------------------------------------------------


@st.composite
def register_steps(draw: st.DrawFn, known: Known, name: str | None = None) -> Step:
    """A `register`: named (mostly) or not, bounded mailboxes of capacity 1-2 under every
    backpressure mode, sometimes a send timeout, services and pools to join. Given a `name` (a
    prelude registration) it joins only pools that exist, so that it succeeds."""
    step: Step = {"do": "register"}
    prelude = name is not None
    if name is None and draw(st.integers(0, 5)) < 5:
        name = draw(st.sampled_from(NAMES))
    if name is not None:
        step["name"] = name
    if draw(st.integers(0, 2)) > 0:
        step["capacity"] = draw(st.integers(1, 2))
    # `block` twice as often as the others: parked messages need a full mailbox first.
    _maybe(draw, step, "backpressure", st.sampled_from((*BACKPRESSURES, "block")))
    if draw(st.integers(0, 3)) == 3:
        step["send_timeout"] = draw(send_timeouts)
    _seldom(draw, step, "services", st.lists(st.sampled_from(SERVICES), max_size=2, unique=True))
    if not prelude:  # any pools, some perhaps never created
        _seldom(draw, step, "pools", st.lists(known.pool_names(), max_size=2, unique=True))
    elif known.pools:  # half of the prelude's registrations join pools that exist
        _maybe(draw, step, "pools", st.lists(st.sampled_from(known.pools), min_size=1, unique=True))
    return step


@st.composite
def send_steps(draw: st.DrawFn, known: Known) -> Step:
    step: Step = {"do": "send", "to": draw(known.addresses())}
    _maybe(draw, step, "from", known.actors())
    _maybe(draw, step, "payload", payloads)
    _maybe(draw, step, "priority", priorities)
    _maybe(draw, step, "key", keys)
    _maybe(draw, step, "ttl", ttls)
    _maybe(draw, step, "timestamp", timestamps)
    _seldom(draw, step, "send_timeout", send_timeouts)
    _seldom(draw, step, "retry", retries())
    return step


@st.composite
def request_steps(draw: st.DrawFn, known: Known) -> Step:
    step: Step = {
        "do": "request",
        "from": draw(known.actors()),
        "to": draw(known.addresses()),
        "timeout": draw(request_timeouts),
    }
    _maybe(draw, step, "payload", payloads)
    _maybe(draw, step, "priority", priorities)
    _maybe(draw, step, "key", keys)
    _seldom(draw, step, "send_timeout", send_timeouts)
    _seldom(draw, step, "retry", retries())
    _seldom(draw, step, "answered_by", known.actors())
    return step


@st.composite
def reply_steps(draw: st.DrawFn, known: Known) -> Step:
    """A reply to any correlation id (pending, ended or never issued), from any actor (whether
    it took the request or not) or from no one."""
    step: Step = {"do": "reply", "corr": draw(correlations)}
    if draw(st.integers(0, 3)) > 0:
        step["from"] = draw(known.actors())
    _maybe(draw, step, "payload", payloads)
    return step


@st.composite
def steps(draw: st.DrawFn, known: Known) -> Step:
    """One step of any kind, without its `at`."""
    do = draw(st.sampled_from(ACTION_CHOICES))
    if do == "register":
        return draw(register_steps(known))
    if do == "send":
        return draw(send_steps(known))
    if do == "request":
        return draw(request_steps(known))
    if do == "reply":
        return draw(reply_steps(known))
    if do == "cancel":
        return {"do": "cancel", "corr": draw(correlations)}
    if do == "create_pool":
        step: Step = {"do": "create_pool", "pool": draw(st.sampled_from(POOLS))}
        _maybe(draw, step, "strategy", st.sampled_from(STRATEGIES))
        return step
    if do in ("join", "leave"):
        return {"do": do, "pool": draw(known.pool_names()), "actor": draw(known.actors())}
    if do == "provide":
        service = draw(st.sampled_from((*SERVICES, *SERVICES, NO_SERVICE)))
        return {"do": "provide", "service": service, "actor": draw(known.actors())}
    if do in ("subscribe", "unsubscribe"):
        return {"do": do, "topic": draw(st.sampled_from(TOPICS)), "actor": draw(known.actors())}
    return {"do": do, "actor": draw(known.actors())}  # unregister, stop, restart, deliver, done


@st.composite
def pools_created(draw: st.DrawFn) -> Step:
    """A prelude `create_pool` of any strategy."""
    pool, strategy = draw(st.sampled_from(POOLS)), draw(st.sampled_from(STRATEGIES))
    return {"do": "create_pool", "pool": pool, "strategy": strategy}


@st.composite
def actors_registered(draw: st.DrawFn, pools: tuple[str, ...]) -> Step:
    """A prelude `register` of a named actor, joining only pools that exist."""
    name = draw(st.sampled_from(NAMES))
    return draw(register_steps(Known((name,), pools), name))


@st.composite
def timed_steps(draw: st.DrawFn, known: Known) -> tuple[float, bool, Step]:
    """A step with the gap since the one before (often none) and whether it is set one unit
    in the past. All its choices are drawn together, so that shrinking can delete it."""
    gap = draw(st.sampled_from(GAPS))
    past = draw(st.integers(0, 15)) == 15
    return gap, past, draw(steps(known))


@st.composite
def scripts(draw: st.DrawFn) -> str:
    """A scenario file (TOML text) with a script of 1-25 steps at times in [0, 10].

    A prelude at t=0 creates 0-2 pools (any strategy) and registers 1-4 named actors; random
    steps follow (25 steps in all at most) at non-decreasing multiples of 0.5, now and then one
    set in the past (it runs when its turn comes, at the time then). The seed varies the random
    strategies' picks and the retry jitter. The body may be empty (the prelude is a script of
    its own): a list with a forced first element is one the shrinker cannot delete from.
    """
    seed = draw(st.integers(0, 3))
    created = draw(st.lists(pools_created(), max_size=2, unique_by=lambda s: s["pool"]))
    pools = tuple(step["pool"] for step in created)
    registered = draw(
        st.lists(actors_registered(pools), min_size=1, max_size=4, unique_by=lambda s: s["name"])
    )
    known = Known(tuple(step["name"] for step in registered), pools)
    subscribed = [
        {"do": "subscribe", "topic": topic, "actor": step["name"]}
        for step in registered
        for topic in draw(st.lists(st.sampled_from(TOPICS), max_size=2, unique=True))
    ]
    timed: list[Step] = [{"at": 0.0} | step for step in [*created, *registered, *subscribed]]
    at = 0.0
    for gap, past, step in draw(st.lists(timed_steps(known), max_size=MAX_STEPS - len(timed))):
        at = min(UNTIL, at + gap)
        timed.append({"at": max(0.0, at - 1.0) if past else at} | step)
    return scenario_toml(timed, seed=seed)
