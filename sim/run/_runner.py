"""The simulator: a scenario's pools, actors, clients and faults driving a broker in virtual time.

One run: register everything at t = 0, start arrivals and faults, run until `until` (arrivals
stop there), then drain until no event is left, with a hard stop at `hard_stop(until)` for work
that never ends: a run cut off there is `undrained`, a status of its own, not a violation.
Every draw comes from a named stream of the scenario's seed, so a run is a pure function of its
scenario: the same scenario gives the same trace, byte for byte.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from broker import (
    ActorNotFound,
    Broker,
    BrokerError,
    BrokerFactory,
    Events,
    MessageBroker,
    SplitMix64,
)
from sim.run._monitors import InvariantViolation, Monitor
from sim.run._observers import observer
from sim.run._progress import progress_bar
from sim.run._result import Result
from sim.run._rng import Streams
from sim.run._scheduler import Scheduler, TieBreaker
from sim.run._summary import summary
from sim.run._world import Client, Network, Worker
from sim.scenario import Scenario, ScriptStep

if TYPE_CHECKING:
    from sim.run._oplog import OpLog
    from sim.run._trace import TextSink, TraceWriter

Progress = Callable[[float, float], None]
# simulate(progress=True): virtual time, not a count (t=12.5/60), and the wall-clock estimate.
RUN_BAR = "{desc}: {percentage:3.0f}%|{bar}| t={n:.1f}/{total:g} [{elapsed}<{remaining}]"


def _name(factory: BrokerFactory) -> str:
    """The broker a trace's header names: `reference`, or a mutant's catalogue name."""
    if factory is Broker:
        return "reference"
    return str(getattr(factory, "brokerlab_name", getattr(factory, "__name__", "custom")))


def hard_stop(until: float) -> float:
    """When a drain that has not finished is cut off: ten times the arrival window plus 1000."""
    return 10.0 * until + 1000.0


class Simulation:
    """One run of one scenario. Use `simulate(scenario)` unless you need the parts."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        trace: TextSink | None = None,
        monitors: bool = True,
        broker_factory: BrokerFactory = Broker,
    ) -> None:
        self.scenario = scenario
        self.until = scenario.until
        self.clock = Scheduler() if scenario.ties is None else TieBreaker(scenario.ties)
        self.streams = Streams(scenario.seed)
        capacity: dict[str, int | None] = {}
        for pool in scenario.pools:
            for i in range(1, pool.size + 1):
                capacity[f"{pool.name}-{i}"] = pool.capacity
        for actor in scenario.actors:
            capacity[actor.name] = actor.capacity
        self.monitor = Monitor(capacity, self.clock) if monitors else None
        self.writer: TraceWriter | None = None
        # The operation/effect log (docs/trace-format.md): every call into the broker, every
        # broker timer, every choice of the network, each followed by the events it caused.
        self.log: OpLog | None = None
        timers = self.clock.broker_timers
        if trace:
            # Imported only here: a trace is encoded as the model reads it (`model.canonical`),
            # and an untraced run loads no model.
            from sim.run._oplog import LoggedTimers, OpLog
            from sim.run._trace import TraceWriter, header

            self.writer = TraceWriter(
                trace, header(scenario.seed, scenario.to_dict(), _name(broker_factory))
            )
            self.log = OpLog(self.writer, self.clock)
            timers = LoggedTimers(timers, self.log)
        self.n_events = 0  # events seen when no monitor counts them (`events()`)
        # Every event goes to one observer, chosen here (sim/run/_observers.py).
        self.listener: Events = observer(self)
        f = scenario.faults
        transit = f.drop or f.duplicate or f.delay.to_dict() != {"dist": "constant", "value": 0.0}
        core: MessageBroker[Any] = broker_factory(
            timers,
            SplitMix64(scenario.seed),  # spec 1.2: a port seeded alike draws alike
            listener=self.listener if (self.monitor or self.writer) else None,
            network=Network(f, self.streams, self.log) if transit else None,
            wake=self._wake,
        )
        self.core = core
        self.broker: MessageBroker[Any] = core
        if self.log is not None:
            from sim.run._oplog import LoggedBroker

            self.broker = LoggedBroker(core, self.log)
        self.workers: dict[int, Worker] = {}
        self.by_label: dict[str, Worker] = {}
        self.clients: list[Client] = []
        self.actor_ids: dict[str, int] = {}  # every actor by label, for scripts
        self.script_errors: list[str] = []
        self.answer_at_once: int | None = None  # a script's `answered_by` (spec 1.6)
        self._build()

    # -- set-up ------------------------------------------------------------------------------

    def _build(self) -> None:
        b, s = self.broker, self.scenario
        for pool in s.pools:
            b.create_pool(pool.name, pool.strategy)
            for i in range(1, pool.size + 1):
                label = f"{pool.name}-{i}"
                actor = b.register(
                    label,
                    capacity=pool.capacity,
                    backpressure=pool.backpressure,
                    send_timeout=pool.send_timeout,
                    pools=[pool.name],
                )
                speed = pool.speeds[i - 1] if pool.speeds else 1.0
                self._add_worker(Worker(self, actor, label, pool.service, speed))
        for spec in s.actors:
            actor = b.register(
                spec.name,
                capacity=spec.capacity,
                backpressure=spec.backpressure,
                send_timeout=spec.send_timeout,
                services=spec.services,
            )
            for topic in spec.topics:
                b.subscribe(topic, actor)
            self._add_worker(Worker(self, actor, spec.name, spec.service, 1.0))
        for spec_c in s.clients:
            actor = b.register(spec_c.name)
            self.actor_ids[spec_c.name] = actor
            self.clients.append(Client(self, spec_c, actor))

    def _add_worker(self, worker: Worker) -> None:
        self.workers[worker.id] = worker
        self.by_label[worker.label] = worker
        self.actor_ids[worker.label] = worker.id

    def _wake(self, actor: int) -> None:
        """The broker woke `actor` at the end of an operation (spec 1.6): its worker takes the
        message at once, inside that operation (the log writes it as a nested operation)."""
        if actor == self.answer_at_once:
            from sim.checking.bridge import answer_at_once  # scripts only (see `_do`)

            self.answer_at_once = None
            answer_at_once(self.broker, actor)
            return
        worker = self.workers.get(actor)
        if worker is not None:
            worker.kick()

    def _schedule_faults(self) -> None:
        f, clock = self.scenario.faults, self.clock
        for crash in f.crash:
            w = self.by_label[crash.actor]
            clock.call_at(crash.at, partial(self._crash, w))
            if crash.restart_after is not None:
                at = crash.at + crash.restart_after
                clock.call_at(at, partial(self._restart, w))
        for slow in f.slow:
            w = self.by_label[slow.actor]
            clock.call_at(slow.at, partial(self._slow, w, slow.speed))
            clock.call_at(slow.until, partial(self._slow, w, 1.0))
        for hang in f.hang:
            w = self.by_label[hang.actor]
            clock.call_at(hang.at, partial(self._hang, w, True))
            clock.call_at(hang.until, partial(self._hang, w, False))

    def _fault(self, kind: str, **fields: Any) -> None:
        self.observe("fault", {"kind": kind, **fields})

    def _crash(self, w: Worker) -> None:
        self._fault("crash", actor=w.label)
        w.crash()
        with contextlib.suppress(ActorNotFound):  # unregistered by a script: nothing to stop
            self.broker.stop(w.id, "crashed")
        if self.monitor is not None:
            self.monitor.settled(self.clock.now, self.broker.stats())

    # -- scripts (sim/scenario/_script.py, through sim/checking/bridge.py) -----------------------

    def _schedule_script(self, n: int = 1) -> None:
        """Steps are scheduled one at a time, each when the previous one has run: so a timer
        that an earlier step set for time t fires before a step at t, as in the model, where
        time advances (firing timers) before the next action."""
        script = self.scenario.script
        if n <= len(script):
            step = script[n - 1]
            at = max(step.at, self.clock.now)
            self.clock.call_at(at, lambda: self._script_step(n, step))

    def _script_step(self, n: int, step: ScriptStep) -> None:
        try:
            self._do(n, step)
        except BrokerError as err:
            self.script_errors.append(f"step {n} ({step.do} at t={step.at!r}): {err.code}: {err}")
        if self.monitor is not None:
            self.monitor.settled(self.clock.now, self.broker.stats())
        self._schedule_script(n + 1)

    def _actor(self, ref: int | str) -> int:
        if isinstance(ref, int):
            return ref
        found = self.actor_ids.get(ref)
        if found is None:
            raise ActorNotFound(str(ref), "the script")
        return found

    def _do(self, n: int, step: ScriptStep) -> None:
        # The bridge maps a step to the model's action: imported by scripted runs only, as it
        # loads the model.
        import model as m
        from sim.checking.bridge import action_of, perform

        action, payload = action_of(step, self._actor)
        answerer = step.get("answered_by")
        self.answer_at_once = None if answerer is None else self._actor(answerer)
        try:
            value = perform(self.broker, action, n if payload is None else payload)
        finally:
            self.answer_at_once = None
        if isinstance(action, m.Register):
            label = action.name or f"id:{value}"
            self.actor_ids[label] = value
            if self.monitor is not None:  # the capacity monitor covers scripted actors too
                self.monitor.capacity[label] = action.capacity

    def _restart(self, w: Worker) -> None:
        self._fault("restart", actor=w.label)
        try:
            self.broker.restart(w.id)
        except ActorNotFound:  # unregistered by a script: it stays gone
            return
        w.kick()

    def _slow(self, w: Worker, factor: float) -> None:
        self._fault("slow", actor=w.label, speed=factor)
        w.speed = w.base_speed * factor

    def _hang(self, w: Worker, hung: bool) -> None:
        self._fault("hang" if hung else "unhang", actor=w.label)
        w.hung = hung
        if not hung:
            w.kick()

    # -- running -----------------------------------------------------------------------------

    def observe(self, ev: str, fields: dict[str, Any]) -> None:
        """One event of the run (the broker's, or a fault the world injects)."""
        self.listener.observe(ev, fields)

    def run(self, progress: Progress | None = None) -> Result:
        for client in self.clients:
            client.start()
        self._schedule_faults()
        self._schedule_script()
        try:
            return self._run(progress)
        finally:
            if self.writer is not None:
                self.writer.flush()  # the lines held, however the run ends

    def _run(self, progress: Progress | None) -> Result:
        clock = self.clock
        violation: InvariantViolation | None = None
        undrained = None
        how = "drained"
        try:
            if progress is None:
                clock.run(until=self.until)
            else:
                for k in range(1, 101):
                    clock.run(until=self.until * k / 100)
                    progress(clock.now, self.until)
            stop = hard_stop(self.until)
            clock.run(until=stop)
            if clock.pending:
                # Not a safety violation: the run was cut off with work still to do (a long
                # timeout, a fault scheduled late, an overloaded mailbox). Status `undrained`;
                # what must hold between operations still holds.
                how = "hard_stop"
                n = clock.pending
                undrained = f"{n} event{'s' * (n != 1)} still scheduled at the hard stop t={stop!r}"
                if self.monitor is not None:
                    self.monitor.settled(clock.now, self.broker.stats())
            elif self.monitor is not None:
                self.monitor.finish(clock.now, self.broker.stats(), bool(self.scenario.script))
        except InvariantViolation as err:
            violation = err
            how = "violation"
        if self.log is not None:
            self.log.end(how, self.core.stats(), self.core.pending_requests())
        return Result(
            self.summary(violation, undrained),
            violation,
            self.events(),
            self.scenario,
            undrained=undrained,
        )

    def events(self) -> int:
        """Events observed so far (written to the trace, or seen by the monitors)."""
        return self.n_events if self.monitor is None else self.monitor.event

    def summary(
        self, violation: InvariantViolation | None = None, undrained: str | None = None
    ) -> dict[str, Any]:
        """The run's figures (the `--summary` JSON); see docs/trace-format.md."""
        return summary(self, violation, undrained)


