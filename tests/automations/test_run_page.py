"""The run page: a run as a trace view, its recovery state, and who may see it."""

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from automations.models import (
    Action,
    ActionAttempt,
    Event,
    ModelCall,
    ReviewTask,
    Run,
    RunTransition,
)
from tests.factories import AutomationFactory, EventFactory, RunFactory, UserFactory

T0 = datetime(2026, 11, 24, 10, 0, 0, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"


def at(ms: float) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def html(response) -> str:
    return response.content.decode()


def main(response) -> str:
    return re.search(r"<main.*</main>", html(response), re.S).group(0)


def run_url(run) -> str:
    return reverse("run_detail", args=[run.pk])


def transitions(run, steps):
    """Record `steps` [(from, to, ms, actor, reason)] at their times (auto_now_add sets `at`)."""
    for from_state, to_state, ms, actor, reason in steps:
        step = RunTransition.objects.create(
            run=run, from_state=from_state, to_state=to_state, actor=actor, reason=reason
        )
        RunTransition.objects.filter(pk=step.pk).update(at=at(ms))


def traced_run(
    automation, *, reviewer, attempts=((503, 250, "receiver answered 503"), (200, 120, ""))
):
    """A run that went through everything: decision, review, two delivery attempts."""
    event = EventFactory(automation=automation, idempotency_key="ticket-4711", source="zendesk")
    Event.objects.filter(pk=event.pk).update(received_at=T0)
    run = RunFactory(
        event=event,
        state="executed",
        decided_by="reviewer",
        reason="delivered: receiver answered 200",
        proposed_intent={"intent": "route_ticket", "arguments": {"team": "billing"}},
        final_intent={"intent": "route_ticket", "arguments": {"team": "sales"}},
        verdicts=[
            {"check": "kill_switch", "verdict": "pass", "reason": "", "details": {}},
            {"check": "do_not_automate", "verdict": "pass", "reason": "", "details": {}},
            {
                "check": "confidence",
                "verdict": "review",
                "reason": "0.55 below 0.70",
                "details": {},
            },
        ],
    )
    transitions(
        run,
        [
            ("", "received", 5, "api", ""),
            ("received", "deciding", 40, "worker:a:1", ""),
            ("deciding", "awaiting_review", 1240, "worker:a:1", "confidence 0.55 below 0.70"),
            ("awaiting_review", "approved", 90_000, f"user:{reviewer.username}", "review: edited"),
            ("approved", "executing", 90_200, "worker:b:2", "delivering the action"),
            ("executing", "executed", 91_500, "worker:b:2", "delivered: receiver answered 200"),
        ],
    )
    call = ModelCall.objects.create(
        run=run, automation=automation, provider="openai", model="gpt-4.1-mini", latency_ms=1100
    )
    ModelCall.objects.filter(pk=call.pk).update(created_at=at(1200))
    ReviewTask.objects.create(
        run=run,
        automation=automation,
        state="done",
        claimed_at=at(30_000),
        decided_by=reviewer,
        decided_at=at(90_000),
        review_ms=60_000,
        outcome="edited",
    )
    action = Action.objects.create(
        run=run,
        automation=automation,
        adapter="webhook",
        idempotency_key=f"act_{run.pk}",
        state="succeeded",
        attempt_count=len(attempts),
    )
    for number, (status, duration, error) in enumerate(attempts, start=1):
        ActionAttempt.objects.create(
            action=action,
            number=number,
            started_at=at(90_300 + (number - 1) * 900),
            duration_ms=duration,
            status_code=status,
            error=error,
            response_excerpt=f"answer {number}: upstream said {status}",
        )
    return Run.objects.get(pk=run.pk)


@pytest.fixture
def automation(owner, reviewer):
    return AutomationFactory(
        slug="support-triage", name="Support triage", owner=owner, reviewers=[reviewer]
    )


@pytest.fixture
def run(automation, reviewer):
    return traced_run(automation, reviewer=reviewer)


def svg_spans(page: str) -> list[tuple[str, str, str]]:
    """The timeline's rows as (kind, name, label), top to bottom, read from the SVG itself."""
    svg = ET.fromstring(re.search(r"<svg class=\"timeline\".*?</svg>", page, re.S).group(0))
    rows = []
    for group in svg.iter(f"{SVG}g"):
        if "span" not in group.get("class", "").split():
            continue
        label = next(t for t in group.iter(f"{SVG}text") if "span-label" in t.get("class"))
        rows.append((group.get("data-kind"), group.get("data-name"), label.text))
    return rows


def banner(page: str) -> str | None:
    match = re.search(r'<div class="recovery recovery-(\w+)"[^>]*>(.*?)</div>', page, re.S)
    return (
        None
        if match is None
        else match.group(1) + ": " + " ".join(re.sub(r"<[^>]+>", "", match.group(2)).split())
    )


# Who may see it.


def test_anonymous_visitors_are_sent_to_log_in(client, run):
    response = client.get(run_url(run))

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("nobody", 404),
        ("assigned_reviewer", 200),
        ("other_reviewer", 404),
        ("own_owner", 200),
        ("other_owner", 404),
        ("compliance", 200),
        ("admin", 200),
    ],
)
def test_only_those_who_may_see_the_automation_see_its_runs(
    client, run, reviewer, owner, who, status
):
    users = {
        "nobody": lambda: UserFactory(username="nobody"),
        "assigned_reviewer": lambda: reviewer,
        "other_reviewer": lambda: UserFactory(username="otto", roles=["reviewer"]),
        "own_owner": lambda: owner,
        "other_owner": lambda: UserFactory(username="oscar", roles=["owner"]),
        "compliance": lambda: UserFactory(username="carla", roles=["compliance"]),
        "admin": lambda: UserFactory(username="ada", roles=["admin"]),
    }
    client.force_login(users[who]())

    response = client.get(run_url(run))

    assert response.status_code == status
    if status == 404:
        # Nothing tells a run the user may not see from one that does not exist.
        assert run.trace_id not in html(response)
        missing = client.get(reverse("run_detail", args=[run.pk + 1000]))
        assert main(response) == main(missing)


