"""How conform's fast path runs the model: one operation at a time, on a state it keeps.

An engine holds the model's state as conform keeps it (docs/spec.md 10.5: ended requests leave
it, dead letters are counted, not kept) and runs one logged operation on it: `step(t, action,
route, retry_at)` moves the clock to the operation's time, applies the action, and returns its
result and its events, each as `(kind, fields)` with spec 9.4's fields (lists as tuples).

`ModelEngine` runs `model.apply` itself: it is the reference every other engine is held to
(tests/test_engine.py runs both on every operation of every trace the tests write and
compares results, events and states). An engine raises `Fallback` whenever it will not decide
a step (something the log shows that the model would refuse, a draw the log does not give, an
operation it leaves to the model): conform then checks that operation on the model, which
says what is wrong, in its own words. After a `Fallback` the engine's state is undefined.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from model._actions import Action, Fire, NeedChoice, NeedRetryAt, Reply, Result
from model._semantics import _replace, apply
from model._state import OutcomeKind, Request, State

# The log's draws, asked for by message id: the label of the actor a `route` event of the
# operation names (None: no such line), and the `at` of its `retry` event (`math.inf`: none).
Route = Callable[[int], str | None]
RetryAt = Callable[[int], float]
Events = list[tuple[str, dict[str, Any]]]


class Fallback(Exception):
    """The engine will not decide this step; the caller checks it on the model."""


class Memory(Protocol):
    """What conform keeps of ended requests (two bytes per correlation id, spec 10.5)."""

    def remember(self, corr: int, requester: int, outcome: OutcomeKind) -> None:
        """Request `corr`, issued by `requester`, ended `outcome` (it leaves the state)."""

    def recall(self, corr: int) -> tuple[int, OutcomeKind] | None:
        """The requester and outcome of ended request `corr`, or None if it never ended."""


class Engine(Protocol):
    def step(
        self, t: float, action: Action, route: Route, retry_at: RetryAt
    ) -> tuple[Result, Events]:
        """Run one logged operation at time `t` (see the module docstring)."""

    def state(self) -> State:
        """The model's state as conform keeps it, now."""


class ModelEngine:
    """The reference engine: `model.apply` on an immutable `State`, as conform ran it."""

    def __init__(self, state: State, memory: Memory) -> None:
        self.s, self.memory = state, memory

    def state(self) -> State:
        return self.s

    def step(
        self, t: float, action: Action, route: Route, retry_at: RetryAt
    ) -> tuple[Result, Events]:
        s = self.s
        if t != s.now:  # spec 1.5: time moves on only past timers that fired
            if s.timers and s.timers[0].when < t:
                raise Fallback("a timer was due before the operation")
            s = self.s = _replace(s, now=t)
        if isinstance(action, Fire):
            if not s.timers or s.timers[0].when != t:
                raise Fallback("no timer due at the operation's time")
            msg = s.timers[0].msg
            if msg is not None and msg.kind == "reply" and msg.corr:
                self._recall(msg.corr)
        elif isinstance(action, Reply):
            self._recall(action.corr)
        choices: list[int] = []
        times: list[float] = []
        while True:
            try:
                effect = apply(self.s, _with(action, choices, times))
                break
            except NeedChoice as need:
                label = route(need.msg) if need.msg is not None else None
                found = next((a.id for a in self.s.actors if a.label == label), None)
                if found is None:
                    raise Fallback("no route in the log to a registered actor") from None
                choices.append(found)
            except NeedRetryAt as need:
                times.append(retry_at(need.msg))
            except ValueError as err:
                raise Fallback(str(err)) from None
        s = effect.state
        ended = [r for r in s.requests if r.outcome is not None]
        for r in ended:
            assert r.outcome is not None
            self.memory.remember(r.corr, r.requester, r.outcome)
        if ended:
            s = _replace(s, requests=tuple(r for r in s.requests if r.pending))
        if s.dead_letters:
            s = _replace(s, dead_letters=())
        self.s = s
        return effect.result, [(e.name, dict(e.fields)) for e in effect.events]

    def _recall(self, corr: int) -> None:
        """Put an ended request back for a reply to it (the reply's fate names how it ended)."""
        fate = self.memory.recall(corr)
        if fate is not None and self.s.request(corr) is None:
            req = Request(corr, fate[0], 0.0, 0.0, fate[1])
            rest = self.s.requests
            at = next((i for i, r in enumerate(rest) if r.corr > corr), len(rest))
            self.s = _replace(self.s, requests=(*rest[:at], req, *rest[at:]))


def _with(action: Action, choices: list[int], times: list[float]) -> Action:
    if not (choices or times):
        return action
    return _replace(action, choices=tuple(choices), retry_at=tuple(times))


class Shadow:
    """Two engines run side by side; every step must agree in result, events and state
    (`AssertionError` otherwise, naming the step). How tests hold an engine to the model."""

    def __init__(self, engine: Engine, reference: Engine) -> None:
        self.engine, self.reference, self.steps = engine, reference, 0

    def state(self) -> State:
        return self.engine.state()

    def step(
        self, t: float, action: Action, route: Route, retry_at: RetryAt
    ) -> tuple[Result, Events]:
        self.steps += 1
        try:
            want = self.reference.step(t, action, route, retry_at)
        except Fallback:
            want = None
        try:
            got = self.engine.step(t, action, route, retry_at)
        except Fallback:
            if want is None:
                raise
            got = None  # an engine may leave any step to the model, but not get one wrong
        if got is not None:
            if want is None:
                raise AssertionError(
                    f"step {self.steps} ({action}): the model falls back, the engine runs it"
                )
            assert _same(got[0], want[0]), (
                f"step {self.steps} ({action}): result {got[0]!r}, the model's {want[0]!r}"
            )
            assert got[1] == want[1], (
                f"step {self.steps} ({action}): events {got[1]}, the model's {want[1]}"
            )
            mine, model = self.engine.state(), self.reference.state()
            assert mine == model, f"step {self.steps} ({action}): states differ:\n{mine}\n{model}"
            return got
        raise Fallback("the engine left the step to the model")


def _same(a: Result, b: Result) -> bool:
    """Results are equal, types and refusals' fields included."""
    return (
        type(a) is type(b) and a == b and getattr(a, "fields", None) == getattr(b, "fields", None)
    )
