"""Spec section 8: the error hierarchy, and 8.4's codes, fields, messages and producers.

The table of 8.4 is read from docs/spec.md itself. For every error it lists, a producer below
makes the reference broker raise it (or carry it in a request's outcome) through the public
API; the test fails for an error of the table that no producer makes, for a producer whose error
is not the listed class, and for fields or a message that differ from the table's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import broker
from broker import (
    Broker,
    BrokerError,
    InvalidAddress,
    InvalidConfig,
    Outcome,
    RegistryError,
    RouteError,
    SplitMix64,
)
from broker.errors import ALL_ERRORS
from sim import Scheduler

SPEC = Path(__file__).resolve().parent.parent / "docs" / "spec.md"
_ROW = re.compile(r"^\| `(\w+)` \| `(\w+)` \| (.+?) \| `(.+?)` \| (.+) \|$")


def spec_errors() -> dict[str, tuple[str, list[str], set[str], str]]:
    """8.4: per error, its code, its fields (in order), the optional ones, its message."""
    text = SPEC.read_text(encoding="utf-8")
    section = text[text.index("8.4 ") : text.index("## 9.")]
    out = {}
    for line in section.splitlines():
        match = _ROW.match(line)
        if match is not None:
            name, code, fields, message, _ = match.groups()
            names = re.findall(r"`(\w+)`(\?)?", fields)
            out[name] = (code, [n for n, _ in names], {n for n, q in names if q}, message)
    return out


def render(template: str, fields: dict[str, Any]) -> str:
    """8.4's message rule, written independently of broker/errors.py."""

    def optional(match: re.Match[str]) -> str:
        inner = match[1]
        used = re.findall(r"\{(\w+)\}", inner)
        return inner if all(fields.get(k) is not None for k in used) else ""

    text = re.sub(r"\[(.*?)\]", optional, template)

    def show(match: re.Match[str]) -> str:
        key = match[1]
        value = fields[key]
        return value if isinstance(value, str) and key != "value" else json.dumps(value)

    return re.sub(r"\{(\w+)\}", show, text)


# -- producers: the broker's public API meeting each error ------------------------------------


def _world() -> tuple[Broker[Any], Scheduler, list[Outcome[Any]]]:
    clock = Scheduler()
    return Broker(clock, SplitMix64(0)), clock, []


def _raised(call: Callable[[], object]) -> BrokerError:
    with pytest.raises(BrokerError) as info:
        call()
    return info.value


def actor_not_found() -> BrokerError:
    b, _, _ = _world()
    return _raised(lambda: b.unregister(99))


def mailbox_closed() -> BrokerError:
    b, _, _ = _world()
    a = b.register("a")
    b.stop(a)
    return _raised(lambda: b.send(None, "name:a", "x"))


def mailbox_full() -> BrokerError:
    b, _, _ = _world()
    b.register("a", capacity=1)
    b.send(None, "name:a", "x")
    return _raised(lambda: b.send(None, "name:a", "y"))


def send_timeout() -> BrokerError:
    b, clock, outcomes = _world()
    c = b.register("c")
    b.register("a", capacity=1, backpressure="block")
    b.send(None, "name:a", "x")
    b.request(c, "name:a", "y", timeout=5.0, send_timeout=0.5, on_outcome=outcomes.append)
    clock.advance_to(1.0)
    assert [o.kind for o in outcomes] == ["failed"]  # spec 4.4: before its deadline
    error = outcomes[0].error
    assert error is not None
    return error


def request_timeout() -> BrokerError:
    b, clock, outcomes = _world()
    c = b.register("c")
    b.register("a")
    b.request(c, "name:a", "x", timeout=0.25, on_outcome=outcomes.append)
    clock.advance_to(1.0)
    assert [o.kind for o in outcomes] == ["timed_out"]
    error = outcomes[0].error
    assert error is not None
    return error


def duplicate_registration() -> BrokerError:
    b, _, _ = _world()
    b.register("a")
    return _raised(lambda: b.register("a"))


def route_error() -> BrokerError:
    b, _, _ = _world()
    b.create_pool("h", "consistent_hash")
    b.register("a", pools=["h"])
    return _raised(lambda: b.send(None, "pool:h", "no key"))


def pool_not_found() -> BrokerError:
    b, _, _ = _world()
    return _raised(lambda: b.send(None, "pool:none", "x"))


def pool_empty() -> BrokerError:
    b, _, _ = _world()
    b.create_pool("p")
    return _raised(lambda: b.send(None, "pool:p", "x"))


def service_unavailable() -> BrokerError:
    b, _, _ = _world()
    return _raised(lambda: b.send(None, "service:s", "x"))


def no_response() -> BrokerError:
    b, _, outcomes = _world()
    c = b.register("c")
    b.register("a")
    corr = b.request(c, "name:a", "x", timeout=1.0, on_outcome=outcomes.append)
    assert b.cancel(corr)
    error = outcomes[0].error
    assert error is not None
    return error


def invalid_address() -> BrokerError:
    b, _, _ = _world()
    return _raised(lambda: b.send(None, "queue:a", "x"))


def invalid_config() -> BrokerError:
    b, _, _ = _world()
    return _raised(lambda: b.register("a", capacity=0))


