"""The discrete-event scheduler: ordering, cancellation, run bounds (sim/run/_scheduler.py)."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker import Timers
from sim.run import ScheduledCall, Scheduler, SchedulerError, TieBreaker


def recorder(log: list[object], item: object) -> Callable[[], None]:
    return lambda: log.append(item)


def test_satisfies_the_broker_timers_protocol() -> None:
    timers: Timers = Scheduler()  # checked statically by mypy when tests are type-checked
    log: list[object] = []
    handle = timers.call_at(1.5, recorder(log, "x"))
    assert isinstance(handle, ScheduledCall)
    assert timers.now == 0.0


def test_events_run_in_time_order_and_now_follows() -> None:
    s = Scheduler()
    seen: list[tuple[str, float]] = []

    def mark(name: str) -> Callable[[], None]:
        return lambda: seen.append((name, s.now))

    for name, when in [("c", 3.0), ("a", 1.0), ("b", 2.0)]:
        s.call_at(when, mark(name))
    assert s.run() == 3
    assert seen == [("a", 1.0), ("b", 2.0), ("c", 3.0)]
    assert s.now == 3.0


def test_equal_times_run_in_scheduling_order() -> None:
    s = Scheduler()
    log: list[object] = []
    for i in range(50):
        s.call_at(5.0, recorder(log, i))
        s.call_at(1.0, recorder(log, -i))
    s.run()
    assert log == [-i for i in range(50)] + list(range(50))


def test_event_scheduled_at_now_by_a_callback_runs_after_those_already_queued() -> None:
    s = Scheduler()
    log: list[object] = []

    def first() -> None:
        log.append("first")
        s.call_at(s.now, recorder(log, "spawned"))

    s.call_at(1.0, first)
    s.call_at(1.0, recorder(log, "second"))
    s.run()
    assert log == ["first", "second", "spawned"]


def test_call_later_is_relative_to_now() -> None:
    s = Scheduler()
    log: list[object] = []

    def later() -> None:
        s.call_later(0.5, lambda: log.append(s.now))

    s.call_at(2.0, later)
    s.run()
    assert log == [2.5]


@pytest.mark.parametrize("when", [-0.5, math.nan, math.inf])
def test_call_at_rejects_past_nan_and_infinite_times(when: float) -> None:
    s = Scheduler()
    with pytest.raises(SchedulerError, match=f"cannot schedule at {when!r}"):
        s.call_at(when, lambda: None)
    assert s.pending == 0


def test_call_at_rejects_a_time_before_now_after_time_moved() -> None:
    s = Scheduler()
    s.call_at(10.0, lambda: None)
    s.run()
    with pytest.raises(SchedulerError, match=r"cannot schedule at 9\.0: .*now \(10\.0\)"):
        s.call_at(9.0, lambda: None)
    s.call_at(10.0, lambda: None)  # equal to now is fine
    assert s.pending == 1


def test_scheduler_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        Scheduler().call_later(-1.0, lambda: None)


def test_cancelled_timer_does_not_run_and_pending_drops() -> None:
    s = Scheduler()
    log: list[object] = []
    t1 = s.call_at(1.0, recorder(log, 1))
    s.call_at(2.0, recorder(log, 2))
    assert s.pending == 2
    t1.cancel()
    assert t1.cancelled
    assert s.pending == 1
    assert s.run() == 1
    assert log == [2]


def test_cancel_twice_counts_once() -> None:
    s = Scheduler()
    t = s.call_at(1.0, lambda: None)
    s.call_at(2.0, lambda: None)
    t.cancel()
    t.cancel()
    assert s.pending == 1


def test_cancel_after_the_timer_ran_changes_nothing() -> None:
    s = Scheduler()
    log: list[object] = []
    t = s.call_at(1.0, recorder(log, "ran"))
    s.call_at(2.0, lambda: None)
    assert s.step()
    t.cancel()
    assert not t.cancelled
    assert s.pending == 1
    assert log == ["ran"]


def test_callback_can_cancel_a_later_event_at_the_same_time() -> None:
    s = Scheduler()
    log: list[object] = []
    victim: list[ScheduledCall] = []
    s.call_at(1.0, lambda: victim[0].cancel())
    victim.append(s.call_at(1.0, recorder(log, "victim")))
    s.call_at(1.0, recorder(log, "survivor"))
    assert s.run() == 2
    assert log == ["survivor"]


def test_step_runs_one_live_event_and_reports_emptiness() -> None:
    s = Scheduler()
    log: list[object] = []
    s.call_at(1.0, recorder(log, "a")).cancel()
    s.call_at(2.0, recorder(log, "b"))
    assert s.step()
    assert log == ["b"]
    assert s.now == 2.0
    assert not s.step()
    assert s.now == 2.0


def test_peek_skips_cancelled_events() -> None:
    s = Scheduler()
    assert s.peek() is None
    s.call_at(1.0, lambda: None).cancel()
    s.call_at(4.0, lambda: None)
    assert s.peek() == 4.0
    assert s.pending == 1


def test_run_until_includes_events_at_until_and_advances_now_when_more_remain() -> None:
    s = Scheduler()
    log: list[object] = []
    for when in (1.0, 5.0, 5.0, 7.0):
        s.call_at(when, recorder(log, when))
    assert s.run(until=5.0) == 3
    assert log == [1.0, 5.0, 5.0]
    assert s.now == 5.0
    assert s.run(until=6.0) == 0
    assert s.now == 6.0  # an event at 7.0 is still pending: the interval up to 6.0 was simulated
    assert s.pending == 1
    assert s.run() == 1
    assert s.now == 7.0


def test_run_until_leaves_now_at_the_last_event_when_the_queue_runs_dry() -> None:
    s = Scheduler()
    s.call_at(3.0, lambda: None)
    s.call_at(50.0, lambda: None).cancel()
    assert s.run(until=10.0) == 1
    assert s.now == 3.0
    assert s.run(until=100.0) == 0
    assert s.now == 3.0


@pytest.mark.parametrize("until", [-1.0, math.nan, math.inf])
def test_run_rejects_bad_until(until: float) -> None:
    with pytest.raises(SchedulerError, match="cannot run until"):
        Scheduler().run(until=until)


def test_run_max_events_stops_without_advancing_to_until() -> None:
    s = Scheduler()
    for when in (1.0, 2.0, 3.0):
        s.call_at(when, lambda: None)
    assert s.run(until=10.0, max_events=2) == 2
    assert s.now == 2.0
    assert s.pending == 1
    assert s.run(max_events=0) == 0
    with pytest.raises(SchedulerError, match="max_events must be >= 0, got -1"):
        s.run(max_events=-1)


def test_a_raising_callback_consumes_its_event() -> None:
    s = Scheduler()
    log: list[object] = []

    def boom() -> None:
        raise RuntimeError("boom")

    s.call_at(1.0, boom)
    s.call_at(2.0, recorder(log, "after"))
    with pytest.raises(RuntimeError, match="boom"):
        s.run()
    assert s.now == 1.0
    assert s.pending == 1
    assert s.run() == 1
    assert log == ["after"]


def test_mass_cancellation_compacts_the_heap_and_keeps_order() -> None:
    s = Scheduler()
    log: list[object] = []
    timers = [s.call_at(float(i % 97), recorder(log, i)) for i in range(2000)]
    for i, t in enumerate(timers):
        if i % 10:
            t.cancel()
    assert s.pending == 200
    assert len(s._heap) < 2000  # compaction happened (private, but it is the point of the test)
    assert s.run() == 200
    kept = [i for i in range(2000) if i % 10 == 0]
    assert log == sorted(kept, key=lambda i: (i % 97, i))


def test_cancelling_during_run_compacts_safely() -> None:
    s = Scheduler()
    log: list[object] = []
    later = [s.call_at(10.0 + i, recorder(log, i)) for i in range(1000)]

    def cancel_most() -> None:
        for i, t in enumerate(later):
            if i != 999:
                t.cancel()

    s.call_at(1.0, cancel_most)
    assert s.run() == 2
    assert log == [999]
    assert s.now == 1009.0


def test_same_schedule_same_trace() -> None:
    def trace() -> list[tuple[float, int]]:
        s = Scheduler()
        out: list[tuple[float, int]] = []

        def tick(i: int) -> None:
            out.append((s.now, i))
            if i < 200:
                s.call_later((i * 7 % 5) / 2, lambda: tick(i + 1))
                s.call_later((i * 3 % 4) / 2, lambda: out.append((s.now, -i)))

        s.call_at(0.0, lambda: tick(0))
        s.run()
        return out

    assert trace() == trace()


def test_repr_says_the_state() -> None:
    s = Scheduler()
    t = s.call_at(1.0, lambda: None)
    assert repr(t) == "<ScheduledCall at 1.0 queued>"
    assert repr(s) == "<Scheduler now=0.0 pending=1>"
    t.cancel()
    assert repr(t) == "<ScheduledCall at 1.0 cancelled>"
    u = s.call_at(2.0, lambda: None)
    s.run()
    assert repr(u) == "<ScheduledCall at 2.0 done>"


def test_now_is_read_only() -> None:
    s = Scheduler()
    with pytest.raises(AttributeError):
        s.now = 5.0  # type: ignore[misc]
    assert s.now == 0.0


def test_advance_to_runs_what_is_due_then_stands_at_the_time() -> None:
    s = Scheduler()
    seen: list[float] = []
    s.call_at(1.0, lambda: seen.append(s.now))
    s.call_at(2.0, lambda: seen.append(s.now))
    s.call_at(3.5, lambda: seen.append(s.now))
    assert s.advance_to(2.0) == 2  # an event exactly at the time runs
    assert (seen, s.now) == ([1.0, 2.0], 2.0)
    assert s.advance_to(10.0) == 1
    assert s.now == 10.0  # not 3.5: the queue ran dry, the clock still moves to the time
    assert s.advance_to(10.0) == 0  # standing still is allowed


def test_advance_to_never_goes_backwards() -> None:
    s = Scheduler()
    s.advance_to(4.0)
    with pytest.raises(SchedulerError, match="must be finite and >= now"):
        s.advance_to(3.0)
    with pytest.raises(SchedulerError):
        s.advance_to(math.inf)
    assert s.now == 4.0


# One step of a schedule: ("set", time offset, lazily?) sets a timer from inside the running
# callback; ("cancel", k) cancels the k-th timer set so far (if any); ("run", budget) runs.
steps = st.lists(
    st.one_of(
        st.tuples(st.just("set"), st.sampled_from([0.0, 1.0, 2.0, 1e9]), st.booleans()),
        st.tuples(st.just("cancel"), st.integers(0, 40)),
        st.tuples(st.just("run"), st.integers(0, 5)),
    ),
    max_size=60,
)


@settings(max_examples=400)
@given(steps, st.booleans(), st.integers(0, 3))
def test_a_lazy_timer_runs_exactly_where_call_at_would_run_it(
    plan: list[tuple[object, ...]], ties: bool, peeks: int
) -> None:
    """Spec 1.1 with `call_at_lazily` (a request's timeout): whatever is set, cancelled, peeked
    and run in between, the timers run in the same order at the same times as with `call_at`."""

    def play(lazily: bool) -> list[tuple[int, float]]:
        clock = TieBreaker(7) if ties else Scheduler()
        timers = clock.broker_timers
        ran: list[tuple[int, float]] = []
        handles: list[ScheduledCall] = []

        def fire(k: int) -> Callable[[], None]:
            return lambda: ran.append((k, clock.now))

        for step in plan:
            if step[0] == "set":
                _, offset, lazy = step
                at = clock.now + float(offset)  # type: ignore[arg-type]
                setter = timers.call_at_lazily if lazy and lazily else timers.call_at  # type: ignore[attr-defined]
                handles.append(setter(at, fire(len(handles))))
            elif step[0] == "cancel":
                if handles:
                    handles[int(step[1]) % len(handles)].cancel()  # type: ignore[call-overload]
            else:
                for _ in range(peeks):
                    clock.peek()
                clock.run(max_events=int(step[1]))  # type: ignore[call-overload]
        clock.run()
        assert clock.pending == 0
        return ran

    assert play(lazily=True) == play(lazily=False)


def test_lazy_timers_cancelled_in_bulk_are_compacted() -> None:
    """A run that cancels every request's timeout (they are set lazily, far ahead) keeps a
    bounded list of them, and still runs the ones left at their time."""
    s = Scheduler()
    log: list[object] = []
    for i in range(5000):
        handle = s.call_at_lazily(1e9 + i, recorder(log, i))
        if i % 100:
            handle.cancel()
    assert len(s._lazy) <= 2 * s.pending + 256
    assert s.run() == 50
    assert log == list(range(0, 5000, 100))


@pytest.mark.skipif(
    sys.implementation.name != "cpython", reason="CPython's specializing interpreter"
)
def test_the_event_loop_is_specialized_before_its_first_run() -> None:
    """Issue 17: CPython 3.11 specializes a function's bytecode only after a few calls, and a
    simulation calls `run` twice; the scheduler calls it on an empty scheduler at import, so
    the first simulation's events already run specialized (quickened) instructions. In a fresh
    interpreter: here, other tests may have run it many times."""
    code = (
        "import dis\n"
        "from sim.run._scheduler import Scheduler\n"
        "fresh = Scheduler.run.__code__.replace()  # a copy: never called, never quickened\n"
        "assert all(i.opname in dis.opmap for i in dis.get_instructions(fresh, adaptive=True))\n"
        "ops = dis.get_instructions(Scheduler.run, adaptive=True)\n"
        "assert any(i.opname not in dis.opmap for i in ops), 'run is not quickened'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
