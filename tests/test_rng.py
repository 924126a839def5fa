"""Named random streams (sim/run/_rng.py): stable, independent, pinned."""

from __future__ import annotations

import hashlib
import random

import pytest

from sim.run import Streams, stream


def test_derivation_is_sha256_of_seed_slash_name() -> None:
    digest = hashlib.sha256(b"7/workers").digest()
    expected = random.Random(int.from_bytes(digest, "big"))
    assert stream(7, "workers").random() == expected.random()


def test_pinned_values() -> None:
    # If these change, every recorded trace stops replaying: change the derivation deliberately.
    assert stream(0, "arrivals").random() == 0.37788428161391474
    assert stream(7, "workers").random() == 0.16434969600470395
    rng = stream(42, "service")
    assert [rng.random() for _ in range(3)] == [
        0.3438606142817209,
        0.9338122903063149,
        0.9981286827744834,
    ]


def test_same_seed_and_name_same_draws() -> None:
    a, b = stream(3, "x"), stream(3, "x")
    assert [a.random() for _ in range(100)] == [b.random() for _ in range(100)]


def test_different_names_and_seeds_differ() -> None:
    assert stream(3, "x").random() != stream(3, "y").random()
    assert stream(3, "x").random() != stream(4, "x").random()
    # "1/23" and "12/3" must not collide: the separator keeps seed and name apart.
    assert stream(1, "2/3").random() == stream(1, "2/3").random()
    assert stream(12, "3").random() != stream(1, "23").random()


def test_adding_a_stream_does_not_shift_another() -> None:
    alone = Streams(5)
    draws_alone = [alone.get("arrivals").random() for _ in range(20)]

    crowded = Streams(5)
    crowded.get("faults").random()
    out = []
    for _ in range(20):
        crowded.get("new-component").random()
        out.append(crowded.get("arrivals").random())
    assert out == draws_alone


def test_streams_get_returns_the_same_generator() -> None:
    s = Streams(1)
    rng = s.get("a")
    first = rng.random()
    assert s.get("a") is rng
    assert s.get("a").random() != first  # continues, does not restart
    s.get("b")
    assert s.names() == ("a", "b")
    assert s.seed == 1
    assert repr(s) == "Streams(seed=1)"


@pytest.mark.parametrize("seed", [True, 1.0, "1"])
def test_seed_must_be_an_int(seed: object) -> None:
    with pytest.raises(TypeError, match="seed must be an int"):
        stream(seed, "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="seed must be an int"):
        Streams(seed)  # type: ignore[arg-type]


def test_name_must_be_a_str() -> None:
    with pytest.raises(TypeError, match="stream name must be a str"):
        stream(1, 2)  # type: ignore[arg-type]
