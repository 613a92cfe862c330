"""Model calls and what they cost per automation and UTC day (the budget guardrail's figure)."""

from datetime import UTC, datetime
from decimal import Decimal

from django.db import transaction

from automations.models import DailySpend, ModelCall
from reviewapp.rows import row_get, row_insert


def spend_day(moment: datetime):
    return moment.astimezone(UTC).date()


def model_call_record(**fields) -> ModelCall:
    """Store a model call and add its cost to its automation's spend of the day, together."""
    with transaction.atomic(savepoint=False):
        call = row_insert(ModelCall(**fields))
        if call.cost_usd:
            spend_add(
                automation_id=call.automation_id,
                day=spend_day(call.created_at),
                cost=Decimal(call.cost_usd),
            )
    return call


def spend_add(*, automation_id: int, day, cost: Decimal) -> None:
    """Add `cost` to the automation's spend of `day`, creating the day's row on its first call."""
    connection = transaction.get_connection()
    field = DailySpend._meta.get_field("cost_usd")
    params = [
        automation_id,
        DailySpend._meta.get_field("day").get_db_prep_save(day, connection),
        field.get_db_prep_save(cost, connection),
    ]
    with connection.cursor() as cursor:
        cursor.execute(_SPEND_ADD_SQL, params)


# An upsert PostgreSQL and SQLite both spell this way: one statement whether or not the
# day has its row yet, and no race between two calls making it.
_SPEND_ADD_SQL = (
    f'INSERT INTO "{DailySpend._meta.db_table}" ("automation_id", "day", "cost_usd", "calls")'  # noqa: S608
    ' VALUES (%s, %s, %s, 1) ON CONFLICT ("automation_id", "day") DO UPDATE'
    f' SET "cost_usd" = "{DailySpend._meta.db_table}"."cost_usd" + excluded."cost_usd",'
    f' "calls" = "{DailySpend._meta.db_table}"."calls" + 1'
)


def spend_today(*, automation_id: int, now: datetime) -> Decimal:
    """What an automation's model calls cost on the UTC day of `now`: one row, however busy."""
    spent = row_get(DailySpend, where={"automation_id": automation_id, "day": spend_day(now)})
    return Decimal(spent.cost_usd if spent else 0)
