"""The guardrail interface: a context in, one verdict out. Checks only ever add caution."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from automations.models import Run, Verdict
from catalog.models import Automation, SegmentPolicy

STAGES = ("before", "after")  # before the model is called | on the validated decision
_UNSET = object()


@dataclass
class GuardrailContext:
    """What a check may look at; the PII check may replace `document` with a redacted copy."""

    automation: Automation
    run: Run
    document: dict
    decision: dict | None = None
    now: datetime | None = None
    # Today's model spend when the caller read it with the run; None: the budget check reads it.
    spent_today: Decimal | None = None
    _policy: object = field(default=_UNSET, init=False, repr=False, compare=False)

    def segment_policy(self) -> SegmentPolicy | None:
        """The policy for the run's segment, or None; reads prefetched `segments` when present."""
        if self._policy is _UNSET:
            segment = self.run.segment
            self._policy = (
                next((p for p in self.automation.segments.all() if p.key == segment), None)
                if segment
                else None
            )
        return self._policy


@dataclass
class CheckResult:
    check_name: str
    verdict: str  # automations.models.Verdict
    reason: str  # shown to reviewers: never put payload text (PII) in it
    details: dict = field(default_factory=dict)


class Guardrail(Protocol):
    name: str
    stage: str

    def check(self, ctx: GuardrailContext) -> CheckResult: ...


def passed(name: str, reason: str, **details) -> CheckResult:
    """A passing result."""
    return CheckResult(name, Verdict.PASS.value, reason, details)


def review(name: str, reason: str, **details) -> CheckResult:
    """A result that sends the run to a person."""
    return CheckResult(name, Verdict.REVIEW.value, reason, details)


def block(name: str, reason: str, **details) -> CheckResult:
    """A result that stops the run."""
    return CheckResult(name, Verdict.BLOCK.value, reason, details)
