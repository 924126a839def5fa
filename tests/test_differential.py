"""Differential: the reference simulator's trace of any script conforms to the model (spec 10).

Random workloads (tests/test_conform.py) never cancel a request, unregister or stop an actor with
mail queued, reply from an actor that never took the request, and so on; scripts do all of that
(tests/scripts.py draws them). Each scenario runs in the simulator with the reference broker, its
trace goes through `model.check_trace` as a complete trace, and the trace must replay.
"""

from __future__ import annotations

import io
import tomllib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from scripts import scenario_toml, scripts

from model import check_trace
from sim import parse_scenario, replay, simulate


def check_script(text: str) -> None:
    """Run the scenario file `text`; its trace must conform to the model and replay."""
    scenario = parse_scenario(tomllib.loads(text), "script.toml")
    out = io.StringIO()
    result = simulate(scenario, trace=out)
    trace = out.getvalue()
    verdict = check_trace(io.StringIO(trace), "script.toml trace", complete=True)
    where = (
        f"\n--- scenario (script.toml) ---\n{text}"
        f"--- run: ok={result.ok} violation={result.violation} "
        f"script_errors={result.summary.get('script_errors')}\n"
        f"--- trace ---\n{trace}"
    )
    assert verdict.ok, f"the reference trace does not conform: {verdict.illegal}{where}"
    divergence = replay(io.StringIO(trace), "script.toml trace")
    assert divergence is None, f"the reference trace does not replay: {divergence}{where}"


SETTINGS: dict[str, Any] = {
    "deadline": None,
    "derandomize": True,
    "suppress_health_check": [HealthCheck.too_slow],
}


@settings(max_examples=2000, **SETTINGS)
@given(scripts())
def test_reference_traces_conform(text: str) -> None:
    check_script(text)


@pytest.mark.slow
@settings(max_examples=20000, **SETTINGS)
@given(scripts())
def test_reference_traces_conform_many(text: str) -> None:
    check_script(text)


# -- regressions: one hand-written script per case random workloads never reach -------------


def register(name: str, at: float = 0.0, **keys: object) -> dict[str, object]:
    return {"at": at, "do": "register", "name": name, **keys}


def test_cancel_of_a_pending_request() -> None:
    check_script(
        scenario_toml(
            [
                register("c"),
                register("s"),
                {"at": 1.0, "do": "request", "from": "c", "to": "name:s", "timeout": 2.0},
                {"at": 1.5, "do": "cancel", "corr": 1},
            ]
        )
    )


def test_unregister_with_queued_mail() -> None:
    check_script(
        scenario_toml(
            [
                register("c"),
                register("s"),
                {"at": 1.0, "do": "send", "from": "c", "to": "name:s"},
                {"at": 2.0, "do": "unregister", "actor": "s"},
            ]
        )
    )


def test_stop_with_mixed_priorities_queued_and_a_message_parked() -> None:
    """Capacity 2 under `block`: a normal and a high message queued, a third one parked."""
    check_script(
        scenario_toml(
            [
                register("c"),
                register("s", capacity=2, backpressure="block"),
                {"at": 1.0, "do": "send", "from": "c", "to": "name:s"},
                {"at": 1.0, "do": "send", "from": "c", "to": "name:s", "priority": "high"},
                {"at": 1.0, "do": "send", "from": "c", "to": "name:s"},
                {"at": 2.0, "do": "stop", "actor": "s"},
                {"at": 3.0, "do": "restart", "actor": "s"},
                {"at": 3.0, "do": "send", "to": "name:s", "priority": "high"},
                {"at": 4.0, "do": "deliver", "actor": "s"},
            ]
        )
    )


def test_reply_from_an_actor_that_never_dequeued_the_request() -> None:
    check_script(
        scenario_toml(
            [
                register("c"),
                register("s"),
                register("x"),
                {"at": 1.0, "do": "request", "from": "c", "to": "name:s", "timeout": 5.0},
                {"at": 2.0, "do": "reply", "from": "x", "corr": 1},
            ]
        )
    )


def test_reply_with_no_sender() -> None:
    check_script(
        scenario_toml(
            [
                register("c"),
                register("s"),
                {"at": 1.0, "do": "request", "from": "c", "to": "name:s", "timeout": 5.0},
                {"at": 2.0, "do": "reply", "corr": 1},
                {"at": 3.0, "do": "reply", "corr": 1},  # duplicate_reply
                {"at": 3.0, "do": "reply", "corr": 7},  # unknown_correlation
            ]
        )
    )


def test_request_from_an_unknown_actor() -> None:
    check_script(
        scenario_toml(
            [
                register("s"),
                {"at": 1.0, "do": "request", "from": "nobody", "to": "name:s", "timeout": 1.0},
                {"at": 1.0, "do": "request", "from": 9, "to": "name:s", "timeout": 1.0},
            ]
        )
    )


def test_send_to_nobody() -> None:
    check_script(
        scenario_toml(
            [
                register("c"),
                {"at": 1.0, "do": "send", "from": "c", "to": "name:nobody"},
                {"at": 1.0, "do": "send", "to": "name:nobody", "retry": {"max_attempts": 3}},
            ]
        )
    )
