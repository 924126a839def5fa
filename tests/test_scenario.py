"""Scenario files (sim/scenario/_load.py, docs/scenario-format.md)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker import BACKPRESSURES, STRATEGIES
from sim.scenario import (
    ActorSpec,
    ClientSpec,
    Closed,
    Constant,
    ConstantArrivals,
    Crash,
    Exponential,
    Faults,
    Hang,
    LogNormal,
    Poisson,
    PoolSpec,
    RetrySpec,
    Scenario,
    ScenarioError,
    Slow,
    Uniform,
    UniformKeys,
    Zipf,
    default_scenario,
    load_scenario,
    parse_scenario,
)

EXAMPLE = """\
seed = 7
until = 1000.0                  # arrivals stop here; the run then drains
[[pool]]
name = "workers"
size = 4
strategy = "round_robin"
capacity = 64
backpressure = "reject"
service = { dist = "exponential", mean = 1.0 }
speeds = [1.0, 1.0, 2.0, 0.5]
[[actor]]
name = "db"
services = ["storage"]
service = { dist = "constant", value = 0.5 }
[[client]]
name = "load"
target = "pool:workers"
pattern = "request"
arrivals = { process = "poisson", rate = 3.0 }
timeout = 30.0
count = 100000
retry = { max_attempts = 3, backoff = 0.1, multiplier = 2.0, max_backoff = 5.0, jitter = 0.0 }
keys = { dist = "zipf", n = 100, s = 1.1 }
[faults]
drop = 0.0
duplicate = 0.0
delay = { dist = "constant", value = 0.0 }
crash = [ { actor = "workers-2", at = 100.0, restart_after = 50.0 } ]
slow = [ { actor = "workers-3", at = 200.0, until = 400.0, speed = 0.25 } ]
hang = [ { actor = "workers-4", at = 300.0, until = 350.0 } ]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_documented_example_loads(tmp_path: Path) -> None:
    s = load_scenario(write(tmp_path, EXAMPLE))
    assert s == Scenario(
        seed=7,
        until=1000.0,
        pools=(
            PoolSpec(
                name="workers",
                size=4,
                strategy="round_robin",
                capacity=64,
                backpressure="reject",
                service=Exponential(1.0),
                speeds=(1.0, 1.0, 2.0, 0.5),
            ),
        ),
        actors=(ActorSpec(name="db", services=("storage",), service=Constant(0.5)),),
        clients=(
            ClientSpec(
                name="load",
                target="pool:workers",
                pattern="request",
                arrivals=Poisson(3.0),
                timeout=30.0,
                count=100000,
                retry=RetrySpec(3, 0.1, 2.0, 5.0, 0.0),
                keys=Zipf(100, 1.1),
            ),
        ),
        faults=Faults(
            crash=(Crash("workers-2", 100.0, 50.0),),
            slow=(Slow("workers-3", 200.0, 400.0, 0.25),),
            hang=(Hang("workers-4", 300.0, 350.0),),
        ),
    )
    assert s.pools[0].members == ("workers-1", "workers-2", "workers-3", "workers-4")


def test_defaults_of_a_minimal_scenario() -> None:
    s = parse_scenario(
        {
            "until": 10,
            "pool": [{"name": "p", "size": 1, "service": {"dist": "constant", "value": 1}}],
            "client": [
                {"name": "r", "target": "pool:p", "arrivals": {"process": "poisson", "rate": 1}},
                {
                    "name": "t",
                    "target": "pool:p",
                    "pattern": "tell",
                    "arrivals": {"process": "constant", "interval": 2},
                },
            ],
        }
    )
    assert s.seed == 0
    assert s.until == 10.0
    assert isinstance(s.until, float)
    pool = s.pools[0]
    assert (pool.strategy, pool.capacity, pool.backpressure) == ("round_robin", None, "reject")
    assert (pool.speeds, pool.send_timeout) == (None, None)
    request, tell = s.clients
    assert request.pattern == "request"
    assert request.timeout == 30.0  # requests always have a deadline
    assert (request.count, request.retry, request.keys, request.priority) == (
        None,
        None,
        None,
        "normal",
    )
    assert tell.timeout is None
    assert tell.arrivals == ConstantArrivals(2.0)
    assert s.faults == Faults()
    assert s.faults.delay == Constant(0.0)


