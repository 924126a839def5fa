"""Checking the broker against the model: the harness behind `brokerlab check` and `mutants`.

Import the module you need; only `lockstep` and `hunt` need Hypothesis (a dev extra):

- `sim.checking.bridge`: the one mapping model action <-> broker call <-> script step;
- `sim.checking.mutants`: the mutation catalogue, deliberately broken brokers (no Hypothesis);
- `sim.checking.exhaustive`: the model checker with every transition replayed on a broker,
  and counterexamples written as scenario scripts;
- `sim.checking.lockstep`: the Hypothesis lockstep machine (broker and model side by side);
- `sim.checking.hunt`: the catalogue hunt, the lockstep machine against every mutant.

This package's `__init__` imports nothing, so the simulator can use the bridge (for scripts)
without loading the checker or Hypothesis.
"""
