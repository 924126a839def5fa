"""Spec 1.2: the broker's portable stream, SplitMix64 with Lemire's bounded draws.

The vectors are the spec's own, read from docs/spec.md, so the spec and the code cannot part.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from broker import SplitMix64

SPEC = (Path(__file__).resolve().parent.parent / "docs" / "spec.md").read_text(encoding="utf-8")
RULE = SPEC[SPEC.index("1.2 All randomness") : SPEC.index("1.3 ")]


class Counted(SplitMix64):
    __slots__ = ("calls",)

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.calls = 0

    def next64(self) -> int:
        self.calls += 1
        return super().next64()


def _numbers(after: str, kind: str = r"0x[0-9A-F]+|\d+") -> list[int]:
    start = RULE.index(after) + len(after)
    text = RULE[start : RULE.index(";", start)]
    return [int(x, 0) for x in re.findall(kind, text)][:8]


def test_the_spec_vectors_of_next() -> None:
    r0, r1 = SplitMix64(0), SplitMix64(1234567)
    assert [r0.next64() for _ in range(3)] == _numbers("from seed 0, `next()` gives")
    assert [r1.next64() for _ in range(3)] == _numbers("seed 1234567,")
    assert len(_numbers("seed 1234567,")) == 3


def test_the_spec_vectors_of_below_and_unit() -> None:
    r = SplitMix64(42)
    assert [r.randrange(6) for _ in range(8)] == [4, 0, 1, 2, 0, 5, 1, 4]
    assert "gives 4, 0, 1, 2, 0, 5, 1, 4" in RULE
    r = SplitMix64(42)
    units = [r.random() for _ in range(3)]
    assert all(repr(u) in RULE for u in units)
    r = Counted(0)
    assert r.randrange(2**63 + 1) == 243808509735772839 and r.calls == 3
    assert "243808509735772839 (three `next()` calls)" in RULE


def test_below_is_uniform_and_in_range() -> None:
    r = SplitMix64(7)
    counts = Counter(r.randrange(5) for _ in range(50_000))
    assert set(counts) == set(range(5))
    assert all(abs(c - 10_000) < 400 for c in counts.values())  # 4 sigma is 400
    assert all(0.0 <= r.random() < 1.0 for _ in range(10_000))
    with pytest.raises(ValueError):
        r.randrange(0)
