"""The clean-room JavaScript port (examples/ports/node/), a real subprocess in another language:
it passes every golden vector its features cover, agrees with the model under lockstep and the
model checker, and its planted bug (`--bug inclusive-deadline`, spec 5.5) is caught by all three.

Node is part of every machine this project runs on; a machine without it fails here, loudly.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import Phase, settings

from sim.checking.hunt import run_lockstep
from sim.cli import main
from sim.port import PortFactory
from sim.vectors import read_index, vectors, verify

PORT = Path(__file__).resolve().parent.parent / "examples" / "ports" / "node" / "port.js"
NODE = shutil.which("node") or "node"
COMMAND = f"{NODE} {PORT}"
BUGGY = f"{COMMAND} --bug inclusive-deadline"


@pytest.fixture(scope="module")
def port() -> PortFactory:
    factory = PortFactory(COMMAND)
    yield factory  # type: ignore[misc]
    factory.close()


def test_node_is_here_and_the_port_passes_its_self_test() -> None:
    assert shutil.which("node"), "node is missing: this project's machines have it"
    done = subprocess.run([NODE, str(PORT), "--self-test"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_port_declares_what_the_issue_asks_for(port: PortFactory) -> None:
    assert {"strategy:round_robin", "backpressure:reject"} <= port.features


def test_the_port_passes_every_vector_its_features_cover(port: PortFactory) -> None:
    outcomes = verify(port, vectors(), read_index(), port.features)
    ran = [o for o in outcomes if o.status != "skip"]
    assert len(ran) >= 50
    assert [o.vector.name for o in ran if o.status != "pass"] == []
    rules = {o.vector.rule for o in ran}
    for rule in ("2.5", "2.7", "2.8", "3.2.3", "4.4", "5.4", "5.5", "5.6", "5.7"):
        assert rule in rules, f"no vector for {rule} ran on the port"


def test_the_planted_bug_fails_the_vectors() -> None:
    buggy = PortFactory(BUGGY)
    try:
        outcomes = verify(buggy, vectors(only=["5.5"]), read_index(), buggy.features)
    finally:
        buggy.close()
    failed = [o.vector.name for o in outcomes if o.status == "fail"]
    assert failed, "the inclusive deadline passes every 5.5 vector"


QUICK = settings(max_examples=60, stateful_step_count=25, deadline=None, database=None)


def test_lockstep_agrees_with_the_port(port: PortFactory) -> None:
    assert run_lockstep(port, QUICK, port.features) is None


def test_lockstep_catches_the_planted_bug() -> None:
    buggy = PortFactory(BUGGY)
    try:
        hunt = settings(QUICK, max_examples=300, phases=[Phase.generate], derandomize=True)
        failure = run_lockstep(buggy, hunt, buggy.features)
    finally:
        buggy.close()
    assert failure is not None
    # Caught by a comparison with the model (a request's outcome at its deadline), not a crash.
    assert failure.check in ("events", "timeouts", "outcomes", "pending"), failure


def test_the_checker_runs_against_the_port_and_catches_the_bug(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The port has no `retry` feature: the checker's requests are not retried (--retries 1).
    small = ["--clients", "1", "--requests", "1", "--retries", "1"]
    assert main(["check", "--broker", f"cmd:{COMMAND}", *small]) == 0
    assert "verdict: all properties hold" in capsys.readouterr().out
    assert main(["check", "--broker", f"cmd:{BUGGY}", *small]) == 1
    assert "VIOLATED" in capsys.readouterr().out


@pytest.mark.slow
def test_the_checker_at_its_default_bounds_agrees_with_the_port(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every transition of the default bounds (without retries: the port has none) replayed."""
    assert main(["check", "--broker", f"cmd:{COMMAND}", "--retries", "1"]) == 0
    out = capsys.readouterr().out
    assert "states 19770" in out and "verdict: all properties hold" in out
