"""Mailboxes: bounded or not, two priority classes, four backpressure modes (spec section 4).

A mailbox only stores; the broker decides what a full mailbox means, because that decision emits
dead letters and parks senders, which are broker-level effects.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Literal

from broker._records import Envelope
from broker.errors import InvalidConfig

Backpressure = Literal["reject", "drop_newest", "drop_oldest", "block"]
BACKPRESSURES: tuple[Backpressure, ...] = ("reject", "drop_newest", "drop_oldest", "block")


def check_backpressure(value: object) -> Backpressure:
    if value not in BACKPRESSURES:
        # rule 4.3, 8.3, 8.4: an unknown backpressure mode is InvalidConfig
        raise InvalidConfig("backpressure", value, f"one of {', '.join(BACKPRESSURES)}")
    return value


def check_capacity(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        # rule 4.1, 8.3, 8.4: a capacity must be an integer >= 1
        raise InvalidConfig("capacity", value, "an integer >= 1, or null for unbounded")
    return value


class Mailbox:
    """FIFO within a class, high before normal (spec 4.5)."""

    __slots__ = ("backpressure", "capacity", "high", "normal", "parked", "size")

    def __init__(self, capacity: int | None = None, backpressure: Backpressure = "reject") -> None:
        # rule 4.1: the capacity is checked before the mode (2.6's order)
        self.capacity = check_capacity(capacity)
        # rule 4.3: then the backpressure mode
        self.backpressure = check_backpressure(backpressure)
        self.high: deque[Envelope[Any]] = deque()
        self.normal: deque[Envelope[Any]] = deque()
        # Senders waiting for room under `block`: (envelope, send-timeout handle or None).
        self.parked: deque[tuple[Envelope[Any], Any]] = deque()
        self.size = 0

    @property
    def full(self) -> bool:
        return self.capacity is not None and self.size >= self.capacity

    def push(self, env: Envelope[Any]) -> None:
        # rule 4.5: FIFO within each priority class
        (self.high if env.high else self.normal).append(env)
        # rule 4.5: the size counts both classes
        self.size += 1

    def pop(self) -> Envelope[Any] | None:
        if self.high:
            self.size -= 1
            # rule 4.5: the oldest high message first
            return self.high.popleft()
        if self.normal:
            self.size -= 1
            # rule 4.5: else the oldest normal one
            return self.normal.popleft()
        return None

    def pop_oldest_droppable(self) -> Envelope[Any]:
        """The message `drop_oldest` evicts: the oldest of the lowest class present (spec 4.4)."""
        self.size -= 1
        # rule 4.4: drop_oldest's victim: lowest class
        return self.normal.popleft() if self.normal else self.high.popleft()

    def drain(self) -> list[Envelope[Any]]:
        """Remove and return everything queued, in dequeue order."""
        # rule 9.3: everything queued, in dequeue order
        out = [*self.high, *self.normal]
        self.high.clear()
        self.normal.clear()
        self.size = 0
        return out

    def __len__(self) -> int:
        return self.size