def test_a_run_id_beyond_any_database_integer_is_simply_not_found(client, admin_user):
    client.force_login(admin_user)

    assert client.get(f"/runs/{2**64}/").status_code == 404


# What it shows.


def test_the_header_names_the_run_with_its_trace_id_key_and_decision(client, run, compliance):
    client.force_login(compliance)

    page = html(client.get(run_url(run)))

    assert f"Run {run.pk}" in page
    assert "Support triage" in page
    assert re.search(r'<code class="hash copyable"[^>]*>' + run.trace_id + "</code>", page)
    assert "ticket-4711" in page
    assert "reviewer ravi" in page
    assert "delivered: receiver answered 200" in page
    assert "status: executed" in page


def test_the_timeline_draws_a_span_per_state_model_call_guardrails_review_and_attempt(
    client, run, admin_user
):
    client.force_login(admin_user)

    page = html(client.get(run_url(run)))

    assert svg_spans(page) == [
        ("state", "received", "35 ms"),
        ("state", "deciding", "1.2 s"),
        ("model", "model call 1", "1.1 s"),
        ("guardrails", "guardrails", "3 checks: 2 pass, 1 review"),
        ("state", "awaiting_review", "1 min 29 s"),
        ("review", "review", "1 min, edited"),
        ("state", "approved", "200 ms"),
        ("state", "executing", "1.3 s"),
        ("attempt", "attempt 1", "HTTP 503, 250 ms"),
        ("attempt", "attempt 2", "HTTP 200, 120 ms"),
        ("state", "executed", "final"),
    ]
    assert "1 min 32 s" in page  # the axis: arrival to the last thing that happened


def test_the_table_under_the_timeline_repeats_every_span_in_words(client, run, compliance):
    client.force_login(compliance)

    page = html(client.get(run_url(run)))
    table = re.search(r'<table class="table compact timeline-table">.*?</table>', page, re.S).group(
        0
    )
    rows = re.findall(r'<th scope="row">(.*?)</th>', table)

    assert rows == [name for _, name, _ in svg_spans(page)]
    assert "10:00:30.000" in table  # the review's claim
    assert "HTTP 503: receiver answered 503" in table
    assert "confidence review: 0.55 below 0.70" in table


def test_the_guardrail_verdicts_are_listed_with_their_badges_at_the_decision(client, run, owner):
    client.force_login(owner)

    page = html(client.get(run_url(run)))

    assert "Guardrails at the decision" in page
    assert re.search(
        r'verdict-review">review</span> <code>confidence</code>: 0.55 below 0.70', page
    )
    assert page.count('class="badge verdict-pass"') == 2


