"""A counterexample as numbered steps, as TLC and Stateright print one (docs/spec.md 11.4).

`Counterexample` is the checker's record of a violation: the path (set-up included, times
relative to each step's present, model/_menu.py), the broken property and its message, and for
an eventually-property the lasso (`loop`). `replay(ce)` runs the path on the model from the empty
state and returns one `StepView` per step: its number, its time, who acts, the action in words
and the events it caused. `format_counterexample` prints the views, ending at the broken property;
`Counterexample.to_dict` is the same as JSON (events as the trace's `ev` objects,
docs/trace-format.md).

Actors are named by their part in the checker's world (spec 11.1): the actors that join a pool
are `member 1..N`, the others `client 1..C`, each group in id order; a path in which nobody
joins a pool names every actor `actor N`, by id. A line of the printout maps names to labels.

>>> ce = Counterexample("no_leak", "no_leak: request 1 is pending", ((Register(),),))
>>> print(format_counterexample(ce))
counterexample for no_leak: 1 step, t=0
  actors: actor 1 = id:1
    1. t=0   actor 1   registers (unbounded mailbox)
                       register actor 1
violated at step 1 (t=0): no_leak: request 1 is pending
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from model._actions import (
    Action,
    Advance,
    Arrive,
    Ask,
    Cancel,
    CreatePool,
    Dequeue,
    Done,
    Event,
    Fire,
    Join,
    Leave,
    Provide,
    Register,
    Reply,
    Restart,
    Stop,
    Subscribe,
    Tell,
    Tick,
    Unregister,
    Unsubscribe,
)
from model._menu import Step, answered_at_once
from model._semantics import apply
from model._state import Addr, AnyKey, Retry, State

__all__ = [
    "Counterexample",
    "StepView",
    "concrete",
    "event_json",
    "event_text",
    "first_difference",
    "format_counterexample",
    "replay",
]


@dataclass(frozen=True, slots=True)
class Counterexample:
    """The shortest path to a violation: `steps` (set-up included) in relative time, the last
    one breaking `violated`, whose message is `detail` (its first line is the one-line form).

    `loop` is set for an eventually-violation: the last `loop` steps lead back to the state
    before them and repeat forever (0: from the last state no step changes anything, so the run
    stays there). `their_events` are another implementation's events for the last step, where
    those are what differed from the model's (sim/checking/exhaustive.py).
    """

    violated: str
    detail: str
    steps: tuple[Step, ...]
    loop: int | None = None
    their_events: tuple[Event, ...] | None = None

    def actions(self) -> list[tuple[float, Action]]:
        return concrete(self.steps)

    @property
    def time(self) -> float:
        """The model time of the last step (when the simulator must see the violation)."""
        timed = self.actions()
        return timed[-1][0] if timed else 0.0

    @property
    def message(self) -> str:
        """The one-line form of `detail`."""
        return self.detail.splitlines()[0] if self.detail else ""

    def to_dict(self) -> dict[str, Any]:
        """The counterexample as JSON: the old summary (`detail`, `length` in actions, `time`),
        the names of the actors, the steps, the lasso (`loop`: null, the steps that repeat, or
        the step whose state the run stays in) and the broken property."""
        views, cast = replay(self)
        n = len(views)
        loop: dict[str, int] | None = None
        if self.loop == 0:
            loop = {"stays_at_step": n}
        elif self.loop is not None:
            loop = {"first_step": n - self.loop + 1, "last_step": n}
        broken: dict[str, Any] = {"property": self.violated, "message": self.message, "step": n}
        if self.their_events is not None:
            broken["broker_events"] = [event_json(e) for e in self.their_events]
            broken["model_events"] = [event_json(e) for e in views[-1].events] if views else []
        return {
            "property": self.violated,
            "detail": self.detail,
            "length": len(self.actions()),
            "time": self.time,
            "actors": {name: label for name, label in cast.legend()},
            "steps": [v.to_dict() for v in views],
            "loop": loop,
            "broken": broken,
        }


def concrete(steps: tuple[Step, ...]) -> list[tuple[float, Action]]:
    """The actions of `steps` in absolute time, each with its time: `Advance(d)` becomes
    `Advance(now + d)` and a `Tell` stamped `d` ticks from the present is stamped `now + d`;
    the rest carry no time."""
    return [timed for step in _timed_steps(steps) for timed in step]


def _timed_steps(steps: tuple[Step, ...]) -> list[list[tuple[float, Action]]]:
    out: list[list[tuple[float, Action]]] = []
    now = 0.0
    for step in steps:
        timed: list[tuple[float, Action]] = []
        for action in step:
            if isinstance(action, Advance):
                now += action.to
                action = replace(action, to=now)  # its choices kept
            elif isinstance(action, Tell) and action.timestamp is not None:
                action = replace(action, timestamp=now + action.timestamp)
            timed.append((now, action))
        out.append(timed)
    return out


# -- who is who ----------------------------------------------------------------------------


class _Cast:
    """Names for the actors of one path: `member k` and `client k` (see the module docstring)."""

    def __init__(self, steps: tuple[Step, ...]) -> None:
        self.members = sorted(
            {a.actor for step in steps for a in step if isinstance(a, Join | Provide | Subscribe)}
        )
        self.names: dict[int, str] = {}
        self.own: dict[int, str] = {}  # an actor's label: its name, else `id:N`
        self.labels: dict[str, str] = {}  # an event's label (`id:3`, `n`) -> the name

    def add(self, actor: int, label: str) -> None:
        if not self.members:
            name = f"actor {actor}"
        elif actor in self.members:
            name = f"member {self.members.index(actor) + 1}"
        else:
            name = f"client {sum(1 for n in self.names if n not in self.members) + 1}"
        self.names[actor] = name
        self.own[actor] = label
        self.labels[label] = name
        self.labels[f"id:{actor}"] = name

    def name(self, actor: int | None) -> str:
        if actor is None:
            return "anonymous"
        return self.names.get(actor, f"id:{actor}")

    def label(self, label: Any) -> str:
        """An event's actor label, or an address text naming one actor, as a name."""
        return self.labels.get(label, str(label)) if label is not None else "anonymous"

    def legend(self) -> list[tuple[str, str]]:
        """(name, label) of every actor, in id order."""
        return [(name, self.own[a]) for a, name in sorted(self.names.items())]


