"""Figures for load-balancing studies, from sweep rows (`sim.lab.sweep`), probes (`sim.lab`) and
trace events. Every function returns a `matplotlib.figure.Figure` and never shows it. Each figure
gets its own Agg canvas, so nothing needs a display and the global pyplot backend (a notebook's
inline one, say) is left alone. Save one with `save_figure(fig, "x.svg")`: PNG, SVG or PDF by
the extension, the same bytes every time. The sequence diagram of a trace is in `_sequence`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from sim.lab import theory
from sim.lab._probes import DepthSeries, WindowSeries
from sim.lab._sequence import Selection, select_events, sequence_diagram

__all__ = [
    "FORMATS",
    "Selection",
    "crash_effect",
    "depth_over_time",
    "latency_vs_load",
    "save_figure",
    "select_events",
    "sequence_diagram",
    "theory_response",
    "utilization_by_member",
    "varied_keys",
]

Row = Mapping[str, Any]


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # binds itself to fig: Agg rendering without touching pyplot
    return fig


def varied_keys(rows: Sequence[Row]) -> list[str]:
    """The keys a sweep varied: those before `seed` in its rows."""
    keys = list(rows[0]) if rows else []
    return keys[: keys.index("seed")] if "seed" in keys else []


def _series_key(rows: Sequence[Row], series: str | None) -> str | None:
    """The given series key, else the first varied key with string values (a strategy)."""
    if series is not None:
        return series
    for key in varied_keys(rows):
        if any(isinstance(r.get(key), str) for r in rows):
            return key
    return None


def _label(value: Any) -> str:
    return "all" if value is None else str(value)


def theory_response(strategy: str, servers: int, service_mean: float, load: float) -> float | None:
    """Mean response time the theory predicts for a pool of `servers` identical members with
    exponential service of mean `service_mean` under Poisson arrivals at `load` (per member),
    or None where there is no closed form (or load >= 1). `power_of_two` gives the n -> infinity
    limit, and only for pools of 20 members or more: a small pool is well above it (four
    members at load 0.9 measure about 3.9 against the limit's 2.6).

    >>> round(theory_response("shared", 4, 1.0, 0.75), 4)
    1.5094
    >>> theory_response("least_loaded", 4, 1.0, 0.75) is None
    True
    """
    if not 0.0 < load < 1.0:
        return None
    mu = 1.0 / service_mean
    lam = load * servers * mu
    forms: dict[str, Callable[[], float]] = {
        "shared": lambda: theory.mmc_response(servers, lam, mu),
        "random": lambda: theory.random_pool_response(servers, lam, mu),
        "round_robin": lambda: theory.round_robin_response(servers, lam, mu),
        "power_of_two": lambda: theory.power_of_d_response(load, 2) * service_mean,
    }
    form = forms.get(strategy)
    if strategy == "power_of_two" and servers < 20:
        return None
    if servers == 1 and strategy != "broadcast":
        return theory.mm1_response(lam, mu)
    return None if form is None else form()


def _grouped(rows: Sequence[Row], series: str | None, x: str, y: str) -> dict[Any, list[Any]]:
    """{series value: [(x, mean y, min y, max y)]} over seeds, x ascending, None y skipped."""
    cells: dict[Any, dict[float, list[float]]] = {}
    for r in rows:
        value = r.get(y)
        if value is None or r.get(x) is None:
            continue
        cells.setdefault(r.get(series) if series else None, {}).setdefault(r[x], []).append(value)
    return {
        s: [(xv, math.fsum(v) / len(v), min(v), max(v)) for xv, v in sorted(points.items())]
        for s, points in cells.items()
    }


def latency_vs_load(
    rows: Sequence[Row],
    *,
    x: str = "offered_load",
    series: str | None = None,
    percentiles: Sequence[str] = ("p50", "p90", "p99"),
    theory_overlay: bool = True,
    log_mean: bool = False,
) -> Figure:
    """Left: mean latency against `x` per value of `series` (the strategy, by default), with
    the theory (`theory_response`) dashed in the same colour where there is one. Right: the
    latency percentiles, one line style each. Points average the seeds; bars span them.
    Latency counts replied requests only (a timed-out request has none), so near saturation
    the measured figures stay below a theory without timeouts: the left panel's y range is the
    measured one with a margin, and a theory curve climbing out of it is cut at its edge.
    One legend, below the panels, names the series for both. `log_mean` puts the left panel
    on a log scale too."""
    series = _series_key(rows, series)
    fig = _figure(11, 5)
    mean_ax, pct_ax = fig.subplots(1, 2)
    styles = ("-", "--", ":", "-.")
    handles: list[Any] = []
    measured: list[float] = []
    theory_drawn = False
    for k, (name, points) in enumerate(_grouped(rows, series, x, "latency_mean").items()):
        colour = f"C{k}"
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        err = [[p[1] - p[2] for p in points], [p[3] - p[1] for p in points]]
        bars = mean_ax.errorbar(xs, ys, yerr=err, marker="o", color=colour, label=_label(name),
                                capsize=3)  # fmt: skip
        handles.append(bars)
        measured += [v for p in points for v in (p[2], p[3])]
        if theory_overlay and x == "offered_load":
            theory_drawn |= _overlay_theory(mean_ax, rows, series, name, colour)
        for style, p in zip(styles, percentiles, strict=False):
            pts = _grouped([r for r in rows if not series or r.get(series) == name], None, x,
                           f"latency_{p}").get(None, [])  # fmt: skip
            pct_ax.plot([q[0] for q in pts], [q[1] for q in pts], style, marker=".", color=colour)
    for style, p in zip(styles, percentiles, strict=False):
        pct_ax.plot([], [], style, color="grey", label=p)
    if theory_drawn:
        handles.append(Line2D([], [], ls="--", color="grey", label="theory (no timeouts)"))
    title = "Mean latency (dashed: theory)" if theory_drawn else "Mean latency"
    mean_ax.set(xlabel=x, ylabel="mean latency of replied requests", title=title)
    if log_mean:
        mean_ax.set_yscale("log")
    if measured:
        mean_ax.set_ylim(*_margin(min(measured), max(measured), log_mean))
    pct_ax.set(xlabel=x, ylabel="latency of replied requests", yscale="log",
               title="Latency percentiles")  # fmt: skip
    pct_ax.legend(title="percentile")
    if handles:
        fig.legend(handles=handles, title=series, loc="outside lower center",
                   ncols=min(len(handles), 5))  # fmt: skip
    for ax in (mean_ax, pct_ax):
        ax.grid(alpha=0.3)
    return fig


def _margin(lo: float, hi: float, log: bool) -> tuple[float, float]:
    """Axis limits around measured values [lo, hi]: a tenth of the range (a factor on a log
    scale) beyond either end, never below 0 on a linear scale."""
    if log and lo > 0:
        factor = (hi / lo) ** 0.1 if hi > lo else 1.5
        return lo / factor, hi * factor
    pad = 0.1 * (hi - lo) or 0.1 * abs(hi) or 1.0
    return max(0.0, lo - pad) if lo >= 0 else lo - pad, hi + pad


def _overlay_theory(ax: Any, rows: Sequence[Row], series: str | None, name: Any, c: str) -> bool:
    """Draw the theory of one series, dashed; whether there was one to draw."""
    mine = [r for r in rows if not series or r.get(series) == name]
    servers, mean = mine[0].get("servers"), mine[0].get("service_mean")
    strategy = name if isinstance(name, str) else "round_robin"
    if not servers or not mean:
        return False
    loads = sorted({r["offered_load"] for r in mine if r.get("offered_load")})
    if not loads:
        return False
    lo, hi = loads[0], min(loads[-1], 0.985)
    grid = [lo + (hi - lo) * i / 100 for i in range(101)]
    pairs = [(g, theory_response(strategy, servers, mean, g)) for g in grid]
    pts = [(g, v) for g, v in pairs if v is not None]
    if pts:
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "--", color=c, alpha=0.8)
    return bool(pts)


def utilization_by_member(rows: Sequence[Row], *, series: str | None = None) -> Figure:
    """Utilization (busy time / run time) of every member, one bar group per member and one bar
    per value of `series` (the strategy, by default), averaged over the rows of that value."""
    series = _series_key(rows, series)
    members = list(dict.fromkeys(k for r in rows for k in r if k.startswith("utilization.")))
    groups: dict[Any, list[Row]] = {}
    for r in rows:
        groups.setdefault(r.get(series) if series else None, []).append(r)
    fig = _figure(max(6.0, 0.6 * len(members) * max(1, len(groups))), 4.5)
    ax = fig.subplots()
    width = 0.8 / max(1, len(groups))
    for k, (name, group) in enumerate(groups.items()):
        heights = [
            math.fsum(r.get(m) or 0.0 for r in group) / len(group) for m in members
        ]  # fmt: skip
        xs = [i + (k - (len(groups) - 1) / 2) * width for i in range(len(members))]
        ax.bar(xs, heights, width, label=_label(name), color=f"C{k}")
    ax.set_xticks(range(len(members)), [m.removeprefix("utilization.") for m in members])
    ax.set(ylabel="utilization", ylim=(0, 1.05), title="Utilization per member")
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.legend(title=series)
    ax.grid(axis="y", alpha=0.3)
    return fig


def depth_over_time(series: DepthSeries, members: Sequence[str] | None = None) -> Figure:
    """Mailbox depth of each member against time (a step line each), from `depth_series`."""
    fig = _figure(10, 4)
    ax = fig.subplots()
    for label in members if members is not None else list(series.depths):
        ax.step(series.times, series.depths[label], where="post", label=label, lw=1)
    ax.set(xlabel="time", ylabel="queued messages", title="Queue depth per member")
    ax.legend(ncol=4, fontsize="small")
    ax.grid(alpha=0.3)
    return fig


def crash_effect(
    runs: Mapping[str, WindowSeries], down: Sequence[tuple[float, float]] = ()
) -> Figure:
    """Throughput (top) and mean latency (bottom) per time window, one line per run (e.g. per
    strategy), with the intervals in `down` (a member crashed) shaded."""
    fig = _figure(10, 6)
    top, bottom = fig.subplots(2, 1, sharex=True)
    for k, (name, w) in enumerate(runs.items()):
        mids = [s + w.width / 2 for s in w.starts]
        top.plot(mids, w.throughput, marker=".", color=f"C{k}", label=name)
        pts = [(m, v) for m, v in zip(mids, w.mean_latency, strict=True) if v is not None]
        bottom.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", color=f"C{k}")
    for ax in (top, bottom):
        for start, end in down:
            ax.axvspan(start, end, color="red", alpha=0.12, lw=0)
        ax.grid(alpha=0.3)
    top.set(ylabel="replies per unit time", title="A member down (shaded)")
    bottom.set(xlabel="time (window midpoint)", ylabel="mean latency")
    top.legend()
    return fig


# What `save_figure` writes, by the file name's extension, and metadata that would vary between
# runs (a creation date) left out, so the same figure gives the same bytes.
FORMATS = {"png": {}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}


def save_figure(fig: Figure, path: str, *, dpi: float = 100) -> str:
    """Write `fig` to `path` as PNG, SVG or PDF, chosen by the extension, and return the format.

    Byte for byte reproducible: no dates, and SVG ids from a fixed salt rather than a random
    one. Raises ValueError, naming the path, for another extension; OSError if it cannot write.
    """
    fmt = path.rpartition(".")[2].lower() if "." in path else ""
    if fmt not in FORMATS:
        raise ValueError(f"{path!r}: the file name must end in .png, .svg or .pdf")
    with rc_context({"svg.hashsalt": "brokerlab"}):
        fig.savefig(path, format=fmt, dpi=dpi, metadata=FORMATS[fmt])
    return fmt
