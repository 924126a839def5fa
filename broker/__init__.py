"""brokerlab's broker: a sans-IO reference message broker (docs/spec.md).

>>> from sim import Scheduler
>>> b = Broker(Scheduler(), SplitMix64(1))
>>> worker = b.register("worker")
>>> b.send(None, "name:worker", "hello")
1
>>> b.dequeue(worker).payload
'hello'
>>> b.subscribe("news", worker)
>>> b.publish(None, "news", "extra!")  # the original's id; the worker gets copy 3
2
>>> b.dequeue(worker).copy_of
2

A broker is not thread-safe (spec 1.7): call it from one thread at a time.
"""

from broker._address import KINDS as ADDRESS_KINDS
from broker._address import Address, AddressKind
from broker._broker import IMMEDIATE, Broker, Network, OnOutcome, Transit
from broker._events import Events, Listener
from broker._mailbox import BACKPRESSURES, Backpressure, Mailbox
from broker._protocol import BrokerFactory, MessageBroker
from broker._records import PRIORITIES, Envelope, Outcome, OutcomeKind, Priority, Stats
from broker._retry import RetryPolicy
from broker._rng import Rng, SplitMix64
from broker._strategies import STRATEGIES, STRATEGY_FUNCTIONS, Strategy, StrategyName
from broker._timers import TimerHandle, Timers
from broker.errors import (
    ActorNotFound,
    BrokerError,
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
    "ADDRESS_KINDS",
    "BACKPRESSURES",
    "IMMEDIATE",
    "PRIORITIES",
    "STRATEGIES",
    "STRATEGY_FUNCTIONS",
    "ActorNotFound",
    "Address",
    "AddressKind",
    "Backpressure",
    "Broker",
    "BrokerError",
    "BrokerFactory",
    "DuplicateRegistration",
    "Envelope",
    "Events",
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
    "Rng",
    "RouteError",
    "SendTimeout",
    "ServiceUnavailable",
    "SplitMix64",
    "Stats",
    "Strategy",
    "StrategyName",
    "TimerHandle",
    "Timers",
    "Transit",
]