def simulate(
    scenario: Scenario,
    *,
    trace: TextSink | None = None,
    monitors: bool = True,
    progress: Progress | bool | None = None,
    broker_factory: BrokerFactory = Broker,
    keep_trace: bool = False,
) -> Result:
    """Run `scenario` once and return its `Result`: the summary, and the violation if an
    invariant broke. `trace`, a text stream, receives the JSON Lines trace as it is written;
    `keep_trace` keeps it in the result too (`Result.trace()`, `Result.requests()`).

    `progress`: True draws a bar of virtual time up to `until` on a terminal or in a notebook
    (`progress_bar`; none without tqdm); a callable is called with `(now, until)` a hundred
    times through the arrival window. Either way the run is the same.
    """
    kept = io.StringIO() if keep_trace else None
    sink = trace if kept is None else kept if trace is None else _Tee(trace, kept)
    sim = Simulation(scenario, trace=sink, monitors=monitors, broker_factory=broker_factory)
    if not isinstance(progress, bool):
        result = sim.run(progress)
    else:
        bar = progress_bar(sim.until, "run", bar_format=RUN_BAR) if progress else None
        try:
            result = sim.run(bar)
        finally:
            if bar is not None:
                bar.close()
    if kept is not None:
        result.trace_text = kept.getvalue()
    return result


class _Tee:
    """A trace sink that writes to the caller's stream and to the kept copy."""

    __slots__ = ("kept", "out")

    def __init__(self, out: TextSink, kept: io.StringIO) -> None:
        self.out, self.kept = out, kept

    def write(self, text: str, /) -> int:
        self.out.write(text)
        return self.kept.write(text)
