"""The port protocol end to end (docs/port-protocol.md): the reference behind it, through the
adapter, writes the in-process reference's traces byte for byte; every way a port can fail is a
clear error naming the last request, never a hang; a port is checked on its features only."""

from __future__ import annotations

import dataclasses
import io
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import model as m
from broker import Broker, SplitMix64
from sim import Scheduler
from sim.checking.hunt import run_lockstep
from sim.checking.lockstep import fit
from sim.cli import main
from sim.port import PortError, PortFactory, op_features
from sim.run import simulate
from sim.scenario import default_scenario, parse_scenario

SERVE = f"{sys.executable} -m sim.port"


@pytest.fixture(scope="module")
def serve() -> Any:
    factory = PortFactory(SERVE)
    yield factory
    factory.close()


def _trace(factory: Any, scenario: Any) -> list[str]:
    out = io.StringIO()
    simulate(scenario, trace=out, broker_factory=factory)
    return out.getvalue().splitlines()


FAULTY = parse_scenario(
    {
        "seed": 11,
        "until": 30.0,
        "pool": [
            {
                "name": "w",
                "size": 3,
                "strategy": "random",
                "capacity": 2,
                "backpressure": "block",
                "send_timeout": 0.7,
                "service": {"dist": "exponential", "mean": 0.4},
            }
        ],
        "client": [
            {
                "name": "c",
                "target": "pool:w",
                "pattern": "request",
                "timeout": 1.5,
                "arrivals": {"process": "poisson", "rate": 4.0},
                "retry": {"max_attempts": 3, "backoff": 0.1, "jitter": 0.5},
            }
        ],
        "faults": {
            "drop": 0.05,
            "duplicate": 0.1,
            "delay": {"dist": "exponential", "mean": 0.05},
            "crash": [{"at": 5.0, "actor": "w-1", "restart_after": 3.0}],
        },
    },
    "test",
)


@pytest.mark.parametrize("scenario", [default_scenario(), FAULTY], ids=["default", "faulty"])
def test_the_reference_through_the_protocol_writes_the_same_trace(
    serve: PortFactory, scenario: Any
) -> None:
    """Spec 10.6: every effect crosses the pipe: transit asks, timers, wakes, random draws,
    faults; the traces are the in-process reference's, byte for byte."""
    scenario = dataclasses.replace(scenario, until=min(scenario.until, 30.0))
    here, there = _trace(Broker, scenario), _trace(serve, scenario)
    assert len(here) > 300
    assert '"broker":"reference"' in here[0] and f'"broker":"cmd:{SERVE}"' in there[0]
    assert here[1:] == there[1:]
    if scenario is FAULTY:
        assert any('"choice":"transit"' in line for line in there)


