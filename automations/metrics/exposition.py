"""GET /metrics (contracts section 9): Prometheus text exposition, behind a bearer token.

Off (404) while HANDRAIL_METRICS_TOKEN is unset; 401 without
`Authorization: Bearer <it>`. Names start with handrail_, in base units
(_seconds, _total, _usd); labels are automation, segment and outcome only
(and le on histograms, at most 12 buckets).

The pipeline's figures come from the rollups at scrape time (RollupCollector):
the same in every web process, whatever worker decided the run and on
whichever host, so they need no multiprocess bookkeeping. Counters add up
the day rows since the first; gauges are today's spend and budget, the open
alerts and the rollups' age. A segment label appears only in the
handrail_segment_* families, and only for automations with at most
MAX_SEGMENTS segments, so no label grows without bound. The web processes'
own counts (instruments.py) come through prometheus-client's multiprocess
collector when PROMETHEUS_MULTIPROC_DIR is set.
"""

import hmac
import os
from collections import defaultdict

from django.conf import settings
from django.db.models import Count
from django.http import Http404, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector

from automations.models import DailySpend
from automations.services.spend import spend_day
from catalog.models import Automation

from .buckets import DECISION_BOUNDS_MS, END_TO_END_BOUNDS_MS
from .instruments import LIVE
from .models import (
    DECISION_BUCKET_FIELDS,
    END_TO_END_BUCKET_FIELDS,
    OUTCOME_FIELDS,
    SUM_FIELDS,
    Alert,
)
from .rollup import rollup_as_of
from .sums import rollup_sums

MAX_SEGMENTS = 50
# (name without _total, help, rollup column) of the per-automation counters.
COUNTERS = (
    ("handrail_runs", "Runs received (events stored).", "runs"),
    ("handrail_decisions", "Runs decided (they left deciding).", "decisions"),
    ("handrail_decisions_needing_person", "Decisions sent to a person.", "needed_person"),
    (
        "handrail_guardrail_objections",
        "Decisions at least one guardrail did not pass.",
        "guardrail_triggered",
    ),
    ("handrail_runs_finished", "Runs that reached a final state.", "finished"),
    ("handrail_model_calls", "Calls to the decision provider.", "model_calls"),
    ("handrail_model_call_errors", "Provider calls that failed.", "model_errors"),
    ("handrail_model_call_timeouts", "Provider calls past the latency budget.", "model_timeouts"),
    ("handrail_model_input_tokens", "Tokens sent to the model.", "input_tokens"),
    ("handrail_model_output_tokens", "Tokens the model answered with.", "output_tokens"),
    ("handrail_model_cost_usd", "What the model calls cost, in US dollars.", "cost_usd"),
    ("handrail_reviews", "Cases a person decided.", "reviewed"),
    ("handrail_review_overrides", "Reviews that edited or refused the proposal.", "overridden"),
)
SEGMENT_COUNTERS = (
    ("handrail_segment_runs", "Runs received, per segment.", "runs"),
    ("handrail_segment_decisions_needing_person", "Decisions sent to a person.", "needed_person"),
    ("handrail_segment_reviews", "Cases a person decided, per segment.", "reviewed"),
    ("handrail_segment_review_overrides", "Reviews that overrode, per segment.", "overridden"),
)


def _buckets(sums: dict, fields: tuple[str, ...], bounds_ms: tuple[int, ...]) -> list:
    cumulative, buckets = 0, []
    for field, bound in zip(fields, (*bounds_ms, None), strict=True):
        cumulative += sums.get(field) or 0
        buckets.append(("+Inf" if bound is None else repr(bound / 1000), cumulative))
    return buckets


