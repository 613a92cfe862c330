"""Daily model spend: once today's cost reaches the budget, runs wait for a person."""

from datetime import UTC, timedelta
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from automations.models import ModelCall
from catalog.models import Provider

from .base import GuardrailContext, passed, review


def spend_today(*, automation, now) -> Decimal:
    """Sum of model call costs of `automation` on the UTC day of `now`."""
    start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    total = ModelCall.objects.filter(
        automation=automation, created_at__gte=start, created_at__lt=start + timedelta(days=1)
    ).aggregate(total=Sum("cost_usd"))["total"]
    return total or Decimal(0)


class BudgetCheck:
    name = "budget"
    stage = "before"

    def check(self, ctx: GuardrailContext):
        automation = ctx.automation
        if automation.provider != Provider.OPENAI:
            return passed(self.name, f"provider {automation.provider} has no model cost")
        spent = spend_today(automation=automation, now=ctx.now or timezone.now())
        budget = Decimal(automation.daily_budget_usd)
        figures = f"${spent:.2f} of ${budget:.2f}"
        details = {"spent_usd": str(spent), "budget_usd": str(budget)}
        if spent >= budget:
            return review(self.name, f"daily model budget spent ({figures})", **details)
        return passed(self.name, f"{figures} spent today", **details)