def test_retry_table_fills_defaults_and_closed_think_defaults_to_zero() -> None:
    s = parse_scenario(
        {
            "until": 1,
            "client": [
                {
                    "name": "c",
                    "target": "name:x",
                    "arrivals": {"process": "closed", "concurrency": 3},
                    "retry": {"max_attempts": 5},
                    "keys": {"dist": "uniform", "n": 4},
                    "priority": "high",
                }
            ],
        }
    )
    c = s.clients[0]
    assert c.arrivals == Closed(3, 0.0)
    assert c.retry == RetrySpec(max_attempts=5, backoff=0.1, multiplier=2.0, max_backoff=5.0)
    assert c.keys == UniformKeys(4)
    assert c.priority == "high"


def test_default_scenario_is_valid_and_round_trips() -> None:
    s = default_scenario()
    assert parse_scenario(s.to_dict()) == s
    pool = s.pools[0]
    assert pool.size == 4
    assert pool.speeds is not None
    assert len(set(pool.speeds)) > 1  # heterogeneous
    assert pool.strategy in STRATEGIES
    assert s.actors[0].services == ("storage",)
    request = next(c for c in s.clients if c.pattern == "request")
    assert request.timeout is not None
    assert request.retry is not None
    assert any(c.pattern == "tell" for c in s.clients)
    assert s.faults.duplicate == 0.01
    assert s.faults.crash[0].restart_after is not None
    assert s.until == 500.0
    # ~75% offered load on the pool: rate * mean service time / total speed.
    assert isinstance(request.arrivals, Poisson)
    assert isinstance(pool.service, Exponential)
    load = request.arrivals.rate * pool.service.mean / sum(pool.speeds)
    assert load == pytest.approx(0.75)


def test_example_round_trips_through_to_dict_and_json(tmp_path: Path) -> None:
    s = load_scenario(write(tmp_path, EXAMPLE))
    d = s.to_dict()
    assert parse_scenario(d) == s
    assert parse_scenario(json.loads(json.dumps(d))) == s


def test_to_dict_fills_every_default_and_omits_absent_optionals() -> None:
    s = parse_scenario(
        {"until": 5, "actor": [{"name": "a", "service": {"dist": "constant", "value": 0}}]}
    )
    assert s.to_dict() == {
        "version": 1,
        "seed": 0,
        "until": 5.0,
        "pool": [],
        "actor": [
            {
                "name": "a",
                "services": [],
                "service": {"dist": "constant", "value": 0.0},
                "backpressure": "reject",
            }
        ],
        "client": [],
        "faults": {
            "drop": 0.0,
            "duplicate": 0.0,
            "delay": {"dist": "constant", "value": 0.0},
            "crash": [],
            "slow": [],
            "hang": [],
        },
    }


def test_round_trip_of_a_scenario_using_every_feature() -> None:
    s = Scenario(
        seed=3,
        until=12.5,
        pools=(
            PoolSpec(
                name="p",
                size=2,
                strategy=STRATEGIES[-1],
                capacity=4,
                backpressure="block",
                service=LogNormal(1.0, 0.5),
                speeds=(1.0, 3.0),
                send_timeout=2.0,
            ),
        ),
        actors=(
            ActorSpec(
                name="a",
                services=("s1", "s2"),
                service=Uniform(0.5, 1.5),
                capacity=1,
                backpressure=BACKPRESSURES[1],
            ),
        ),
        clients=(
            ClientSpec(
                name="c",
                target="service:s1",
                pattern="tell",
                arrivals=ConstantArrivals(0.5),
                count=10,
                retry=RetrySpec(jitter=0.5),
                keys=Zipf(5, 0.0),
                priority="high",
            ),
            ClientSpec(name="d", target="id:3", arrivals=Closed(2, 1.5), timeout=1.0),
        ),
        faults=Faults(
            drop=0.1,
            duplicate=0.2,
            delay=Exponential(0.01),
            crash=(Crash("p-1", 1.0), Crash("a", 2.0, 0.0)),
            slow=(Slow("p-2", 0.0, 1.0, 2.0),),
            hang=(Hang("a", 3.0, 4.0),),
        ),
    )
    assert parse_scenario(s.to_dict()) == s


