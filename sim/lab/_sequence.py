"""A trace drawn as a sequence diagram (`sim.lab.plots.sequence_diagram`).

Events are chosen first (a time window, a correlation id, then the first `limit`), so that the
figure can say what it left out; then drawn with one lane per actor and time downwards. Each
artist drawn for an event has the gid `<ev>-<seq>` (`<ev>-<index>` for events without a `seq`),
so a test, or a reader of the SVG, can tell which events are in the figure.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from sim.run import InvariantViolation

Row = Mapping[str, Any]

# Marks on a lane: (marker, colour, legend label).
_MARKS = {
    "enqueue": ("o", "C0", "enqueue"),
    "dequeue": ("s", "C2", "dequeue (delivered)"),
    "park": ("v", "C1", "park (mailbox full)"),
}
_LEGEND: dict[str, Any] = {
    "message": {"color": "C0", "label": "message: sender to where it was routed"},
    "reply": {"color": "C2", "label": "reply: replier to requester (resolve)"},
    **{k: {"marker": m, "color": c, "ls": "", "label": lab} for k, (m, c, lab) in _MARKS.items()},
    "dead_letter": {"marker": "x", "color": "red", "ls": "", "label": "dead letter (reason)"},
    "fault": {"marker": "*", "color": "purple", "ls": "", "label": "fault"},
    "violation": {"color": "red", "lw": 2.5, "label": "the run stopped (violation)"},
}


@dataclass(frozen=True, slots=True)
class Selection:
    """The events a sequence diagram draws, out of how many."""

    shown: list[Row]  # drawn, in trace order
    matched: int  # the events the window and the correlation id let through
    total: int  # every event but the registrations


def select_events(
    events: Sequence[Row],
    *,
    window: tuple[float, float] | None = None,
    corr: int | None = None,
    limit: int = 80,
) -> Selection:
    """The events of `events` (trace lines with an `ev`; registrations aside) inside `window`
    (t0 <= t <= t1) and of correlation id `corr` (its request, the request's duplicates and
    copies, its replies, and every event of those messages, and its `resolve`), the first
    `limit` of them drawn."""
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit!r}")
    evs = [e for e in events if "ev" in e and e["ev"] != "register"]
    matched = evs
    if window is not None:
        t0, t1 = window
        matched = [e for e in matched if t0 <= e["t"] <= t1]
    if corr is not None:
        msgs = _messages_of(evs, corr)
        matched = [
            e for e in matched
            if e.get("msg") in msgs or (e["ev"] == "resolve" and e.get("corr") == corr)
        ]  # fmt: skip
    return Selection(matched[:limit], len(matched), len(evs))


def _messages_of(events: Sequence[Row], corr: int) -> set[int]:
    """The message ids of a correlation id: sends carrying it, and their copies."""
    msgs: set[int] = set()
    for e in events:
        if e["ev"] != "send":
            continue
        origin = e.get("dup_of", e.get("copy_of"))
        if e.get("corr") == corr or origin in msgs:
            msgs.add(e["msg"])
    return msgs


def _lanes(events: Sequence[Row]) -> list[str]:
    lanes: dict[str, None] = {}
    for ev in events:
        for key in ("actor", "from", "requester"):
            value = ev.get(key)
            if isinstance(value, str) and (key != "actor" or ev["ev"] != "dead_letter"):
                lanes.setdefault(value, None)
    return list(lanes)


@dataclass(frozen=True, slots=True)
class _Stop:
    """Where and why the run stopped, when it did not drain."""

    t: float
    text: str


def _stop(events: Sequence[Row], violation: InvariantViolation | None) -> _Stop | None:
    if violation is not None:
        return _Stop(violation.t, f"violation: {violation.invariant}: {violation.detail}")
    end = next((e for e in events if "end" in e), None)
    if end is None or end["end"] == "drained":
        return None
    text = {"violation": "violation: a monitor stopped the run (end: violation)",
            "hard_stop": "hard stop: work was still scheduled (end: hard_stop)"}  # fmt: skip
    cut = [e for e in events if "op" in e and e.get("error") == "interrupted"]
    more = f"; operation `{cut[0]['op']}` interrupted (seq {cut[0]['seq']})" if cut else ""
    return _Stop(end["t"], text.get(end["end"], f"end: {end['end']}") + more)


def sequence_diagram(
    events: Sequence[Row],
    *,
    actors: Sequence[str] | None = None,
    limit: int = 80,
    window: tuple[float, float] | None = None,
    corr: int | None = None,
    violation: InvariantViolation | None = None,
) -> Figure:
    """Trace lines (docs/trace-format.md) as a sequence diagram: one vertical lane per actor,
    time downwards. Messages are arrows from the sender to where they were routed, labelled
    with their kind, id and correlation id; replies are arrows from the replier to the
    requester at `resolve`, labelled with the outcome and correlation id; enqueue, dequeue and
    park are marks on the lane; dead letters a red cross with the reason; faults a label on
    the lane. A legend says which is which.

    Draws the events in `window` (t0, t1) and of correlation id `corr` (`select_events`), the
    first `limit` of them; the title says when events were left out. A run that stopped (an
    `end` line other than `drained`, or `violation`, the monitor's exception, which also gives
    its message) is marked by a red line across the lanes at that time, or by a red note at
    the bottom (top) edge when that time is after (before) the events drawn. Raises ValueError
    when `window` or `corr` leaves nothing to draw.
    """
    sel = select_events(events, window=window, corr=corr, limit=limit)
    evs = [e for e in events if "ev" in e]
    if not sel.shown and (window is not None or corr is not None):
        span = f"t={evs[0]['t']:g} to {evs[-1]['t']:g}" if evs else "none"
        raise ValueError(f"no events to draw {_scope(window, corr)} (the events span {span})")
    lanes = list(actors) if actors is not None else _lanes(evs)
    if actors is None and corr is not None:
        touched = set(_lanes(sel.shown))
        lanes = [lane for lane in lanes if lane in touched]
    fig = Figure(figsize=(max(6.0, 1.6 * len(lanes)), max(4.5, 0.22 * len(sel.shown) + 2)),
                 layout="constrained")  # fmt: skip
    FigureCanvasAgg(fig)  # as every figure of sim.lab.plots: Agg, pyplot left alone
    ax = fig.subplots()
    used = _draw(ax, sel.shown, evs, {name: i for i, name in enumerate(lanes)})
    lo, hi = _time_range(sel.shown, window)
    notes = []
    if sel.matched > len(sel.shown):
        notes.append(
            f"first {len(sel.shown)} of {sel.matched} events{_scope(window, corr, ' ')} "
            f"(to t={sel.shown[-1]['t']:g}); choose others with --window T0:T1 or --corr N"
        )
    stop = _stop(events, violation)
    if (
        stop is not None and stop.t > hi and sel.matched == len(sel.shown) and corr is None
        and (window is None or stop.t <= window[1])
    ):  # fmt: skip
        hi = stop.t  # nothing after the events drawn was left out: reach down to the stop
    if stop is not None:
        _mark_stop(ax, stop, lo, hi)
        used.add("violation")
    for i in range(len(lanes)):
        ax.axvline(i, color="grey", lw=0.8, zorder=0)
    ax.set_xticks(range(len(lanes)), lanes, rotation=30, ha="left")
    ax.xaxis.tick_top()
    ax.set_xlim(-0.5, max(0.5, len(lanes) - 0.5))
    pad = 0.02 * (hi - lo) or 0.5
    ax.set_ylim(hi + pad, lo - pad)  # time downwards
    ax.set(ylabel="time")
    ax.grid(axis="y", alpha=0.2)
    title = "Sequence diagram" + _scope(window, corr, " ")
    fig.suptitle("\n".join([title, *notes]), fontsize=9)
    handles = [Line2D([], [], **_LEGEND[k]) for k in _LEGEND if k in used]
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize="small")
    return fig


def _mark_stop(ax: Any, stop: _Stop, lo: float, hi: float) -> None:
    """A red line across the lanes at the stop, with why; or, when the stop is outside the
    time drawn (lo..hi), a red note at the edge it lies beyond."""
    if lo <= stop.t <= hi:
        ax.axhline(stop.t, color="red", lw=2.5, gid="violation")
        ax.annotate(textwrap.fill(stop.text, 70), (-0.45, stop.t), color="red", fontsize=7,
                    fontweight="bold", va="bottom", gid="violation-text")  # fmt: skip
        return
    after = stop.t > hi
    what = stop.text.split(":")[0]
    ax.text(0.5, 0.0 if after else 1.0,
            f"{what} at t={stop.t:g}, {'after' if after else 'before'} the events drawn: "
            f"try --window T0:{stop.t:g}", transform=ax.transAxes, ha="center",
            va="bottom" if after else "top", color="red", fontweight="bold", fontsize=8,
            gid="violation-note", bbox={"facecolor": "white", "edgecolor": "red"})  # fmt: skip


def _scope(window: tuple[float, float] | None, corr: int | None, lead: str = "") -> str:
    parts = []
    if window is not None:
        t0, t1 = window
        if not math.isfinite(t0):
            parts.append(f"up to t={t1:g}")
        elif not math.isfinite(t1):
            parts.append(f"from t={t0:g}")
        else:
            parts.append(f"in t={t0:g}..{t1:g}")
    if corr is not None:
        parts.append(f"of correlation id {corr}")
    return lead + " ".join(parts) if parts else ""


def _time_range(shown: Sequence[Row], window: tuple[float, float] | None) -> tuple[float, float]:
    """The times the y axis spans: the window's finite ends, else the events drawn."""
    times = [e["t"] for e in shown] or [0.0]
    lo, hi = min(times), max(times)
    if window is not None:
        lo = window[0] if math.isfinite(window[0]) else lo
        hi = window[1] if math.isfinite(window[1]) else hi
    return lo, hi


