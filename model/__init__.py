"""brokerlab's executable reference model: docs/spec.md as small pure functions.

An independent second implementation (it imports nothing from `broker` or `sim`), written for
clarity, not speed. States are immutable and hashable; `step(state, action)` is the semantics,
`apply` also returns the operation's result and its events, and `enabled(state, bounds)` is the
finite menu of actions a model checker explores.

>>> s = step(State(), Register("worker"))
>>> s = step(s, Tell(None, Addr("name", "worker")))
>>> [m.id for m in s.actors[0].queue]
[1]
"""

from model._actions import (
    Action,
    Advance,
    Ask,
    Cancel,
    CreatePool,
    Dequeue,
    Done,
    Event,
    Join,
    Leave,
    NeedChoice,
    Provide,
    Refused,
    Register,
    Reply,
    Restart,
    Result,
    Stop,
    Tell,
    Unregister,
)
from model._enabled import Bounds, enabled
from model._semantics import Effect, apply, step
from model._state import (
    BACKPRESSURES,
    STRATEGIES,
    TRANSIENT,
    ActorState,
    Addr,
    AddressKind,
    Backpressure,
    DeadLetter,
    Msg,
    MsgKind,
    OutcomeKind,
    Parked,
    PoolState,
    Request,
    Retry,
    ServiceState,
    State,
    StrategyName,
    Timer,
    TimerKind,
)

__all__ = [
    "BACKPRESSURES",
    "STRATEGIES",
    "TRANSIENT",
    "Action",
    "ActorState",
    "Addr",
    "AddressKind",
    "Advance",
    "Ask",
    "Backpressure",
    "Bounds",
    "Cancel",
    "CreatePool",
    "DeadLetter",
    "Dequeue",
    "Done",
    "Effect",
    "Event",
    "Join",
    "Leave",
    "Msg",
    "MsgKind",
    "NeedChoice",
    "OutcomeKind",
    "Parked",
    "PoolState",
    "Provide",
    "Refused",
    "Register",
    "Reply",
    "Request",
    "Restart",
    "Result",
    "Retry",
    "ServiceState",
    "State",
    "Stop",
    "StrategyName",
    "Tell",
    "Timer",
    "TimerKind",
    "Unregister",
    "apply",
    "enabled",
    "step",
]
