"""Percentiles, rates, Wilson intervals, PSI and money against values worked out by hand."""

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from automations.metrics.buckets import (
    DECISION_BOUNDS_MS,
    END_TO_END_BOUNDS_MS,
    bucket_index,
    confidence_bin,
    percentile,
    percentiles,
    psi,
)
from automations.metrics.figures import Figures, automation_report, report
from automations.metrics.models import Rollup
from automations.metrics.sums import rollup_sums
from automations.metrics.windows import Span, last_hours, window_span
from tests.factories import AutomationFactory

NOW = datetime(2026, 11, 24, 15, 40, tzinfo=UTC)


def decision_counts(**by_bucket) -> list[int]:
    counts = [0] * (len(DECISION_BOUNDS_MS) + 1)
    for index, n in by_bucket.items():
        counts[int(index.removeprefix("b"))] = n
    return counts


def test_a_value_on_a_bound_falls_in_that_bounds_bucket():
    assert bucket_index(50, DECISION_BOUNDS_MS) == 0
    assert bucket_index(50.5, DECISION_BOUNDS_MS) == 1
    assert bucket_index(60_000, DECISION_BOUNDS_MS) == 10
    assert bucket_index(60_001, DECISION_BOUNDS_MS) == 11  # the open-ended bucket
    assert bucket_index(0, END_TO_END_BOUNDS_MS) == 0


def test_percentiles_interpolate_within_the_bucket_the_rank_falls_in():
    # 4 decisions up to 50 ms, 4 in (50, 100], 2 in (100, 250].
    counts = decision_counts(b0=4, b1=4, b2=2)

    # p50: rank 5, the 1st of 4 in (50, 100]: 50 + 50 * 1/4.
    assert percentile(counts, DECISION_BOUNDS_MS, 0.50) == pytest.approx(62.5)
    # p95: rank 9.5, 1.5 of 2 into (100, 250]: 100 + 150 * 0.75.
    assert percentile(counts, DECISION_BOUNDS_MS, 0.95) == pytest.approx(212.5)
    # p99: rank 9.9: 100 + 150 * 1.9/2.
    assert percentile(counts, DECISION_BOUNDS_MS, 0.99) == pytest.approx(242.5)


def test_the_first_bucket_starts_at_zero_and_the_open_one_answers_its_lower_bound():
    assert percentile(decision_counts(b0=2), DECISION_BOUNDS_MS, 0.5) == pytest.approx(25.0)
    assert percentile(decision_counts(b11=3), DECISION_BOUNDS_MS, 0.99) == 60_000


def test_an_empty_histogram_has_no_percentiles():
    assert percentiles(decision_counts(), DECISION_BOUNDS_MS) == {
        "p50": None,
        "p95": None,
        "p99": None,
    }


@pytest.mark.parametrize(
    ("confidence", "expected"),
    [(0.0, 0), (0.09, 0), (0.1, 1), (0.95, 9), (1.0, 9), (1.2, None), (-0.1, None),
     (None, None), (True, None), ("0.9", None)],
)  # fmt: skip
def test_confidence_falls_in_tenths_and_anything_else_in_no_bin(confidence, expected):
    assert confidence_bin(confidence) == expected


def test_psi_of_two_bins_by_hand():
    # Counts 10/30 against 30/10, each bin smoothed by 0.5: shares 10.5/41 and 30.5/41.
    expected = 2 * (20 / 41) * math.log(30.5 / 10.5)

    assert psi([10, 30], [30, 10]) == pytest.approx(expected)
    assert psi([10, 30], [10, 30]) == 0.0
    assert psi([0, 0], [0, 0]) == 0.0


def test_psi_needs_the_same_bins():
    with pytest.raises(ValueError):
        psi([1, 2, 3], [1, 2])


def test_rates_interval_and_money_of_one_slice():
    sums = {
        "runs": 200,
        "decisions": 180,
        "needed_person": 45,
        "guardrail_triggered": 18,
        "reviewed": 10,
        "overridden": 3,
        "review_ms_sum": 1_800_000,  # 30 minutes of reviewers' time
        "model_calls": 160,
        "model_errors": 8,
        "model_timeouts": 2,
        "input_tokens": 1000,
        "output_tokens": 234,
        "cost_usd": Decimal("1.50"),
        "autonomous": 100,
        "approved": 20,
        "edited": 10,
        "rejected": 5,
        # Priced in SQL (the test below): 30 minutes at $60/h; 130 cases at 6 minutes, less 30.
        "review_cost_usd": 30.0,
        "saved_minutes": 750.0,
    }
    figures = Figures(sums)

    assert figures.override_rate == pytest.approx(0.3)
    low, high = figures.override_interval  # Wilson 95 % of 3 in 10
    assert (low, high) == (pytest.approx(0.1078, abs=1e-4), pytest.approx(0.6032, abs=1e-4))
    assert figures.needed_person_rate == pytest.approx(0.25)
    assert figures.guardrail_trigger_rate == pytest.approx(0.1)
    assert figures.model_error_rate == pytest.approx(0.05)
    assert figures.model_timeout_rate == pytest.approx(0.0125)
    assert figures.tokens == 1234
    # 30 reviewer minutes at $60/h = $30; ($1.50 + $30) per 200 runs, times 1,000.
    assert figures.review_cost_usd == pytest.approx(30.0)
    assert figures.cost_per_1000_decisions_usd == pytest.approx(157.5)
    assert figures.mean_review_seconds == pytest.approx(180.0)
    # 130 cases acted through Handrail at 6 minutes each, less the 30 minutes of review.
    assert figures.time_saved_hours == pytest.approx(12.5)


