"""What a run gives back: `Result`, its summary as a dict and as pandas tables, and its trace.

pandas is the optional `lab` extra (`pip install 'brokerlab[lab]'`), so the table methods import
it when called, and without it raise an ImportError that says how to get it; the rest of a
result, and every command line run, works without it.

The per-request table is read from the run's trace, which a run keeps in memory only when asked
(`simulate(scenario, keep_trace=True)`): a trace is several times the work of a run without one,
and a sweep of many long runs has no use for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from sim.run._monitors import InvariantViolation
    from sim.scenario import Scenario

__all__ = ["REQUEST_COLUMNS", "Result", "RunResult", "require_pandas"]

# The columns of `Result.requests()`, after its index `corr` (the correlation id).
REQUEST_COLUMNS = (
    "requester",  # who sent it (its label: a client's name, a scripted actor's name or id:N)
    "target",  # the address it was sent to
    "key",  # its routing key, or None
    "sent",  # when it was issued
    "deadline",  # sent + timeout
    "served_by",  # who first took it from a mailbox (None: nobody did)
    "taken",  # when that was (NaN: never)
    "wait",  # taken - sent: the time it queued (NaN: never taken)
    "outcome",  # replied, timed_out, cancelled, failed (None: still pending at the end)
    "resolved",  # when it ended (NaN: pending)
    "latency",  # resolved - sent, whatever the outcome (the summary's latency: replied only)
    "retries",  # retries of its send (spec 6.3)
)


def require_pandas(what: str) -> Any:
    """The pandas module, or an ImportError naming `what` needed it and how to install it."""
    try:
        import pandas
    except ImportError as err:
        raise ImportError(
            f"{what} needs pandas, in the optional `lab` extra: pip install 'brokerlab[lab]'"
        ) from err
    return pandas


@dataclass(slots=True)
class Result:
    """One run: its `summary` (the `--summary` JSON, docs/trace-format.md), the invariant
    `violation` that stopped it (None: every invariant held), the number of `events`, the
    `scenario` that ran, `undrained` when it was cut off at the hard stop (see `status`), and
    `trace_text`, the JSON Lines trace (header first) when the run was
    asked to keep it (`simulate(scenario, keep_trace=True)`), else None.

    >>> from sim import default_scenario, simulate
    >>> result = simulate(default_scenario(), keep_trace=True)
    >>> result.ok, result.summary["requests"]["replied"]
    (True, 1439)
    >>> int(result.members().loc["workers-3", "served"])
    479
    >>> requests = result.requests()
    >>> len(requests), int((requests["outcome"] == "replied").sum())
    (1476, 1439)
    >>> requests.loc[1, ["requester", "target", "served_by", "outcome"]].tolist()
    ['load', 'pool:workers', 'workers-1', 'replied']
    >>> result.trace()[0]["op"]
    'create_pool'
    """

    summary: dict[str, Any]
    violation: InvariantViolation | None = None
    events: int = 0
    scenario: Scenario | None = None
    trace_text: str | None = None
    undrained: str | None = None

    @property
    def ok(self) -> bool:
        """Every invariant held and the run drained (`status == "ok"`)."""
        return self.violation is None and self.undrained is None

    @property
    def status(self) -> str:
        """`ok`; `violation`: an invariant broke (`violation` says which); `undrained`: the run
        was cut off at the hard stop with work still scheduled (`undrained` says how much), a
        status of its own and not a violation: no invariant broke, the run just did not end."""
        if self.violation is not None:
            return "violation"
        return "ok" if self.undrained is None else "undrained"

    def trace(self) -> list[dict[str, Any]]:
        """The trace's lines after the header, each a dict (docs/trace-format.md): operations
        (`op`), the network's choices (`choice`), events and faults (`ev`), and the `end` line.

        Raises ValueError when the run kept no trace (use `simulate(..., keep_trace=True)`).
        """
        if self.trace_text is None:
            raise ValueError(
                "this run kept no trace: run it with simulate(scenario, keep_trace=True)"
            )
        return [json.loads(line) for line in self.trace_text.splitlines()[1:]]

    def summary_frame(self) -> pd.DataFrame:
        """The summary as a one-row table, nested keys dotted (`requests.replied`,
        `latency.p99`, `dead_letters.expired`, `invariants.ok`); the members are `members()`.
        Rows of several runs concatenate (`pandas.concat`) into a table of runs.

        >>> from sim import default_scenario, simulate
        >>> frame = simulate(default_scenario()).summary_frame()
        >>> int(frame.loc[0, "requests.issued"]), bool(frame.loc[0, "invariants.ok"])
        (1476, True)
        """
        lib = require_pandas("Result.summary_frame()")
        row: dict[str, Any] = {}
        _flatten(row, "", {k: v for k, v in self.summary.items() if k != "members"})
        frame: pd.DataFrame = lib.DataFrame([row])
        return frame

    def members(self) -> pd.DataFrame:
        """One row per pool member and named actor, in registration order, indexed by name:
        its `pool` (None for an `[[actor]]`), messages `served`, and `utilization` (busy time
        over the run's end time)."""
        lib = require_pandas("Result.members()")
        pool_of: dict[str, str] = {}
        if self.scenario is not None:
            pool_of = {m: p.name for p in self.scenario.pools for m in p.members}
        rows = [
            {"member": name, "pool": pool_of.get(name), **figures}
            for name, figures in self.summary["members"].items()
        ]
        frame: pd.DataFrame = lib.DataFrame(
            rows, columns=["member", "pool", "served", "utilization"]
        ).set_index("member")
        return frame

    def requests(self) -> pd.DataFrame:
        """One row per request the broker accepted (clients' and scripts'), indexed by its
        correlation id, with the columns of REQUEST_COLUMNS. Read from the trace, so the run
        must have kept one (`simulate(scenario, keep_trace=True)`); ValueError otherwise."""
        lib = require_pandas("Result.requests()")
        rows = request_rows(self.trace())
        frame: pd.DataFrame = lib.DataFrame(rows, columns=["corr", *REQUEST_COLUMNS])
        return frame.set_index("corr")


def request_rows(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of `Result.requests()` from a trace's lines, in order of issue."""
    rows: dict[int, dict[str, Any]] = {}
    by_msg: dict[int, dict[str, Any]] = {}  # a request's message, its transit and topic copies
    for line in lines:
        ev = line.get("ev")
        if ev == "send" and line["kind"] == "request":
            if "dup_of" in line or "copy_of" in line:
                by_msg[line["msg"]] = rows[line["corr"]]
                continue
            by_msg[line["msg"]] = rows[line["corr"]] = {
                "corr": line["corr"],
                "requester": line["from"],
                "target": line["to"],
                "key": line.get("key"),
                "sent": line["t"],
                "deadline": line["deadline"],
                "served_by": None,
                "taken": None,
                "wait": None,
                "outcome": None,
                "resolved": None,
                "latency": None,
                "retries": 0,
            }
        elif ev == "dequeue":
            row = by_msg.get(line["msg"])
            if row is not None and row["served_by"] is None:
                row.update(served_by=line["actor"], taken=line["t"], wait=line["t"] - row["sent"])
        elif ev == "retry":
            row = by_msg.get(line["msg"])
            if row is not None:
                row["retries"] += 1
        elif ev == "resolve":
            row = rows[line["corr"]]
            row.update(outcome=line["outcome"], resolved=line["t"], latency=line["t"] - row["sent"])
    return list(rows.values())


def _flatten(into: dict[str, Any], prefix: str, value: dict[str, Any]) -> None:
    for key, item in value.items():
        if isinstance(item, dict):
            _flatten(into, f"{prefix}{key}.", item)
        else:
            into[prefix + key] = item


RunResult = Result  # the name before the table methods came; both stay
