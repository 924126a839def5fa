"""The golden vectors (sim/vectors/corpus/): regenerated from the reference they are unchanged,
every numbered rule of the broker's spec has one, the reference passes them in process and
through the port protocol, every mutant of the catalogue fails some, and the rule-coverage
matrix (docs/rule-coverage.md) is the one the code generates."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from broker import Broker
from sim.checking.mutants import MUTANTS
from sim.cli import main
from sim.cli.vectors import MATRIX, matrix_text
from sim.port import PortFactory
from sim.vectors import (
    CORPUS,
    explain,
    first_difference,
    read_index,
    regenerate,
    rule_key,
    run_vector,
    spec_rules,
    vectors,
    verify,
)

ROOT = Path(__file__).resolve().parent.parent
ALL = vectors()


def test_the_corpus_is_what_the_reference_writes_now() -> None:
    """Golden traces and the index cannot rot: regenerate and compare every byte."""
    files = regenerate()
    assert len(files) == len(ALL) + 1 >= 100
    for name, text in files.items():
        stored = (CORPUS / name).read_text(encoding="utf-8")
        assert stored == text, f"{name} changed: run `brokerlab vectors regen` and review"
    assert sorted(p.name for p in CORPUS.glob("*.jsonl")) == sorted(v.golden.name for v in ALL), (
        "a golden trace without its scenario"
    )


def test_every_rule_of_the_broker_has_a_vector() -> None:
    """Sections 1 to 9 (the broker's rules): a vector executes code tagged with the rule or
    was written for it (1.5 and 1.7 have no code to tag)."""
    rules = [r for r in spec_rules(ROOT / "docs" / "spec.md") if rule_key(r)[0] <= 9]
    assert len(rules) >= 60
    index = read_index()
    covered = {r for entry in index.values() for r in entry["rules"]}
    named = {entry["rule"] for entry in index.values()}
    assert [r for r in rules if r not in covered | named] == []
    assert [r for r in rules if r not in covered] == ["1.5", "1.7"]
    assert named <= set(rules), "a vector named after a rule the spec does not have"


def test_the_reference_passes_every_vector_in_process_and_through_the_protocol() -> None:
    """Spec 10.6: a broker passes a vector when its trace is the golden one, byte for byte."""
    index = read_index()
    here = verify(Broker, ALL, index)
    assert {o.status for o in here} == {"pass"}
    serve = PortFactory(f"{sys.executable} -m sim.port")
    try:
        there = verify(serve, ALL, index, serve.features)
    finally:
        serve.close()
    assert [o.vector.name for o in there if o.status != "pass"] == []
    for o in there:  # and strictly: every byte after the header, free text included
        golden = o.vector.golden.read_text(encoding="utf-8").splitlines()[1:]
        assert o.trace.splitlines()[1:] == golden, o.vector.name


def test_every_golden_trace_conforms() -> None:
    """Spec 10.2: the model accepts every golden trace, operation by operation."""
    import model

    for vector in ALL:
        verdict = model.check_trace(vector.golden.read_text(encoding="utf-8").splitlines())
        assert verdict.ok, f"{vector.name}: {verdict.illegal}"


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_every_mutant_fails_some_vector(name: str) -> None:
    outcomes = verify(MUTANTS[name], ALL, read_index())
    failed = [o for o in outcomes if o.status == "fail"]
    assert failed, f"{name} passes every vector"


def test_a_difference_is_labelled_with_its_operation_and_rule() -> None:
    vector = next(v for v in ALL if v.name.startswith("5_5-reply-at-deadline"))
    golden = vector.golden.read_text(encoding="utf-8")
    mutant = run_vector(vector, MUTANTS["late_reply_delivered"])
    diff = first_difference(mutant, golden)
    assert diff is not None and diff.line > 1
    text = explain(diff, golden)
    assert "port:" in text and "reference:" in text and "spec rule: 5." in text
    assert first_difference(golden.replace('"reference"', '"someone"', 1), golden) is None


def test_only_the_wording_of_free_text_fields_may_differ() -> None:
    """Spec 8.4, 10.6: `expected` and `reason` are free text; every other byte counts."""
    head = '{"broker":"reference","format":"brokerlab-trace","seed":1}'
    line = (
        '{"error":"invalid_address","error_fields":{"expected":"%s","value":"%s"},"op":"send",'
        '"result":null,"seq":1,"t":0.0}'
    )
    ours = head + "\n" + line % ("a name is ...", "name:a b") + "\n"
    same = head + "\n" + line % ("other words", "name:a b") + "\n"
    other = head + "\n" + line % ("a name is ...", "name:a  b") + "\n"
    assert first_difference(same, ours) is None
    diff = first_difference(other, ours)
    assert diff is not None and diff.line == 2


def test_vectors_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vectors", "list"]) == 0
    assert f"{len(ALL)} vectors" in capsys.readouterr().out
    assert main(["vectors", "verify", "5.5", "--broker", "inclusive_deadline", "-v"]) == 1
    out = capsys.readouterr().out
    assert "FAIL 5_5-" in out and "spec rule:" in out and "1 failed" in out
    assert main(["vectors", "verify", "4.4"]) == 0
    assert "0 failed" in capsys.readouterr().out
    assert main(["vectors", "verify", "9.9"]) == 2
    assert main(["vectors", "regen", "--check"]) == 0
    vector = next(v for v in ALL if v.name.startswith("5_5-reply-at-deadline"))
    port = tmp_path / "port.jsonl"
    port.write_text(run_vector(vector, MUTANTS["inclusive_deadline"]))
    assert main(["diff", str(port), str(vector.golden)]) == 1
    out = capsys.readouterr().out
    assert "first difference at line" in out and "spec rule:" in out
    assert main(["diff", str(vector.golden), str(vector.golden)]) == 0
    assert main(["diff", str(vector.path), str(vector.golden)]) == 2  # a .toml is no trace


def test_the_rule_coverage_matrix_is_up_to_date() -> None:
    text, uncovered = matrix_text()
    assert MATRIX.read_text(encoding="utf-8") == text, (
        "run: brokerlab vectors matrix --out docs/rule-coverage.md --force"
    )
    assert all(rule_key(r)[0] >= 10 for r in uncovered), uncovered
