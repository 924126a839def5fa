"""The golden vectors: small scenarios with the reference's trace of each (sim/vectors/corpus/).

A vector is `corpus/<rule>-<slug>.toml` (a scenario, usually a `[[script]]`; `<rule>` is the spec
rule it was written for, dots as underscores) and `corpus/<rule>-<slug>.jsonl`, the trace the
reference writes for it. `corpus/index.json` records, per vector, the port features it needs
(computed from its operations) and the spec rules the reference applied while running it
(computed from the `# rule` tags in broker/, sim/vectors/_coverage.py). All three are generated
by `brokerlab vectors regen` from the `.toml` files; a test regenerates them and fails if any
byte changed, so the corpus cannot rot silently.

Verifying a broker runs each vector's scenario on it and compares its trace with the golden one
byte for byte, the header's `broker` aside.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from broker import Broker, BrokerFactory
from model import FREE_TEXT
from sim.port import op_features
from sim.run import simulate
from sim.scenario import Scenario, load_scenario

CORPUS = Path(__file__).resolve().parent / "corpus"
INDEX = "index.json"


@dataclass(frozen=True, slots=True)
class Vector:
    """One golden vector: its scenario file and golden trace."""

    name: str  # the file stem, e.g. 5_5-reply-at-deadline
    path: Path  # the .toml

    @property
    def rule(self) -> str:
        """The spec rule the vector was written for (its file name's prefix)."""
        return self.name.split("-", 1)[0].replace("_", ".")

    @property
    def golden(self) -> Path:
        return self.path.with_suffix(".jsonl")

    @property
    def summary(self) -> str:
        """The first comment line of the scenario file: what the vector shows."""
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if line.startswith("#"):
                return line.lstrip("# ").strip()
        return ""

    def scenario(self) -> Scenario:
        return load_scenario(str(self.path))


def vectors(corpus: Path = CORPUS, only: Iterable[str] = ()) -> list[Vector]:
    """The corpus in name order; with `only`, the vectors whose name starts with one of them
    (a rule id like `5.5` selects the vectors written for it)."""
    found = [Vector(p.stem, p) for p in sorted(corpus.glob("*.toml"))]
    wanted = [w.replace(".", "_") for w in only]
    if wanted:
        found = [v for v in found if any(v.name.startswith(w) for w in wanted)]
    return found


def run_vector(vector: Vector, factory: BrokerFactory = Broker) -> str:
    """The trace `factory`'s broker writes for the vector's scenario."""
    out = io.StringIO()
    simulate(vector.scenario(), trace=out, broker_factory=factory)
    return out.getvalue()


def trace_features(trace: str) -> list[str]:
    """The port features a trace's operations need (docs/port-protocol.md, Features)."""
    needs: set[str] = set()
    for line in trace.splitlines()[1:]:
        record = json.loads(line)
        if "op" in record:
            needs |= op_features(record["op"], record)
        elif "choice" in record:
            needs.add("transit")
    return sorted(needs)


def _without_broker(header: str) -> dict[str, Any]:
    head: dict[str, Any] = json.loads(header)
    head.pop("broker", None)
    return head


@dataclass(frozen=True, slots=True)
class Difference:
    """The first line where a broker's trace and the golden one differ (1-based)."""

    line: int
    port: str | None  # None: the broker's trace ended first
    reference: str | None  # None: the golden trace ended first


def first_difference(port: str, reference: str) -> Difference | None:
    """Compare two traces of one scenario: headers without `broker`, then every line byte for
    byte, except the wording of the free-text error fields (spec 8.4: `expected`, `reason`),
    which is the implementation's own."""
    mine, theirs = port.splitlines(), reference.splitlines()
    if not mine or not theirs:
        return Difference(1, mine[0] if mine else None, theirs[0] if theirs else None)
    if _without_broker(mine[0]) != _without_broker(theirs[0]):
        return Difference(1, mine[0], theirs[0])
    for i in range(1, max(len(mine), len(theirs))):
        a = mine[i] if i < len(mine) else None
        b = theirs[i] if i < len(theirs) else None
        if a != b and not (a is not None and b is not None and _same_but_wording(a, b)):
            return Difference(i + 1, a, b)
    return None


def _same_but_wording(a: str, b: str) -> bool:
    """Two `op` lines that differ only in the text of free-text error fields."""
    if '"error_fields"' not in a or '"error_fields"' not in b:
        return False
    x, y = json.loads(a), json.loads(b)
    fx, fy = x.get("error_fields"), y.get("error_fields")
    if not isinstance(fx, dict) or not isinstance(fy, dict) or fx.keys() != fy.keys():
        return False
    for key in FREE_TEXT:
        if isinstance(fx.get(key), str) and isinstance(fy.get(key), str):
            fx[key] = fy[key]
    return bool(x == y)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one vector went: `pass`, `fail` (with the difference) or `skip` (missing features)."""

    vector: Vector
    status: str
    difference: Difference | None = None
    missing: tuple[str, ...] = ()
    trace: str = ""


def verify(
    factory: BrokerFactory,
    chosen: list[Vector],
    index: dict[str, Any],
    features: frozenset[str] | None = None,
) -> list[Outcome]:
    """Run every chosen vector on `factory`'s broker and compare with its golden trace.
    With `features` (a port's), a vector that needs more is skipped."""
    outcomes = []
    for vector in chosen:
        needs = index.get(vector.name, {}).get("features", [])
        missing = tuple(f for f in needs if features is not None and f not in features)
        if missing:
            outcomes.append(Outcome(vector, "skip", missing=missing))
            continue
        trace = run_vector(vector, factory)
        golden = vector.golden.read_text(encoding="utf-8")
        diff = first_difference(trace, golden)
        outcomes.append(Outcome(vector, "pass" if diff is None else "fail", diff, trace=trace))
    return outcomes


def read_index(corpus: Path = CORPUS) -> dict[str, Any]:
    path = corpus / INDEX
    if not path.exists():
        return {}
    index: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return index


def regenerate(corpus: Path = CORPUS) -> dict[str, str]:
    """Every golden file as the reference writes it now: {file name: text}, index included."""
    from sim.vectors._coverage import rules_applied

    files: dict[str, str] = {}
    index: dict[str, Any] = {}
    for vector in vectors(corpus):
        trace, rules = rules_applied(partial(run_vector, vector))
        files[vector.golden.name] = trace
        index[vector.name] = {
            "rule": vector.rule,
            "summary": vector.summary,
            "features": trace_features(trace),
            "rules": rules,
            "lines": len(trace.splitlines()),
        }
    files[INDEX] = json.dumps(index, indent=1, sort_keys=True) + "\n"
    return files
