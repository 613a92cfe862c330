"""High-risk intents always wait for a person."""

from catalog.models import IntentRisk

from .base import GuardrailContext, passed, review


class IntentRiskCheck:
    name = "intent_risk"
    stage = "after"

    def check(self, ctx: GuardrailContext):
        if not ctx.decision:
            return passed(self.name, "no decision to check")
        name = ctx.decision.get("intent")
        intent = next((i for i in ctx.automation.intents.all() if i.name == name), None)
        if intent is None:
            return review(self.name, f'intent "{name}" is not one of this automation\'s intents')
        if intent.risk == IntentRisk.HIGH:
            return review(
                self.name, f'intent "{name}" is high-risk: a person approves it', risk=intent.risk
            )
        return passed(self.name, f'intent "{name}" is {intent.risk}-risk', risk=intent.risk)
