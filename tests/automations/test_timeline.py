"""The trace view's drawing: spans from a run's rows, and where they land on the axis."""

from datetime import UTC, datetime, timedelta

import pytest

from automations.models import Action, ActionAttempt, ModelCall, ReviewTask, Run, RunTransition
from automations.services.actions import IN_FLIGHT
from automations.timeline import (
    PLOT_LEFT,
    PLOT_RIGHT,
    WIDTH,
    Span,
    format_ms,
    run_spans,
    state_spans,
    tick_step_ms,
    timeline_chart,
)
from tests.factories import RunFactory, UserFactory

T0 = datetime(2026, 11, 24, 10, 0, 0, tzinfo=UTC)


def at(ms: float) -> datetime:
    return T0 + timedelta(milliseconds=ms)


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0 ms"),
        (850, "850 ms"),
        (1000, "1 s"),
        (1240, "1.2 s"),
        (42_000, "42 s"),
        (60_000, "1 min"),
        (185_000, "3 min 5 s"),
        (7_440_000, "2 h 4 min"),
        (3 * 86_400_000, "3 d"),
    ],
)
def test_durations_read_as_a_person_would_say_them(ms, text):
    assert format_ms(ms) == text


@pytest.mark.parametrize(
    ("total_ms", "step"),
    [(40, 10), (1_240, 500), (91_500, 30_000), (3 * 86_400_000, 12 * 3_600_000)],
)
def test_the_axis_has_at_most_six_round_intervals(total_ms, step):
    assert tick_step_ms(total_ms) == step


def test_ticks_start_at_the_arrival_and_count_from_it():
    chart = timeline_chart([Span("state", "received", at(0), at(91_500), "1 min 32 s")], origin=T0)

    assert [(tick.x, tick.text) for tick in chart.ticks] == [
        (PLOT_LEFT, "0"),
        (pytest.approx(PLOT_LEFT + 30 / 91.5 * (PLOT_RIGHT - PLOT_LEFT), abs=0.1), "+30 s"),
        (pytest.approx(PLOT_LEFT + 60 / 91.5 * (PLOT_RIGHT - PLOT_LEFT), abs=0.1), "+1 min"),
        (pytest.approx(PLOT_LEFT + 90 / 91.5 * (PLOT_RIGHT - PLOT_LEFT), abs=0.1), "+1 min 30 s"),
    ]


def test_labels_go_where_there_is_room_and_stay_inside_the_picture():
    spans = [
        Span("state", "received", at(0), at(100), "100 ms"),  # room after it
        Span(
            "review", "review", at(5_000), at(10_000), "5 s, rejected by a reviewer"
        ),  # none after
        Span(
            "state", "whole", at(0), at(10_000), "a label far too long to sit on either side of it"
        ),
        Span("guardrails", "guardrails", at(100), None, "3 checks: 3 pass"),
    ]

    rows = timeline_chart(spans, origin=T0).rows

    assert (rows[0].label_anchor, rows[0].label_inside) == ("start", False)
    assert rows[0].label_x > rows[0].x + rows[0].width
    assert (rows[1].label_anchor, rows[1].label_inside) == ("end", False)
    assert rows[1].label_x < rows[1].x
    assert rows[2].label_inside
    assert rows[3].marker and rows[3].width == 0 and rows[3].label_x > rows[3].x
    for row in rows:
        assert PLOT_LEFT <= row.x <= WIDTH


def test_the_axis_starts_at_whatever_came_first():
    spans = [Span("model", "model call 1", at(-50), at(400), "450 ms")]

    chart = timeline_chart(spans, origin=T0)

    assert chart.origin == at(-50)
    assert chart.rows[0].x == PLOT_LEFT and chart.rows[0].offset == "+0 ms"


def test_a_tiny_span_is_still_drawn():
    spans = [
        Span("state", "received", at(0), at(1), "1 ms"),
        Span("state", "x", at(0), at(3_600_000), "1 h"),
    ]

    assert timeline_chart(spans, origin=T0).rows[0].width == 2.0


# Spans from a run's rows.


def with_steps(run: Run, *steps: tuple[str, str, float]) -> Run:
    for from_state, to_state, ms in steps:
        step = RunTransition.objects.create(
            run=run, from_state=from_state, to_state=to_state, actor="t"
        )
        RunTransition.objects.filter(pk=step.pk).update(at=at(ms))
    return Run.objects.get(pk=run.pk)


@pytest.mark.django_db
def test_an_attempt_without_an_answer_yet_is_drawn_until_now():
    run = with_steps(
        RunFactory(state="executing"),
        ("", "received", 0),
        ("received", "deciding", 10),
        ("deciding", "executing", 900),
    )
    action = Action.objects.create(
        run=run, automation=run.automation, adapter="webhook", idempotency_key="k1"
    )
    ActionAttempt.objects.create(action=action, number=1, started_at=at(900), error=IN_FLIGHT)

    spans = run_spans(run, now=at(5_900))

    attempt = next(span for span in spans if span.kind == "attempt")
    assert (attempt.end, attempt.label, attempt.outcome) == (at(5_900), "5 s so far", "ongoing")
    executing = next(span for span in spans if span.name == "executing")
    assert executing.label == "5 s so far"


@pytest.mark.django_db
def test_a_claimed_review_runs_until_now_with_its_reviewer_and_lease():
    run = with_steps(
        RunFactory(state="awaiting_review"),
        ("", "received", 0),
        ("received", "deciding", 10),
        ("deciding", "awaiting_review", 900),
    )
    ReviewTask.objects.create(
        run=run,
        automation=run.automation,
        state="claimed",
        claimed_by=UserFactory(username="rosa"),
        claimed_at=at(2_000),
        lease_expires_at=at(602_000),
    )

    review = next(
        span
        for span in run_spans(Run.objects.get(pk=run.pk), now=at(14_000))
        if span.kind == "review"
    )

    assert (review.start, review.end, review.label) == (at(2_000), at(14_000), "12 s so far")
    assert review.detail == "claimed by rosa, lease until 10:10:02"


@pytest.mark.django_db
def test_a_failed_model_call_and_a_blocked_end_say_so_in_words():
    run = with_steps(
        RunFactory(state="blocked"),
        ("", "received", 0),
        ("received", "deciding", 10),
        ("deciding", "blocked", 3_000),
    )
    call = ModelCall.objects.create(
        run=run, automation=run.automation, provider="openai", latency_ms=2_500, error="timeout"
    )
    ModelCall.objects.filter(pk=call.pk).update(created_at=at(2_900))
    Run.objects.filter(pk=run.pk).update(
        verdicts=[
            {"check": "kill_switch", "verdict": "block", "reason": "switched off", "details": {}}
        ]
    )

    spans = {span.name: span for span in run_spans(Run.objects.get(pk=run.pk), now=at(60_000))}

    assert (spans["model call 1"].start, spans["model call 1"].label) == (at(400), "2.5 s, error")
    assert spans["model call 1"].outcome_text == "error"
    assert "error: timeout" in spans["model call 1"].detail
    assert (spans["guardrails"].start, spans["guardrails"].label) == (at(3_000), "1 check: 1 block")
    assert spans["guardrails"].outcome_text == "blocked"
    assert (spans["blocked"].end, spans["blocked"].outcome_text) == (None, "blocked")


@pytest.mark.django_db
def test_a_run_without_recorded_transitions_has_no_state_spans():
    # Runs loaded from outside the services (fixtures, old imports) may have none.
    run = RunFactory(state="awaiting_review")

    assert state_spans(run, [], now=datetime.now(tz=UTC)) == []
