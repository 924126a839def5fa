"""brokerlab's broker: a sans-IO reference message broker (docs/spec.md).

>>> import random
>>> from sim import Scheduler
>>> b = Broker(Scheduler(), random.Random(1))
>>> worker = b.register("worker")
>>> b.send(None, "name:worker", "hello")
1
>>> b.dequeue(worker).payload
'hello'
"""

from broker._address import Address
from broker._broker import IMMEDIATE, Broker, Listener, Network, OnOutcome, Transit
from broker._mailbox import BACKPRESSURES, Backpressure, Mailbox
from broker._protocol import MessageBroker
from broker._records import PRIORITIES, Envelope, Outcome, OutcomeKind, Priority
from broker._retry import RetryPolicy
from broker._strategies import STRATEGIES, STRATEGY_FUNCTIONS, Strategy
from broker._timers import TimerHandle, Timers
from broker.errors import (
    ActorNotFound,
    BrokerError,
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

__all__ = [
    "BACKPRESSURES",
    "IMMEDIATE",
    "PRIORITIES",
    "STRATEGIES",
    "STRATEGY_FUNCTIONS",
    "ActorNotFound",
    "Address",
    "Backpressure",
    "Broker",
    "BrokerError",
    "BrokerNotInitialized",
    "DuplicateRegistration",
    "Envelope",
    "InvalidAddress",
    "InvalidConfig",
    "Listener",
    "Mailbox",
    "MailboxClosed",
    "MailboxFull",
    "MessageBroker",
    "Network",
    "NoResponse",
    "OnOutcome",
    "Outcome",
    "OutcomeKind",
    "PoolEmpty",
    "PoolNotFound",
    "Priority",
    "RegistryError",
    "RequestTimeout",
    "RetryPolicy",
    "RouteError",
    "SendTimeout",
    "ServiceUnavailable",
    "Strategy",
    "TimerHandle",
    "Timers",
    "Transit",
]