def _port(tmp_path: Path, body: str) -> str:
    """A fake port: a Python script whose hello is right, then `body` handles the requests."""
    script = tmp_path / "port.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, sys, time
            def say(obj):
                sys.stdout.write(json.dumps(obj) + "\\n"); sys.stdout.flush()
            hello = json.loads(sys.stdin.readline())
            say({"ok": True, "protocol": 1, "spec_version": hello["spec_version"],
                 "name": "fake", "features": []})
            for line in sys.stdin:
                request = json.loads(line)
            """
        )
        + textwrap.indent(textwrap.dedent(body), "    ")
    )
    return f"{sys.executable} {script}"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("sys.exit(3)", "exited with status 3"),
        ("time.sleep(30)", "no answer within 0.5 s"),
        ("sys.stdout.write('{nope\\n'); sys.stdout.flush()", "invalid JSON"),
        ("say([1, 2])", "not a JSON object"),
        ("say({'ok': False, 'problem': 'no such thing'})", "ok: false: no such thing"),
        (
            "say({'ok': True, 'result': 1, 'error': None, 'effects': [{'ev': 'bogus'}]}) "
            "if request['op'] != 'reset' else say({'ok': True})",
            "event 'bogus' is not an event of spec 9.4",
        ),
        (
            "sys.stderr.write('trouble ahead\\n'); sys.stderr.flush(); sys.exit(1)",
            "trouble ahead",
        ),
    ],
)
def test_a_failing_port_is_a_clear_error_naming_the_last_request(
    tmp_path: Path, body: str, message: str
) -> None:
    factory = PortFactory(_port(tmp_path, body), timeout=0.5)
    with pytest.raises(PortError) as caught:
        broker = factory(Scheduler(), SplitMix64(1))
        broker.register("a")
    assert caught.value.exit_code == 1
    assert message in str(caught.value)
    assert "last request: {" in str(caught.value)
    factory.close()


def test_ports_that_cannot_run_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text("seed = 1\nuntil = 1.0\n")
    assert main(["run", str(scenario), "--broker", "cmd:no-such-program-here"]) == 2
    assert "cannot start port 'no-such-program-here'" in capsys.readouterr().err
    old = tmp_path / "old.py"
    old.write_text(
        "import json, sys\nsys.stdin.readline()\n"
        'print(json.dumps({"ok": True, "protocol": 0, "spec_version": "0.9", "features": []}))\n'
    )
    assert main(["run", str(scenario), "--broker", f"cmd:{sys.executable} {old}"]) == 2
    assert "speaks protocol 0 and spec '0.9'" in capsys.readouterr().err
    assert main(["run", str(scenario), "--broker", "cmd:"]) == 2


def test_a_scenario_needing_a_feature_the_port_lacks_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _port(tmp_path, "say({'ok': True})")  # has no pools at all
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        'seed = 1\nuntil = 1.0\n[[pool]]\nname = "w"\nsize = 1\n'
        'service = { dist = "constant", value = 0.1 }\n'
    )
    assert main(["run", str(scenario), "--broker", f"cmd:{port}"]) == 2
    assert "lacks strategy:round_robin, which create_pool" in capsys.readouterr().err


def test_op_features_name_what_each_operation_needs() -> None:
    assert op_features("create_pool", {"pool": "p", "strategy": "shared"}) == {"strategy:shared"}
    assert op_features("register", {"capacity": 2, "backpressure": "block"}) == {
        "backpressure:block"
    }
    assert op_features("register", {"capacity": None, "backpressure": "block"}) == set()
    assert op_features("send", {"to": "topic:t", "priority": "high", "ttl": 1.0}) == {
        "topics",
        "priority",
        "ttl",
    }
    assert op_features("request", {"to": "service:s", "retry": {"max_attempts": 2}}) == {
        "services",
        "retry",
    }


def test_lockstep_fits_actions_to_a_ports_features() -> None:
    base = frozenset({"strategy:round_robin", "backpressure:reject"})
    assert fit(m.CreatePool("p", "shared"), base) == m.CreatePool("p", "round_robin")
    assert fit(m.Subscribe("t", 1), base) is None
    assert fit(m.Provide("s", 1), base) is None
    reg = fit(m.Register("a", 2, "block", 1.0, ("s",), ("p",)), base)
    assert reg == m.Register("a", 2, "reject", None, (), ("p",))
    ask = fit(m.Ask(1, "name:a", 2.0, True, m.Retry(2, 1.0, 1.0, 1.0)), base)
    assert ask == m.Ask(1, "name:a", 2.0, False, None)
    assert fit(m.Tell(1, "topic:t"), base) is None
    everything = frozenset({"strategy:shared", "backpressure:block", "services", "priority"})
    assert fit(m.Register("a", 2, "block", 1.0, ("s",)), everything) == m.Register(
        "a", 2, "block", 1.0, ("s",)
    )


def test_lockstep_and_check_drive_the_reference_behind_the_protocol(
    serve: PortFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    from hypothesis import settings

    quick = settings(max_examples=15, stateful_step_count=20, deadline=None, database=None)
    assert run_lockstep(serve, quick, serve.features) is None
    argv = ["check", "--broker", f"cmd:{SERVE}", "--clients", "1", "--requests", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "verdict: all properties hold" in out and "states 430" in out


def test_replaying_a_known_prefix_detects_a_port_that_is_not_deterministic(
    tmp_path: Path,
) -> None:
    """A port whose answers change after a reset is reported, not trusted (Round trips)."""
    body = """
    count = globals().get("count", 0) + 1
    globals()["count"] = count
    if request["op"] == "reset":
        say({"ok": True})
    else:
        say({"ok": True, "result": count, "error": None, "effects": []})
    """
    factory = PortFactory(_port(tmp_path, body), replay=True)
    first = factory(Scheduler(), SplitMix64(0))
    first.register("a")
    first.register("b")
    again = factory(Scheduler(), SplitMix64(0))
    again.register("a")  # served from what the first broker was told
    with pytest.raises(PortError, match="not deterministic"):
        again.register("c")  # a new request: the known prefix is sent, and answered otherwise
    factory.close()
