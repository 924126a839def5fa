"""The sans-IO rule (BRIEF, spec 1.1-1.2): broker/ and model/ import no clock, thread, uuid,
socket or asyncio, and never call the module-level `random` functions."""

from __future__ import annotations

import ast
import pathlib
from typing import Any

import pytest

from broker import Address, Envelope
from broker._records import new_envelope

ROOT = pathlib.Path(__file__).resolve().parent.parent
FORBIDDEN_MODULES = {"time", "threading", "asyncio", "uuid", "socket", "datetime", "os"}
RANDOM_FUNCTIONS = {
    "random", "randint", "randrange", "choice", "choices", "shuffle", "uniform", "seed",
    "sample", "gauss", "expovariate", "normalvariate", "lognormvariate", "getrandbits",
}  # fmt: skip


def violations(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in FORBIDDEN_MODULES:
                found.append(node.module)
            if node.module == "random":
                found += [f"random.{a.name}" for a in node.names if a.name in RANDOM_FUNCTIONS]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "random"
            and node.func.attr in RANDOM_FUNCTIONS
        ):
            found.append(f"random.{node.func.attr}()")
    return found


@pytest.mark.parametrize("package", ["broker", "model"])
def test_core_packages_are_sans_io(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no sources found under {package}/"
    bad = {str(f.relative_to(ROOT)): v for f in files if (v := violations(f.read_text()))}
    assert bad == {}


@pytest.mark.parametrize(
    "source",
    [
        "import time",
        "import threading as t",
        "from asyncio import sleep",
        "import uuid",
        "import socket",
        "import random\nrandom.random()",
        "import random\nrandom.choice([1])",
        "from random import shuffle",
    ],
)
def test_the_checker_catches_each_forbidden_use(source: str) -> None:
    assert violations(source)


def test_the_checker_allows_an_injected_stream() -> None:
    assert violations("import random\nrng = random.Random(1)\nrng.random()") == []


def test_the_brokers_envelopes_are_built_as_the_constructor_builds_them() -> None:
    """Issue 17: the broker builds its envelopes with `new_envelope` (no `__init__` frame); it
    sets every slot as `Envelope(...)` does, defaults included."""
    to = Address.parse("pool:p")
    calls: list[tuple[Any, ...]] = [
        (1, None, to, "tell", "x"),
        (2, 3, to, "request", {"a": 1}, 7, 9.5, True, "k"),
        (3, 4, to, "reply", None, 7, None, False, None, 2, 1),
    ]
    for args in calls:
        built, made = Envelope(*args), new_envelope(*args)
        assert type(made) is Envelope
        assert {s: getattr(made, s) for s in Envelope.__slots__} == {
            s: getattr(built, s) for s in Envelope.__slots__
        }