# -- the steps, replayed ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepView:
    """One step of a counterexample, replayed on the model: its number (from 1), its time,
    who acts (`actor`, with its id when one actor acts), the action in words, the actions in
    absolute time, and the events the model emits for it."""

    index: int
    t: float
    actor: str
    actor_id: int | None
    action: str
    actions: tuple[Action, ...]
    events: tuple[Event, ...]
    texts: tuple[str, ...]  # the events in words

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "t": self.t,
            "actor": self.actor,
            "actor_id": self.actor_id,
            "action": self.action,
            "actions": [action_json(a) for a in self.actions],
            "events": [event_json(e) for e in self.events],
        }


def replay(ce: Counterexample) -> tuple[list[StepView], _Cast]:
    """Run `ce`'s path on the model from the empty state: one view per step, and the names.

    Raises `AssertionError` if the path does not replay (it is not a path of the model)."""
    cast = _Cast(ce.steps)
    state = State()
    views: list[StepView] = []
    for index, timed in enumerate(_timed_steps(ce.steps), 1):
        before = state
        events: list[Event] = []
        for _, action in timed:
            effect = apply(state, action)
            state = effect.state
            events += effect.events
            if isinstance(action, Register) and isinstance(effect.result, int):
                actor = state.actor(effect.result)
                assert actor is not None
                cast.add(actor.id, actor.label)
        actions = tuple(a for _, a in timed)
        assert actions, f"step {index} is empty"
        who = _actor(actions[0], before, state)
        views.append(
            StepView(
                index,
                timed[-1][0],
                _role(actions[0], who, cast),
                who,
                _step_text(actions, cast),
                actions,
                tuple(events),
                tuple(event_text(e, cast.label) for e in events),
            )
        )
    return views, cast


def _role(first: Action, who: int | None, cast: _Cast) -> str:
    """The actor column: a name, or what acts when no actor does."""
    if isinstance(first, Advance | Fire | Tick):
        return "clock"
    if isinstance(first, Arrive):
        return "network"
    if who is None:
        return "anonymous" if isinstance(first, Tell | Reply) else "set-up"
    return cast.name(who)


