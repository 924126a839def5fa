"""Example scenarios: TOML files shipped inside the package, one concept each.

The files in this directory are the only copy. A checkout runs them by path
(`brokerlab run sim/examples/mmc.toml`); an installed package carries them as package data
(pyproject.toml, `[tool.setuptools.package-data]`), and `brokerlab example NAME` prints one to
copy anywhere. Each file starts with `# NAME: what it shows`, the line `brokerlab example
--list` prints, then says how to run it. `default.toml` is `sim.default_scenario()` written
out (a test holds the two equal).

>>> example_names()[:3]
['default', 'counterexample', 'crash']
>>> load_example("mmc").pools[0].strategy
'shared'
"""

from __future__ import annotations

import difflib
from importlib import resources

from sim.scenario import Scenario, ScenarioError, loads_scenario

__all__ = ["example_description", "example_names", "example_text", "load_example"]

DEFAULT = "default"


def example_names() -> list[str]:
    """Every example's name: `default` first, then the others in alphabetical order."""
    names = [
        f.name.removesuffix(".toml")
        for f in resources.files(__name__).iterdir()
        if f.name.endswith(".toml")
    ]
    return sorted(names, key=lambda name: (name != DEFAULT, name))


def example_text(name: str = DEFAULT) -> str:
    """The TOML text of example `name`, comments included. Raises `ScenarioError` naming the
    examples there are when there is no such example."""
    names = example_names()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f'did you mean "{close[0]}"? ' if close else ""
        raise ScenarioError(f'no example "{name}" ({hint}there are: {", ".join(names)})')
    return resources.files(__name__).joinpath(f"{name}.toml").read_text(encoding="utf-8")


def example_description(name: str) -> str:
    """What example `name` shows: its first line, after `# NAME: `."""
    first = example_text(name).partition("\n")[0]
    return first.removeprefix(f"# {name}:").strip()


def load_example(name: str = DEFAULT) -> Scenario:
    """Example `name` as a `Scenario`, ready for `simulate`."""
    return loads_scenario(example_text(name), f"sim/examples/{name}.toml")
