"""A run's figures: the `--summary` JSON (docs/trace-format.md) and its human-readable report."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.run._monitors import InvariantViolation
    from sim.run._result import Result
    from sim.run._runner import Simulation


def summary(
    sim: Simulation, violation: InvariantViolation | None = None, undrained: str | None = None
) -> dict[str, Any]:
    """The run's figures, read from the broker's `stats()` and the workers and clients.

    `status`: `ok`, `violation` (an invariant broke) or `undrained` (cut off at the hard stop
    with work still scheduled, `undrained` says how much; no invariant broke)."""
    b = sim.broker
    stats = b.stats()
    end = sim.clock.now
    # Every request the broker accepted a call for (clients' and scripts'): ended or pending.
    issued = sum(stats.outcomes.values()) + len(b.pending_requests())
    status = "violation" if violation is not None else "undrained" if undrained else "ok"
    return {
        "status": status,
        **({"undrained": undrained} if undrained else {}),
        "seed": sim.scenario.seed,
        "end_time": end,
        "events": sim.events(),
        "messages": {
            "accepted": stats.accepted,
            "delivered": stats.delivered,
            "dead_lettered": stats.dead_lettered,
            "rejected": stats.rejected,
            "in_flight": stats.in_flight,
        },
        "dead_letters": dict(sorted(stats.dead_letters.items())),
        "requests": {"issued": issued, **stats.outcomes},
        "latency": latency_summary(sorted(b.latencies)),
        "members": {
            w.label: {
                "served": w.served,
                "utilization": w.busy_time / end if end > 0 else 0.0,
            }
            for w in sim.workers.values()
        },
        "retries": stats.retries,
        **({"script_errors": list(sim.script_errors)} if sim.scenario.script else {}),
        "invariants": {
            "ok": violation is None,
            "violations": [] if violation is None else [str(violation)],
        },
    }


def latency_summary(ordered: list[float]) -> dict[str, float | int | None]:
    """Count, mean and nearest-rank percentiles of sorted latencies (None when there are none)."""
    n = len(ordered)
    if n == 0:
        return {"count": 0, "mean": None, "p50": None, "p90": None, "p99": None, "max": None}

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p * n) - 1)]

    return {
        "count": n,
        "mean": math.fsum(ordered) / n,
        "p50": rank(0.50),
        "p90": rank(0.90),
        "p99": rank(0.99),
        "max": ordered[-1],
    }


def format_summary(result: Result, name: str) -> str:
    """The human-readable report of a run."""
    s: dict[str, Any] = result.summary
    m, r, lat = s["messages"], s["requests"], s["latency"]
    lines = [
        f"brokerlab run: {name}, seed {s['seed']}, {s['events']} events, "
        f"ended at t={s['end_time']:.3f}",
        "",
        "messages  accepted {accepted}  delivered {delivered}  dead-lettered {dead_lettered}  "
        "rejected {rejected}  in flight {in_flight}".format(**m),
        "requests  issued {issued}  replied {replied}  timed out {timed_out}  "
        "cancelled {cancelled}  failed {failed}".format(**r),
        f"retries   {s['retries']}",
    ]
    if lat["count"]:
        lines.append(
            "latency   n={count}  mean {mean:.3f}  p50 {p50:.3f}  p90 {p90:.3f}  "
            "p99 {p99:.3f}  max {max:.3f}".format(**lat)
        )
    if s["dead_letters"]:
        lines += ["", "dead letters by reason"]
        lines += [f"  {reason:<22} {n:>8}" for reason, n in s["dead_letters"].items()]
    if s["members"]:  # a scripted run has no pool members of the simulator's
        lines += ["", f"  {'member':<16} {'served':>8} {'utilization':>12}"]
    for label, stats in s["members"].items():
        lines.append(f"  {label:<16} {stats['served']:>8} {stats['utilization']:>11.1%}")
    verdict = (
        "all invariants held" if result.violation is None else f"VIOLATION: {result.violation}"
    )
    lines += ["", f"invariants: {verdict}"]
    if result.undrained is not None:
        lines.append(f"undrained: {result.undrained} (cut off, not a violation)")
    return "\n".join(lines)
