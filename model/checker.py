"""The explicit-state model checker: breadth-first search over the model (docs/spec.md 11).

`check(bounds)` explores `successors(state)` lazily, breadth first (as networkx's BFS over a
neighbours function does, with the graph recorded as it goes: a parent map and two arrays of
edge ends, a `networkx.DiGraph` only when asked for), so every violation comes back as the
shortest step sequence that reaches it. Each transition is
checked against the always-properties and scanned for the sometimes-witnesses
(model/_properties.py); when the search ends, the eventually-properties are checked on the
strongly connected components of the graph restricted to the states where an obligation is open:
a component a run can stay in forever (a cycle, or a state with no step) in which the
obligation's discharging action is not enabled everywhere lets a weakly fair run keep the
obligation open forever (Lamport, "The temporal logic of actions", 1994, section 8.1). Such a
violation's counterexample is a lasso: the path to the component, then a cycle in it, found
again step by step from the states the search explored (`_Search.lasso`).

`on_transition` lets a caller check something else on every explored transition, e.g. an
implementation replayed along the path (sim/checking/exhaustive.py); its first complaint (a
text, or a `Complaint` with the implementation's events) stops the search. A counterexample
prints as numbered steps with `format_counterexample` (model/_counterexample.py).

>>> report = check(CheckBounds(clients=1, members=1, faults=()))
>>> report.ok, report.states > 10
(True, True)
"""

from __future__ import annotations

import gc
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import networkx as nx

from model._abstraction import Key, Keys, normalize
from model._actions import Action, Event
from model._counterexample import (
    Counterexample,
    concrete,
    first_difference,
    format_counterexample,
)
from model._menu import (
    FAULTS,
    PRESETS,
    BoundsError,
    CheckBounds,
    Env,
    Step,
    answered_at_once,
    setup,
    successors,
)
from model._properties import (
    ALWAYS,
    EVENTUALLY,
    PROPERTY_RULES,
    SOMETIMES,
    check_transition,
    discharged,
    obligations,
)
from model._semantics import Effect, apply
from model._state import State

__all__ = [
    "FAULTS",
    "PRESETS",
    "PROPERTY_RULES",
    "BoundsError",
    "CheckBounds",
    "Clock",
    "Complaint",
    "Counterexample",
    "Progress",
    "PropertyResult",
    "Report",
    "Step",
    "answered_at_once",
    "check",
    "concrete",
    "first_difference",
    "format_counterexample",
    "step_text",
]

Progress = Callable[[int, int, int, float], None]
Clock = Callable[[], float]  # wall-clock seconds, injected: model/ never reads a clock


@dataclass(frozen=True, slots=True)
class Complaint:
    """What `on_transition` may return instead of a bare text: the text (`name: message`, its
    first line the one-line form) and, for an `events` disagreement, the other
    implementation's events for the step (printed beside the model's)."""

    text: str
    events: tuple[Event, ...] | None = None


# (path of relative steps so far, the state it reached, the step, its effect) -> a complaint, or
# None. The state carries the history of its path (counters, dead letters) since time last
# passed: compare counters by their increments.
OnTransition = Callable[[tuple[Step, ...], State, Step, Effect], str | Complaint | None]


@dataclass(frozen=True, slots=True)
class PropertyResult:
    name: str
    kind: str  # always | sometimes | eventually
    verdict: str  # holds | violated | reached | unreached | n/a
    text: str
    pair: str | None = None
    counterexample: Counterexample | None = None

    @property
    def ok(self) -> bool:
        return self.verdict in ("holds", "reached", "n/a")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "verdict": self.verdict}
        out["text"] = self.text
        if self.pair is not None:
            out["pair"] = self.pair
        if self.counterexample is not None:
            out["counterexample"] = self.counterexample.to_dict()
        return out


@dataclass(slots=True)
class Report:
    bounds: CheckBounds
    symmetry: bool
    states: int = 0
    transitions: int = 0
    depth: int = 0
    seconds: float = 0.0
    properties: list[PropertyResult] = field(default_factory=list)
    stopped: str | None = None  # why the search ended early: a complaint, or the state limit
    limited: bool = False  # it ended at the state limit (`max_states`): the graph is partial
    # the graph, or how to build it from the search's edge arrays when first asked for
    _graph: nx.DiGraph | Callable[[], nx.DiGraph] = field(default_factory=nx.DiGraph, repr=False)

    @property
    def graph(self) -> nx.DiGraph:
        """The explored state graph (nodes numbered in search order, edges labelled with their
        steps when `check(labels=True)`), built on first use: the search does not need it."""
        if not isinstance(self._graph, nx.DiGraph):
            self._graph = self._graph()
        return self._graph

    @property
    def states_per_second(self) -> float:
        return self.states / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.properties)

    def violations(self) -> list[PropertyResult]:
        return [p for p in self.properties if not p.ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "states": self.states,
            "transitions": self.transitions,
            "depth": self.depth,
            "seconds": round(self.seconds, 3),
            "states_per_second": round(self.states_per_second, 1),
            "symmetry": self.symmetry,
            "limited": self.limited,
            "bounds": self.bounds.to_dict(),
            "properties": [p.to_dict() for p in self.properties],
        }


