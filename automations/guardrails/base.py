"""The guardrail interface: a context in, one verdict out. Checks only ever add caution."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from automations.models import Run, Verdict
from catalog.models import Automation
from catalog.policy import Policy, policy_of

STAGES = ("before", "after")  # before the model is called | on the validated decision


@dataclass
class GuardrailContext:
    """What a check may look at; the PII check may replace `document` with a redacted copy."""

    automation: Automation
    run: Run
    document: dict
    decision: dict | None = None
    now: datetime | None = None

    def policy(self) -> Policy:
        """The kill switches and modes for the run's segment, from the loaded configuration."""
        return policy_of(self.automation, self.run.segment)


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
