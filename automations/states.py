"""Run states and the transitions allowed between them. Pure: no database here."""

from django.db import models


class RunState(models.TextChoices):
    RECEIVED = "received"
    DECIDING = "deciding"
    AWAITING_REVIEW = "awaiting_review"
    APPROVED = "approved"
    EXECUTING = "executing"
    EXECUTED = "executed"
    REJECTED = "rejected"
    BLOCKED = "blocked"  # a guardrail stopped it
    HALTED = "halted"  # switched off after approval
    FAILED = "failed"
    COMPENSATED = "compensated"
    RECORDED = "recorded"  # shadow mode, or a suggest-mode draft a person has dealt with


S = RunState

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.RECEIVED: frozenset({S.DECIDING, S.BLOCKED}),
    # A decision that acts on its own goes straight to executing, its first attempt reserved.
    S.DECIDING: frozenset({S.AWAITING_REVIEW, S.APPROVED, S.EXECUTING, S.BLOCKED, S.RECORDED}),
    S.AWAITING_REVIEW: frozenset({S.APPROVED, S.REJECTED, S.RECORDED, S.BLOCKED}),
    S.APPROVED: frozenset({S.EXECUTING, S.HALTED}),
    S.EXECUTING: frozenset({S.EXECUTED, S.FAILED, S.HALTED}),
    S.FAILED: frozenset({S.COMPENSATED}),
    S.EXECUTED: frozenset({S.COMPENSATED}),
    S.REJECTED: frozenset(),
    S.BLOCKED: frozenset(),
    S.HALTED: frozenset(),
    S.COMPENSATED: frozenset(),
    S.RECORDED: frozenset(),
}


class IllegalTransition(Exception):
    def __init__(self, from_state: str, to_state: str):
        super().__init__(f"a run cannot go from {from_state} to {to_state}")
        self.from_state = from_state
        self.to_state = to_state


def check_transition(from_state: str, to_state: str) -> None:
    """Raise IllegalTransition unless `from_state -> to_state` is allowed."""
    if to_state not in ALLOWED_TRANSITIONS.get(from_state, frozenset()):
        raise IllegalTransition(from_state, to_state)
