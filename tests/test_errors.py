"""Spec section 8: the error hierarchy."""

from __future__ import annotations

import pytest

import broker
from broker import BrokerError, InvalidAddress, InvalidConfig, RegistryError, RouteError
from broker.errors import ALL_ERRORS

SEED_VARIANTS = [
    "ActorNotFound", "MailboxClosed", "SendTimeout", "RequestTimeout", "RegistryError",
    "RouteError", "BrokerNotInitialized", "NoResponse", "PoolNotFound", "PoolEmpty",
    "DuplicateRegistration",
]  # fmt: skip


@pytest.mark.parametrize("name", [*SEED_VARIANTS, "MailboxFull", "ServiceUnavailable"])
def test_spec_8_2_every_variant_is_exported_and_rooted(name: str) -> None:
    cls = getattr(broker, name)
    assert issubclass(cls, BrokerError)
    assert cls in ALL_ERRORS


def test_spec_8_2_categories() -> None:
    assert issubclass(broker.DuplicateRegistration, RegistryError)
    for cls in (broker.PoolNotFound, broker.PoolEmpty, broker.ServiceUnavailable):
        assert issubclass(cls, RouteError)
    assert issubclass(InvalidAddress, ValueError) and issubclass(InvalidConfig, ValueError)
    assert issubclass(broker.ActorNotFound, LookupError)


def test_spec_8_1_codes_are_unique_and_transience_is_exactly_6_1() -> None:
    codes = [cls.code for cls in ALL_ERRORS]
    assert len(set(codes)) == len(codes)
    transient = {cls.__name__ for cls in ALL_ERRORS if cls().is_transient}
    assert transient == {"MailboxFull", "PoolEmpty", "ServiceUnavailable"}
