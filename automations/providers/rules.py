"""The rules provider: deterministic, offline; the first matching rule decides."""

import copy
import re
import time

from automations.matching import OPERATORS, condition_matches
from catalog.models import Automation

from .base import ProviderCall, ProviderResult
from .validation import decision_validate

NO_MATCH = "no rule matched"


class RulesProvider:
    """Evaluates automation.rules in order: `{when: {field, <operator>: operand}, intent, ...}`."""

    name = "rules"
    remote = False
    bills = False
    attempts = 1
    needs_model = False

    def endpoint(self, automation: Automation) -> str:
        """Rules run in process: the event goes nowhere."""
        return ""

    def decide(self, *, automation: Automation, document: dict) -> ProviderResult:
        started = time.monotonic()
        decision, error = _rules_decide(automation=automation, document=document)
        call = ProviderCall(
            provider=self.name,
            latency_ms=int((time.monotonic() - started) * 1000),
            error=error,
        )
        return ProviderResult(decision=decision, error=error, call=call)


def _rules_decide(*, automation: Automation, document: dict) -> tuple[dict | None, str]:
    for number, rule in enumerate(automation.rules or [], start=1):
        try:
            matched = _rule_matches(rule, document)
        except (KeyError, TypeError, ValueError, re.error) as exc:
            # A rule the loader should have refused: a person decides instead.
            return None, f"rule {number} is malformed: {exc}"
        if matched:
            data = {
                "intent": rule.get("intent"),
                # A copy: whoever edits the decision must not edit the configuration.
                "arguments": copy.deepcopy(rule.get("arguments", {})),
                "confidence": rule.get("confidence", 1.0),
                "rationale": f"matched rule {number}",
            }
            decision, error = decision_validate(automation=automation, data=data)
            return decision, error and f"rule {number}: {error}"
    return None, NO_MATCH


def _rule_matches(rule: dict, document: dict) -> bool:
    when = rule["when"]
    operators = [name for name in OPERATORS if name in when]
    if len(operators) != 1:
        raise ValueError(f"needs exactly one of {', '.join(OPERATORS)}")
    operator = operators[0]
    return condition_matches(document, when["field"], operator, when[operator])
