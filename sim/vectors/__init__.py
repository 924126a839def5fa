"""Golden conformance vectors: small scenarios, the reference's trace of each, the rules they
exercise, and the rule-coverage matrix (docs/port-protocol.md, docs/rule-coverage.md).

`brokerlab vectors list|verify|regen|matrix` and `brokerlab diff` are built on this package.
"""

from sim.vectors._corpus import (
    CORPUS,
    Difference,
    Outcome,
    Vector,
    first_difference,
    read_index,
    regenerate,
    run_vector,
    trace_features,
    vectors,
    verify,
)
from sim.vectors._coverage import markers, matrix, rule_key, rules_applied, spec_rules
from sim.vectors._diff import explain, rule_of

__all__ = [
    "CORPUS",
    "Difference",
    "Outcome",
    "Vector",
    "explain",
    "first_difference",
    "markers",
    "matrix",
    "read_index",
    "regenerate",
    "rule_key",
    "rule_of",
    "rules_applied",
    "run_vector",
    "spec_rules",
    "trace_features",
    "vectors",
    "verify",
]