# What each error must come out as: the producer, the exact class, and its fields.
PRODUCERS: dict[str, tuple[Callable[[], BrokerError], dict[str, Any]]] = {
    "ActorNotFound": (actor_not_found, {"address": "id:99", "within": None}),
    "MailboxClosed": (mailbox_closed, {"address": "name:a"}),
    "MailboxFull": (mailbox_full, {"actor": "a", "capacity": 1}),
    "SendTimeout": (send_timeout, {"actor": "a", "timeout": 0.5}),
    "RequestTimeout": (request_timeout, {"address": "name:a", "timeout": 0.25}),
    "RegistryError": (duplicate_registration, {"address": "name:a", "within": None}),
    "DuplicateRegistration": (duplicate_registration, {"address": "name:a", "within": None}),
    "RouteError": (route_error, {"address": "pool:h", "reason": str}),
    "PoolNotFound": (pool_not_found, {"pool": "none"}),
    "PoolEmpty": (pool_empty, {"pool": "p"}),
    "ServiceUnavailable": (service_unavailable, {"service": "s"}),
    "NoResponse": (no_response, {"corr": 1}),
    "InvalidAddress": (invalid_address, {"value": "queue:a", "expected": str}),
    "InvalidConfig": (invalid_config, {"field": "capacity", "value": 0, "expected": str}),
}


def test_spec_8_4_lists_every_error_of_8_2_and_the_code() -> None:
    table = spec_errors()
    assert set(table) == {cls.__name__ for cls in ALL_ERRORS}
    for cls in ALL_ERRORS:
        code, fields, optional, _ = table[cls.__name__]
        assert cls.code == code
        assert list(cls.FIELDS) == fields, cls.__name__
        assert set(cls.OPTIONAL) == optional, cls.__name__


@pytest.mark.parametrize("name", sorted(spec_errors()))
def test_spec_8_4_every_error_is_produced_with_its_fields_and_message(name: str) -> None:
    assert name in PRODUCERS, f"no test produces {name} (spec 8.4)"
    produce, expected = PRODUCERS[name]
    error = produce()
    cls = getattr(broker, name)
    assert isinstance(error, cls)
    if name != "RegistryError":  # the category: produced as its one subclass
        assert type(error) is cls
    for key, want in expected.items():
        got = error.fields[key]
        assert isinstance(got, want) if isinstance(want, type) else got == want, (key, got)
    assert set(error.fields) == set(spec_errors()[type(error).__name__][1])
    _, _, _, template = spec_errors()[type(error).__name__]
    assert str(error) == render(template, error.fields)


def test_spec_8_4_messages_follow_the_templates_with_optional_parts() -> None:
    err = broker.ActorNotFound("id:5", "pool:p")
    assert str(err) == "no actor id:5 in pool:p" and err.within == "pool:p"
    assert str(broker.ActorNotFound("id:5")) == "no actor id:5"
    assert (
        str(InvalidConfig("ttl", "x", "a finite number > 0"))
        == 'invalid ttl "x": a finite number > 0'
    )
    assert str(InvalidConfig("ttl", 1e-7, "x")) == "invalid ttl 1e-07: x"
    with pytest.raises(TypeError):
        broker.PoolEmpty()  # a required field missing is a programming error, not a BrokerError


def test_errors_survive_pickling_with_their_fields() -> None:
    import pickle

    err = broker.MailboxFull("a", 3)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is broker.MailboxFull and back.fields == err.fields and str(back) == str(err)


def test_spec_8_2_categories() -> None:
    assert issubclass(broker.DuplicateRegistration, RegistryError)
    for cls in (broker.PoolNotFound, broker.PoolEmpty, broker.ServiceUnavailable):
        assert issubclass(cls, RouteError)
    assert issubclass(InvalidAddress, ValueError) and issubclass(InvalidConfig, ValueError)
    assert issubclass(broker.ActorNotFound, LookupError)
    assert not hasattr(broker, "BrokerNotInitialized")  # removed in spec 1.2 (8.4)


def test_spec_8_1_codes_are_unique_and_transience_is_exactly_6_1() -> None:
    codes = [cls.code for cls in ALL_ERRORS]
    assert len(set(codes)) == len(codes)
    transient = {cls.__name__ for cls in ALL_ERRORS if cls.transient}
    assert transient == {"MailboxFull", "PoolEmpty", "ServiceUnavailable"}


def test_spec_8_4_a_traces_error_fields_are_checked() -> None:
    """conform compares an op line's `error_fields` with the model's refusal (free text aside):
    a logged pool name that is not the one the model refuses, or fields left out, is illegal."""
    import io
    import tomllib

    from model import check_trace
    from sim import parse_scenario, simulate

    text = """seed = 0\nuntil = 1.0\n[[script]]\nat = 0.0\ndo = "register"\nname = "a"
[[script]]\nat = 0.0\ndo = "leave"\npool = "nope"\nactor = "a"
[[script]]\nat = 0.0\ndo = "send"\nto = "pool:nope"\n"""
    out = io.StringIO()
    simulate(parse_scenario(tomllib.loads(text)), trace=out)
    good = out.getvalue()
    assert '"error_fields":{"pool":"nope"}' in good
    assert check_trace(io.StringIO(good)).ok
    for bad in ('"error_fields":{"pool":"other"}', '"error_fields":{}', '"error_fields":null'):
        tampered = good.replace('"error_fields":{"pool":"nope"}', bad, 1)
        verdict = check_trace(io.StringIO(tampered))
        assert verdict.illegal is not None and verdict.illegal.seq == 3, (bad, verdict)
        assert "error pool_not_found" in verdict.illegal.why
