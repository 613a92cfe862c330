"""Time spans over rollup rows: whole UTC hours, read as day rows where whole days fit. Pure.

A span [since, until) of whole hours reads the hour rows of its ragged ends
and the day rows of the whole days between them, so 30 days of one automation
are about 30 day rows and 47 hour rows per segment, never 720.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Q

from .models import Period

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# The dashboards' and metrics_report's windows: the current hour and the ones before it.
WINDOWS = {"24h": 24, "7d": 7 * 24, "30d": 30 * 24}
DEFAULT_WINDOW = "24h"


def hour_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def day_floor(moment: datetime) -> datetime:
    return hour_floor(moment).replace(hour=0)


def day_ceil(moment: datetime) -> datetime:
    floor = day_floor(moment)
    return floor if floor == moment else floor + DAY


@dataclass(frozen=True)
class Span:
    """Whole hours from `since` (inclusive) to `until` (exclusive), both on the hour, UTC."""

    since: datetime
    until: datetime

    @property
    def hours(self) -> int:
        return int((self.until - self.since) / HOUR)

    @property
    def hourly(self) -> bool:
        """Whether its charts put a point on every hour (up to two days) or on every day."""
        return self.hours <= 48

    def ranges(self) -> list[tuple[str, datetime, datetime]]:
        """(period, from, to) of the rollup rows that add up to this span, none twice."""
        first_day, last_day = day_ceil(self.since), day_floor(self.until)
        if first_day >= last_day:
            return [(Period.HOUR, self.since, self.until)]
        return [
            (Period.HOUR, self.since, first_day),
            (Period.DAY, first_day, last_day),
            (Period.HOUR, last_day, self.until),
        ]

    def rows(self) -> Q:
        """The same as a filter on a model with period and start (RollupKey)."""
        found = Q(pk__in=[])
        for period, since, until in self.ranges():
            found |= Q(period=period, start__gte=since, start__lt=until)
        return found

    def before(self, hours: int) -> "Span":
        """The `hours` whole hours just before this span."""
        return Span(self.since - hours * HOUR, self.since)


def window_span(window: str, *, now: datetime) -> Span:
    """The window named "24h", "7d" or "30d": its number of hours, ending with the current one."""
    hours = WINDOWS[window]
    until = hour_floor(now) + HOUR
    return Span(until - hours * HOUR, until)


def last_hours(hours: int, *, now: datetime) -> Span:
    """The current hour and the `hours - 1` before it."""
    until = hour_floor(now) + HOUR
    return Span(until - hours * HOUR, until)


def series_points(span: Span) -> list[datetime]:
    """Where a chart of the span puts its points (Span.hourly)."""
    if span.hourly:
        return [span.since + n * HOUR for n in range(span.hours)]
    first = day_floor(span.since)
    days = int((day_ceil(span.until) - first) / DAY)
    return [first + n * DAY for n in range(days)]


def point_of(start: datetime, span: Span) -> datetime:
    """The chart point a rollup row's start falls on (series_points)."""
    return start if span.hourly else day_floor(start)
