"""The figures of a window, per automation and segment, from the rollups only.

A few grouped SUMs over the window's rollup rows (windows.Span.rows), then
arithmetic here: percentiles from the summed buckets, rates, the Wilson
interval of the override rate, costs and time saved. Money and time are
worked out per automation (each has its own reviewer rate and manual
minutes) and only then added up, so the figures across automations are
exact too.

- cost per 1,000 decisions: (model cost + reviewer hours x reviewer_hourly_usd)
  per 1,000 runs received (priced in SQL, sums.rollup_sums);
- time saved: manual_minutes_per_case for every case that acted through
  Handrail (autonomous, approved, edited), less the reviewers' time on all.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Sum

from catalog.models import Automation
from catalog.stats import wilson_interval

from .buckets import DECISION_BOUNDS_MS, END_TO_END_BOUNDS_MS, percentiles
from .models import (
    DECISION_BUCKET_FIELDS,
    END_TO_END_BUCKET_FIELDS,
    OUTCOME_FIELDS,
    KeyKind,
    RollupKey,
)
from .sums import Economics, rollup_sums
from .windows import Span, point_of, series_points, window_span

# What the charts need of each point: fewer sums than the whole row.
SERIES_FIELDS = (
    "runs",
    "decisions",
    "finished",
    *OUTCOME_FIELDS,
    *DECISION_BUCKET_FIELDS,
    "reviewed",
    "overridden",
    "review_ms_sum",
    "cost_usd",
)


def _rate(part: float, whole: float) -> float:
    """part / whole, 0.0 for nothing over nothing (the counts beside it tell the two apart)."""
    return part / whole if whole else 0.0


def sums_add(total: dict, more: dict) -> None:
    for name, value in more.items():
        total[name] = total.get(name, 0) + (value or 0)


@dataclass(frozen=True)
class Figures:
    """Everything a dashboard and metrics_report show for one slice of one window."""

    sums: dict
    checks: list[tuple[str, int]] = field(default_factory=list)  # (check, decisions it stopped)
    fields: list[tuple[str, int]] = field(default_factory=list)  # (field path, corrections)

    def count(self, name: str) -> int:
        return int(self.sums.get(name) or 0)

    @property
    def runs(self) -> int:
        return self.count("runs")

    @property
    def decisions(self) -> int:
        return self.count("decisions")

    @property
    def finished(self) -> int:
        return self.count("finished")

    @property
    def reviewed(self) -> int:
        return self.count("reviewed")

    @property
    def overridden(self) -> int:
        return self.count("overridden")

    @property
    def model_calls(self) -> int:
        return self.count("model_calls")

    @property
    def outcomes(self) -> dict[str, int]:
        return {name: self.count(name) for name in OUTCOME_FIELDS}

    @property
    def decision_latency_ms(self) -> dict[str, float | None]:
        return percentiles([self.count(f) for f in DECISION_BUCKET_FIELDS], DECISION_BOUNDS_MS)

    @property
    def end_to_end_latency_ms(self) -> dict[str, float | None]:
        return percentiles([self.count(f) for f in END_TO_END_BUCKET_FIELDS], END_TO_END_BOUNDS_MS)

    @property
    def override_rate(self) -> float:
        return _rate(self.overridden, self.reviewed)

    @property
    def override_interval(self) -> tuple[float, float]:
        return wilson_interval(self.overridden, self.reviewed)

    @property
    def needed_person_rate(self) -> float:
        return _rate(self.count("needed_person"), self.decisions)

    @property
    def guardrail_trigger_rate(self) -> float:
        return _rate(self.count("guardrail_triggered"), self.decisions)

    @property
    def model_error_rate(self) -> float:
        return _rate(self.count("model_errors"), self.model_calls)

    @property
    def model_timeout_rate(self) -> float:
        return _rate(self.count("model_timeouts"), self.model_calls)

    @property
    def tokens(self) -> int:
        return self.count("input_tokens") + self.count("output_tokens")

    @property
    def cost_usd(self) -> float:
        return float(self.sums.get("cost_usd") or 0)

    @property
    def review_cost_usd(self) -> float:
        return float(self.sums.get("review_cost_usd") or 0)

    @property
    def cost_per_1000_decisions_usd(self) -> float:
        return _rate((self.cost_usd + self.review_cost_usd) * 1000, self.runs)

    @property
    def mean_review_seconds(self) -> float | None:
        return self.count("review_ms_sum") / self.reviewed / 1000 if self.reviewed else None

    @property
    def mean_decision_ms(self) -> float | None:
        return self.count("decision_ms_sum") / self.decisions if self.decisions else None

    @property
    def time_saved_hours(self) -> float:
        return float(self.sums.get("saved_minutes") or 0) / 60

    def check_rates(self) -> list[tuple[str, int, float]]:
        """(check, decisions it did not pass, share of all decisions), most frequent first."""
        return [(name, n, _rate(n, self.decisions)) for name, n in self.checks]

    def field_shares(self) -> list[tuple[str, int, float]]:
        """(field, corrections, share of all corrections), most corrected first."""
        total = sum(n for _, n in self.fields)
        return [(name, n, _rate(n, total)) for name, n in self.fields]


def _ms(value: float | None) -> float:
    return 0.0 if value is None else round(value, 3)


def figures_json(figures: Figures) -> dict:
    """The figures as metrics_report prints them (contracts section 9), extras after."""
    low, high = figures.override_interval
    return {
        "runs": figures.runs,
        "outcomes": figures.outcomes,
        "decision_latency_ms": {k: _ms(v) for k, v in figures.decision_latency_ms.items()},
        "end_to_end_latency_ms": {k: _ms(v) for k, v in figures.end_to_end_latency_ms.items()},
        "override_rate": figures.override_rate,
        "needed_person_rate": figures.needed_person_rate,
        "model_error_rate": figures.model_error_rate,
        "tokens": figures.tokens,
        "cost_usd": round(figures.cost_usd, 6),
        "cost_per_1000_decisions_usd": round(figures.cost_per_1000_decisions_usd, 6),
        "decisions": figures.decisions,
        "finished": figures.finished,
        "reviewed": figures.reviewed,
        "overridden": figures.overridden,
        "override_rate_interval": [low, high],
        "needed_person": figures.count("needed_person"),
        "model_calls": figures.model_calls,
        "model_timeout_rate": figures.model_timeout_rate,
        "input_tokens": figures.count("input_tokens"),
        "output_tokens": figures.count("output_tokens"),
        "review_cost_usd": round(figures.review_cost_usd, 6),
        "mean_review_seconds": figures.mean_review_seconds,
        "mean_decision_latency_ms": figures.mean_decision_ms,
        "time_saved_hours": round(figures.time_saved_hours, 6),
        "guardrail_trigger_rate": figures.guardrail_trigger_rate,
        "guardrail_triggers": {
            name: {"count": n, "rate": rate} for name, n, rate in figures.check_rates()
        },
        "field_corrections": [
            {"field": name, "count": n, "share": share} for name, n, share in figures.field_shares()
        ],
    }


# -- reading the rollups -----------------------------------------------------------------


def key_counts(span: Span, *, automation_ids: Iterable[int]) -> list[dict]:
    """Counts per (automation, segment, kind, key) over the span."""
    return list(
        RollupKey.objects.filter(span.rows(), automation_id__in=list(automation_ids))
        .values("automation_id", "segment", "kind", "key")
        .annotate(n=Sum("count"))
        .order_by()
    )


def _by_count(counts: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


@dataclass(frozen=True)
class Point:
    start: datetime
    figures: Figures


@dataclass(frozen=True)
class Report:
    """One window's figures: over everything asked for, per group, and per chart point."""

    window: str
    span: Span
    overall: Figures
    groups: dict  # segment (one automation) or automation id (several) -> Figures
    series: list[Point]


