"""The broker's errors: one hierarchy rooted at `BrokerError` (docs/spec.md section 8).

Every error knows whether it is *transient* (worth retrying: the same send may succeed later) and
carries a short snake_case `code`, which is also the dead-letter reason when a message accepted by
the broker later fails for that cause. Errors inherit a built-in category too where one fits
(`InvalidAddress` is a `ValueError`), so callers can catch ours or the built-in one.
"""

from __future__ import annotations

from typing import ClassVar


class BrokerError(Exception):
    """Root of every error the broker raises."""

    code: ClassVar[str] = "broker_error"
    transient: ClassVar[bool] = False

    @property
    def is_transient(self) -> bool:
        """True when retrying the same operation later may succeed (spec 6.1)."""
        return self.transient


class ActorNotFound(BrokerError, LookupError):
    """No registered actor has that id or name."""

    code = "actor_not_found"


class MailboxClosed(BrokerError):
    """The target actor is stopped (crashed and not restarted)."""

    code = "mailbox_closed"


class MailboxFull(BrokerError):
    """A bounded mailbox with backpressure `reject` is at capacity."""

    code = "mailbox_full"
    transient = True


class SendTimeout(BrokerError):
    """A sender parked on a full `block` mailbox waited past its send timeout."""

    code = "send_timeout"


class RequestTimeout(BrokerError):
    """A request reached its deadline without a reply."""

    code = "request_timeout"


class RegistryError(BrokerError):
    """A registry operation was refused."""

    code = "registry_error"


class DuplicateRegistration(RegistryError):
    """A name, pool or service membership is already taken."""

    code = "duplicate_registration"


class RouteError(BrokerError):
    """An address could not be resolved to an actor."""

    code = "route_error"


class BrokerNotInitialized(BrokerError):
    """The broker was used before it was given what it needs (kept for parity with the seed)."""

    code = "broker_not_initialized"


class NoResponse(BrokerError):
    """A request ended without a reply (cancelled or failed)."""

    code = "no_response"


class PoolNotFound(RouteError, LookupError):
    """No pool has that name."""

    code = "pool_not_found"


class PoolEmpty(RouteError):
    """The pool exists but has no live member."""

    code = "pool_empty"
    transient = True


class ServiceUnavailable(RouteError):
    """No live actor provides that service."""

    code = "service_unavailable"
    transient = True


class InvalidAddress(BrokerError, ValueError):
    """Address text that does not parse, or an empty name."""

    code = "invalid_address"


class InvalidConfig(BrokerError, ValueError):
    """A configuration value out of range or not one of the allowed names."""

    code = "invalid_config"


ALL_ERRORS: tuple[type[BrokerError], ...] = (
    ActorNotFound,
    BrokerNotInitialized,
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