# --- every bad input names the file, the table and the key ---------------------------------------

TOP = "until = 100.0\n"
POOL = """
[[pool]]
name = "workers"
size = 2
service = { dist = "exponential", mean = 1.0 }
"""
ACTOR = """
[[actor]]
name = "db"
service = { dist = "constant", value = 0.5 }
"""
CLIENT = """
[[client]]
name = "load"
target = "pool:workers"
arrivals = { process = "poisson", rate = 1.0 }
"""
GOOD = TOP + POOL + ACTOR + CLIENT
P = '[[pool]] #1 "workers"'
A = '[[actor]] #1 "db"'
C = '[[client]] #1 "load"'


def test_the_base_of_the_broken_snippets_is_valid(tmp_path: Path) -> None:
    s = load_scenario(write(tmp_path, GOOD))
    assert [p.name for p in s.pools] == ["workers"]


BROKEN: list[tuple[str, str, str]] = [
    # (id, scenario text, message after "<file>: ")
    # top level
    ("top-unknown", "sead = 1\n" + GOOD, 'unknown key "sead" (did you mean "seed"?)'),
    ("until-missing", POOL, 'missing required key "until"'),
    ("until-zero", "until = 0\n" + POOL, 'key "until": must be > 0, got 0'),
    ("until-string", 'until = "1h"\n', 'key "until": expected a number, got "1h" (a string)'),
    ("until-inf", "until = inf\n", 'key "until": must be a finite number, got inf'),
    ("seed-negative", "seed = -1\n" + GOOD, 'key "seed": must be >= 0, got -1'),
    ("seed-float", "seed = 1.5\n" + GOOD, 'key "seed": expected an integer, got 1.5 (a float)'),
    ("seed-bool", "seed = true\n" + GOOD, 'key "seed": expected an integer, got true (a boolean)'),
    ("version", "version = 2\n" + GOOD, 'key "version": must be <= 1, got 2'),
    ("pool-not-array", TOP + "[pool]\nname = 'x'\n", 'key "pool": expected an array, got a table'),
    (
        "faults-not-table",
        TOP + "faults = 1\n",
        'key "faults": expected a table ([faults]), got 1 (an integer)',
    ),
    # [[pool]]
    (
        "pool-unknown",
        GOOD.replace("size = 2", "size = 2\ncapacty = 3"),
        f'{P}: unknown key "capacty" (did you mean "capacity"?)',
    ),
    ("pool-no-name", TOP + "[[pool]]\nsize = 1\n", '[[pool]] #1: missing required key "name"'),
    (
        "pool-bad-name",
        GOOD.replace('name = "workers"', 'name = "my workers"'),
        '[[pool]] #1 "my workers": key "name": "my workers" is not a valid name '
        "(one or more of the characters A-Z a-z 0-9 _ . - / @ +)",
    ),
    (
        "pool-name-int",
        TOP + "[[pool]]\nname = 3\n",
        '[[pool]] #1: key "name": expected a string, got 3 (an integer)',
    ),
    ("size-missing", GOOD.replace("size = 2\n", ""), f'{P}: missing required key "size"'),
    ("size-zero", GOOD.replace("size = 2", "size = 0"), f'{P}: key "size": must be >= 1, got 0'),
    (
        "strategy",
        GOOD.replace("size = 2", 'size = 2\nstrategy = "round_rubin"'),
        f'{P}: key "strategy": "round_rubin" is not one of {", ".join(STRATEGIES)} '
        '(did you mean "round_robin"?)',
    ),
    (
        "backpressure",
        GOOD.replace("size = 2", 'size = 2\nbackpressure = "yes"'),
        f'{P}: key "backpressure": "yes" is not one of {", ".join(BACKPRESSURES)}',
    ),
    (
        "capacity-zero",
        GOOD.replace("size = 2", "size = 2\ncapacity = 0"),
        f'{P}: key "capacity": must be >= 1, got 0',
    ),
    (
        "capacity-float",
        GOOD.replace("size = 2", "size = 2\ncapacity = 2.5"),
        f'{P}: key "capacity": expected an integer, got 2.5 (a float)',
    ),
    (
        "send-timeout-without-block",
        GOOD.replace("size = 2", "size = 2\nsend_timeout = 1.0"),
        f'{P}: key "send_timeout": applies only with backpressure = "block"',
    ),
    (
        "send-timeout-zero",
        GOOD.replace("size = 2", 'size = 2\nbackpressure = "block"\nsend_timeout = 0'),
        f'{P}: key "send_timeout": must be > 0, got 0',
    ),
    (
        "service-missing",
        GOOD.replace('service = { dist = "exponential", mean = 1.0 }\n', ""),
        f'{P}: missing required key "service"',
    ),
    (
        "service-not-table",
        GOOD.replace('service = { dist = "exponential", mean = 1.0 }', "service = 1.0"),
        f'{P}: key "service": expected a table, got 1.0 (a float)',
    ),
    (
        "service-mean",
        GOOD.replace("mean = 1.0", "mean = 0"),
        f'{P}: key "service.mean": must be > 0, got 0',
    ),
    (
        "service-unknown",
        GOOD.replace("mean = 1.0", "mean = 1.0, sigma = 1"),
        f'{P}: unknown key "service.sigma" (expected one of: dist, mean)',
    ),
    (
        "speeds-length",
        GOOD.replace("size = 2", "size = 2\nspeeds = [1.0]"),
        f'{P}: key "speeds": has 1 entries, expected size = 2',
    ),
    (
        "speeds-zero",
        GOOD.replace("size = 2", "size = 2\nspeeds = [1.0, 0.0]"),
        f'{P}: key "speeds #2": must be > 0, got 0.0',
    ),
    (
        "speeds-not-array",
        GOOD.replace("size = 2", "size = 2\nspeeds = 2.0"),
        f'{P}: key "speeds": expected an array, got 2.0 (a float)',
    ),
    # [[actor]]
    (
        "actor-unknown",
        GOOD.replace('name = "db"', 'name = "db"\nservice_time = 1'),
        f'{A}: unknown key "service_time" (did you mean "service"?)',
    ),
    (
        "actor-services-not-names",
        GOOD.replace('name = "db"', 'name = "db"\nservices = ["ok", 3]'),
        f'{A}: key "services #2": expected a string, got 3 (an integer)',
    ),
    (
        "actor-services-twice",
        GOOD.replace('name = "db"', 'name = "db"\nservices = ["s", "s"]'),
        f'{A}: key "services #2": "s" is listed twice',
    ),
    (
        "actor-dup-member",
        GOOD.replace('name = "db"', 'name = "workers-2"'),
        '[[actor]] #1 "workers-2": key "name": "workers-2" is already used by '
        f"{P} (its member workers-2)",
    ),
    (
        "actor-dup-actor",
        GOOD + ACTOR,
        f'[[actor]] #2 "db": key "name": "db" is already used by {A}',
    ),
    # [[client]]
    (
        "client-dup-pool",
        GOOD.replace('name = "load"', 'name = "workers"'),
        f'[[client]] #1 "workers": key "name": "workers" is already used by {P}',
    ),
    (
        "client-unknown",
        GOOD.replace('name = "load"', 'name = "load"\ntimout = 1'),
        f'{C}: unknown key "timout" (did you mean "timeout"?)',
    ),
    (
        "target-missing",
        GOOD.replace('target = "pool:workers"\n', ""),
        f'{C}: missing required key "target"',
    ),
    (
        "target-prefix",
        GOOD.replace("pool:workers", "queue:workers"),
        f'{C}: key "target": "queue:workers" is not an address '
        "(id:N, name:X, service:X, pool:X or topic:X)",
    ),
    (
        "target-empty-rest",
        GOOD.replace("pool:workers", "pool:"),
        f'{C}: key "target": "pool:" is not an address '
        "(id:N, name:X, service:X, pool:X or topic:X)",
    ),
    (
        "pattern",
        GOOD.replace('name = "load"', 'name = "load"\npattern = "ask"'),
        f'{C}: key "pattern": "ask" is not one of request, tell',
    ),
    (
        "arrivals-missing",
        GOOD.replace('arrivals = { process = "poisson", rate = 1.0 }\n', ""),
        f'{C}: missing required key "arrivals"',
    ),
    (
        "arrivals-process",
        GOOD.replace('process = "poisson"', 'process = "possion"'),
        f'{C}: key "arrivals.process": "possion" is not one of poisson, constant, closed '
        '(did you mean "poisson"?)',
    ),
    (
        "rate-zero",
        GOOD.replace("rate = 1.0", "rate = 0"),
        f'{C}: key "arrivals.rate": must be > 0, got 0',
    ),
    (
        "rate-bool",
        GOOD.replace("rate = 1.0", "rate = true"),
        f'{C}: key "arrivals.rate": expected a number, got true (a boolean)',
    ),
    (
        "interval-negative",
        GOOD.replace('process = "poisson", rate = 1.0', 'process = "constant", interval = -1'),
        f'{C}: key "arrivals.interval": must be > 0, got -1',
    ),
    (
        "arrivals-wrong-param",
        GOOD.replace('process = "poisson", rate = 1.0', 'process = "constant", rate = 1'),
        f'{C}: unknown key "arrivals.rate" (expected one of: interval, process)',
    ),
    (
        "concurrency-zero",
        GOOD.replace('process = "poisson", rate = 1.0', 'process = "closed", concurrency = 0'),
        f'{C}: key "arrivals.concurrency": must be >= 1, got 0',
    ),
    (
        "think-negative",
        GOOD.replace(
            'process = "poisson", rate = 1.0', 'process = "closed", concurrency = 1, think = -1'
        ),
        f'{C}: key "arrivals.think": must be >= 0, got -1',
    ),
    (
        "closed-tell",
        GOOD.replace('process = "poisson", rate = 1.0', 'process = "closed", concurrency = 1')
        + 'pattern = "tell"\n',
        f'{C}: key "arrivals": closed arrivals wait for replies: they need pattern = "request"',
    ),
    ("timeout-zero", GOOD + "timeout = 0\n", f'{C}: key "timeout": must be > 0, got 0'),
    (
        "timeout-inf",
        GOOD + "timeout = inf\n",
        f'{C}: key "timeout": must be a finite number, got inf',
    ),
    (
        "timeout-tell",
        GOOD + 'pattern = "tell"\ntimeout = 1.0\n',
        f'{C}: key "timeout": applies only to pattern = "request"',
    ),
    ("count-zero", GOOD + "count = 0\n", f'{C}: key "count": must be >= 1, got 0'),
    (
        "retry-attempts",
        GOOD + "retry = { max_attempts = 0 }\n",
        f'{C}: key "retry.max_attempts": must be >= 1, got 0',
    ),
    (
        "retry-multiplier",
        GOOD + "retry = { multiplier = 0.5 }\n",
        f'{C}: key "retry.multiplier": must be >= 1, got 0.5',
    ),
    (
        "retry-backoff",
        GOOD + "retry = { backoff = -0.1 }\n",
        f'{C}: key "retry.backoff": must be >= 0, got -0.1',
    ),
    (
        "retry-max-backoff",
        GOOD + "retry = { max_backoff = -1 }\n",
        f'{C}: key "retry.max_backoff": must be >= 0, got -1',
    ),
    (
        "retry-jitter",
        GOOD + "retry = { jitter = 1.5 }\n",
        f'{C}: key "retry.jitter": must be between 0 and 1, got 1.5',
    ),
    (
        "retry-unknown",
        GOOD + "retry = { attempts = 2 }\n",
        f'{C}: unknown key "retry.attempts" (did you mean "retry.max_attempts"?)',
    ),
    (
        "keys-dist",
        GOOD + 'keys = { dist = "zip", n = 3 }\n',
        f'{C}: key "keys.dist": "zip" is not one of uniform, zipf (did you mean "zipf"?)',
    ),
    (
        "keys-n",
        GOOD + 'keys = { dist = "uniform", n = 0 }\n',
        f'{C}: key "keys.n": must be >= 1, got 0',
    ),
    (
        "priority",
        GOOD + 'priority = "urgent"\n',
        f'{C}: key "priority": "urgent" is not one of normal, high',
    ),
    # [faults]
    (
        "faults-unknown",
        GOOD + "[faults]\ndorp = 0.1\n",
        '[faults]: unknown key "dorp" (did you mean "drop"?)',
    ),
    (
        "drop-range",
        GOOD + "[faults]\ndrop = 1.5\n",
        '[faults]: key "drop": must be between 0 and 1, got 1.5',
    ),
    (
        "duplicate-range",
        GOOD + "[faults]\nduplicate = -0.5\n",
        '[faults]: key "duplicate": must be between 0 and 1, got -0.5',
    ),
    (
        "delay-dist",
        GOOD + '[faults]\ndelay = { dist = "constant", value = -1 }\n',
        '[faults]: key "delay.value": must be >= 0, got -1',
    ),
    (
        "crash-not-array",
        GOOD + "[faults]\ncrash = 1\n",
        '[faults]: key "crash": expected an array, got 1 (an integer)',
    ),
    (
        "crash-not-table",
        GOOD + "[faults]\ncrash = [1]\n",
        "[faults] crash #1: expected a table, got 1 (an integer)",
    ),
    (
        "crash-unknown-actor",
        GOOD + '[faults]\ncrash = [ { actor = "workers-3", at = 1.0 } ]\n',
        '[faults] crash #1: key "actor": "workers-3" is not a pool member or an actor '
        '(did you mean "workers-2"?)',
    ),
    (
        "crash-names-a-pool",
        GOOD + '[faults]\ncrash = [ { actor = "load", at = 1.0 } ]\n',
        '[faults] crash #1: key "actor": "load" is not a pool member or an actor',
    ),
    (
        "crash-at-missing",
        GOOD + '[faults]\ncrash = [ { actor = "db" } ]\n',
        '[faults] crash #1: missing required key "at"',
    ),
    (
        "crash-at-negative",
        GOOD + '[faults]\ncrash = [ { actor = "db", at = -1 } ]\n',
        '[faults] crash #1: key "at": must be >= 0, got -1',
    ),
    (
        "crash-restart",
        GOOD + '[faults]\ncrash = [ { actor = "db", at = 1, restart_after = -2 } ]\n',
        '[faults] crash #1: key "restart_after": must be >= 0, got -2',
    ),
    (
        "crash-unknown-key",
        GOOD + '[faults]\ncrash = [ { actor = "db", at = 1, restart = 2 } ]\n',
        '[faults] crash #1: unknown key "restart" (did you mean "restart_after"?)',
    ),
    (
        "slow-until",
        GOOD + '[faults]\nslow = [ { actor = "db", at = 5, until = 5, speed = 0.5 } ]\n',
        '[faults] slow #1: key "until": must be > 5, got 5',
    ),
    (
        "slow-speed",
        GOOD + '[faults]\nslow = [ { actor = "db", at = 5, until = 6, speed = 0 } ]\n',
        '[faults] slow #1: key "speed": must be > 0, got 0',
    ),
    (
        "hang-second-entry",
        GOOD
        + "[faults]\nhang = [ { actor = 'db', at = 1, until = 2 }, "
        + "{ actor = 'db', at = 4, until = 3 } ]\n",
        '[faults] hang #2: key "until": must be > 4, got 3',
    ),
    (
        "hang-extra-key",
        GOOD + '[faults]\nhang = [ { actor = "db", at = 1, until = 2, speed = 1 } ]\n',
        '[faults] hang #1: unknown key "speed" (expected one of: actor, at, until)',
    ),
    # TOML syntax
    ("toml-syntax", "until = \n", "line 1, column 9: invalid TOML: Invalid value"),
    (
        "toml-duplicate",
        "until = 1\nuntil = 2\n",
        "line 2, column 10: invalid TOML: Cannot overwrite a value",
    ),
]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_broken_scenario_names_file_table_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value) == f"{path}: {message}"