class _Search:
    """One breadth-first search; `run` fills a `Report`.

    The graph is kept as two arrays of edge ends while searching (`src`, `dst`); the
    eventually-check finds its components from them, and they become a `networkx.DiGraph`
    after the search (`Report.graph`) for export and for a lasso's shortest paths.
    """

    def __init__(
        self, b: CheckBounds, symmetry: bool, labels: bool, clock: Clock, limit: int | None
    ) -> None:
        self.b, self.labels, self.clock, self.limit = b, labels, clock, limit
        self.keys = Keys(b, symmetry)
        self.report = Report(b, symmetry)
        self.parent: list[tuple[int, Step] | None] = []
        self.depth: list[int] = []
        self.index: dict[Any, int] = {}
        self.obls: list[frozenset[Any]] = []
        self.disch: list[frozenset[Any]] = []
        self.first_bad: dict[str, Counterexample] = {}
        self.seen: set[str] = set()
        self.src, self.dst = array("i"), array("i")
        self.init = State()
        self.node_labels: list[str] = []
        self.edge_labels: list[str] = []

    def path(self, node: int) -> tuple[Step, ...]:
        steps: list[Step] = []
        while (link := self.parent[node]) is not None:
            node, step = link
            steps.append(step)
        return (*setup(self.b), *reversed(steps))

    def add(self, k: Key, s: State, env: Env, parent: tuple[int, Step] | None, depth: int) -> int:
        """A new state, with key `k` (found by `parent`'s step at `depth`): its number."""
        n = len(self.parent)
        self.index[k] = n
        self.parent.append(parent)
        self.depth.append(depth)
        if self.labels:
            self.node_labels.append(_label(s, env))
        return n

    def run(self, on_transition: OnTransition | None, progress: Progress | None) -> Report:
        rep = self.report
        start = self.clock()
        init = State()
        for step in setup(self.b):
            for action in step:
                init = apply(init, action).state
        init = normalize(init)
        self.init = init
        self.add(self.keys.key(init, Env()), init, Env(), None, 0)
        # States are explored as `apply` left them, shifted back to `now = 0` after time passed
        # (the menu's `Advance(1.0)` is one tick from the present); the history they carry is
        # never read, and the key is that of the normalized state (model/_abstraction.py).
        queue: deque[tuple[int, State, Env]] = deque([(0, init, Env())])
        key, index = self.keys.key, self.index
        while queue:
            n, s, env = queue.popleft()
            obls = obligations(s)
            moves = successors(s, env, self.b)
            live: list[Step] = []
            depth = self.depth[n] + 1
            for step, after, new_env, effect in moves:
                bad, seen = check_transition(s, step, effect)
                if seen:
                    self.seen |= seen
                nxt = after if after.now == 0.0 else normalize(after)
                k = key(nxt, new_env)
                m = index.get(k)
                if m is None:
                    m = self.add(k, nxt, new_env, (n, step), depth)
                    queue.append((m, nxt, new_env))
                elif m == n:
                    continue  # time passed and nothing changed: a stutter
                live.append(step)
                self.src.append(n)
                self.dst.append(m)
                if self.labels:
                    self.edge_labels.append(step_text(step))
                for text in bad:
                    name = text.split(":", 1)[0]
                    if name not in self.first_bad:
                        self.first_bad[name] = Counterexample(name, text, (*self.path(n), step))
                if on_transition is not None:
                    complaint = on_transition(self.path(n), s, step, effect)
                    if complaint is not None:
                        if isinstance(complaint, str):
                            complaint = Complaint(complaint)
                        rep.stopped = complaint.text
                        name = complaint.text.split(":", 1)[0]
                        path = (*self.path(n), step)
                        ce = Counterexample(name, complaint.text, path, None, complaint.events)
                        self.first_bad.setdefault(name, ce)
                        queue.clear()
                        break
            self.obls.append(frozenset(obls))
            self.disch.append(discharged(obls, live))
            if self.limit is not None and len(self.parent) >= self.limit and queue:
                rep.stopped = f"state limit: stopped at {len(self.parent)} states (--max-states)"
                rep.limited = True
                break
            if progress is not None and len(self.obls) % 2000 == 0:
                progress(len(self.parent), len(self.src), self.depth[n], self.clock() - start)
        rep.states = len(self.parent)
        rep.transitions = len(self.src)
        rep.depth = max(self.depth)
        rep._graph = self.graph
        if rep.stopped is None:
            self.eventually()
        rep.seconds = self.clock() - start
        self.verdicts()
        return rep

    def graph(self) -> nx.DiGraph:
        """The explored graph, from the edge arrays (with labels when asked for)."""
        g = nx.DiGraph()
        g.add_nodes_from(range(len(self.parent)))
        if self.labels:
            for n, text in enumerate(self.node_labels):
                g.nodes[n]["label"] = text
            g.add_edges_from(
                (a, b, {"label": t})
                for a, b, t in zip(self.src, self.dst, self.edge_labels, strict=True)
            )
        else:
            g.add_edges_from(zip(self.src, self.dst, strict=True))
        return g

    def eventually(self) -> None:
        """Obligations kept open forever by a weakly fair run (see the module docstring)."""
        done = len(self.obls)
        start = _offsets(self.src, len(self.parent))
        every: set[Any] = set().union(*self.obls[:done]) if done else set()
        for o in sorted(every):
            prop = "eventually_resolved" if o[0] == "request" else "eventually_terminal"
            if prop in self.first_bad:
                continue
            nodes = {n for n in range(done) if o in self.obls[n]}
            for comp in sorted(_components(start, self.dst, nodes), key=min):
                first = min(comp)
                # a search never records a self-loop (a step back to its own state is a stutter)
                stays = len(comp) > 1 or start[first] == start[first + 1]
                if stays and not all(o in self.disch[c] for c in comp):
                    prefix, loop = self.lasso(o, first, set(comp))
                    detail = (
                        f"{prop}: {o[0]} {o[1]} stays open forever: a run can stay in a set of "
                        f"{len(comp)} state(s) where what discharges it is not always enabled"
                        + ("" if not loop else ", and the loop passes a state where it is not")
                    )
                    ce = Counterexample(prop, detail, (*prefix, *loop), len(loop))
                    self.first_bad[prop] = ce
                    break

    def lasso(
        self, o: Any, first: int, comp: set[int]
    ) -> tuple[tuple[Step, ...], tuple[Step, ...]]:
        """A run that keeps obligation `o` open forever in the component `comp`: the path to
        its state `first`, then (unless the run stays there without a step) a shortest cycle
        from `first` through the nearest state of `comp` where `o`'s discharge is not enabled,
        back to `first` (up to symmetry: each step is found again from the state the previous
        one reached, among the successors with the graph's next key)."""
        prefix = self.path(first)
        if len(comp) == 1:
            return prefix, ()
        sub = self.report.graph.subgraph(comp)
        paths = nx.single_source_shortest_path(sub, first)
        stuck = min((n for n in comp if o not in self.disch[n]), key=lambda n: (len(paths[n]), n))
        if stuck != first:
            cycle = paths[stuck] + nx.shortest_path(sub, stuck, first)[1:]
        else:  # the shortest way round, through the nearest state with a step back
            last = min(sub.predecessors(first), key=lambda n: (len(paths[n]), n))
            cycle = [*paths[last], first]
        on_cycle = set(cycle)
        key_of = {n: k for k, n in self.index.items() if n in on_cycle}
        s, env = self.replay(prefix[len(setup(self.b)) :])
        loop: list[Step] = []
        for node in cycle[1:]:
            want = key_of[node]
            for step, after, new_env, _ in successors(s, env, self.b):
                nxt = after if after.now == 0.0 else normalize(after)
                if self.keys.key(nxt, new_env) == want:
                    loop.append(step)
                    s, env = nxt, new_env
                    break
            else:  # pragma: no cover - the graph's edge is a step of some renaming
                raise AssertionError(f"no step reaches state {node} again")
        return prefix, tuple(loop)

    def replay(self, steps: tuple[Step, ...]) -> tuple[State, Env]:
        """The (state, memory) the search explored after `steps` (past set-up)."""
        s = self.init
        env = Env()
        for want in steps:
            found = [(a, e) for step, a, e, _ in successors(s, env, self.b) if step == want]
            assert found, f"{want} is no step of the model here"
            after, env = found[0]
            s = after if after.now == 0.0 else normalize(after)
        return s, env

    def verdicts(self) -> None:
        out = self.report.properties
        for name, text in ALWAYS.items():
            ce = self.first_bad.get(name)
            out.append(
                PropertyResult(name, "always", "violated" if ce else "holds", text, None, ce)
            )
        for name, sm in SOMETIMES.items():
            verdict = "n/a" if not sm.needs(self.b) else "reached"
            if verdict == "reached" and name not in self.seen:
                verdict = "unreached" if self.report.stopped is None else "n/a"
            out.append(PropertyResult(name, "sometimes", verdict, sm.text, sm.pair))
        for name, text in EVENTUALLY.items():
            ce = self.first_bad.get(name)
            out.append(PropertyResult(name, "eventually", "violated" if ce else "holds", text))
            if ce is not None:
                out[-1] = PropertyResult(name, "eventually", "violated", text, None, ce)
        if self.report.limited:  # a partial graph proves no eventually-property
            out[:] = [
                p
                if p.kind != "eventually" or p.verdict == "violated"
                else replace(p, verdict="n/a")
                for p in out
            ]
        for name, ce in self.first_bad.items():  # complaints of `on_transition`
            if name not in ALWAYS and name not in EVENTUALLY:
                out.append(PropertyResult(name, "always", "violated", ce.message, None, ce))