def _actor(a: Action, before: State, after: State) -> int | None:
    """Who performs `a`: None for time, the network and set-up."""
    if isinstance(a, Register):
        return max((x.id for x in after.actors), default=None)
    if isinstance(a, Tell | Ask | Reply):
        return a.sender
    if isinstance(a, Cancel):
        req = before.request(a.corr)
        return None if req is None else req.requester
    actor = getattr(a, "actor", None)
    return actor if isinstance(actor, int) else None


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _opts(parts: list[str]) -> str:
    return f" ({', '.join(parts)})" if parts else ""


def _send_opts(a: Tell | Ask, cast: _Cast) -> list[str]:
    parts = [f"timeout {_num(a.timeout)}"] if isinstance(a, Ask) else []
    if isinstance(a, Tell) and a.ttl is not None:
        parts.append(f"ttl {_num(a.ttl)}")
    if isinstance(a, Tell) and a.timestamp is not None:
        parts.append(f"stamped t={_num(a.timestamp)}")
    if a.retry is not None:
        parts.append(f"attempts {a.retry.max_attempts}")
    if a.high:
        parts.append("high")
    if isinstance(a.key, AnyKey):
        parts.append("a key nobody knows")
    elif a.key is not None:
        parts.append(f"key {a.key}")
    if a.choices:
        parts.append("routed to " + ", ".join(cast.name(c) for c in a.choices))
    if a.drop:
        parts.append("lost in transit")
    return parts


def _register(a: Register, cast: _Cast) -> str:
    parts = ["unbounded mailbox" if a.capacity is None else f"capacity {a.capacity}"]
    if a.capacity is not None:
        parts.append(a.backpressure)
    parts += [f"provides {s}" for s in a.services] + [f"in pool {p}" for p in a.pools]
    return "registers" + (f" as {a.name}" if a.name else "") + _opts(parts)


def _advance(a: Advance, cast: _Cast) -> str:
    routed = ", ".join(cast.name(c) for c in a.choices)
    return f"time passes to t={_num(a.to)}" + (f" (routed to {routed})" if routed else "")


_Texts = dict[type, Callable[[Any, _Cast], str]]
# Each action in words, by its type (the actor is named in its own column).
_ACTION_TEXT: _Texts = {
    CreatePool: lambda a, c: f"creates pool {a.name} ({a.strategy})",
    Register: _register,
    Unregister: lambda a, c: (
        "unregisters" + ("" if a.reason == "unregistered" else f" ({a.reason})")
    ),
    Stop: lambda a, c: "crashes" if a.reason == "crashed" else f"stops ({a.reason})",
    Restart: lambda a, c: "restarts",
    Join: lambda a, c: f"joins pool {a.pool}",
    Leave: lambda a, c: f"leaves pool {a.pool}",
    Provide: lambda a, c: f"provides service {a.service}",
    Subscribe: lambda a, c: f"subscribes to topic {a.topic}",
    Unsubscribe: lambda a, c: f"unsubscribes from topic {a.topic}",
    Tell: lambda a, c: f"sends a message to {c.label(str(a.to))}" + _opts(_send_opts(a, c)),
    Ask: lambda a, c: f"requests {c.label(str(a.to))}" + _opts(_send_opts(a, c)),
    Reply: lambda a, c: f"replies to request {a.corr}" + (" (lost in transit)" if a.drop else ""),
    Cancel: lambda a, c: f"cancels request {a.corr}",
    Dequeue: lambda a, c: "takes its next message",
    Done: lambda a, c: "reports done",
    Advance: _advance,
    Fire: lambda a, c: "the next timer fires",
    Tick: lambda a, c: f"time passes to t={_num(a.to)}",
    Arrive: lambda a, c: f"message {a.msg} arrives",
}


def _step_text(actions: tuple[Action, ...], cast: _Cast) -> str:
    at_once = answered_at_once(actions)
    if at_once is not None:  # spec 1.6: one call, three actions
        head = _ACTION_TEXT[Ask](actions[0], cast)
        return f"{head}; {cast.name(at_once[0])} takes it and answers at once"
    return ", then ".join(_ACTION_TEXT[type(a)](a, cast) for a in actions)


# -- events -----------------------------------------------------------------------------------


