"""Which spec rules a run applies, and the rule-coverage matrix (docs/rule-coverage.md).

The reference is tagged next to the code that applies each rule of docs/spec.md:

    # rule 5.5: a reply at now >= deadline is late
    if self.timers.now >= pending.deadline:

A marker is a comment line; it tags the next line of code. `rules_applied(run)` runs `run()`
with a line tracer on broker/ and returns the rules whose tagged lines executed: no index kept
by hand says what a vector covers. The matrix adds, for every numbered rule, the tests that cite
it (`spec N.N` in a test's source), the model checker's properties (`model.PROPERTY_RULES`) and
the mutants that break it (`rules` of each mutant), and flags a rule nothing covers.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import broker

T = TypeVar("T")
MARKER = re.compile(r"^\s*# rules? (\d+(?:\.\d+)+(?:, \d+(?:\.\d+)+)*): .+$")
BROKER_DIR = Path(broker.__file__).resolve().parent
_RULE_LINE = re.compile(r"^(\d+\.\d+(?:\.\d+)?)\s+\S")  # a rule starts a line: `5.5 The ...`
_CITE = re.compile(
    r"\bspec ((?:\d+\.\d+(?:\.\d+)?)(?:(?:, | and | or |/)\d+\.\d+(?:\.\d+)?)*)", re.IGNORECASE
)
_NUMBER = re.compile(r"\d+\.\d+(?:\.\d+)?")


def markers(directory: Path = BROKER_DIR) -> dict[tuple[str, int], tuple[str, ...]]:
    """{(file, line): rules} for every tagged line of the broker's code."""
    found: dict[tuple[str, int], tuple[str, ...]] = {}
    for path in sorted(directory.glob("*.py")):
        pending: list[str] = []
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = MARKER.match(text)
            if match:
                pending += match.group(1).split(", ")
            elif text.strip() and not text.lstrip().startswith("#") and pending:
                found[(str(path), number)] = tuple(pending)
                pending = []
    return found


def rules_applied(run: Callable[[], T]) -> tuple[T, list[str]]:
    """`run()`'s value and the rules whose tagged lines it executed, sorted by number."""
    tagged = markers()
    files = {file for file, _ in tagged}
    hit: set[str] = set()

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            rules = tagged.get((frame.f_code.co_filename, frame.f_lineno))
            if rules:
                hit.update(rules)
        return local

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        return local if frame.f_code.co_filename in files else None

    previous = sys.gettrace()  # a coverage tool's, under pytest-cov: put back after
    sys.settrace(tracer)
    try:
        value = run()
    finally:
        sys.settrace(previous)
    return value, sorted(hit, key=rule_key)


def rule_key(rule: str) -> tuple[int, ...]:
    return tuple(int(part) for part in rule.split("."))


def spec_rules(spec: Path) -> dict[str, str]:
    """Every numbered rule of docs/spec.md: {id: its first words}, in document order."""
    rules: dict[str, str] = {}
    for line in spec.read_text(encoding="utf-8").splitlines():
        match = _RULE_LINE.match(line)
        if match:
            rule = match.group(1)
            words = line[match.end(1) :].strip().split()
            rules.setdefault(rule, " ".join(words[:9]))
        heading = re.match(r"^### (\d+\.\d+) (.+)$", line)
        if heading:
            rules.setdefault(heading.group(1), heading.group(2))
    return dict(sorted(rules.items(), key=lambda kv: rule_key(kv[0])))


def cited_by_tests(tests: Path) -> dict[str, list[str]]:
    """{rule: [test_file::test_name, ...]} for every `spec N.N` citation in a test's source."""
    cited: dict[str, list[str]] = {}
    for path in sorted(tests.glob("test_*.py")):
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test"):
                continue
            text = ast.get_source_segment(source, node) or ""
            rules = {n for m in _CITE.finditer(text) for n in _NUMBER.findall(m.group(1))}
            for rule in rules:
                cited.setdefault(rule, []).append(f"{path.name}::{node.name}")
    return cited


def matrix(
    spec: Path,
    tests: Path,
    index: dict[str, Any],
    properties: dict[str, tuple[str, ...]],
    mutants: dict[str, tuple[str, ...]],
) -> tuple[str, list[str]]:
    """The rule-coverage matrix as Markdown, and the rules nothing covers."""
    rules = spec_rules(spec)
    by_tag: dict[str, list[str]] = {}
    by_name: dict[str, list[str]] = {}
    for name, entry in sorted(index.items()):
        for rule in entry["rules"]:
            by_tag.setdefault(rule, []).append(name)
        by_name.setdefault(entry["rule"], []).append(name)
    cited = cited_by_tests(tests)
    by_property = _invert(properties)
    by_mutant = _invert(mutants)
    lines = [
        "# Rule coverage",
        "",
        "Generated by `brokerlab vectors matrix` from the code; do not edit (a test regenerates",
        "it and fails if it changed). For every numbered rule of docs/spec.md:",
        "",
        "- **vectors**: golden vectors (sim/vectors/corpus/) during which the reference executed",
        "  code tagged with the rule (`# rule N.N` in broker/), and, after a `+`, vectors written",
        "  for the rule (named after it) that no tag shows;",
        "- **tests**: test functions citing `spec N.N`;",
        "- **properties**: the model checker's properties that check it (spec 11.3);",
        "- **mutants**: the catalogue's mutants that break it (sim/checking/mutants.py).",
        "",
        "| rule | says | vectors | tests | properties | mutants |",
        "|---|---|---|---|---|---|",
    ]
    uncovered = []
    for rule, words in rules.items():
        tagged = by_tag.get(rule, [])
        named = [v for v in by_name.get(rule, []) if v not in tagged]
        tests_ = cited.get(rule, [])
        props = by_property.get(rule, [])
        muts = by_mutant.get(rule, [])
        if not (tagged or named or tests_ or props or muts):
            uncovered.append(rule)
        vec = f"{len(tagged)}" + (f" + {len(named)}" if named else "")
        if not (tagged or named):
            vec = "**none**"
        lines.append(
            f"| {rule} | {words.replace('|', '/')} | {vec} | {len(tests_) or '-'} | "
            f"{', '.join(props) or '-'} | {', '.join(muts) or '-'} |"
        )
    lines += [
        "",
        f"{len(rules)} rules; {len(rules) - len(uncovered)} covered by something; "
        + (f"**not covered: {', '.join(uncovered)}**" if uncovered else "none uncovered."),
        "",
    ]
    return "\n".join(lines), uncovered


def _invert(table: dict[str, tuple[str, ...]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, rules in table.items():
        for rule in rules:
            out.setdefault(rule, []).append(name)
    return out
