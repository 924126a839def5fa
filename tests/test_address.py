"""Spec section 2.1-2.3: addresses and their text form."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker import Address, InvalidAddress

names = st.from_regex(r"[A-Za-z0-9_.\-/@+]{1,20}", fullmatch=True)
addresses = st.one_of(
    st.integers(min_value=1, max_value=10**12).map(Address.id),
    names.map(Address.named),
    names.map(Address.service),
    names.map(Address.pool),
)


@given(addresses)
def test_spec_2_3_text_form_round_trips(address: Address) -> None:
    assert Address.parse(str(address)) == address


def test_spec_2_1_constructors_and_text() -> None:
    assert str(Address.id(7)) == "id:7"
    assert str(Address.named("db")) == "name:db"
    assert str(Address.service("storage")) == "service:storage"
    assert str(Address.pool("workers")) == "pool:workers"
    assert Address.parse("pool:workers") == Address("pool", "workers")


@pytest.mark.parametrize(
    "text",
    ["", "workers", "pool:", "queue:x", "id:0", "id:-1", "id:01", "id:x", "name:a b", "name:a:b"],
)
def test_spec_2_2_bad_text_is_invalid_address_naming_it(text: str) -> None:
    with pytest.raises(InvalidAddress) as err:
        Address.parse(text)
    assert isinstance(err.value, ValueError)
    assert repr(text.partition(":")[2] if text.startswith(("id:", "name:", "pool:")) else text)[
        1:-1
    ] in str(err.value)


@pytest.mark.parametrize("bad", [0, -3, True, "7"])
def test_spec_2_2_bad_actor_id(bad: object) -> None:
    with pytest.raises(InvalidAddress, match="positive integer"):
        Address.id(bad)  # type: ignore[arg-type]


def test_spec_2_2_empty_names_are_invalid() -> None:
    for make in (Address.named, Address.service, Address.pool):
        with pytest.raises(InvalidAddress, match="invalid"):
            make("")


def test_spec_2_3_non_text_and_bad_kind() -> None:
    with pytest.raises(InvalidAddress):
        Address.parse(7)  # type: ignore[arg-type]
    with pytest.raises(InvalidAddress, match="kind"):
        Address("queue", "x")  # type: ignore[arg-type]