def test_nothing_over_nothing_is_a_zero_rate_beside_zero_counts():
    figures = Figures({})

    assert (figures.override_rate, figures.reviewed) == (0.0, 0)
    assert figures.override_interval == (0.0, 1.0)
    assert figures.cost_per_1000_decisions_usd == 0.0
    assert figures.mean_review_seconds is None


def test_windows_are_whole_hours_ending_with_the_current_one():
    span = window_span("24h", now=NOW)

    assert (span.since, span.until) == (
        datetime(2026, 11, 23, 16, tzinfo=UTC),
        datetime(2026, 11, 24, 16, tzinfo=UTC),
    )
    assert window_span("30d", now=NOW).hours == 720
    assert last_hours(2, now=NOW).since == datetime(2026, 11, 24, 14, tzinfo=UTC)


def rollup(automation, start, period="h", **values):
    return Rollup.objects.create(
        automation=automation, period=period, start=start, segment="", **values
    )


@pytest.mark.django_db
def test_a_span_reads_day_rows_for_whole_days_and_hour_rows_for_its_ends():
    automation = AutomationFactory()
    since = datetime(2026, 11, 20, 22, tzinfo=UTC)
    until = datetime(2026, 11, 23, 3, tzinfo=UTC)
    # Every hour from the 19th to the 24th holds one run, and every day row its 24.
    hour = datetime(2026, 11, 19, tzinfo=UTC)
    while hour < datetime(2026, 11, 25, tzinfo=UTC):
        rollup(automation, hour, runs=1)
        if hour.hour == 0:
            rollup(automation, hour, period="d", runs=24)
        hour += timedelta(hours=1)

    span = Span(since, until)
    rows = Rollup.objects.filter(span.rows())
    [summed] = rollup_sums(span, automation_ids=[automation.pk], group_by=())

    assert sum(row.runs for row in rows) == summed["runs"] == 53  # 2 + 24 + 24 + 3 hours
    assert {(row.period, row.start.day) for row in rows if row.period == "d"} == {
        ("d", 21),
        ("d", 22),
    }


@pytest.mark.django_db
def test_an_automations_report_adds_up_segments_and_prices_its_reviews():
    automation = AutomationFactory(reviewer_hourly_usd=Decimal("60"), manual_minutes_per_case=5)
    hour = datetime(2026, 11, 24, 10, tzinfo=UTC)
    for segment, runs, reviewed, overridden in (("", 60, 10, 1), ("enterprise", 40, 10, 5)):
        Rollup.objects.create(
            automation=automation,
            period="h",
            start=hour,
            segment=segment,
            runs=runs,
            reviewed=reviewed,
            overridden=overridden,
            review_ms_sum=reviewed * 60_000,
            approved=reviewed,
            cost_usd=Decimal("0.5"),
        )

    report = automation_report(automation, window="24h", now=NOW)

    assert report.overall.runs == 100
    assert report.overall.override_rate == pytest.approx(0.3)
    assert report.groups["enterprise"].override_rate == pytest.approx(0.5)
    # $1 of model calls and 20 reviewer minutes ($20) over 100 runs.
    assert report.overall.cost_per_1000_decisions_usd == pytest.approx(210.0)
    assert [point.figures.runs for point in report.series if point.start == hour] == [100]
    assert len(report.series) == 24


@pytest.mark.django_db
def test_money_and_time_are_priced_per_automation_before_they_add_up():
    cheap = AutomationFactory(reviewer_hourly_usd=Decimal("60"), manual_minutes_per_case=6)
    dear = AutomationFactory(reviewer_hourly_usd=Decimal("120"), manual_minutes_per_case=2)
    hour = datetime(2026, 11, 24, 10, tzinfo=UTC)
    for automation in (cheap, dear):  # 30 reviewer minutes and 100 acting cases each
        rollup(automation, hour, runs=100, autonomous=90, approved=10, review_ms_sum=1_800_000)
        rollup(automation, hour - timedelta(hours=10), period="d", runs=999)  # another day

    found = report([cheap, dear], window="24h", now=NOW, by="automation")

    assert found.groups[cheap.pk].review_cost_usd == pytest.approx(30.0)
    assert found.groups[dear.pk].review_cost_usd == pytest.approx(60.0)
    assert found.overall.review_cost_usd == pytest.approx(90.0)
    # 100 x 6 - 30 minutes, and 100 x 2 - 30 minutes.
    assert found.overall.time_saved_hours == pytest.approx((570 + 170) / 60)
    assert found.overall.cost_per_1000_decisions_usd == pytest.approx(90 * 1000 / 200)
    [point] = [p for p in found.series if p.start == hour]
    assert point.figures.review_cost_usd == pytest.approx(90.0)
