"""The architecture as a test (README.md, "Architecture"): imports point one way.

broker/ imports nothing of model/ or sim/, model/ nothing of broker/ or sim/; inside sim/ each
room imports only from the rooms below it; only the lockstep harness imports Hypothesis at module
level. Read from the source (AST), so a lazy import inside a function counts as well, except the
one documented case: `brokerlab mutants` imports Hypothesis when it runs.
"""

from __future__ import annotations

import ast
import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

# What each room may import of brokerlab's own packages (a prefix match on module names).
ALLOWED: dict[str, tuple[str, ...]] = {
    "broker": ("broker",),
    "model": ("model",),
    "sim.scenario": ("broker", "sim.scenario"),
    "sim.examples": ("broker", "sim.scenario", "sim.examples"),
    "sim.checking.bridge": ("broker", "model", "sim.scenario", "sim.checking.bridge"),
    "sim.run": ("broker", "model", "sim.scenario", "sim.checking.bridge", "sim.run"),
    "sim.lab": ("broker", "model", "sim.scenario", "sim.run", "sim.lab"),
    # the swarm drives ports too (sim.port imports nothing of sim.checking)
    "sim.checking": ("broker", "model", "sim.scenario", "sim.run", "sim.port", "sim.checking"),
    "sim.port": ("broker", "model", "sim.run", "sim.port"),
    "sim.vectors": ("broker", "model", "sim.scenario", "sim.run", "sim.port", "sim.vectors"),
    "sim.cli": ("broker", "model", "sim"),
    "sim.bench": ("broker", "model", "sim.scenario", "sim.run"),
    "sim": ("sim",),
}
OURS = ("broker", "model", "sim")
HYPOTHESIS_MODULES = {"sim.checking.lockstep", "sim.checking.hunt"}


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def room(module: str) -> str:
    """The longest key of ALLOWED that `module` is in."""
    found = [k for k in ALLOWED if module == k or module.startswith(k + ".")]
    return max(found, key=len)


def imports(source: str) -> list[tuple[str, bool]]:
    """(module, at module level) for every import."""
    tree = ast.parse(source)
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, id(node) in top))
    return found


def sources() -> list[pathlib.Path]:
    return sorted(p for pkg in OURS for p in (ROOT / pkg).rglob("*.py"))


def test_every_room_imports_only_the_rooms_below_it() -> None:
    """Spec 10.1 among them: the trace checker (model/) imports nothing of broker/ or sim/."""
    bad = []
    for path in sources():
        mod = module_name(path)
        allowed = ALLOWED[room(mod)]
        for name, _ in imports(path.read_text()):
            if name.split(".")[0] not in OURS:
                continue
            if not any(name == a or name.startswith(a + ".") for a in allowed):
                bad.append(f"{mod} imports {name}")
    assert bad == []


def test_only_the_lockstep_harness_imports_hypothesis_at_module_level() -> None:
    importers = {
        module_name(path)
        for path in sources()
        for name, at_top in imports(path.read_text())
        if name.split(".")[0] == "hypothesis" and at_top
    }
    assert importers == HYPOTHESIS_MODULES


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("sim.run._runner", "from sim.lab import sweep"),
        ("sim.scenario._load", "from sim.run import simulate"),
        ("model._semantics", "import broker"),
        ("broker._broker", "from sim.run import Scheduler"),
        ("sim.checking.bridge", "from sim.run import simulate"),
    ],
)
def test_the_rule_catches_an_upward_import(module: str, source: str) -> None:
    allowed = ALLOWED[room(module)]
    names = [n for n, _ in imports(source)]
    assert not all(any(n == a or n.startswith(a + ".") for a in allowed) for n in names)


PRIVATE = re.compile(r"\bsim(?:\.[A-Za-z]\w*)*\._\w+")


def test_notebooks_and_docs_use_public_names_only() -> None:
    """Notebooks and docs show users the public API: no `sim._x` or `sim.run._x` names."""
    found = []
    for path in [ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("notebooks/*.ipynb")]:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".ipynb":
            cells = json.loads(text)["cells"]
            text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        found += [f"{path.name}: {m.group(0)}" for m in PRIVATE.finditer(text)]
    assert found == []


@pytest.mark.parametrize(
    "text", ["from sim._runner import x", "import sim.run._trace", "sim.lab._sweep"]
)
def test_the_private_name_pattern_matches(text: str) -> None:
    assert PRIVATE.search(text)
