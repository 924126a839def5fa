"""`make bench`: brokerlab's speed, measured side by side with what users would otherwise pick.

Rows (each the median of `--runs` runs after a warm-up; the two sides of a comparison are run
alternately in the same process, so machine noise hits both; CPU seconds, not wall time):

1. M/M/1 and M/M/c through the full broker (client requests, pool routing, mailbox, worker
   service, reply matched by correlation id; tracing and monitors off) against SimPy running the
   same model (Poisson arrivals, exponential service, a `Resource` of capacity c).
2. The same M/M/c against a bare heapq event loop (the practical floor for a Python DES).
3. Routing throughput of the sans-IO core alone, against a dict-plus-deque enqueue.
4. Tracing overhead: the M/M/c run writing a trace against the same run without one.
5. `brokerlab conform`'s events per second on the default scenario's trace against the
   simulator's on the run that writes it.
6. Model checker states per second at the `default` and `wide` presets, with and without
   symmetry (`wide` on its first states: the whole preset is `make test-slow`'s), and where
   the `default` search's time goes, stage by stage, in microseconds per transition, beside
   what 15,000 states/s would allow (`checker_stage_rows`).
7. What a user runs, as whole processes (`process_rows`): `brokerlab run` (monitors on, no
   trace) of M/M/1 and M/M/4 at rho 0.9, 200,000 customers, against SimPy's model in a
   process of its own, and `brokerlab run --trace` against the same run without. These compare
   the CPU time of the child processes (`getrusage(RUSAGE_CHILDREN)`), start-up included, the
   commands interleaved: on a busy machine, CPU time is what other load disturbs least.

Clocks (CPU time, and wall time for the model checker) are read here, and only here: this module
measures, it simulates nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import importlib.util
import io
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from broker import Address, Broker, SplitMix64
from model import check_trace
from model.checker import PRESETS, CheckBounds, check
from sim.run import Scheduler, Simulation, simulate
from sim.scenario import Scenario, default_scenario, parse_scenario, scenario_toml

Timed = Callable[[], tuple[float, float]]  # runs once; returns (seconds, figure of the work)

# The side-by-side rows time this process's CPU, as the whole-process rows time their children's:
# on a machine shared with other work, CPU time is what that work disturbs least.
_cpu = time.process_time


def mmc_scenario(customers: int, c: int, lam: float, mu: float, seed: int = 1) -> Scenario:
    """M/M/c as a brokerlab scenario: a `shared` pool of c (one queue, idle members pull)."""
    return parse_scenario(
        {
            "seed": seed,
            "until": customers / lam * 10.0,
            "pool": [
                {
                    "name": "servers",
                    "size": c,
                    "strategy": "shared",
                    "service": {"dist": "exponential", "mean": 1.0 / mu},
                }
            ],
            "client": [
                {
                    "name": "customers",
                    "target": "pool:servers",
                    "arrivals": {"process": "poisson", "rate": lam},
                    "timeout": 1e9,
                    "count": customers,
                }
            ],
        },
        "<bench>",
    )


def broker_mmc(customers: int, c: int, lam: float, mu: float, trace: bool = False) -> Timed:
    def once() -> tuple[float, float]:
        out = io.StringIO() if trace else None
        sim = Simulation(mmc_scenario(customers, c, lam, mu), trace=out, monitors=False)
        start = _cpu()
        result = sim.run()
        elapsed = _cpu() - start
        return elapsed, result.summary["latency"]["mean"]

    return once


# SimPy's M/M/c, as source: run in this process (`simpy_mmc`) and as a process of its own
# (`process_rows`), the same model both ways. `mmc` returns the mean response time.
SIMPY_MMC = """
import random
import simpy


def mmc(customers, c, lam, mu, seed=1):
    rng = random.Random(seed)
    env = simpy.Environment()
    servers = simpy.Resource(env, capacity=c)
    total = [0.0]

    def customer():
        arrived = env.now
        with servers.request() as turn:
            yield turn
            yield env.timeout(rng.expovariate(mu))
        total[0] += env.now - arrived

    def source():
        for _ in range(customers):
            yield env.timeout(rng.expovariate(lam))
            env.process(customer())

    env.process(source())
    env.run()
    return total[0] / customers
