"""What a dashboard shows: one automation's, or every automation a user may see, over a window.

Reads the rollups (figures.report), the alerts and the rebuild under way:
a handful of queries whatever the number of runs behind them.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q

from catalog.models import Automation

from .charts import Chart, cost_chart, latency_chart, override_chart, volume_chart
from .figures import Figures, Report, report, sums_add
from .models import Alert, RollupRebuild
from .rebuilds import rebuild_running
from .rollup import rollup_as_of
from .sums import rollup_sums
from .windows import WINDOWS, last_hours

# Resolved alerts stay on the dashboard this long.
RECENT_ALERTS = timedelta(days=7)
ALERTS_SHOWN = 50
FIELDS_SHOWN = 10


@dataclass(frozen=True)
class Row:
    """One line of the breakdown table: a segment, or an automation."""

    name: str
    slug: str  # the automation's, for a link; "" for a segment
    figures: Figures


@dataclass(frozen=True)
class Dashboard:
    window: str
    windows: list[str]
    automation: Automation | None  # None: every automation the user may see
    report: Report
    rows: list[Row]
    charts: list[Chart]
    alerts: list[Alert]
    as_of: datetime | None
    rebuild: RollupRebuild | None

    @property
    def figures(self) -> Figures:
        return self.report.overall

    @property
    def fields(self) -> list[tuple[str, int, float]]:
        return self.report.overall.field_shares()[:FIELDS_SHOWN]

    @property
    def hourly(self) -> bool:
        return self.report.span.hourly


def baseline_figures(automations: list[Automation], *, now: datetime) -> Figures:
    """The figures over the span the drift check takes as the override rate's baseline."""
    window = last_hours(settings.HANDRAIL_DRIFT_WINDOW_HOURS, now=now)
    span = window.before(settings.HANDRAIL_DRIFT_BASELINE_DAYS * 24)
    sums: dict = {}
    for row in rollup_sums(span, automation_ids=[a.pk for a in automations], group_by=()):
        sums_add(sums, {k: v for k, v in row.items() if v is not None})
    return Figures(sums)


def _alerts(automations: list[Automation], *, now: datetime) -> list[Alert]:
    recent = Q(resolved_at=None) | Q(resolved_at__gte=now - RECENT_ALERTS)
    return list(
        Alert.objects.filter(recent, automation__in=[a.pk for a in automations])
        .select_related("automation")
        .order_by("-raised_at", "-id")[:ALERTS_SHOWN]
    )


def dashboard(automations: list[Automation], *, window: str, now: datetime, one: bool) -> Dashboard:
    """One automation's dashboard (`one`, by segment), or the one across `automations`."""
    by = "segment" if one else "automation"
    found = report(automations, window=window, now=now, by=by)
    if one:
        rows = [Row(segment or "(no segment)", "", f) for segment, f in found.groups.items()]
    else:
        rows = [Row(a.name, a.slug, found.groups.get(a.pk, Figures({}))) for a in automations]
    hourly = found.span.hourly
    budget = automations[0].latency_budget_ms if one else None
    charts = [
        volume_chart(found.series, hourly=hourly),
        latency_chart(found.series, hourly=hourly, budget_ms=budget),
        override_chart(
            found.series,
            hourly=hourly,
            baseline=baseline_figures(automations, now=now),
            margin=settings.HANDRAIL_DRIFT_OVERRIDE_MARGIN,
        ),
        cost_chart(found.series, hourly=hourly),
    ]
    return Dashboard(
        window=window,
        windows=list(WINDOWS),
        automation=automations[0] if one else None,
        report=found,
        rows=rows,
        charts=charts,
        alerts=_alerts(automations, now=now),
        as_of=rollup_as_of(),
        rebuild=rebuild_running(now=now),
    )
