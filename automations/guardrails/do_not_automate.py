"""Do-not-automate rules: a matching rule sends the run to review or blocks it."""

import re

from automations.matching import condition_matches
from automations.models import Verdict

from .base import CheckResult, GuardrailContext, passed


class DoNotAutomateCheck:
    name = "do_not_automate"
    stage = "before"

    def check(self, ctx: GuardrailContext):
        hits = []
        for rule in ctx.automation.do_not_automate.all():
            try:
                matched = condition_matches(ctx.document, rule.field, rule.operator, rule.value)
            except (re.error, ValueError, TypeError):
                # A broken rule must not let events through unseen; a person looks instead.
                hits.append((rule, Verdict.REVIEW.value, "could not be evaluated"))
                continue
            if matched:
                hits.append((rule, rule.effect, f"matched {rule.field}"))
        if not hits:
            return passed(self.name, "no do-not-automate rule matched")
        verdict = (
            Verdict.BLOCK.value
            if any(effect == Verdict.BLOCK for _, effect, _ in hits)
            else Verdict.REVIEW.value
        )
        # Names and fields only: the matched text may be personal data.
        reason = "; ".join(f'do-not-automate rule "{rule.name}" {what}' for rule, _, what in hits)
        rules = [
            {"name": rule.name, "field": rule.field, "effect": effect, "outcome": what}
            for rule, effect, what in hits
        ]
        return CheckResult(self.name, verdict, reason, {"rules": rules})
