"""The ordered guardrail registry. Adding a guardrail is adding a module and a line here."""

import logging
import traceback
from collections.abc import Iterable

from automations.models import Verdict

from .base import STAGES, CheckResult, Guardrail, GuardrailContext
from .budget import BudgetCheck
from .confidence import ConfidenceCheck
from .do_not_automate import DoNotAutomateCheck
from .intent_risk import IntentRiskCheck
from .pii_policy import PiiPolicyCheck
from .segment_policy import SegmentPolicyCheck

__all__ = ["GUARDRAILS", "CheckResult", "Guardrail", "GuardrailContext", "guardrails_run"]

logger = logging.getLogger(__name__)

GUARDRAILS: list[Guardrail] = [
    SegmentPolicyCheck(),
    DoNotAutomateCheck(),
    BudgetCheck(),
    PiiPolicyCheck(),
    IntentRiskCheck(),
    ConfidenceCheck(),
]

_SEVERITY = {Verdict.PASS.value: 0, Verdict.REVIEW.value: 1, Verdict.BLOCK.value: 2}


def guardrails_run(*, stage: str, ctx: GuardrailContext) -> list[CheckResult]:
    """Every check of `stage`, in registry order; a check that crashes asks for review."""
    if stage not in STAGES:
        raise ValueError(f"unknown guardrail stage {stage!r}; expected one of {STAGES}")
    results = []
    for guardrail in GUARDRAILS:
        if guardrail.stage != stage:
            continue
        try:
            result = guardrail.check(ctx)
        except Exception as exc:  # a broken check must fail towards a person, not crash
            # The traceback without the message: messages may quote payload text.
            logger.error(
                "guardrail %s raised %s\n%s",
                guardrail.name,
                type(exc).__name__,
                "".join(traceback.format_tb(exc.__traceback__)),
            )
            result = CheckResult(
                guardrail.name,
                Verdict.REVIEW.value,
                f"check {guardrail.name} failed: a person decides",
            )
        results.append(result)
    return results


def strictest(results: Iterable[CheckResult | str]) -> str:
    """The most cautious verdict among `results`: block > review > pass; pass when empty."""
    verdicts = [r if isinstance(r, str) else r.verdict for r in results]
    return max(verdicts, key=_SEVERITY.__getitem__, default=Verdict.PASS.value)
