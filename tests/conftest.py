"""Shared fixtures: a broker on a virtual clock that records every event it reports."""

from __future__ import annotations

import os
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from broker import Broker
from sim import Scheduler

settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile(
    "ci",
    max_examples=1000,
    stateful_step_count=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


class Recorder:
    """A broker listener that keeps every event as (name, fields)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, name: str, fields: dict[str, Any]) -> None:
        self.events.append((name, fields))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def of(self, name: str) -> list[dict[str, Any]]:
        return [fields for ev, fields in self.events if ev == name]


class World:
    """A broker, its clock and its event log, for tests."""

    def __init__(self, seed: int = 1, network: Any = None) -> None:
        self.clock = Scheduler()
        self.log = Recorder()
        self.broker: Broker[Any] = Broker(
            self.clock, random.Random(seed), listener=self.log, network=network
        )

    def run(self, until: float) -> None:
        # Tests that then send want the clock at `until`, even when the queue ran dry earlier.
        self.clock.advance_to(until)

    def conserved(self) -> bool:
        b = self.broker
        return b.accepted == b.delivered + b.dead_lettered + b.in_flight and b.in_flight >= 0


@pytest.fixture
def world() -> World:
    return World()
