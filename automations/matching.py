"""Conditions on an event, shared by the rules provider and do-not-automate rules.

A condition names a dotted `field` into the event (`payload.body`, `segment`,
`source`) and one operator: `matches` (regex search), `equals`, `contains`
(substring, or member of a list), `in` (value is one of a list).

Owners write the `matches` patterns, so they run on RE2, whose time is linear
in the text: `^(a+)+$` cannot hold a worker for seconds. RE2 has no
backreferences or look-around; the loader refuses such patterns, and one
stored before that raises PatternRefused here (a ValueError), which the
callers turn into a person's decision.
"""

from functools import lru_cache

import re2

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


class PatternRefused(ValueError):
    """An owner's pattern that RE2 cannot compile; `reason` is RE2's."""

    def __init__(self, reason: str):
        super().__init__(f"pattern refused by RE2: {reason}")
        self.reason = reason


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # the error is raised, not also printed to stderr
    return options


_OPTIONS = _options()


def pattern_compile(pattern):
    """The owner's pattern compiled by RE2; PatternRefused (with RE2's reason) if it cannot be."""
    if not isinstance(pattern, str):
        raise PatternRefused("a pattern must be a string")
    return _compiled(pattern)


@lru_cache(maxsize=1024)
def _compiled(pattern: str):
    try:
        return re2.compile(pattern, options=_OPTIONS)
    except re2.error as error:
        reason = error.args[0] if error.args else "no reason given"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", errors="replace")
        raise PatternRefused(reason) from None


def condition_matches(document: dict, field: str, operator: str, operand) -> bool:
    """Whether the event document satisfies one condition; a missing field never matches."""
    value = field_value(document, field)
    if value is _MISSING:
        return False
    if operator == "matches":
        return isinstance(value, str) and pattern_compile(operand).search(value) is not None
    if operator == "equals":
        return value == operand
    if operator == "contains":
        if isinstance(value, str):
            return isinstance(operand, str) and operand in value
        return isinstance(value, list) and operand in value
    if operator == "in":
        return isinstance(operand, list) and value in operand
    raise ValueError(f"unknown operator {operator!r}")