def test_a_run_still_waiting_for_a_person_is_drawn_until_now(client, automation, compliance):
    waiting = RunFactory(event=EventFactory(automation=automation), state="awaiting_review")
    started = timezone.now() - timedelta(minutes=3)
    Event.objects.filter(pk=waiting.event_id).update(received_at=started)
    RunTransition.objects.create(
        run=waiting, from_state="", to_state="awaiting_review", actor="api"
    )
    RunTransition.objects.filter(run=waiting).update(at=started)
    client.force_login(compliance)

    spans = svg_spans(html(client.get(run_url(waiting))))

    assert spans == [("state", "awaiting_review", "3 min so far")]


# Who sees the receiver's answers.


def test_only_admins_see_what_the_receiver_answered(client, run, admin_user, compliance, owner):
    for user, sees in [(admin_user, True), (compliance, False), (owner, False)]:
        client.force_login(user)

        page = html(client.get(run_url(run)))

        assert ("answer 1: upstream said 503" in page) is sees, user.username
        assert ("Receiver's answer" in page) is sees
        assert "receiver answered 503" in page  # everyone sees the status and the error


# Recovery.


def in_flight(automation, *, state: str, held_by: str = "", due_in: timedelta) -> Run:
    run = RunFactory(event=EventFactory(automation=automation), state=state, held_by=held_by)
    RunTransition.objects.create(run=run, from_state="", to_state=state, actor="api")
    Run.objects.filter(pk=run.pk).update(due_at=timezone.now() + due_in)
    return run


def test_an_overdue_run_held_by_a_lost_worker_says_so_and_when_it_is_recovered(
    client, automation, admin_user, settings
):
    settings.CELERY_BEAT_SCHEDULE = {"sweep-overdue-runs": {"schedule": 10.0}}
    run = in_flight(
        automation, state="deciding", held_by="worker:lost:7", due_in=-timedelta(seconds=30)
    )
    due = timezone.localtime(Run.objects.get(pk=run.pk).due_at)
    client.force_login(admin_user)

    text = banner(html(client.get(run_url(run))))

    assert text == (
        f"overdue: Waiting for recovery since {due:%H:%M:%S}: the worker holding it"
        " (worker:lost:7) stopped answering; the sweep hands it to another worker within 10 s."
    )


def test_an_overdue_run_nobody_holds_says_its_message_was_lost_or_is_queued(
    client, automation, admin_user
):
    run = in_flight(automation, state="approved", due_in=-timedelta(seconds=5))
    client.force_login(admin_user)

    text = banner(html(client.get(run_url(run))))

    assert text.startswith("overdue: Waiting for recovery since")
    assert "its message was lost or is still queued behind others" in text


def test_a_run_a_worker_holds_in_time_says_who_works_on_it_until_when(
    client, automation, admin_user
):
    run = in_flight(
        automation, state="executing", held_by="worker:busy:3", due_in=timedelta(seconds=40)
    )
    due = timezone.localtime(Run.objects.get(pk=run.pk).due_at)
    client.force_login(admin_user)

    text = banner(html(client.get(run_url(run))))

    assert text == (
        "held: Being worked on: worker:busy:3 is sending its action,"
        f" until {due:%H:%M:%S} at the latest."
    )


def test_a_queued_run_says_when_the_sweep_would_send_it_again(client, automation, admin_user):
    run = in_flight(automation, state="received", due_in=timedelta(seconds=30))
    client.force_login(admin_user)

    text = banner(html(client.get(run_url(run))))

    assert text.startswith("queued: Queued: waiting for a worker; if none has taken it by")


def test_a_finished_run_shows_no_recovery_banner(client, run, admin_user):
    Run.objects.filter(pk=run.pk).update(due_at=timezone.now() - timedelta(hours=1))
    client.force_login(admin_user)

    assert banner(html(client.get(run_url(run)))) is None


# Queries.