"""


def simpy_mmc(customers: int, c: int, lam: float, mu: float) -> Timed:
    space: dict[str, Any] = {}
    exec(SIMPY_MMC, space)  # our own source, above
    mmc = space["mmc"]

    def once() -> tuple[float, float]:
        start = _cpu()
        mean = mmc(customers, c, lam, mu)
        return _cpu() - start, mean

    return once


def heapq_mmc(customers: int, c: int, lam: float, mu: float) -> Timed:
    """The bare loop: a heap of (time, seq, kind, arrival time), a FIFO, a count of idle servers."""

    def once() -> tuple[float, float]:
        rng = random.Random(1)
        start = _cpu()
        heap: list[tuple[float, int, int, float]] = [(rng.expovariate(lam), 0, 0, 0.0)]
        waiting: deque[float] = deque()
        idle, seq, arrived, total = c, 1, 0, 0.0
        push, pop = heapq.heappush, heapq.heappop
        while heap:
            now, _, kind, came = pop(heap)
            if kind == 0:  # arrival
                arrived += 1
                if arrived < customers:
                    push(heap, (now + rng.expovariate(lam), seq, 0, 0.0))
                    seq += 1
                if idle:
                    idle -= 1
                    push(heap, (now + rng.expovariate(mu), seq, 1, now))
                    seq += 1
                else:
                    waiting.append(now)
            else:  # departure
                total += now - came
                if waiting:
                    push(heap, (now + rng.expovariate(mu), seq, 1, waiting.popleft()))
                    seq += 1
                else:
                    idle += 1
        return _cpu() - start, total / customers

    return once


def routing(kind: str, sends: int) -> Timed:
    """`sends` one-way sends through the sans-IO core (no scheduler work), mailboxes unbounded."""

    def once() -> tuple[float, float]:
        b: Broker[int] = Broker(Scheduler(), SplitMix64(1))
        strategy = kind.removeprefix("pool:")
        if kind.startswith("pool:"):
            b.create_pool("p", strategy)
        ids = [
            b.register(f"w{i}", pools=["p"] if kind.startswith("pool:") else ()) for i in range(8)
        ]
        to = {
            "id": Address.id(ids[3]),
            "name": Address.named("w3"),
        }.get(kind, Address.pool("p"))
        send = b.send
        start = _cpu()
        for i in range(sends):
            send(None, to, i)
        return _cpu() - start, float(sends)

    return once


def dict_deque(sends: int) -> Timed:
    """The floor for an enqueue: a dict lookup and a deque append of a (id, payload) pair."""

    def once() -> tuple[float, float]:
        queues: dict[str, deque[tuple[int, int]]] = {f"w{i}": deque() for i in range(8)}
        start = _cpu()
        for i in range(sends):
            queues["w3"].append((i, i))
        return _cpu() - start, float(sends)

    return once


def interleave(runs: int, sides: dict[str, Timed]) -> dict[str, tuple[float, float]]:
    """Warm each side up once, then alternate them `runs` times; median seconds and figure."""
    for once in sides.values():
        once()
    times: dict[str, list[float]] = {name: [] for name in sides}
    figure: dict[str, float] = {}
    for _ in range(runs):
        for name, once in sides.items():
            elapsed, fig = once()
            times[name].append(elapsed)
            figure[name] = fig
    return {name: (statistics.median(ts), figure[name]) for name, ts in times.items()}


def run_all(scale: float, runs: int, progress: Callable[[str], None]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    n = max(200, int(100_000 * scale))
    for label, c, lam in (("M/M/1", 1, 0.8), ("M/M/c (c=4)", 4, 3.0)):
        progress(f"{label}: brokerlab vs SimPy vs heapq, {n} customers")
        sides = {"brokerlab": broker_mmc(n, c, lam, 1.0), "heapq": heapq_mmc(n, c, lam, 1.0)}
        if importlib.util.find_spec("simpy") is not None:
            sides["simpy"] = simpy_mmc(n, c, lam, 1.0)
        got = interleave(runs, sides)
        ours = n / got["brokerlab"][0]
        # Issue 17's target against SimPy; the bare loop is the floor, a figure to read.
        for peer, target in (("simpy", "at least 1.5x"), ("heapq", "within 4x of peer")):
            if peer not in got:
                continue
            theirs = n / got[peer][0]
            rows.append({
                "row": f"{label} customers/s vs {peer}", "brokerlab": ours, "peer": theirs,
                "ratio": ours / theirs, "target": target,
                "note": f"mean response {got['brokerlab'][1]:.3f} vs {got[peer][1]:.3f}",
            })  # fmt: skip
    sends = max(1000, int(200_000 * scale))
    for kind in ("id", "name", "pool:round_robin", "pool:least_loaded", "pool:power_of_two"):
        progress(f"routing: {kind}, {sends} sends")
        got = interleave(runs, {"brokerlab": routing(kind, sends), "dict+deque": dict_deque(sends)})
        ours, theirs = sends / got["brokerlab"][0], sends / got["dict+deque"][0]
        rows.append({
            "row": f"routing sends/s to {kind} vs dict+deque", "brokerlab": ours,
            "peer": theirs, "ratio": ours / theirs, "target": "within 3x of peer", "note": "",
        })  # fmt: skip
    progress(f"tracing overhead: M/M/c, {n} customers")
    got = interleave(
        runs, {"off": broker_mmc(n, 4, 3.0, 1.0), "on": broker_mmc(n, 4, 3.0, 1.0, True)}
    )
    rows.append({
        "row": "M/M/c trace on vs off (slowdown)", "brokerlab": got["on"][0], "peer": got["off"][0],
        "ratio": got["on"][0] / got["off"][0], "target": "at most 2.0x",
        "note": "seconds with the trace / without",
    })  # fmt: skip
    rows += process_rows(progress, scale, runs, importlib.util.find_spec("simpy") is not None)
    rows += conform_rows(progress, scale)
    rows += checker_rows(progress, full=scale >= 1.0)
    rows += checker_stage_rows(progress, full=scale >= 1.0)
    return rows


def child_cpu(command: list[str]) -> float:
    """CPU seconds (user + system) of one child process running `command` to its end: what it
    costs a user, start-up and imports included, and what a busy machine disturbs least.

    The child may write bytecode even where this process may not (PYTHONDONTWRITEBYTECODE): an
    installed package has its modules compiled (pip compiles them, as it did SimPy's), so the
    warm-up run compiles brokerlab's once, as a user's first run would, and no run after it
    pays for compiling every module from source."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def process_rows(
    progress: Callable[[str], None], scale: float, runs: int, simpy: bool = True
) -> list[dict[str, Any]]:
    """The command a user runs, as a whole process: `brokerlab run` (monitors on, no trace) of
    M/M/1 and M/M/4 at rho 0.9 against SimPy's model in a process of its own, and `brokerlab run
    --trace` against the same run without. CPU time of each child, the sides interleaved,
    medians of `runs`."""
    n = max(200, int(200_000 * scale))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, c, lam in (("M/M/1", 1, 0.9), ("M/M/4", 4, 3.6)):
            path = os.path.join(tmp, f"mm{c}.toml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(scenario_toml(mmc_scenario(n, c, lam, 1.0)))
            run = [sys.executable, "-m", "sim", "run", path, "--quiet"]
            commands = {"run": run}
            if c == 1:
                trace = os.path.join(tmp, "trace.jsonl")
                commands["traced"] = [*run, "--trace", trace, "--force"]
            if simpy:
                script = f"{SIMPY_MMC}\nmmc({n}, {c}, {lam}, 1.0)\n"
                commands["simpy"] = [sys.executable, "-c", script]
            progress(f"{label}, whole processes: {', '.join(commands)}, {n} customers")
            cpu = interleave_cpu(runs, commands)
            if simpy:
                rows.append({
                    "row": f"{label} `brokerlab run` vs SimPy, whole process (CPU s)",
                    "brokerlab": cpu["run"], "peer": cpu["simpy"],
                    "ratio": cpu["simpy"] / cpu["run"], "target": "at least 1.0x",
                    "note": f"{n} customers, rho 0.9, monitors on; ratio = SimPy's time / ours",
                })  # fmt: skip
            if "traced" in cpu:
                rows.append({
                    "row": f"{label} `brokerlab run --trace` vs without, whole process (CPU s)",
                    "brokerlab": cpu["traced"], "peer": cpu["run"],
                    "ratio": cpu["traced"] / cpu["run"], "target": "at most 2.0x",
                    "note": f"{n} customers; the trace to a file; ratio = slowdown",
                })  # fmt: skip
    return rows


def interleave_cpu(runs: int, commands: dict[str, list[str]]) -> dict[str, float]:
    """Each command once to warm the disk cache, then all in turn `runs` times: median CPU s.
    One run is a smoke run (the tests' tiny bench): no warm-up then."""
    for command in commands.values() if runs > 1 else ():
        child_cpu(command)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            times[name].append(child_cpu(command))
    return {name: statistics.median(ts) for name, ts in times.items()}


# The wide preset explores a few million states; its rates are measured on its first states.
WIDE_LIMIT = 100_000


def checker_rows(progress: Callable[[str], None], full: bool = True) -> list[dict[str, Any]]:
    """States per second of the `default` and `wide` presets' checks, with and without
    symmetry (`wide` on its first `WIDE_LIMIT` states per bounds); not `full`: on tiny bounds,
    for a smoke test."""
    tiny = (CheckBounds(clients=1, members=2, faults=("crash",)),)
    presets = {"default": PRESETS["default"], "wide": PRESETS["wide"]} if full else {"tiny": tiny}
    rows = []
    for name, bounds in presets.items():
        limit = WIDE_LIMIT if name == "wide" else None
        for symmetry in (True, False):
            progress(f"model checker, preset {name}, symmetry {'on' if symmetry else 'off'}")
            states = transitions = 0
            seconds = 0.0
            for b in bounds:
                r = check(b, symmetry=symmetry, clock=time.perf_counter, max_states=limit)
                states, transitions, seconds = (
                    states + r.states, transitions + r.transitions, seconds + r.seconds
                )  # fmt: skip
            first = f"first {limit:,} states of each of {len(bounds)} bounds, " if limit else ""
            rows.append({
                "row": f"model checker states/s, {name} (symmetry {'on' if symmetry else 'off'})",
                "brokerlab": states / seconds, "peer": None, "ratio": None,
                "target": ">= 15,000 states/s", "note": f"{first}{states:,} states, "
                f"{transitions:,} transitions, {seconds:.1f} s",
            })  # fmt: skip
    return rows


# The model checker's stages, as `checker_stage_rows` times them: (label, module, name). A stage
# is a function the search calls; "menu and choices" is successors' time outside `apply`.
STAGES = (
    ("successors: menu and choices", "model.checker", "successors"),
    ("successors: apply (the semantics)", "model._menu", "apply"),
    ("properties (check_transition)", "model.checker", "check_transition"),
    ("normalize (time shift)", "model.checker", "normalize"),
    ("key (canonical form, symmetry)", "model._abstraction", "Keys.key"),
)


def checker_stage_rows(progress: Callable[[str], None], full: bool = True) -> list[dict[str, Any]]:
    """Where the checker's time goes: the `default` preset's search (symmetry on) with each
    stage's function wrapped in a timer for the one run (the search is `check`'s own), in
    microseconds per transition; the rest is the search loop (seen-set, graph, obligations,
    eventually-check). The clock calls add about 0.1 us per timed call. Not `full`: tiny
    bounds, for a smoke test."""
    from unittest import mock

    bounds = PRESETS["default"][0] if full else CheckBounds(clients=1, members=2, faults=("crash",))
    spent = {label: 0.0 for label, _, _ in STAGES}
    patches = []
    for label, module, name in STAGES:
        owner: Any = importlib.import_module(module)
        attr = name
        if "." in name:
            cls, attr = name.split(".")
            owner = getattr(owner, cls)
        patches.append(mock.patch.object(owner, attr, _timed(getattr(owner, attr), label, spent)))
    progress("model checker stages: the default preset, each stage timed")
    for p in patches:
        p.start()
    try:
        report = check(bounds, clock=time.perf_counter)
    finally:
        for p in reversed(patches):
            p.stop()
    spent["successors: menu and choices"] -= spent["successors: apply (the semantics)"]
    per = 1e6 / report.transitions
    budget = 1e6 / (15_000 * report.transitions / report.states)
    rows = [{
        "row": f"checker stage: {label}", "brokerlab": seconds * per,
        "peer": None, "ratio": None, "target": "profile",
        "note": f"us per transition; {seconds / report.seconds:.0%} of the search",
    } for label, seconds in spent.items()]  # fmt: skip
    rest = report.seconds - sum(spent.values())
    rows.append({
        "row": "checker stage: the rest (seen-set, graph, obligations, eventually)",
        "brokerlab": rest * per, "peer": None, "ratio": None, "target": "profile",
        "note": f"us per transition; {rest / report.seconds:.0%} of the search",
    })  # fmt: skip
    rows.append({
        "row": "checker: all stages, per transition", "brokerlab": report.seconds * per,
        "peer": budget, "ratio": None, "target": "profile",
        "note": f"peer = the us per transition 15,000 states/s allows ({report.states:,} states, "
        f"{report.transitions:,} transitions)",
    })  # fmt: skip
    return rows


def _timed(fn: Callable[..., Any], label: str, spent: dict[str, float]) -> Callable[..., Any]:
    clock = time.perf_counter

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = clock()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[label] += clock() - start

    return timed


def conform_rows(progress: Callable[[str], None], scale: float) -> list[dict[str, Any]]:
    """Events per second of `brokerlab conform` on the default scenario's trace against the
    simulator's on the run that writes it (the same events), side by side."""
    scenario = default_scenario()
    if scale < 1.0:
        scenario = dataclasses.replace(scenario, until=max(1.0, scenario.until * scale))
    written = io.StringIO()
    simulate(scenario, trace=written)
    lines = written.getvalue().splitlines()
    events = check_trace(lines, "bench").events

    def sim_once() -> tuple[float, float]:
        start = _cpu()
        simulate(scenario, trace=io.StringIO())
        return _cpu() - start, events

    def conform_once(fast: bool) -> tuple[float, float]:
        start = _cpu()
        verdict = check_trace(lines, "bench", fast=fast)
        elapsed = _cpu() - start
        assert verdict.ok, verdict.illegal
        return elapsed, verdict.events

    progress(f"conform vs the simulator: the default scenario, {events} events")
    got = interleave(
        5,
        {
            "conform": lambda: conform_once(True),
            "checker": lambda: conform_once(False),
            "simulator": sim_once,
        },
    )
    ours, theirs = events / got["conform"][0], events / got["simulator"][0]
    alone = events / got["checker"][0]
    return [{
        "row": "conform events/s vs the simulator writing the trace", "brokerlab": ours,
        "peer": theirs, "ratio": ours / theirs, "target": "at least 1.0x",
        "note": f"default scenario, {events} events, {len(lines)} lines",
    }, {
        "row": "conform without its fast path (the model's checker alone) vs the simulator",
        "brokerlab": alone, "peer": theirs, "ratio": alone / theirs, "target": "profile",
        "note": "the same run: what the fast path (model/_replay.py, model/_fast.py) gains",
    }]  # fmt: skip


def meets(row: dict[str, Any]) -> str:
    ratio, target = row["ratio"], row["target"]
    if target == ">= 15,000 states/s":
        return "yes" if row["brokerlab"] >= 15_000 else "NO"
    if ratio is None or target == "profile":
        return "n/a"
    ok = {
        "within 4x of peer": ratio >= 0.25,
        "within 3x of peer": ratio >= 1 / 3,
        "at most 2.0x": ratio <= 2.0,
        "at least 1.0x": ratio >= 1.0,
        "at least 1.5x": ratio >= 1.5,
    }[target]
    return "yes" if ok else "NO"


def markdown(rows: list[dict[str, Any]]) -> str:
    def num(x: float | None) -> str:
        return "-" if x is None else f"{x:,.0f}" if x >= 100 else f"{x:.3f}"

    lines = [
        "| row | brokerlab | peer | ratio | target | met | note |",
        "|---|---:|---:|---:|---|---|---|",
    ]
    for r in rows:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        lines.append(
            f"| {r['row']} | {num(r['brokerlab'])} | {num(r['peer'])} | {ratio} | "
            f"{r['target']} | {meets(r)} | {r['note']} |"
        )
    return "\n".join(lines)


def machine() -> str:
    import os

    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"{python}, {platform.machine()}, {os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="work per row (1.0 = full)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per side (median)")
    parser.add_argument("--out", default="bench-results.json", help="JSON results file")
    args = parser.parse_args(argv)
    if not (0 < args.scale <= 10) or args.runs < 1:
        parser.error("--scale must be in (0, 10] and --runs >= 1")

    def progress(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    rows = run_all(args.scale, args.runs, progress)
    report = {"machine": machine(), "scale": args.scale, "runs": args.runs, "rows": rows}
    with open(args.out, "w", encoding="utf-8") as out:
        json.dump(report, out, indent=2, sort_keys=True)
        out.write("\n")
    print(f"brokerlab bench on {report['machine']}; median of {args.runs} runs\n")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