def _offsets(src: array[int], nodes: int) -> array[int]:
    """Where each node's edges start in the edge arrays, and where the last ends: the search
    appends a state's edges when it expands it, in state order, so `src` is sorted."""
    start = array("i", bytes(4 * (nodes + 1)))
    for n in src:
        start[n + 1] += 1
    for n in range(nodes):
        start[n + 1] += start[n]
    return start


def _components(start: array[int], dst: array[int], nodes: set[int]) -> list[list[int]]:
    """The strongly connected components of the graph restricted to `nodes` (Tarjan 1972,
    iterative), from the edge arrays: on tens of thousands of states, an order of magnitude
    faster than networkx on a subgraph view."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    out: list[list[int]] = []
    for root in sorted(nodes):
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, start[root])]  # (node, its next edge to look at)
        while work:
            v, i = work[-1]
            end = start[v + 1]
            while i < end:
                w = dst[i]
                i += 1
                if w not in nodes:
                    continue
                if w not in index:
                    work[-1] = (v, i)
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, start[w]))
                    break
                if w in on_stack and index[w] < low[v]:
                    low[v] = index[w]
            else:  # every edge of v seen: v is done
                work.pop()
                if work and low[v] < low[work[-1][0]]:
                    low[work[-1][0]] = low[v]
                if low[v] == index[v]:
                    comp: list[int] = []
                    while not comp or comp[-1] != v:
                        comp.append(stack.pop())
                        on_stack.discard(comp[-1])
                    out.append(comp)
    return out


def step_text(step: Step) -> str:
    """A step as the edge label of the state graph: `Ask(2, pool:p, 2.0)`."""
    return "; ".join(type(a).__name__ + _args(a) for a in step)


def _args(a: Action) -> str:
    fields = [f"{v}" for k, v in vars_of(a).items() if v not in (None, (), False) and k != "retry"]
    return "(" + ", ".join(fields) + ")"


def vars_of(a: Action) -> dict[str, Any]:
    return {k: getattr(a, k) for k in a.__slots__}


def _label(s: State, env: Env) -> str:
    boxes = " ".join(f"{a.id}:{len(a.queue)}{'' if a.alive else 'x'}" for a in s.actors)
    pending = ",".join(str(c) for c in s.pending())
    return f"[{boxes}] pending {{{pending}}} timers {len(s.timers)} held {len(env.held)}"


def check(
    bounds: CheckBounds | None = None,
    *,
    symmetry: bool = True,
    on_transition: OnTransition | None = None,
    progress: Progress | None = None,
    labels: bool = False,
    clock: Clock | None = None,
    max_states: int | None = None,
) -> Report:
    """Explore every state `bounds` allow, breadth first, and judge every property.

    Parameters: `symmetry` explores one state per orbit of interchangeable actors;
    `on_transition` is called on every explored transition (its first complaint stops the
    search and becomes a violation); `progress(states, transitions, depth, seconds)` is called
    every 2000 states; `labels` keeps state and step labels in the graph (for `--graph`);
    `clock` measures the run (`time.perf_counter`; without one, `seconds` is 0);
    `max_states` stops the search once that many states are found (`Report.limited`: the
    always-violations found so far stand, no eventually-property is judged, and a witness not
    yet seen is `n/a`).

    Returns a `Report`. Raises `BoundsError` for bounds the checker cannot explore.
    """
    b = (bounds or CheckBounds()).validate()
    if max_states is not None and max_states < 1:
        raise BoundsError(f"max_states = {max_states}: expected at least 1")
    search = _Search(b, symmetry, labels, clock or (lambda: 0.0), max_states)
    with _fewer_collections():
        return search.run(on_transition, progress)


@contextmanager
def _fewer_collections(first: int = 100_000) -> Iterator[None]:
    """The cyclic garbage collector runs less often during a search, its thresholds restored
    after. A search keeps every key it makes (nested tuples: hundreds of thousands of tracked
    objects), so each collection of the oldest generation walks them all, and makes almost no
    cycles to collect; on the default bounds the search took 9.8 s with the collector as it
    is, 8.6 s with it off and 8.4 s with this threshold. Collections still happen, after
    `first` allocations."""
    old = gc.get_threshold()
    gc.set_threshold(max(first, old[0]), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)
