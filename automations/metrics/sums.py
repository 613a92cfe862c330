"""SUMs of rollup columns over a span, as one statement written here rather than by the ORM.

The ORM takes about 10 ms to compile a SELECT of some fifty SUMs, more than
the database takes to run it over a month of rows, and every dashboard and
drift check runs a few. This writes the same statement (and binds its
values as the ORM would) for PostgreSQL and SQLite alike.

Priced sums add what reviewers' time cost and the manual minutes the acting
cases saved, each automation at its own rates, in the same statement: the
sums can then be grouped by segment, by start or not at all, and still add
up across automations exactly.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from functools import cache

from django.db import connection
from django.utils.dateparse import parse_datetime

from catalog.models import Automation

from .models import SUM_FIELDS, Period, Rollup
from .windows import Span

GROUPS = frozenset({"automation_id", "segment", "start"})
MS_PER_HOUR = 3_600_000
MS_PER_MINUTE = 60_000
# The cases that acted through Handrail, each saving a person's manual minutes.
ACTED = ("autonomous", "approved", "edited")


@dataclass(frozen=True)
class Economics:
    """What a reviewer's hour costs and what a case takes by hand, for one automation."""

    hourly_usd: float
    manual_minutes: float

    @classmethod
    def of(cls, automation: Automation) -> "Economics":
        return cls(float(automation.reviewer_hourly_usd), float(automation.manual_minutes_per_case))


def _priced(prices: dict[int, "Economics"]) -> tuple[list[str], list]:
    """The two priced columns (review_cost_usd, manual_minutes) and their bound values."""
    quote = connection.ops.quote_name
    cases, params = [], []
    for rate in ("hourly_usd", "manual_minutes"):
        whens = " ".join(["WHEN %s THEN %s"] * len(prices))
        cases.append(f"CASE {quote('automation_id')} {whens} ELSE 0 END")
        for pk, economics in prices.items():
            params += [pk, getattr(economics, rate)]
    acted = " + ".join(quote(name) for name in ACTED)
    columns = [
        f"SUM({quote('review_ms_sum')} * {cases[0]})",
        f"SUM(({acted}) * {cases[1]})",
    ]
    return columns, params


@cache
def _select(group_by: tuple[str, ...], fields: tuple[str, ...]) -> str:
    quote = connection.ops.quote_name
    columns = [quote(name) for name in group_by] + [f"SUM({quote(f)})" for f in fields]
    # Names only, all checked against the model's columns (rollup_sums); values are bound.
    return f"SELECT {', '.join(columns)} FROM {quote(Rollup._meta.db_table)}"  # noqa: S608


def _where(span: Span | None, ids: list[int] | None) -> tuple[str, list]:
    adapt = connection.ops.adapt_datetimefield_value
    parts, params = [], []
    if ids is not None:
        parts.append(f"automation_id IN ({', '.join(['%s'] * len(ids))})")
        params += ids
    if span is None:
        parts.append("period = %s")
        params.append(Period.DAY)
    else:
        ranges = span.ranges()
        parts.append(
            "(" + " OR ".join(["(period = %s AND start >= %s AND start < %s)"] * len(ranges)) + ")"
        )
        for period, since, until in ranges:
            params += [period, adapt(since), adapt(until)]
    return " AND ".join(parts), params


def _value(name: str, value):
    if value is None:
        return None
    if name == "start":  # SQLite hands back naive UTC (a datetime, or text)
        moment = parse_datetime(value) if isinstance(value, str) else value
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if name == "cost_usd":
        return value if isinstance(value, Decimal) else Decimal(str(value))
    if name in SUM_FIELDS:  # PostgreSQL sums bigints as numeric
        return int(value)
    return value


def rollup_sums(
    span: Span | None,
    *,
    automation_ids: Iterable[int] | None,
    group_by: tuple[str, ...],
    fields: tuple[str, ...] = SUM_FIELDS,
    prices: dict[int, Economics] | None = None,
) -> list[dict]:
    """SUM of each of `fields` over the span's rows (None: every day row), grouped by `group_by`.

    `automation_ids` None: every automation. Without `group_by`, one row (its
    sums None when no row matched). With `prices` (per automation id), also
    review_cost_usd and saved_minutes (manual minutes of the acting cases,
    less the reviewers' minutes; needs review_ms_sum among the fields).
    """
    if not set(group_by) <= GROUPS or not set(fields) <= set(SUM_FIELDS):
        raise ValueError(f"not rollup columns: {group_by} {fields}")
    ids = None if automation_ids is None else list(automation_ids)
    names = (*group_by, *fields)
    if ids == []:
        return [] if group_by else [dict.fromkeys(names)]
    sql, params = _select(tuple(group_by), tuple(fields)), []
    if prices:
        priced, params = _priced(prices)
        sql = sql.replace(" FROM ", ", " + ", ".join(priced) + " FROM ", 1)
        names = (*names, "review_cost_ms_usd", "manual_minutes")
    where, where_params = _where(span, ids)
    sql += f" WHERE {where}"
    if group_by:
        sql += " GROUP BY " + ", ".join(connection.ops.quote_name(g) for g in group_by)
    with connection.cursor() as cursor:
        cursor.execute(sql, params + where_params)
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return [_row(row, priced=bool(prices)) for row in rows]


def _row(row: dict, *, priced: bool) -> dict:
    values = {name: _value(name, value) for name, value in row.items()}
    if priced:
        review_ms = values.get("review_ms_sum") or 0
        values["review_cost_usd"] = float(values.pop("review_cost_ms_usd") or 0) / MS_PER_HOUR
        manual = float(values.pop("manual_minutes") or 0)
        values["saved_minutes"] = manual - review_ms / MS_PER_MINUTE
    return values
