"""Addresses and their text form (docs/spec.md section 2)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from broker.errors import InvalidAddress

AddressKind = Literal["id", "name", "service", "pool", "topic"]
KINDS: tuple[AddressKind, ...] = ("id", "name", "service", "pool", "topic")
KIND_RULE = "an address is text kind:value with kind one of " + ", ".join(KINDS)

# Names are printable, without whitespace or ':' so that the text form is unambiguous (spec 2.2).
_NAME = re.compile(r"[A-Za-z0-9_.\-/@+]+")
_ID = re.compile(r"[1-9][0-9]*")


ID_RULE = "an actor id is a positive integer without leading zeros"
NAME_RULE = "one or more of the characters A-Z a-z 0-9 _ . - / @ +"


def check_name(value: object, what: str = "name") -> str:
    """Return `value` if it is a valid name, else raise `InvalidAddress` saying what is allowed."""
    # rule 2.2: a name matches [A-Za-z0-9_.\-/@+]+
    if not isinstance(value, str) or _NAME.fullmatch(value) is None:
        # rule 2.2, 8.4: anything else is InvalidAddress, naming what is allowed
        raise InvalidAddress(value, f"a {what} is {NAME_RULE}")
    return value


@dataclass(frozen=True, slots=True)
class Address:
    """Where a message goes: one actor (`id`, `name`), a `service`, a `pool`, or every live
    subscriber of a `topic` (spec 2.1)."""

    kind: AddressKind
    value: str
    # The text form, made once: every message's send event names its address.
    text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # rule 2.1: an address is id, name, service, pool or topic
        if self.kind not in KINDS:
            # rule 2.3, 8.4: an unknown kind is InvalidAddress
            raise InvalidAddress(self.kind, f"an address kind is one of {', '.join(KINDS)}")
        if self.kind == "id":
            if _ID.fullmatch(self.value) is None:
                # rule 2.2, 8.4: an actor id is a positive integer, no leading 0
                raise InvalidAddress(f"id:{self.value}", ID_RULE)
        elif not isinstance(self.value, str) or _NAME.fullmatch(self.value) is None:
            # the whole address is what the caller passed (spec 8.4's `value`)
            # rule 2.2, 8.4: a name outside the grammar
            what = "an actor" if self.kind == "name" else f"a {self.kind}"
            raise InvalidAddress(f"{self.kind}:{self.value}", f"{what} name is {NAME_RULE}")
        object.__setattr__(self, "text", f"{self.kind}:{self.value}")

    @classmethod
    def id(cls, actor: int) -> Address:
        """The actor with this id."""
        if isinstance(actor, bool) or not isinstance(actor, int) or actor < 1:
            # rule 2.2, 8.4: an actor id is a positive integer
            raise InvalidAddress(actor, ID_RULE)
        return cls("id", str(actor))

    @classmethod
    def named(cls, name: str) -> Address:
        """The actor registered under this unique name."""
        return cls("name", name)

    @classmethod
    def service(cls, name: str) -> Address:
        """The first live provider of this service."""
        return cls("service", name)

    @classmethod
    def pool(cls, name: str) -> Address:
        """A member of this pool, chosen by the pool's strategy."""
        return cls("pool", name)

    @classmethod
    def parse(cls, text: str) -> Address:
        """Parse `kind:value`; `Address.parse(str(a)) == a` for every address (spec 2.3).

        >>> Address.parse("pool:workers")
        Address(kind='pool', value='workers')
        """
        if not isinstance(text, str):
            # rule 2.3, 8.4: only text parses as an address
            raise InvalidAddress(text, KIND_RULE)
        # rule 2.3: the text form is kind:value
        kind, sep, value = text.partition(":")
        if not sep or kind not in KINDS:
            # rule 2.3, 8.4: text without a known kind prefix is InvalidAddress
            raise InvalidAddress(text, KIND_RULE)
        return cls(kind, value)

    def __str__(self) -> str:
        # rule 2.3: the text form, which parses back to the same address
        return self.text
