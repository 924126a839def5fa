"""`brokerlab swarm` (docs/swarm.md): random worlds from choice tapes, shrinking, the report."""

from __future__ import annotations

import json
import shutil
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from broker import BACKPRESSURES, STRATEGIES, Broker
from sim import parse_scenario, simulate
from sim.checking import swarm as sw
from sim.checking._tape import Tape, shrink
from sim.cli import main
from sim.scenario import ACTIONS, load_scenario, scenario_toml

EXAMPLES = Path(__file__).resolve().parent.parent / "sim" / "examples"


def worlds(n: int, seed: int = 5) -> list[Any]:
    return [sw.build(Tape(seed=sw.world_seed(seed, i)), 1.0) for i in range(n)]


def test_the_generator_covers_every_feature_in_valid_worlds() -> None:
    seen: Counter[str] = Counter()
    for s in worlds(300):  # `build` parses each: an invalid world would raise here
        seen.update(f"strategy:{p.strategy}" for p in s.pools)
        seen.update(f"backpressure:{p.backpressure}" for p in (*s.pools, *s.actors))
        seen.update(f"arrivals:{type(c.arrivals).__name__}" for c in s.clients)
        seen.update(f"pattern:{c.pattern}" for c in s.clients)
        seen.update(f"target:{c.target.split(':')[0]}" for c in s.clients)
        seen.update(f"do:{step.do}" for step in s.script)
        seen.update("ttl" for step in s.script if step.get("ttl") is not None)
        seen.update("timestamp" for step in s.script if step.get("timestamp") is not None)
        seen.update(f"fault:{k}" for k in ("crash", "slow", "hang") if getattr(s.faults, k))
        seen.update(f"fault:{k}" for k in ("drop", "duplicate") if getattr(s.faults, k))
        seen.update("retry-jitter" for c in s.clients if c.retry and c.retry.jitter > 0)
        seen.update("keys" for c in s.clients if c.keys is not None)
        seen.update("priority:high" for c in s.clients if c.priority == "high")
        seen.update("topics" for a in s.actors if a.topics)
        seen.update("services" for a in s.actors if a.services)
        seen.update(["ties"] if s.ties is not None else [])
        # the fault-free tail: every actor fault heals before arrivals stop
        assert all(c.restart_after is not None for c in s.faults.crash)
        assert all(c.at + (c.restart_after or 0) <= s.until for c in s.faults.crash)
        assert all(f.until <= s.until for f in (*s.faults.slow, *s.faults.hang))
        assert all(step.at <= s.until for step in s.script)
        assert all(c.count is not None for c in s.clients)
    wanted = (
        {f"strategy:{x}" for x in STRATEGIES}
        | {f"backpressure:{x}" for x in BACKPRESSURES}
        | {f"do:{x}" for x in sw._SCRIPT_ACTIONS}
        | {"arrivals:Poisson", "arrivals:ConstantArrivals", "arrivals:Closed"}
        | {"pattern:request", "pattern:tell", "ttl", "timestamp", "retry-jitter", "keys"}
        | {f"target:{k}" for k in ("pool", "name", "service", "topic")}
        | {f"fault:{k}" for k in ("crash", "slow", "hang", "drop", "duplicate")}
        | {"priority:high", "topics", "services", "ties"}
    )
    assert wanted <= set(seen), sorted(wanted - set(seen))
    assert set(sw._SCRIPT_ACTIONS) <= set(ACTIONS)


def test_a_world_is_a_function_of_the_master_seed_and_its_index() -> None:
    assert sw.world_seed(1, 0) != sw.world_seed(1, 1) != sw.world_seed(2, 1)
    a = Tape(seed=sw.world_seed(3, 7))
    first = sw.build(a, 1.0)
    again = Tape(given=a.choices)  # the tape replays the world it recorded
    assert sw.build(again, 1.0) == first and again.choices == a.choices


def test_scenario_toml_reads_back_as_the_same_scenario() -> None:
    for s in [*worlds(40, seed=9), *(load_scenario(p) for p in sorted(EXAMPLES.glob("*.toml")))]:
        text = scenario_toml(s, ["a comment"])
        assert text.startswith("# a comment\n")
        assert parse_scenario(tomllib.loads(text)) == s


