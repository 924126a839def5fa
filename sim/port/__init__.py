"""Ports: another implementation of the broker, driven through the port protocol.

`PortFactory(command)` is a `BrokerFactory` for a port that runs as a subprocess and speaks
docs/port-protocol.md (JSON Lines on its standard input and output): the simulator, the model
checker, the lockstep tester and the golden vectors drive it as they drive the reference
(`--broker cmd:"COMMAND"`). `serve` is the reference behind the same protocol (`brokerlab
port-serve`, `python -m sim.port`).
"""

from sim.port._adapter import PortBroker, PortFactory, op_features
from sim.port._link import DEFAULT_TIMEOUT, FEATURES, PROTOCOL, Link, PortError
from sim.port._serve import Server, serve

__all__ = [
    "DEFAULT_TIMEOUT",
    "FEATURES",
    "PROTOCOL",
    "Link",
    "PortBroker",
    "PortError",
    "PortFactory",
    "Server",
    "op_features",
    "serve",
]