class RollupCollector:
    """The pipeline's figures from the rollups, per automation (and per segment, bounded)."""

    def collect(self):
        slugs = dict(Automation.objects.values_list("pk", "slug"))
        totals: dict = defaultdict(dict)
        per_segment: dict = {}
        rows = rollup_sums(None, automation_ids=None, group_by=("automation_id", "segment"))
        segments: dict = defaultdict(list)
        for row in rows:
            slug = slugs.get(row["automation_id"])
            if slug is None:
                continue
            for name in SUM_FIELDS:
                totals[slug][name] = totals[slug].get(name, 0) + (row[name] or 0)
            segments[slug].append(row)
        for slug, rows_of in segments.items():
            if len(rows_of) <= MAX_SEGMENTS:
                per_segment[slug] = rows_of
        yield from self._counters(totals)
        yield from self._outcomes(totals, per_segment)
        yield from self._histograms(totals)
        yield from self._segment_counters(per_segment)
        yield from self._gauges(slugs)

    def _counters(self, totals):
        for name, help_text, column in COUNTERS:
            family = CounterMetricFamily(name, help_text, labels=["automation"])
            for slug, sums in totals.items():
                family.add_metric([slug], float(sums.get(column) or 0))
            yield family
        seconds = CounterMetricFamily(
            "handrail_review_seconds", "Time people spent deciding cases.", labels=["automation"]
        )
        for slug, sums in totals.items():
            seconds.add_metric([slug], (sums.get("review_ms_sum") or 0) / 1000)
        yield seconds

    def _outcomes(self, totals, per_segment):
        help_text = "Finished runs by outcome, as contracts section 7 names them."
        family = CounterMetricFamily(
            "handrail_run_outcomes", help_text, labels=["automation", "outcome"]
        )
        for slug, sums in totals.items():
            for outcome in OUTCOME_FIELDS:
                family.add_metric([slug, outcome], float(sums.get(outcome) or 0))
        yield family
        family = CounterMetricFamily(
            "handrail_segment_run_outcomes",
            help_text + " Per segment, while an automation has at most 50.",
            labels=["automation", "segment", "outcome"],
        )
        for slug, rows in per_segment.items():
            for row in rows:
                for outcome in OUTCOME_FIELDS:
                    family.add_metric([slug, row["segment"], outcome], float(row[outcome] or 0))
        yield family

    def _histograms(self, totals):
        for name, help_text, fields, bounds, sum_field in (
            (
                "handrail_decision_latency_seconds",
                "From an event's arrival to its decision.",
                DECISION_BUCKET_FIELDS,
                DECISION_BOUNDS_MS,
                "decision_ms_sum",
            ),
            (
                "handrail_end_to_end_latency_seconds",
                "From an event's arrival to its run's final state, people's time included.",
                END_TO_END_BUCKET_FIELDS,
                END_TO_END_BOUNDS_MS,
                "e2e_ms_sum",
            ),
        ):
            family = HistogramMetricFamily(name, help_text, labels=["automation"])
            for slug, sums in totals.items():
                buckets = _buckets(sums, fields, bounds)
                family.add_metric([slug], buckets, (sums.get(sum_field) or 0) / 1000)
            yield family

    def _segment_counters(self, per_segment):
        for name, help_text, column in SEGMENT_COUNTERS:
            family = CounterMetricFamily(
                name,
                help_text + " Only while an automation has at most 50 segments.",
                labels=["automation", "segment"],
            )
            for slug, rows in per_segment.items():
                for row in rows:
                    family.add_metric([slug, row["segment"]], float(row[column] or 0))
            yield family

    def _gauges(self, slugs):
        today = spend_day(timezone.now())
        spend = GaugeMetricFamily(
            "handrail_daily_spend_usd",
            "Model spend today (UTC), the figure the budget guardrail reads.",
            labels=["automation"],
        )
        spent = dict(DailySpend.objects.filter(day=today).values_list("automation_id", "cost_usd"))
        budget = GaugeMetricFamily(
            "handrail_daily_budget_usd", "Daily model budget.", labels=["automation"]
        )
        for pk, slug, limit in Automation.objects.values_list("pk", "slug", "daily_budget_usd"):
            spend.add_metric([slug], float(spent.get(pk) or 0))
            budget.add_metric([slug], float(limit))
        yield spend
        yield budget
        alerts = GaugeMetricFamily(
            "handrail_alerts_open", "Drift and budget alerts open now.", labels=["automation"]
        )
        open_alerts = (
            Alert.objects.filter(resolved_at=None)
            .values("automation_id")
            .annotate(n=Count("id"))
            .values_list("automation_id", "n")
        )
        for pk, n in open_alerts:
            if pk in slugs:
                alerts.add_metric([slugs[pk]], n)
        yield alerts
        as_of = rollup_as_of()
        age = GaugeMetricFamily(
            "handrail_rollup_age_seconds", "Seconds since the rollup job last caught up."
        )
        age.add_metric([], (timezone.now() - as_of).total_seconds() if as_of else float("nan"))
        yield age


def metrics_registry() -> CollectorRegistry:
    """The rollups' figures and the web processes' counts (all of them, under gunicorn)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RollupCollector())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(_Live())
    return registry


class _Live:
    """This process's own counts, when there is no multiprocess directory to read."""

    def collect(self):
        return LIVE.collect()


def _authorized(request, token: str) -> bool:
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


@require_GET
def metrics_view(request):
    token = settings.HANDRAIL_METRICS_TOKEN
    if not token:
        raise Http404("metrics are off: HANDRAIL_METRICS_TOKEN is not set")
    if not _authorized(request, token):
        return JsonResponse(
            {
                "error": "unauthorized",
                "message": "send Authorization: Bearer <HANDRAIL_METRICS_TOKEN>",
                "field": None,
            },
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    # The text format every Prometheus reads; the names need none of 1.0.0's escaping.
    body = generate_latest(metrics_registry())
    return HttpResponse(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)
