"""Conditions on an event, shared by the rules provider and do-not-automate rules.

A condition names a dotted `field` into the event (`payload.body`, `segment`,
`source`) and one operator: `matches` (regex search), `equals`, `contains`
(substring, or member of a list), `in` (value is one of a list).
"""

import re
from functools import lru_cache

from automations.models import Event

OPERATORS = ("matches", "equals", "contains", "in")
_MISSING = object()


def event_document(event: Event) -> dict:
    """The event as the dictionary that dotted field paths walk."""
    return {
        "payload": event.payload,
        "segment": event.segment,
        "source": event.source,
        "idempotency_key": event.idempotency_key,
    }


def field_value(document: dict, path: str):
    """The value at a dotted path, or _MISSING; list items are addressed by index."""
    value = document
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def condition_matches(document: dict, field: str, operator: str, operand) -> bool:
    """Whether the event document satisfies one condition; a missing field never matches."""
    value = field_value(document, field)
    if value is _MISSING:
        return False
    if operator == "matches":
        return isinstance(value, str) and _compiled(operand).search(value) is not None
    if operator == "equals":
        return value == operand
    if operator == "contains":
        if isinstance(value, str):
            return isinstance(operand, str) and operand in value
        return isinstance(value, list) and operand in value
    if operator == "in":
        return isinstance(operand, list) and value in operand
    raise ValueError(f"unknown operator {operator!r}")