def test_broken_ids_are_unique() -> None:
    ids = [c[0] for c in BROKEN]
    assert len(ids) == len(set(ids))


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ScenarioError, match=r"nope\.toml: cannot read: No such file or directory"):
        load_scenario(path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"until = 1\n# caf\xe9\n")
    with pytest.raises(ScenarioError, match=r"latin1\.toml: not UTF-8 text"):
        load_scenario(path)


def test_parse_scenario_names_its_source() -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario({"until": -1})
    assert str(info.value) == '<scenario>: key "until": must be > 0, got -1'
    with pytest.raises(ScenarioError) as info:
        parse_scenario({"until": 1, "nope": 1}, "header")
    assert str(info.value).startswith('header: unknown key "nope" (expected one of: ')


def test_scenario_error_is_a_value_error() -> None:
    assert issubclass(ScenarioError, ValueError)


def test_records_are_frozen_and_slotted() -> None:
    s = default_scenario()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.seed = 1  # type: ignore[misc]
    assert not hasattr(s, "__dict__")
    assert not hasattr(s.pools[0], "__dict__")
    assert dataclasses.replace(s, seed=1).seed == 1


def _doc_toml_blocks() -> list[str]:
    doc = Path(__file__).parent.parent / "docs" / "scenario-format.md"
    return re.findall(r"```toml\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)


def test_docs_example_is_the_tested_example(tmp_path: Path) -> None:
    first = _doc_toml_blocks()[0]
    assert load_scenario(write(tmp_path, first)) == load_scenario(write(tmp_path, EXAMPLE))


def test_docs_show_the_real_default_scenario(tmp_path: Path) -> None:
    last = _doc_toml_blocks()[-1]
    assert load_scenario(write(tmp_path, last)) == default_scenario()


def test_json_null_counts_as_absent() -> None:
    s = parse_scenario({"until": 1, "seed": None, "pool": None, "faults": None})
    assert (s.seed, s.pools, s.faults) == (0, (), Faults())


@given(st.text(alphabet="Az09_.-/@+: é", min_size=0, max_size=6))
def test_one_name_grammar_for_the_broker_and_scenario_files(name: str) -> None:
    """Spec 2.2: a name the broker accepts is one a scenario file accepts, and no other."""
    from broker import InvalidAddress
    from broker._address import check_name

    try:
        check_name(name)
        broker_ok = True
    except InvalidAddress:
        broker_ok = False
    service = {"dist": "constant", "value": 1.0}
    table = {"seed": 1, "until": 1.0, "actor": [{"name": name, "service": service}]}
    try:
        parse_scenario(table, "names.toml")
        loader_ok = True
    except ScenarioError:
        loader_ok = False
    assert broker_ok == loader_ok, name


def _doc_limits() -> dict[str, str]:
    """The Limits table of docs/scenario-format.md: constant name -> the cap as written."""
    doc = (Path(__file__).parent.parent / "docs" / "scenario-format.md").read_text("utf-8")
    section = doc[doc.index("## Limits") : doc.index("## Errors")]
    return dict(re.findall(r"^\| `(\w+)` +\| `([^`]+)` +\|", section, re.M))


def test_the_documented_limits_are_the_loaders() -> None:
    import sim.scenario

    written = _doc_limits()
    code = {name: getattr(sim.scenario, name) for name in sim.scenario.__all__}
    caps = {name: value for name, value in code.items() if name.startswith(("MAX_", "MIN_"))}
    caps["ZIPF_MAX_N"] = code["ZIPF_MAX_N"]
    assert set(written) == set(caps)
    for name, text in written.items():
        value = 2**64 - 1 if text == "2^64 - 1" else float(text.replace(",", ""))
        assert value == caps[name], name


@pytest.mark.parametrize(
    ("key", "value", "cap"),
    [
        ("until", 1e12, None),
        ("until", 1.0000000000001e12, "<= 1e+12"),
        ("seed", 2**64 - 1, None),
        ("seed", 2**64, "<= 18446744073709551615"),
    ],
)
def test_a_cap_is_inclusive_and_named(key: str, value: float, cap: str | None) -> None:
    table = {"until": 1.0, key: value}
    if cap is None:
        assert getattr(parse_scenario(table, "caps.toml"), key) == value
        return
    with pytest.raises(ScenarioError, match=re.escape(f'caps.toml: key "{key}": must be {cap}')):
        parse_scenario(table, "caps.toml")
