"""Model calls and what they cost per automation and UTC day (the budget guardrail's figure)."""

from datetime import UTC, datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F

from automations.models import DailySpend, ModelCall


def spend_day(moment: datetime):
    return moment.astimezone(UTC).date()


def model_call_record(**fields) -> ModelCall:
    """Store a model call and add its cost to its automation's spend of the day, together."""
    with transaction.atomic(savepoint=False):
        call = ModelCall.objects.create(**fields)
        if call.cost_usd:
            spend_add(
                automation_id=call.automation_id,
                day=spend_day(call.created_at),
                cost=Decimal(call.cost_usd),
            )
    return call


def spend_add(*, automation_id: int, day, cost: Decimal) -> None:
    """Add `cost` to the automation's spend of `day`, creating the day's row on its first call."""
    added = DailySpend.objects.filter(automation_id=automation_id, day=day).update(
        cost_usd=F("cost_usd") + cost, calls=F("calls") + 1
    )
    if added:
        return
    try:
        with transaction.atomic():
            DailySpend.objects.create(automation_id=automation_id, day=day, cost_usd=cost, calls=1)
    except IntegrityError:
        # Another call created the day's row first: add to it.
        spend_add(automation_id=automation_id, day=day, cost=cost)


def spend_today(*, automation_id: int, now: datetime) -> Decimal:
    """What an automation's model calls cost on the UTC day of `now`: one row, however busy."""
    spent = (
        DailySpend.objects.filter(automation_id=automation_id, day=spend_day(now))
        .values_list("cost_usd", flat=True)
        .first()
    )
    return Decimal(spent or 0)
