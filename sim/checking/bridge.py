"""The one bridge between the model's actions, the broker's calls and `[[script]]` steps.

Three vocabularies name the same operations: the model's actions (model/_actions.py), the calls
of `broker.MessageBroker`, and scenario script steps (docs/scenario-format.md, "Scripts"). This
module is the only place that maps one onto another; the lockstep test, the checker's broker
replay and the simulator's script interpreter all go through it, and so does every mutant hunt.

- `perform(broker, action, payload, clock)`: the broker call of a model action and its return
  value, or, given a clock, time moved by `Advance`;
- `action_of(step, actor_id)`: a script step as a model action (plus the payload to send);
- `script_step(at, action)`: a model action as a script step (a counterexample's replay);
- `policy(retry)`: a retry policy of the model or of a scenario as the broker's `RetryPolicy`;
- `disagreement(action, value, error, result)`: how a broker call's outcome differs from the
  model's `Effect.result`, or None (`refusal_disagreement` and `value_disagreement` are its two
  halves, for a driver that compares events in between);
- `model_counters(state)`: the model's side of `broker.Stats.counters()`;
- `answer_at_once(broker, actor, payload)`: a woken actor serving inside the call (spec 1.6).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import model as m
from broker import Envelope, MessageBroker, Priority, RetryPolicy
from sim.scenario import ScriptStep

__all__ = [
    "Unscriptable",
    "action_of",
    "answer_at_once",
    "disagreement",
    "model_addr",
    "model_counters",
    "perform",
    "policy",
    "refusal_disagreement",
    "script_step",
    "value_disagreement",
]


class Unscriptable(ValueError):
    """The action has no broker call or script step: a message lost in transit, or time."""


class Clock(Protocol):
    """What `perform` needs to move time: `sim.run.Scheduler` is one."""

    @property
    def now(self) -> float: ...
    def advance_to(self, when: float) -> int: ...


class RetryFields(Protocol):
    """What `model.Retry`, `sim.scenario.RetrySpec` and `broker.RetryPolicy` share."""

    @property
    def max_attempts(self) -> int: ...
    @property
    def backoff(self) -> float: ...
    @property
    def multiplier(self) -> float: ...
    @property
    def max_backoff(self) -> float: ...
    @property
    def jitter(self) -> float: ...


def policy(retry: RetryFields | None) -> RetryPolicy | None:
    """The broker's policy with the same five numbers (None stays None)."""
    if retry is None or isinstance(retry, RetryPolicy):
        return retry
    return RetryPolicy(
        retry.max_attempts, retry.backoff, retry.multiplier, retry.max_backoff, retry.jitter
    )


def _priority(high: bool) -> Priority:
    return "high" if high else "normal"


# -- model action -> broker call -------------------------------------------------------------


def _no_loss(a: m.Tell | m.Ask | m.Reply) -> None:
    """A call cannot tell the network what to do: that is the simulator's `Network`."""
    if a.drop or a.delay or a.duplicate is not False:
        raise Unscriptable(
            f"{type(a).__name__} has its message dropped, delayed or copied in transit: "
            "no broker call does that"
        )


def _key(a: m.Tell | m.Ask) -> str | None:
    if isinstance(a.key, m.AnyKey):
        raise Unscriptable(f"{type(a).__name__} has a key nobody knows (ANY_KEY): no call sends it")
    return a.key


def _tell(b: MessageBroker[Any], a: m.Tell, payload: Any) -> int:
    _no_loss(a)
    return b.send(
        a.sender,
        str(a.to),
        payload,
        priority=_priority(a.high),
        key=_key(a),
        ttl=a.ttl,
        timestamp=a.timestamp,
        retry=policy(a.retry),
        send_timeout=a.send_timeout,
    )


def _ask(b: MessageBroker[Any], a: m.Ask, payload: Any) -> int:
    _no_loss(a)
    return b.request(
        a.sender,
        str(a.to),
        payload,
        timeout=a.timeout,
        priority=_priority(a.high),
        key=_key(a),
        retry=policy(a.retry),
        send_timeout=a.send_timeout,
    )


def _reply(b: MessageBroker[Any], a: m.Reply, payload: Any) -> int:
    _no_loss(a)
    return b.reply(a.sender, a.corr, payload)