def test_shrink_finds_the_simplest_failing_tape() -> None:
    # Fails when some choice is >= 10 and a later one is odd; the simplest such tape is [10, 1].
    def fails(tape: Any) -> Any:
        for i, v in enumerate(tape):
            if v >= 10 and any(w % 2 for w in tape[i + 1 :]):
                return list(tape)
        return None

    best, tried = shrink([3, 50, 8, 0, 7, 20, 9, 4], fails)
    assert best == [10, 1] and 0 < tried < 2000
    # nothing simpler fails: kept as is, after 3 deletions, 1 zeroed block and 3 lowered values
    assert shrink([1, 2], lambda t: None) == ([1, 2], 7)
    # the budget is a hard cap
    assert shrink([5] * 40, lambda t: list(t) if sum(t) >= 100 else None, budget=7)[1] == 7


def test_a_draw_with_one_option_still_takes_a_place_on_the_tape() -> None:
    t = Tape(given=[5, 7])
    assert (t.below(1), t.below(10)) == (0, 7) and t.choices == [0, 7]
    t = Tape(given=[99])
    assert t.below(4) == 3  # too large: the largest choice, not a wrapped one
    with pytest.raises(ValueError, match="not both"):
        Tape(seed=1, given=[1])


def test_judge_tells_the_statuses_apart() -> None:
    late = load_scenario(EXAMPLES / "default.toml")
    assert sw._judge(late, "reference", conform=True)[:1] == ("ok",)
    # cut off at the hard stop: a liveness failure in a swarm
    import dataclasses

    stuck = dataclasses.replace(
        late,
        until=1.0,
        faults=dataclasses.replace(late.faults, crash=()),
        clients=tuple(dataclasses.replace(c, timeout=5000.0) for c in late.clients[:1]),
    )
    status, _, signature, detail = sw._judge(
        dataclasses.replace(stuck, faults=dataclasses.replace(stuck.faults, drop=0.5)),
        "reference",
        conform=True,
    )
    assert (status, signature) == ("undrained", "liveness:undrained")
    assert detail is not None and "hard stop t=1010.0" in detail