def _send(f: dict[str, Any], name: Callable[[Any], str]) -> str:
    parts = [f"corr {f['corr']}"] if "corr" in f else []
    if "deadline" in f:
        parts.append(f"deadline t={_num(f['deadline'])}")
    if "key" in f:
        parts.append(f"key {f['key']}")
    parts += [f"copy of msg {f['copy_of']}"] if "copy_of" in f else []
    parts += [f"duplicate of msg {f['dup_of']}"] if "dup_of" in f else []
    to = "" if f.get("to") is None else f" to {name(f['to'])}"
    return f"send msg {f['msg']}: {f['kind']} from {name(f['from'])}{to}" + _opts(parts)


def _register_event(f: dict[str, Any], name: Callable[[Any], str]) -> str:
    parts = [] if f.get("name") is None else [f"name {f['name']}"]
    if f.get("capacity") is not None:
        parts += [f"capacity {f['capacity']}", str(f.get("backpressure"))]
    return f"register {name(f['actor'])}" + _opts(parts)


_Events = dict[str, Callable[[dict[str, Any], Callable[[Any], str]], str]]
# Each event kind of spec 9.4 in words, from its fields.
_EVENT_TEXT: _Events = {
    "register": _register_event,
    "unregister": lambda f, n: f"unregister {n(f['actor'])} ({f['reason']})",
    "stop": lambda f, n: f"stop {n(f['actor'])} ({f['reason']})",
    "start": lambda f, n: f"start {n(f['actor'])}",
    "create_pool": lambda f, n: f"create_pool {f['pool']} ({f['strategy']})",
    "join": lambda f, n: f"join pool {f['pool']}: {n(f['actor'])}",
    "leave": lambda f, n: f"leave pool {f['pool']}: {n(f['actor'])}",
    "provide": lambda f, n: f"provide service {f['service']}: {n(f['actor'])}",
    "subscribe": lambda f, n: f"subscribe topic {f['topic']}: {n(f['actor'])}",
    "unsubscribe": lambda f, n: f"unsubscribe topic {f['topic']}: {n(f['actor'])}",
    "send": _send,
    "reject": lambda f, n: f"reject msg {f['msg']}: {f['error']}",
    "route": lambda f, n: f"route msg {f['msg']} to {n(f['actor'])}",
    "enqueue": lambda f, n: f"enqueue msg {f['msg']} at {n(f['actor'])} (depth {f['depth']})",
    "park": lambda f, n: f"park msg {f['msg']} at {n(f['actor'])}",
    "dequeue": lambda f, n: f"dequeue msg {f['msg']} by {n(f['actor'])}",
    "dead_letter": lambda f, n: f"dead_letter msg {f['msg']}: {f['reason']}",
    "retry": lambda f, n: f"retry msg {f['msg']}: attempt {f['attempt']} at t={_num(f['at'])}",
    "resolve": lambda f, n: (
        f"resolve request {f['corr']}: {f['outcome']} (requester "
        f"{n(f['requester'])}" + ("" if f["msg"] is None else f", by msg {f['msg']}") + ")"
    ),
}


def event_text(e: Event, name: Callable[[Any], str] = str) -> str:
    """An event in words (`dead_letter msg 2: late_reply`), its actors named by `name`. An
    event without its fields (or with fields its kind lacks) falls back to its reduced form."""
    text = _EVENT_TEXT.get(e.name)
    if text is not None and e.fields:
        try:
            return text(dict(e.fields), name)
        except KeyError:
            pass
    parts = [f"msg {e.msg}"] if e.msg is not None else []
    parts += [name(e.actor)] if e.actor is not None else []
    parts += [f"corr {e.corr}"] if e.corr is not None else []
    parts += [str(e.detail)] if e.detail is not None else []
    return " ".join([e.name, *parts])


def event_json(e: Event) -> dict[str, Any]:
    """An event as the trace writes it (docs/trace-format.md): `ev` and its fields."""
    if not e.fields:
        reduced = {"msg": e.msg, "actor": e.actor, "corr": e.corr, "detail": e.detail}
        return {"ev": e.name} | {k: v for k, v in reduced.items() if v is not None}
    return {"ev": e.name} | {k: _plain(v) for k, v in e.fields}


