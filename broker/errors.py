"""The broker's errors: one hierarchy rooted at `BrokerError` (docs/spec.md section 8).

Every error knows whether it is *transient* (worth retrying: the same send may succeed later) and
carries a short snake_case `code`, which is also the dead-letter reason when a message accepted by
the broker later fails for that cause. Each error also carries the *fields* of spec 8.4 (the
address, the pool, the timeout...) as attributes and in `fields`, and its message is the spec's
template filled with them, so a port can match both. Errors inherit a built-in category too where
one fits (`InvalidAddress` is a `ValueError`), so callers can catch ours or the built-in one.

>>> err = PoolEmpty("workers")
>>> err.code, err.pool, str(err)
('pool_empty', 'workers', 'pool workers has no live member')
"""

from __future__ import annotations

import json
from typing import Any, ClassVar


def show(key: str, value: object) -> str:
    """How a field appears in a message (spec 8.4): a `value` (what the caller passed) as JSON,
    so text is quoted; other text as it is; numbers in their shortest round-trip form."""
    if isinstance(value, str) and key != "value":
        # rule 8.4: text as it is, except value
        return value
    try:
        # rule 8.4: value and numbers written as JSON
        return json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        return repr(value)


class BrokerError(Exception):
    """Root of every error the broker raises.

    Subclasses name their fields in `FIELDS` (each passed positionally or by keyword) and their
    message in `TEMPLATE`; a field in `OPTIONAL` defaults to None, and its part of the message
    (`OPTIONAL[field]`) is appended only when it is set.
    """

    code: ClassVar[str] = "broker_error"
    transient: ClassVar[bool] = False
    FIELDS: ClassVar[tuple[str, ...]] = ("reason",)
    OPTIONAL: ClassVar[dict[str, str]] = {}
    TEMPLATE: ClassVar[str] = "{reason}"

    def __init__(self, *values: Any, **named: Any) -> None:
        names = self.FIELDS
        if len(values) > len(names):
            raise TypeError(f"{type(self).__name__} takes the fields {names}, got {values!r}")
        fields = dict(zip(names, values, strict=False))
        for key, value in named.items():
            if key not in names or key in fields:
                raise TypeError(f"{type(self).__name__}: unexpected or repeated field {key!r}")
            fields[key] = value
        for key in names:
            if key not in fields:
                if key not in self.OPTIONAL:
                    raise TypeError(f"{type(self).__name__} needs the field {key!r}")
                fields[key] = None
        # rule 8.1: each error's fields, by name and together
        self.fields: dict[str, Any] = fields
        for key, value in fields.items():
            setattr(self, key, value)
        # rule 8.4: the message is the template filled with the fields
        super().__init__(self.describe(fields))

    @classmethod
    def describe(cls, fields: dict[str, Any]) -> str:
        """The message of spec 8.4: the template, then each optional part whose field is set."""
        # rule 8.4: an optional part only when its field is set
        text = cls.TEMPLATE + "".join(
            part for key, part in cls.OPTIONAL.items() if fields.get(key) is not None
        )
        return text.format_map({k: show(k, v) for k, v in fields.items()})

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.fields))

    @property
    def is_transient(self) -> bool:
        """True when retrying the same operation later may succeed (spec 6.1)."""
        # rule 6.1, 8.1: MailboxFull, PoolEmpty, ServiceUnavailable are transient
        return self.transient


def _rebuild(cls: type[BrokerError], fields: dict[str, Any]) -> BrokerError:
    return cls(**fields)


class ActorNotFound(BrokerError, LookupError):
    """No registered actor at that address (or, with `within`, not a member of it)."""

    code = "actor_not_found"
    FIELDS = ("address", "within")
    OPTIONAL: ClassVar[dict[str, str]] = {"within": " in {within}"}
    TEMPLATE = "no actor {address}"
    address: str
    within: str | None


class MailboxClosed(BrokerError):
    """The target actor is stopped (crashed and not restarted)."""

    code = "mailbox_closed"
    FIELDS = ("address",)
    TEMPLATE = "{address} is stopped"
    address: str


class MailboxFull(BrokerError):
    """A bounded mailbox with backpressure `reject` is at capacity."""

    code = "mailbox_full"
    transient = True
    FIELDS = ("actor", "capacity")
    TEMPLATE = "{actor} is full (capacity {capacity})"
    actor: str
    capacity: int


class SendTimeout(BrokerError):
    """A message parked on a full `block` mailbox waited past its send timeout (spec 4.4)."""

    code = "send_timeout"
    FIELDS = ("actor", "timeout")
    TEMPLATE = "a send to {actor} found no room within {timeout}"
    actor: str
    timeout: float


class RequestTimeout(BrokerError):
    """A request reached its deadline without a reply (spec 5.5)."""

    code = "request_timeout"
    FIELDS = ("address", "timeout")
    TEMPLATE = "request to {address} timed out after {timeout}"
    address: str
    timeout: float


class RegistryError(BrokerError):
    """A registry operation was refused (the category of `DuplicateRegistration`)."""

    code = "registry_error"
    reason: str


class DuplicateRegistration(RegistryError):
    """A name, pool, service, subscription or membership is already taken."""

    code = "duplicate_registration"
    FIELDS = ("address", "within")
    OPTIONAL: ClassVar[dict[str, str]] = {"within": " in {within}"}
    TEMPLATE = "{address} is already registered"
    address: str
    within: str | None


class RouteError(BrokerError):
    """An address could not be resolved to an actor."""

    code = "route_error"
    FIELDS: ClassVar[tuple[str, ...]] = ("address", "reason")
    TEMPLATE = "cannot route to {address}: {reason}"
    address: str
    reason: str


class NoResponse(BrokerError):
    """A request ended without a reply and none can come: it was cancelled (spec 5.7, 5.8)."""

    code = "no_response"
    FIELDS = ("corr",)
    TEMPLATE = "request {corr} was cancelled before a reply"
    corr: int


class PoolNotFound(RouteError, LookupError):
    """No pool has that name."""

    code = "pool_not_found"
    FIELDS = ("pool",)
    TEMPLATE = "no pool {pool}"
    pool: str


class PoolEmpty(RouteError):
    """The pool exists but has no live member."""

    code = "pool_empty"
    transient = True
    FIELDS = ("pool",)
    TEMPLATE = "pool {pool} has no live member"
    pool: str


class ServiceUnavailable(RouteError):
    """No live actor provides that service."""

    code = "service_unavailable"
    transient = True
    FIELDS = ("service",)
    TEMPLATE = "no live provider of service {service}"
    service: str


class InvalidAddress(BrokerError, ValueError):
    """Address text that does not parse, or a name outside the grammar (spec 2.2, 2.3)."""

    code = "invalid_address"
    FIELDS = ("value", "expected")
    TEMPLATE = "invalid address {value}: {expected}"
    value: object
    expected: str


class InvalidConfig(BrokerError, ValueError):
    """A configuration value out of range or not one of the allowed names (spec 8.3)."""

    code = "invalid_config"
    FIELDS = ("field", "value", "expected")
    TEMPLATE = "invalid {field} {value}: {expected}"
    field: str
    value: object
    expected: str


ALL_ERRORS: tuple[type[BrokerError], ...] = (
    ActorNotFound,
    DuplicateRegistration,
    InvalidAddress,
    InvalidConfig,
    MailboxClosed,
    MailboxFull,
    NoResponse,
    PoolEmpty,
    PoolNotFound,
    RegistryError,
    RequestTimeout,
    RouteError,
    SendTimeout,
    ServiceUnavailable,
)