_CALLS: dict[type, Callable[[MessageBroker[Any], Any, Any], Any]] = {
    m.Register: lambda b, a, _: b.register(
        a.name,
        capacity=a.capacity,
        backpressure=a.backpressure,
        send_timeout=a.send_timeout,
        services=a.services,
        pools=a.pools,
    ),
    m.Unregister: lambda b, a, _: b.unregister(a.actor),
    m.Stop: lambda b, a, _: b.stop(a.actor),
    m.Restart: lambda b, a, _: b.restart(a.actor),
    m.CreatePool: lambda b, a, _: b.create_pool(a.name, a.strategy),
    m.Join: lambda b, a, _: b.join_pool(a.pool, a.actor),
    m.Leave: lambda b, a, _: b.leave_pool(a.pool, a.actor),
    m.Provide: lambda b, a, _: b.provide(a.service, a.actor),
    m.Subscribe: lambda b, a, _: b.subscribe(a.topic, a.actor),
    m.Unsubscribe: lambda b, a, _: b.unsubscribe(a.topic, a.actor),
    m.Tell: _tell,
    m.Ask: _ask,
    m.Reply: _reply,
    m.Cancel: lambda b, a, _: b.cancel(a.corr),
    m.Dequeue: lambda b, a, _: b.dequeue(a.actor),
    m.Done: lambda b, a, _: b.done(a.actor),
}


def perform(
    broker: MessageBroker[Any], action: m.Action, payload: Any = None, clock: Clock | None = None
) -> Any:
    """Call `broker` as `action` says; return what the call returned (a `BrokerError` propagates).

    `payload` is what a send, request or reply carries (the model does not track payloads).
    `Advance(to)` moves `clock` to `to`, running every timer due by then, and returns None, as
    the model does. Raises `Unscriptable` for `Advance` without a clock, for `Fire`, `Tick` and
    `Arrive` (the simulator's network, not a call, does those), and for a message the action
    drops, delays or copies in transit.
    """
    if isinstance(action, m.Advance) and clock is not None:
        clock.advance_to(action.to)
        return None
    call = _CALLS.get(type(action))
    if call is None:
        raise Unscriptable(f"{type(action).__name__} is not a broker call (move time instead)")
    return call(broker, action, payload)


def answer_at_once(broker: MessageBroker[Any], actor: int, payload: Any = None) -> Any:
    """Spec 1.6: the actor the broker just woke takes its next message and, if it is a request,
    replies to it, inside the call that woke it (a subscriber on the caller's thread). Returns
    what it dequeued (None if nothing). `payload` is the reply's (default: the request's)."""
    env = broker.dequeue(actor)
    if env is not None and env.kind == "request" and env.corr is not None:
        broker.reply(actor, env.corr, env.payload if payload is None else payload)
    return env


def refusal_disagreement(
    action: m.Action,
    error: str | None,
    result: m.Result,
    fields: Mapping[str, Any] | None = None,
) -> str | None:
    """How a broker call's error code (None: it succeeded) differs from the model's `result`;
    given the error's `fields`, they must be the model's too (spec 8.4, free text aside)."""
    refused = result.code if isinstance(result, m.Refused) else None
    if error != refused:
        return (
            f"{type(action).__name__}: broker {'raised ' + error if error else 'succeeded'}, "
            + (f"model refused {refused}" if refused else "model succeeded")
        )
    if fields is None or not isinstance(result, m.Refused):
        return None
    problem = result.fields_problem(fields)
    return None if problem is None else f"{type(action).__name__}: {error}: {problem}"


def value_disagreement(action: m.Action, value: Any, result: m.Result) -> str | None:
    """How a successful broker call's return value differs from the model's `result` (a
    dequeued envelope is compared by its message id)."""
    got = value.msg if isinstance(value, Envelope) else value
    want = result.id if isinstance(result, m.Msg) else result
    if got == want:
        return None
    return f"{type(action).__name__}: broker returned {got!r}, model {want!r}"


def disagreement(
    action: m.Action,
    value: Any,
    error: str | None,
    result: m.Result,
    fields: Mapping[str, Any] | None = None,
) -> str | None:
    """How a broker call's outcome (`value` returned, or the `error` code raised with its
    `fields`) differs from the model's `result` for the same action; None if they agree."""
    problem = refusal_disagreement(action, error, result, fields)
    if problem is None and error is None:
        problem = value_disagreement(action, value, result)
    return problem


def model_counters(s: m.State) -> tuple[int, int, int, int, int]:
    """(sent, rejected, delivered, dead_lettered, retries): `broker.Stats.counters()`'s order."""
    return (s.sent, s.rejected, s.delivered, s.dead_lettered, s.retries)


# -- script step <-> model action ------------------------------------------------------------


def model_addr(text: str) -> m.Addr:
    """Split, not parsed: the broker call validates the text (str(result) == text)."""
    kind, _, value = text.partition(":")
    return m.Addr(kind, value)  # type: ignore[arg-type]  # the broker rejects a bad kind


def _retry(step: ScriptStep) -> m.Retry | None:
    fields = step.get("retry")
    return None if fields is None else m.Retry(**dict(fields))