def test_the_page_takes_as_many_queries_for_a_long_run_as_for_a_short_one(
    client, automation, reviewer, admin_user, django_assert_max_num_queries
):
    short = traced_run(automation, reviewer=reviewer, attempts=((200, 100, ""),))
    long = traced_run(
        AutomationFactory(slug="other", reviewers=[reviewer]),
        reviewer=reviewer,
        attempts=[(503, 100, "receiver answered 503")] * 5 + [(200, 100, "")],
    )
    transitions(long, [("executed", "compensated", 95_000, "worker:c:3", "")] * 10)
    for _ in range(5):
        ModelCall.objects.create(run=long, automation=long.automation, provider="rules")
    client.force_login(reviewer)
    counts = []

    for run in (short, long):
        # Session, user; run (with event, automation, review, action), its model calls,
        # transitions and attempts; roles; may see it; may open its review task.
        with django_assert_max_num_queries(9) as captured:
            assert client.get(run_url(run)).status_code == 200
        counts.append(len(captured.captured_queries))

    assert counts[0] == counts[1]


# Links between the pages.


def test_the_assigned_reviewer_gets_a_link_to_the_review_task_and_others_do_not(
    client, run, reviewer, owner
):
    task_url = reverse("review:task", args=[run.review_task.pk])
    client.force_login(reviewer)
    assert f'href="{task_url}"' in html(client.get(run_url(run)))

    client.force_login(owner)  # may see the run, may not open the review console
    page = html(client.get(run_url(run)))
    assert f'href="{task_url}"' not in page
    assert f"task {run.review_task.pk}" in page


def test_the_review_task_and_the_automation_page_link_to_the_run(client, run, reviewer, admin_user):
    client.force_login(reviewer)
    task_page = html(client.get(reverse("review:task", args=[run.review_task.pk])))
    assert f'href="{run_url(run)}"' in task_page

    client.force_login(admin_user)
    automation_page = html(client.get(reverse("automation_detail", args=["support-triage"])))
    runs_url = reverse("run_list") + "?automation=support-triage"
    assert f'href="{runs_url}"' in automation_page
    assert f'href="{run_url(run)}"' in html(client.get(runs_url))


def test_the_run_list_finds_a_run_by_trace_id_among_those_the_user_may_see(
    client, run, automation, reviewer
):
    hidden = RunFactory(event=EventFactory(automation=AutomationFactory(slug="refunds")))
    other = RunFactory(event=EventFactory(automation=automation))
    client.force_login(reviewer)

    everything = html(client.get(reverse("run_list")))
    found = html(client.get(reverse("run_list"), {"trace_id": run.trace_id.upper()}))
    foreign = html(client.get(reverse("run_list"), {"trace_id": hidden.trace_id}))

    assert run_url(run) in everything and run_url(other) in everything
    assert run_url(hidden) not in everything
    assert run_url(run) in found and run_url(other) not in found
    assert run_url(hidden) not in foreign and "No runs with this trace id" in foreign


def test_a_run_waiting_for_its_next_attempt_says_which_and_when(client, automation, admin_user):
    run = in_flight(automation, state="executing", due_in=timedelta(seconds=20))
    Action.objects.create(
        run=run, automation=automation, adapter="webhook", idempotency_key="k", attempt_count=2
    )
    due = timezone.localtime(Run.objects.get(pk=run.pk).due_at)
    client.force_login(admin_user)

    text = banner(html(client.get(run_url(run))))

    assert text == f"retry: Waiting to retry: attempt 3 is due at {due:%H:%M:%S}."


def test_the_run_list_shows_and_filters_the_runs_waiting_for_recovery(
    client, run, automation, admin_user
):
    stuck = in_flight(
        automation, state="deciding", held_by="worker:lost:7", due_in=-timedelta(seconds=30)
    )
    queued = in_flight(automation, state="received", due_in=timedelta(seconds=30))
    client.force_login(admin_user)

    everything = html(client.get(reverse("run_list")))
    waiting = html(client.get(reverse("run_list"), {"overdue": "1"}))

    assert everything.count("waiting for recovery</span>") == 1
    assert run_url(queued) in everything and run_url(run) in everything
    assert run_url(stuck) in waiting
    assert run_url(queued) not in waiting and run_url(run) not in waiting


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"trace_id": "not-a-trace\x00"}, "Trace id: 32 hexadecimal digits"),
        ({"automation": "no such/slug"}, "automation: not an automation"),
    ],
)
def test_the_run_list_says_what_is_wrong_with_a_bad_search(client, admin_user, run, query, message):
    client.force_login(admin_user)

    response = client.get(reverse("run_list"), query)

    assert response.status_code == 400
    assert message in html(response)
    assert run_url(run) not in html(response)
