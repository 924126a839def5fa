"""Reading parsed TOML tables, with errors that name the file, the table and the key.

Every message has the form `{where}: {detail}`, where `where` is the file and the table
(`scenario.toml: [[pool]] #1 "workers"`) and `detail` names the key, dotted for inline sub-tables
(`key "service.mean": must be > 0, got 0.0`). Shared by `sim.scenario` and `sim.scenario._dists`.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Collection, Mapping, Sequence
from typing import TypeVar

from sim.scenario._limits import MAX_TIME

S = TypeVar("S", bound=str)

__all__ = ["ScenarioError", "Table", "describe"]


class ScenarioError(ValueError):
    """A scenario is unreadable or invalid; the message names the file, the table and the key."""


def describe(value: object) -> str:
    """A value as it would appear in TOML, plus its TOML type: `"abc" (a string)`."""
    if isinstance(value, bool):
        return f"{'true' if value else 'false'} (a boolean)"
    if isinstance(value, str):
        return f"{json.dumps(value)} (a string)"
    if isinstance(value, int):
        return f"{value} (an integer)"
    if isinstance(value, float):
        return f"{value!r} (a float)"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "an array"
    return f"{value!r} (a {type(value).__name__})"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class Table:
    """One table of the scenario: typed getters that raise `ScenarioError` naming the key.

    A key whose value is None counts as absent (TOML has no null; a dict from JSON may).
    """

    __slots__ = ("_data", "prefix", "where")

    def __init__(self, data: Mapping[str, object], where: str, prefix: str = "") -> None:
        self._data = data
        self.where = where
        self.prefix = prefix

    def error(self, key: str, problem: str) -> ScenarioError:
        return ScenarioError(f'{self.where}: key "{self.prefix}{key}": {problem}')

    def check_keys(self, allowed: Collection[str]) -> None:
        """Reject the first key (in file order) not in `allowed`, suggesting the closest one."""
        for key in self._data:
            if key in allowed:
                continue
            close = difflib.get_close_matches(str(key), list(allowed), n=1)
            hint = (
                f'did you mean "{self.prefix}{close[0]}"?'
                if close
                else "expected one of: " + ", ".join(sorted(allowed))
            )
            raise ScenarioError(f'{self.where}: unknown key "{self.prefix}{key}" ({hint})')

    def get(self, key: str) -> object | None:
        return self._data.get(key)

    def require(self, key: str) -> object:
        return self._value(key, None)

    def _value(self, key: str, default: object | None) -> object:
        value = self._data.get(key)
        if value is not None:
            return value
        if default is None:
            raise ScenarioError(f'{self.where}: missing required key "{self.prefix}{key}"')
        return default

    def integer(
        self,
        key: str,
        default: int | None = None,
        *,
        low: int | None = None,
        high: int | None = None,
    ) -> int:
        """An integer (never a bool or a float); required if `default` is None."""
        value = self._value(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer, got {describe(value)}")
        if low is not None and value < low:
            raise self.error(key, f"must be >= {low}, got {value}")
        if high is not None and value > high:
            raise self.error(key, f"must be <= {high}, got {value}")
        return value

    def optional_integer(
        self, key: str, *, low: int | None = None, high: int | None = None
    ) -> int | None:
        return None if self.get(key) is None else self.integer(key, low=low, high=high)

    def number(
        self,
        key: str,
        default: float | None = None,
        *,
        low: float | None = None,
        high: float | None = None,
        above: float | None = None,
    ) -> float:
        """A finite number (an integer is accepted, a bool never) as a float.

        `low`/`high` are inclusive bounds, `above` an exclusive lower bound. Required if `default`
        is None.
        """
        value = self._value(key, default)
        if not _is_number(value):
            raise self.error(key, f"expected a number, got {describe(value)}")
        number = float(value)  # type: ignore[arg-type]  # _is_number checked int | float
        if not math.isfinite(number):
            raise self.error(key, f"must be a finite number, got {value!r}")
        if low is not None and high is not None and not low <= number <= high:
            raise self.error(key, f"must be between {low:g} and {high:g}, got {value!r}")
        if low is not None and number < low:
            raise self.error(key, f"must be >= {low:g}, got {value!r}")
        if high is not None and number > high:
            raise self.error(key, f"must be <= {high:g}, got {value!r}")
        if above is not None and number <= above:
            raise self.error(key, f"must be > {above:g}, got {value!r}")
        return number

    def optional_number(
        self,
        key: str,
        *,
        low: float | None = None,
        high: float | None = None,
        above: float | None = None,
    ) -> float | None:
        if self.get(key) is None:
            return None
        return self.number(key, low=low, high=high, above=above)

    def limited(
        self, key: str, value: float, cap: str, *, low: float = -math.inf, high: float = math.inf
    ) -> float:
        """`value`, read from `key`, within one of the caps of sim/scenario/_limits.py; `cap`
        names it in the message (`the cap on times`)."""
        if not low <= value <= high:
            bound = f">= {low:g}" if value < low else f"<= {high:g}"
            raise self.error(
                key, f'must be {bound}, got {value!r} ({cap}: docs/scenario-format.md, "Limits")'
            )
        return value

    def time(
        self,
        key: str,
        default: float | None = None,
        *,
        low: float | None = None,
        above: float | None = None,
    ) -> float:
        """A number that is a time, a duration or a mean of one: at most MAX_TIME in absolute
        value, so that sums of a few of them stay finite."""
        value = self.number(key, default, low=low, above=above)
        return self.limited(key, value, "the cap on times", low=-MAX_TIME, high=MAX_TIME)

    def optional_time(
        self, key: str, *, low: float | None = None, above: float | None = None
    ) -> float | None:
        return None if self.get(key) is None else self.time(key, low=low, above=above)

    def text(self, key: str, default: str | None = None) -> str:
        """A string; required if `default` is None."""
        value = self._value(key, default)
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {describe(value)}")
        return value

    def choice(self, key: str, choices: Sequence[S], default: S | None = None) -> S:
        value = self.text(key, default)
        if value not in choices:
            close = difflib.get_close_matches(value, choices, n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            raise self.error(key, f"{json.dumps(value)} is not one of {', '.join(choices)}{hint}")
        return choices[choices.index(value)]  # typed as the choice, not as any text

    def table(self, key: str) -> Table:
        """A required inline sub-table; its keys are reported dotted (`service.mean`)."""
        value = self.require(key)
        if not isinstance(value, Mapping):
            raise self.error(key, f"expected a table, got {describe(value)}")
        return Table(value, self.where, f"{self.prefix}{key}.")

    def optional_table(self, key: str) -> Table | None:
        return None if self.get(key) is None else self.table(key)

    def array(self, key: str) -> list[object]:
        """An array (empty if absent)."""
        value = self._data.get(key)
        if value is None:
            return []
        if not isinstance(value, list | tuple):
            raise self.error(key, f"expected an array, got {describe(value)}")
        return list(value)
