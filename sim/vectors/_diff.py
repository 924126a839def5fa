"""`brokerlab diff PORT_TRACE REFERENCE_TRACE`: the first differing line, labelled, with its rule.

Two traces of one scenario (a port's and the reference's) are compared line by line, headers
without their `broker`. The first difference is shown with "port" and "reference" labels, the
operation it belongs to (the group's `op` line, docs/trace-format.md, Grouping) and the spec
rule that decides the line: the event's rule (a dead letter's by its reason, a route's by the
kind of address or the pool's strategy), else the operation's.
"""

from __future__ import annotations

import json
from typing import Any

from sim.vectors._corpus import Difference

# The rule that decides each operation's result and each event (docs/spec.md).
OP_RULES = {
    "register": "2.6", "unregister": "2.7", "stop": "2.8", "start": "2.8", "create_pool": "2.9",
    "join": "2.9", "leave": "2.9", "provide": "2.5", "subscribe": "2.10", "unsubscribe": "2.10",
    "send": "7.3", "request": "5.1", "reply": "5.4", "cancel": "5.7", "dequeue": "4.5",
    "done": "3.4", "fire": "1.5",
}  # fmt: skip
EVENT_RULES = {
    "register": "2.6", "unregister": "2.7", "stop": "2.8", "start": "2.8", "create_pool": "2.9",
    "join": "2.9", "leave": "3.2.3", "provide": "2.5", "subscribe": "2.10",
    "unsubscribe": "2.10", "send": "9.4", "reject": "6.5", "route": "2.5", "enqueue": "4.2",
    "park": "4.4", "dequeue": "4.5", "retry": "6.3", "resolve": "5.3",
}  # fmt: skip
DEAD_LETTER_RULES = {
    "actor_stopped": "2.7", "dropped_newest": "4.4", "dropped_oldest": "4.4",
    "dropped_in_transit": "7.4", "expired": "4.7", "send_timeout": "4.4", "late_reply": "5.5",
    "duplicate_reply": "5.6", "orphan_reply": "5.6", "unknown_correlation": "5.6",
    "no_subscribers": "3.9",
}  # fmt: skip
STRATEGY_RULES = {
    "round_robin": "3.2.1", "random": "3.3", "least_loaded": "3.4", "power_of_two": "3.5",
    "consistent_hash": "3.6", "broadcast": "3.7", "shared": "3.8",
}  # fmt: skip
RESOLVE_RULES = {"replied": "5.4", "timed_out": "5.5", "cancelled": "5.7", "failed": "5.9"}


def rule_of(line: dict[str, Any], earlier: list[dict[str, Any]]) -> str:
    """The spec rule deciding `line`, given the lines before it."""
    if "op" in line:
        return OP_RULES.get(line["op"], "9.3")
    if "choice" in line:
        return "7.4"
    if "end" in line:
        return "7.2"
    ev = line.get("ev")
    if ev == "dead_letter":
        return DEAD_LETTER_RULES.get(line.get("reason", ""), "6.5")
    if ev == "resolve":
        return RESOLVE_RULES.get(line.get("outcome", ""), "5.3")
    if ev == "route":
        to = next(
            (e.get("to") for e in reversed(earlier) if e.get("ev") == "send"
             and e.get("msg") == line.get("msg")),
            None,
        )  # fmt: skip
        if isinstance(to, str) and to.startswith("pool:"):
            strategy = next(
                (e.get("strategy") for e in earlier
                 if e.get("ev") == "create_pool" and e.get("pool") == to[5:]),
                None,
            )  # fmt: skip
            return STRATEGY_RULES.get(str(strategy), "3.1")
        if isinstance(to, str) and to.startswith("topic:"):
            return "3.9"
        return "2.5"
    return EVENT_RULES.get(str(ev), "9.3")


def explain(diff: Difference, reference: str) -> str:
    """The difference as a person reads it: both lines, labelled, the operation, the rule."""
    ref_lines = reference.splitlines()
    shown = diff.reference if diff.reference is not None else diff.port
    out = [f"first difference at line {diff.line}"]
    out.append(f"  port:      {diff.port if diff.port is not None else '<end of trace>'}")
    out.append(f"  reference: {diff.reference if diff.reference is not None else '<end of trace>'}")
    if diff.line == 1:
        out.append("  (the headers differ: another scenario, seed or spec version)")
        return "\n".join(out)
    earlier = [_parse(text) for text in ref_lines[1 : diff.line - 1]]
    group = next((e for e in reversed(earlier) if "op" in e), None)
    if group is not None and shown is not None and '"op":' not in shown:
        out.append(f"  in the operation at seq {group.get('seq')}: {_op_text(group)}")
    if shown is not None:
        line = _parse(shown)
        rule = rule_of(line, earlier)
        if "op" in line and diff.reference is not None:  # the rule of what the operation did
            first = _parse(ref_lines[diff.line]) if diff.line < len(ref_lines) else {}
            if "ev" in first:
                rule = rule_of(first, [*earlier, line])
        out.append(f"  spec rule: {rule} (docs/spec.md; event order: 9.3)")
    return "\n".join(out)


def _parse(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _op_text(op: dict[str, Any]) -> str:
    args = {k: v for k, v in op.items() if k not in ("op", "t", "seq")}
    return f"{op['op']} at t={op.get('t')} {json.dumps(args, sort_keys=True)}"
