"""Model calls and what they cost per automation and UTC day (the budget guardrail's figure)."""

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Model

from automations.models import DailySpend, ModelCall
from reviewapp.rows import from_row, insert_rows, insert_statement, inserted, select_list, together


def _spend_add_sql(row: str) -> str:
    # An upsert that adds to the day's row (PostgreSQL and SQLite spell it alike).
    table = DailySpend._meta.db_table
    return (
        f"INSERT INTO {table} (automation_id, day, cost_usd, calls) {row}"  # noqa: S608 (model names)
        f" ON CONFLICT (automation_id, day) DO UPDATE SET cost_usd = {table}.cost_usd"
        f" + excluded.cost_usd, calls = {table}.calls + 1"
    )


SPEND_ADD_SQL = _spend_add_sql("VALUES (%s, %s, %s, 1)")
SPEND_READ_SQL = (
    f"SELECT {select_list(DailySpend, 'd')} FROM {DailySpend._meta.db_table} d"  # noqa: S608
    " WHERE d.automation_id = %s AND d.day = %s"
)


def spend_day(moment: datetime):
    return moment.astimezone(UTC).date()


def model_call_record(*, rows: Sequence[Model] = (), **fields) -> ModelCall:
    """Store a model call and add its cost to its automation's spend of the day, together.

    `rows`: new rows of one model written with them (the decision's verdicts);
    their primary keys are not read back. On PostgreSQL all of it is one
    statement, one round trip in the decision's transaction instead of three.
    """
    db = transaction.get_connection()
    call, spend_add, call_insert = model_call_statements(db, **fields)
    if db.vendor == "postgresql":
        rows_insert = [insert_statement(rows, db)] if rows else []
        sql, params = together([spend_add, *rows_insert, call_insert])
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            inserted([call], [cursor.fetchone()[0]])
        return call
    with transaction.atomic(savepoint=False), db.cursor() as cursor:
        cursor.execute(*call_insert)
        inserted([call], [cursor.fetchone()[0]])
        cursor.execute(*spend_add)
        insert_rows(rows)
    return call


def model_call_statements(
    db, *, after: str | None = None, **fields
) -> tuple[ModelCall, tuple, tuple]:
    """A new model call, the statement adding its cost to the day's spend, and its INSERT.

    The two statements are independent: PostgreSQL may run them as clauses of one.
    `after`: as for rows.insert_statement, both write only if that clause has a row.
    """
    call = ModelCall(**fields)
    call_insert = insert_statement([call], db, after=after)  # fills created_at, the day's key
    spend_sql = SPEND_ADD_SQL
    if after is not None:
        spend_sql = _spend_add_sql(f"SELECT %s, %s, %s, 1 FROM {after}")  # noqa: S608
    spend_add = (
        spend_sql,
        [call.automation_id, spend_day(call.created_at), Decimal(call.cost_usd or 0)],
    )
    return call, spend_add, call_insert


def spend_today(*, automation, now: datetime) -> Decimal:
    """What `automation`'s model calls cost on the UTC day of `now`: one row, however busy."""
    with connection.cursor() as cursor:
        cursor.execute(SPEND_READ_SQL, [automation.pk, spend_day(now)])
        row = cursor.fetchone()
    return from_row(DailySpend, row).cost_usd if row else Decimal(0)