def test_a_crash_in_brokerlab_is_a_failure_with_where_it_happened(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Broken(Broker[Any]):
        def dequeue(self, actor_id: int) -> Any:
            raise RuntimeError("boom")

    monkeypatch.setattr(sw, "broker_class", lambda name: Broken)
    status, events, signature, detail = sw._judge(worlds(1)[0], "x", conform=False)
    assert (status, events) == ("crash", 0)
    assert signature is not None and signature.startswith("crash:RuntimeError:")
    assert detail == "RuntimeError: boom"


def test_swarm_of_the_reference_is_clean_and_the_same_bytes_on_one_or_two_processes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    assert main(["swarm", "--seed", "1", "--worlds", "50", "--report", str(one)]) == 0
    out = capsys.readouterr().out
    assert "swarm --seed 1: 50 worlds" in out and "worlds/min" in out
    assert main(["swarm", "--seed", "1", "--worlds", "50", "--jobs", "2", "--quiet",
                 "--report", str(two)]) == 0  # fmt: skip
    assert one.read_bytes() == two.read_bytes()
    report = json.loads(one.read_text())
    assert report["done"] == 50 and report["status"]["ok"] == 50 and report["failures"] == []
    assert sum(n for _, n in report["histogram"]) == 50
    assert 300 <= report["median_events"] <= 3000  # small worlds: about a thousand events


def test_swarm_finds_and_shrinks_the_late_reply_mutant_unaided(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, report = tmp_path / "found", tmp_path / "r.json"
    code = main(["swarm", "--seed", "1", "--worlds", "20", "--broker", "late_reply_delivered",
                 "--out", str(out), "--report", str(report)])  # fmt: skip
    assert code == 1
    data = json.loads(report.read_text())
    assert data["status"]["violation"] > 0
    files = sorted(out.glob("*.toml"))
    assert files and len(files) == len(data["failures"])
    for f in data["failures"]:
        shrunk = f["shrunk"]
        assert shrunk["actors"] <= 4 and shrunk["steps"] <= 3, shrunk  # a handful
        assert shrunk["choices"] < shrunk["from_choices"]
        path = Path(shrunk["file"])
        scenario = load_scenario(path)
        mutant = sw.broker_class("late_reply_delivered")
        assert simulate(scenario, broker_factory=mutant).violation is not None
        assert simulate(scenario).ok  # the reference runs it clean
        capsys.readouterr()
        assert main(["run", str(path), "--broker", "late_reply_delivered", "--quiet"]) == 1
        invariant = f["signature"].split(":", 1)[1]  # the replay breaks the same invariant
        assert "invariant violated at event" in (err := capsys.readouterr().err)
        assert f": {invariant}: " in err


def test_a_resumed_swarm_ends_with_the_report_of_one_run(tmp_path: Path) -> None:
    whole, parts = tmp_path / "whole.json", tmp_path / "parts.json"
    args = ["swarm", "--seed", "3", "--quiet", "--broker", "inclusive_deadline",
            "--shrink-budget", "50"]  # fmt: skip
    main([*args, "--worlds", "24", "--report", str(whole)])
    main([*args, "--worlds", "10", "--report", str(parts)])
    assert json.loads(parts.read_text())["done"] == 10
    main([*args, "--worlds", "24", "--report", str(parts), "--resume"])
    assert whole.read_bytes() == parts.read_bytes()


def test_an_interrupted_swarm_keeps_its_checkpoint_and_resumes_from_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sim.cli import swarm as cli_swarm

    whole, parts, found = tmp_path / "whole.json", tmp_path / "parts.json", tmp_path / "found"
    args = ["swarm", "--seed", "3", "--quiet", "--broker", "inclusive_deadline", "--worlds",
            "20", "--shrink-budget", "50"]  # fmt: skip
    monkeypatch.setattr(cli_swarm, "BATCH", 6)  # checkpoints after worlds 6, 12 and 18
    assert main([*args, "--report", str(whole), "--out", str(tmp_path / "once")]) == 1
    real, calls = cli_swarm.run_tasks, []

    def interrupted(*a: Any, **k: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(cli_swarm, "run_tasks", interrupted)
    assert main([*args, "--report", str(parts), "--out", str(found)]) == 130
    assert json.loads(parts.read_text())["done"] == 12  # the last checkpoint, whole
    assert not list(tmp_path.glob("*.part-*"))  # no temporary file left behind
    monkeypatch.setattr(cli_swarm, "run_tasks", real)
    assert main([*args, "--report", str(parts), "--out", str(found), "--resume"]) == 1
    assert whole.read_text().replace("once", "found") == parts.read_text()
    assert list(found.glob("*.toml"))  # written into its own directory, without --force


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--resume"], "--resume needs the --report"),
        (["--broker", "nope"], "--broker: no broker 'nope'"),
        (["--jobs", "2", "--scheduler", "tcp://127.0.0.1:1"], "--jobs and --scheduler"),
        (["--report", "EXISTS"], "exists (--force replaces it)"),
        (["--report", "/nonexistent/r.json"], "cannot write the report to '/nonexistent/r.json'"),
        (["--report", "OTHER", "--resume"], "is the report of another swarm"),
        (["--report", "JUNK", "--resume"], "not a swarm report"),
    ],
)
def test_bad_swarm_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    (tmp_path / "EXISTS").write_text("{}")
    (tmp_path / "JUNK").write_text("[1, 2]")
    main(["swarm", "--worlds", "1", "--quiet", "--seed", "9", "--report", str(tmp_path / "OTHER")])
    capsys.readouterr()
    argv = [str(tmp_path / a) if a in ("EXISTS", "OTHER", "JUNK") else a for a in argv]
    assert main(["swarm", "--worlds", "2", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_bad_size_is_an_argparse_error_naming_the_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["swarm", "--size", "0"])
    assert exit_.value.code == 2
    assert "argument --size: must be in [0.01, 100], got 0" in capsys.readouterr().err


PORT = Path(__file__).resolve().parent.parent / "examples" / "ports" / "node" / "port.js"


def test_a_port_is_swarmed_with_the_worlds_its_features_allow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real subprocess in another language: clean as written, and its planted bug found."""
    node = shutil.which("node")
    assert node, "node is missing: this project's machines have it"
    report = tmp_path / "port.json"
    port = f"cmd:{node} {PORT}"
    assert main(["swarm", "--seed", "1", "--worlds", "12", "--broker", port, "--quiet",
                 "--report", str(report)]) == 0  # fmt: skip
    data = json.loads(report.read_text())
    assert data["status"]["ok"] == 12
    assert "strategy:broadcast" not in data["swarm"]["features"]  # the port lacks it
    out = tmp_path / "bug"
    code = main(["swarm", "--seed", "1", "--worlds", "12", "--broker",
                 f"{port} --bug inclusive-deadline", "--quiet", "--out", str(out),
                 "--shrink-budget", "300"])  # fmt: skip
    assert code == 1
    (found,) = out.glob("*.toml")
    assert "# signature: conform:a timer was due at N" in found.read_text()