def report(automations: list[Automation], *, window: str, now: datetime, by: str) -> Report:
    """The window's figures over `automations`, grouped `by` "segment" or "automation"."""
    span = window_span(window, now=now)
    prices = {a.pk: Economics.of(a) for a in automations}
    group_field = "automation_id" if by == "automation" else "segment"
    overall: dict = {}
    groups: dict = {}
    for row in rollup_sums(span, automation_ids=prices, group_by=(group_field,), prices=prices):
        group = row.pop(group_field)
        groups[group] = row
        sums_add(overall, row)
    checks: dict = defaultdict(lambda: defaultdict(int))
    fields: dict = defaultdict(lambda: defaultdict(int))
    for row in key_counts(span, automation_ids=prices):
        into = checks if row["kind"] == KeyKind.CHECK else fields
        into[None][row["key"]] += row["n"]
        into[row[group_field]][row["key"]] += row["n"]
    return Report(
        window=window,
        span=span,
        overall=Figures(overall, _by_count(checks[None]), _by_count(fields[None])),
        groups={
            group: Figures(sums, _by_count(checks[group]), _by_count(fields[group]))
            for group, sums in sorted(groups.items(), key=lambda item: str(item[0]))
        },
        series=_series(span, prices),
    )


def _series(span: Span, prices: dict[int, Economics]) -> list[Point]:
    points: dict[datetime, dict] = {start: {} for start in series_points(span)}
    rows = rollup_sums(
        span, automation_ids=prices, group_by=("start",), fields=SERIES_FIELDS, prices=prices
    )
    for row in rows:
        sums_add(points.setdefault(point_of(row.pop("start"), span), {}), row)
    return [Point(start, Figures(sums)) for start, sums in sorted(points.items())]


def automation_report(automation: Automation, *, window: str, now: datetime) -> Report:
    """One automation's window, per segment."""
    return report([automation], window=window, now=now, by="segment")