def action_json(a: Action) -> dict[str, Any]:
    """An action as JSON: its kind (`create_pool`, `ask`) and its fields that differ from
    their defaults, addresses as text and a key nobody knows as `"*"`."""
    kind = re.sub(r"(?<!^)(?=[A-Z])", "_", type(a).__name__).lower()
    out: dict[str, Any] = {"action": kind}
    for f in dataclasses.fields(a):
        value = getattr(a, f.name)
        if f.default is not dataclasses.MISSING and value == f.default:
            continue
        out[f.name] = _plain(value)
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, tuple | list):
        return [_plain(x) for x in v]
    if isinstance(v, Addr):
        return str(v)
    if isinstance(v, AnyKey):
        return "*"
    if isinstance(v, Retry):
        return dataclasses.asdict(v)
    return v


def _differs(theirs: list[Event] | tuple[Event, ...], ours: tuple[Event, ...]) -> int | None:
    """The index of the first event where two lists of one step part ways, or None."""
    if list(theirs) == list(ours):
        return None
    pairs = enumerate(zip(theirs, ours, strict=False))
    return next((i for i, (a, b) in pairs if a != b), min(len(theirs), len(ours)))


def first_difference(theirs: list[Event] | tuple[Event, ...], ours: tuple[Event, ...]) -> str:
    """Where two event lists of one step part ways, in one line (labels as they are)."""
    i = _differs(theirs, ours)
    if i is None:
        return "events are the model's"
    if i == len(theirs):
        return f"event {i + 1} is missing, the model's is {event_text(ours[i])}"
    if i == len(ours):
        return f"event {i + 1} is {event_text(theirs[i])}, the model has none"
    return f"event {i + 1} is {event_text(theirs[i])}, the model's {event_text(ours[i])}"


# -- the printout -----------------------------------------------------------------------------

_EVENTS_AT = 23  # the column events start in


def format_counterexample(
    ce: Counterexample, implementation: str = "broker", heading: str = "counterexample"
) -> str:
    """`ce` as numbered steps (time, actor, action, then each event), ending at the broken
    property; for an eventually-violation the loop is marked. Where another `implementation`'s
    events differ from the model's at the last step, both lists are shown, the first
    difference marked. The first line starts with `heading`."""
    views, cast = replay(ce)
    n = len(views)
    span = f"t={_num(views[0].t)}" if views else "t=0"
    if views and views[-1].t != views[0].t:
        span += f" to t={_num(views[-1].t)}"
    head = f"{heading} for {ce.violated}: {n} step{'' if n == 1 else 's'}, {span}"
    lines = [head]
    legend = cast.legend()
    if legend:
        lines.append("  actors: " + ", ".join(f"{name} = {label}" for name, label in legend))
    loop_from = None if ce.loop is None or ce.loop == 0 else n - ce.loop + 1
    for v in views:
        if v.index == loop_from:
            lines.append(f"  -- loop: steps {loop_from} to {n} repeat forever --")
        lines.append(f"  {v.index:>3}. t={_num(v.t):<3} {v.actor:<9} {v.action}")
        if v.index == n and ce.their_events is not None:
            lines += _compare_lines(list(ce.their_events), v.events, cast, implementation)
            continue
        lines += [" " * _EVENTS_AT + t for t in v.texts] or [" " * _EVENTS_AT + "(no events)"]
    if loop_from is not None:
        back = "the start" if loop_from == 1 else f"the state after step {loop_from - 1}"
        lines.append(f"  -- back to {back}; the loop repeats forever --")
    elif ce.loop == 0:
        lines.append("  -- from here no step changes anything: the run stays here forever --")
    when = f" (t={_num(views[-1].t)})" if views else ""
    lines.append(f"violated at step {n}{when}: {ce.message}")
    lines += [f"  {line}" for line in ce.detail.splitlines()[1:]]
    return "\n".join(lines)


def _compare_lines(
    theirs: list[Event], ours: tuple[Event, ...], cast: _Cast, implementation: str
) -> list[str]:
    differs = _differs(theirs, ours)
    out = []
    for who, events in ((implementation, theirs), ("model", ours)):
        texts = [event_text(e, cast.label) for e in events]
        if differs is None:
            texts = texts or ["(no events)"]
        elif differs < len(texts):
            texts[differs] += "   <- differs"
        else:
            texts.append(f"({'nothing more' if texts else 'no events'})   <- differs")
        pad = " " * max(1, _EVENTS_AT - len(who) - 2)  # the events start in their column
        first, *rest = texts
        out.append(f"{pad}{who}: {first}")
        out += [" " * _EVENTS_AT + t for t in rest]
    return out