def _draw(ax: Any, shown: Sequence[Row], evs: Sequence[Row], col: dict[str, int]) -> set[str]:
    """Draw `shown`; `evs` (every event) gives the sends that arrows start from. Returns the
    legend entries used."""
    sent = {e["msg"]: e for e in evs if e["ev"] == "send"}
    lo = min((e["t"] for e in shown), default=0.0)
    used: set[str] = set()
    for k, e in enumerate(shown):
        kind, t = e["ev"], e["t"]
        gid = f"{kind}-{e.get('seq', k)}"
        if kind == "route" and e["msg"] in sent:
            src = sent[e["msg"]]
            if src.get("from") in col and e["actor"] in col:
                _arrow(ax, col[src["from"]], max(lo, src["t"]), col[e["actor"]], t, "C0", gid)
                corr = f" corr {src['corr']}" if "corr" in src else ""
                ax.annotate(f"{src['kind']} #{e['msg']}{corr}", (col[e["actor"]], t),
                            fontsize=6, xytext=(3, 2), textcoords="offset points",
                            gid=gid)  # fmt: skip
                used.add("message")
        elif kind in _MARKS and e.get("actor") in col:
            marker, colour, _ = _MARKS[kind]
            ax.plot(col[e["actor"]], t, marker, color=colour, ms=4, gid=gid)
            used.add(kind)
        elif kind == "resolve" and e.get("requester") in col:
            reply = sent.get(e["msg"]) if e.get("msg") is not None else None
            if reply is not None and reply.get("from") in col:
                _arrow(ax, col[reply["from"]], max(lo, reply["t"]), col[e["requester"]], t,
                       "C2", gid)  # fmt: skip
                used.add("reply")
            ax.annotate(f"{e['outcome']} corr {e['corr']}", (col[e["requester"]], t),
                        fontsize=6, color="C2", xytext=(3, -6), textcoords="offset points",
                        gid=gid)  # fmt: skip
        elif kind == "dead_letter":
            origin = sent.get(e["msg"], {}).get("from")
            x = col.get(origin, 0) if isinstance(origin, str) else 0
            ax.plot(x, t, "x", color="red", ms=6, gid=gid)
            ax.annotate(e["reason"], (x, t), fontsize=6, color="red", xytext=(3, 2),
                        textcoords="offset points", gid=gid)  # fmt: skip
            used.add("dead_letter")
        elif kind == "fault" and e.get("actor") in col:
            ax.plot(col[e["actor"]], t, "*", color="purple", ms=7, gid=gid)
            ax.annotate(e["kind"], (col[e["actor"]], t), fontsize=7, color="purple",
                        fontweight="bold", xytext=(4, -3), textcoords="offset points",
                        gid=gid)  # fmt: skip
            used.add("fault")
    return used


def _arrow(ax: Any, x0: float, y0: float, x1: float, y1: float, colour: str, gid: str) -> None:
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0), gid=gid,
                arrowprops={"arrowstyle": "->", "color": colour, "lw": 0.8})  # fmt: skip
