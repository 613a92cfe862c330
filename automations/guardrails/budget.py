"""Daily model spend: once today's cost reaches the budget, runs wait for a person."""

from decimal import Decimal

from django.utils import timezone

from automations.providers import provider_for
from automations.services.spend import spend_today

from .base import GuardrailContext, passed, review


class BudgetCheck:
    name = "budget"
    stage = "before"

    def check(self, ctx: GuardrailContext):
        automation = ctx.automation
        if not provider_for(automation).bills:
            return passed(self.name, f"provider {automation.provider} has no model cost")
        spent = spend_today(automation_id=automation.pk, now=ctx.now or timezone.now())
        budget = Decimal(automation.daily_budget_usd)
        figures = f"{usd(spent)} of {usd(budget)}"
        details = {"spent_usd": str(spent), "budget_usd": str(budget)}
        if spent >= budget:
            return review(self.name, f"daily model budget spent ({figures})", **details)
        return passed(self.name, f"{figures} spent today", **details)


def usd(amount: Decimal) -> str:
    """Dollars with cents, and the sub-cent digits a small amount needs: $12.50, $0.0024."""
    if abs(amount) >= 1 or amount == amount.quantize(Decimal("0.01")):
        return f"${amount:,.2f}"
    return f"${amount.normalize():f}"