def action_of(step: ScriptStep, actor_id: Callable[[int | str], int]) -> tuple[m.Action, Any]:
    """The model action a script step performs, and the payload it sends (the step's
    `payload`, or None to let the caller choose). `actor_id` turns a step's actor reference
    (a name or an id) into an id; it raises for an unknown name."""
    get, do = step.get, step.do

    def actor(key: str = "actor") -> int:
        return actor_id(get(key))

    def sender() -> int | None:
        ref = get("from")
        return None if ref is None else actor_id(ref)

    high = get("priority", "normal") == "high"
    payload = get("payload")
    if do == "register":
        action: m.Action = m.Register(
            get("name"),
            get("capacity"),
            get("backpressure", "reject"),
            get("send_timeout"),
            tuple(get("services", ())),
            tuple(get("pools", ())),
        )
    elif do == "send":
        action = m.Tell(
            sender(),
            model_addr(get("to")),
            high,
            get("ttl"),
            get("timestamp"),
            _retry(step),
            get("send_timeout"),
            key=get("key"),
        )
    elif do == "request":
        action = m.Ask(
            actor("from"),
            model_addr(get("to")),
            get("timeout"),
            high,
            _retry(step),
            get("send_timeout"),
            key=get("key"),
        )
    elif do == "reply":
        action = m.Reply(sender(), get("corr"))
    elif do == "cancel":
        action = m.Cancel(get("corr"))
    elif do == "create_pool":
        action = m.CreatePool(get("pool"), get("strategy", "round_robin"))
    elif do in ("join", "leave"):
        action = (m.Join if do == "join" else m.Leave)(get("pool"), actor())
    elif do == "provide":
        action = m.Provide(get("service"), actor())
    elif do in ("subscribe", "unsubscribe"):
        action = (m.Subscribe if do == "subscribe" else m.Unsubscribe)(get("topic"), actor())
    else:
        action = _BY_ACTOR[do](actor())
    return action, payload


# Steps that name one actor and nothing else.
_BY_ACTOR: dict[str, Callable[[int], m.Action]] = {
    "unregister": m.Unregister,
    "stop": m.Stop,
    "restart": m.Restart,
    "deliver": m.Dequeue,
    "done": m.Done,
}
_BY_ACTOR_NAME = {kind: do for do, kind in _BY_ACTOR.items()}


def script_step(at: float, a: m.Action) -> dict[str, Any]:
    """`a` as a `[[script]]` table at time `at` (the inverse of `action_of`, ids for actors).

    Raises `Unscriptable` for time and for a message lost in transit.
    """
    out: dict[str, Any] = {"at": at}
    if isinstance(a, m.CreatePool):
        out |= {"do": "create_pool", "pool": a.name, "strategy": a.strategy}
    elif isinstance(a, m.Register):
        out["do"] = "register"
        if a.name is not None:
            out["name"] = a.name
        if a.capacity is not None:
            out |= {"capacity": a.capacity, "backpressure": a.backpressure}
        if a.send_timeout is not None:
            out["send_timeout"] = a.send_timeout
        if a.services:
            out["services"] = list(a.services)
        if a.pools:
            out["pools"] = list(a.pools)
    elif isinstance(a, m.Join | m.Leave):
        out |= {"do": "join" if isinstance(a, m.Join) else "leave", "pool": a.pool}
        out["actor"] = a.actor
    elif isinstance(a, m.Provide):
        out |= {"do": "provide", "service": a.service, "actor": a.actor}
    elif isinstance(a, m.Subscribe | m.Unsubscribe):
        do = "subscribe" if isinstance(a, m.Subscribe) else "unsubscribe"
        out |= {"do": do, "topic": a.topic, "actor": a.actor}
    elif isinstance(a, m.Unregister | m.Stop | m.Restart | m.Dequeue | m.Done):
        out |= {"do": _BY_ACTOR_NAME[type(a)], "actor": a.actor}
    elif isinstance(a, m.Tell | m.Ask):
        _no_loss(a)
        if isinstance(a, m.Tell):
            out["do"] = "send"
            if a.sender is not None:
                out["from"] = a.sender
        else:
            out |= {"do": "request", "from": a.sender}
        out["to"] = str(a.to)
        if isinstance(a, m.Ask):
            out["timeout"] = a.timeout
        if a.high:
            out["priority"] = "high"
        if _key(a) is not None:
            out["key"] = a.key
        if isinstance(a, m.Tell):
            if a.ttl is not None:
                out["ttl"] = a.ttl
            if a.timestamp is not None:
                out["timestamp"] = a.timestamp
        if a.send_timeout is not None:
            out["send_timeout"] = a.send_timeout
        if a.retry is not None:
            out["retry"] = dataclasses.asdict(a.retry)  # the script's `retry` keys, all five
    elif isinstance(a, m.Reply):
        _no_loss(a)
        out |= {"do": "reply", "corr": a.corr}
        if a.sender is not None:
            out["from"] = a.sender
    elif isinstance(a, m.Cancel):
        out |= {"do": "cancel", "corr": a.corr}
    else:
        raise Unscriptable(f"{type(a).__name__} is not a script step (time moves by `at`)")
    return out
