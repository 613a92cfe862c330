from datetime import timedelta
from unittest import mock

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone

from automations.models import (
    Label,
    ModelCall,
    ReviewTask,
    Run,
    RunTransition,
)
from automations.selectors import review_queues_for, review_task_detail
from automations.services.reviews import (
    REJECT_REASONS,
    AlreadyDecided,
    LeaseExpired,
    ReviewInvalid,
    RunNotAwaitingReview,
    review_claim_next,
    review_decide,
    review_decide_and_claim_next,
    review_release,
)
from catalog.config_cache import intent_schema
from tests.factories import (
    PROPOSED,
    AutomationFactory,
    IntentFactory,
    ReviewTaskFactory,
    RunFactory,
    UserFactory,
)

LEASE = timedelta(seconds=600)


@pytest.fixture
def automation(reviewer, rosa):
    automation = AutomationFactory(slug="support-triage", reviewers=[reviewer, rosa])
    IntentFactory(automation=automation, name="route_ticket")
    IntentFactory(
        automation=automation,
        name="close_ticket",
        arguments_schema={
            "type": "object",
            "properties": {"reason": {"type": "string", "minLength": 3}},
            "required": ["reason"],
            "additionalProperties": False,
        },
    )
    return automation


def make_task(automation, *, kind="approve", proposed=PROPOSED, age_minutes=0):
    task = ReviewTaskFactory(
        run=RunFactory(
            event__automation=automation, state="awaiting_review", proposed_intent=proposed
        ),
        kind=kind,
    )
    if age_minutes:
        created = timezone.now() - timedelta(minutes=age_minutes)
        ReviewTask.objects.filter(pk=task.pk).update(created_at=created)
        task.refresh_from_db()
    return task


def claimed(automation, user, *, kind="approve", proposed=PROPOSED, now=None):
    task = make_task(automation, kind=kind, proposed=proposed)
    got = review_claim_next(user=user, automation=automation, now=now)
    assert got.pk == task.pk
    return got


def snapshot(task):
    task = ReviewTask.objects.select_related("run").get(pk=task.pk)
    return (
        task.state,
        task.claimed_by_id,
        task.outcome,
        task.run.state,
        task.run.final_intent,
        Label.objects.filter(review_task=task).count(),
        RunTransition.objects.filter(run=task.run).count(),
    )


# Claiming.


def test_next_claims_the_oldest_open_task_with_a_lease(automation, reviewer):
    make_task(automation, age_minutes=5)
    oldest = make_task(automation, age_minutes=30)
    now = timezone.now()

    task = review_claim_next(user=reviewer, automation=automation, now=now)

    task.refresh_from_db()
    assert task.pk == oldest.pk
    assert (task.state, task.claimed_by, task.claimed_at) == ("claimed", reviewer, now)
    assert task.lease_expires_at == now + LEASE


def test_two_reviewers_get_different_tasks(automation, reviewer, rosa):
    first, second = make_task(automation, age_minutes=2), make_task(automation, age_minutes=1)

    mine = review_claim_next(user=reviewer, automation=automation)
    theirs = review_claim_next(user=rosa, automation=automation)

    assert {mine.pk, theirs.pk} == {first.pk, second.pk}


def test_next_returns_the_task_the_reviewer_already_holds(automation, reviewer):
    make_task(automation, age_minutes=2)
    make_task(automation, age_minutes=1)

    first = review_claim_next(user=reviewer, automation=automation)
    again = review_claim_next(user=reviewer, automation=automation)

    assert again.pk == first.pk
    assert ReviewTask.objects.filter(state="claimed").count() == 1


def test_empty_queue_gives_nothing(automation, reviewer, rosa):
    make_task(automation)
    review_claim_next(user=rosa, automation=automation)

    assert review_claim_next(user=reviewer, automation=automation) is None


def test_expired_lease_goes_to_another_reviewer_and_the_first_cannot_decide(
    automation, reviewer, rosa
):
    now = timezone.now()
    task = claimed(automation, reviewer, now=now)
    later = now + LEASE + timedelta(seconds=1)

    taken = review_claim_next(user=rosa, automation=automation, now=later)
    assert taken.pk == task.pk
    before = snapshot(task)

    with pytest.raises(LeaseExpired):
        review_decide(task_id=task.pk, user=reviewer, action="approve", now=later)
    assert snapshot(task) == before
    assert ReviewTask.objects.get(pk=task.pk).claimed_by == rosa


def test_holder_cannot_decide_after_the_lease_lapsed_even_if_nobody_took_it(automation, reviewer):
    now = timezone.now()
    task = claimed(automation, reviewer, now=now)
    before = snapshot(task)

    with pytest.raises(LeaseExpired):
        review_decide(task_id=task.pk, user=reviewer, action="approve", now=now + LEASE)
    assert snapshot(task) == before


def test_release_puts_the_task_back_for_anyone(automation, reviewer, rosa):
    task = claimed(automation, reviewer)

    review_release(task=task, user=reviewer)

    task.refresh_from_db()
    assert (task.state, task.claimed_by, task.lease_expires_at) == ("pending", None, None)
    assert review_claim_next(user=rosa, automation=automation).pk == task.pk


def test_only_the_holder_can_release(automation, reviewer, rosa):
    task = claimed(automation, reviewer)

    with pytest.raises(LeaseExpired):
        review_release(task=task, user=rosa)
    task.refresh_from_db()
    assert (task.state, task.claimed_by) == ("claimed", reviewer)


# Access.


def test_reviewer_of_one_automation_cannot_claim_or_decide_anothers_tasks(automation, rosa):
    other_reviewer = UserFactory(username="otto", roles=["reviewer"])
    other = AutomationFactory(slug="billing", reviewers=[other_reviewer])
    IntentFactory(automation=other)
    foreign = make_task(other)

    with pytest.raises(PermissionDenied):
        review_claim_next(user=rosa, automation=other)
    review_claim_next(user=other_reviewer, automation=other)
    with pytest.raises(PermissionDenied):
        review_decide(task_id=foreign.pk, user=rosa, action="reject", reject_reason="policy")
    assert ReviewTask.objects.get(pk=foreign.pk).state == "claimed"


def test_assigned_user_without_reviewer_role_cannot_claim(automation):
    outsider = UserFactory(username="nora", roles=[])
    automation.reviewers.add(outsider)
    make_task(automation)

    with pytest.raises(PermissionDenied):
        review_claim_next(user=outsider, automation=automation)


# Deciding.


@pytest.fixture
def enqueue_execute():
    with mock.patch("automations.services.dispatch.enqueue_execute") as patched:
        yield patched


def test_approve_as_is_records_accepted_and_executes_after_commit(
    automation, reviewer, enqueue_execute, django_capture_on_commit_callbacks
):
    now = timezone.now()
    task = claimed(automation, reviewer, now=now)
    Run.objects.filter(pk=task.run_id).update(updated_at=now - timedelta(hours=1))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        review_decide(
            task_id=task.pk, user=reviewer, action="approve", now=now + timedelta(seconds=4)
        )
        enqueue_execute.assert_not_called()
    for callback in callbacks:
        callback()

    enqueue_execute.assert_called_once_with(task.run_id)
    task = ReviewTask.objects.select_related("run").get(pk=task.pk)
    assert (task.state, task.outcome, task.decided_by, task.review_ms) == (
        "done",
        "accepted",
        reviewer,
        4000,
    )
    assert task.run.state == "approved"
    assert task.run.decided_by == "reviewer"
    assert task.run.final_intent == {"intent": "route_ticket", "arguments": PROPOSED["arguments"]}
    transition = task.run.transitions.last()
    assert (transition.to_state, transition.actor) == ("approved", "user:ravi")
    assert abs(task.run.updated_at - transition.at) < timedelta(seconds=1)
    label = Label.objects.get(review_task=task)
    assert (label.outcome, label.model_intent, label.diff, label.reviewer) == (
        "accepted",
        PROPOSED,
        [],
        reviewer,
    )


def test_approve_with_the_same_arguments_is_accepted(automation, reviewer, enqueue_execute):
    task = claimed(automation, reviewer)

    decided = review_decide(
        task_id=task.pk, user=reviewer, action="approve", arguments=dict(PROPOSED["arguments"])
    )

    assert decided.outcome == "accepted"


def test_edit_then_approve_records_edited_with_the_diff(
    automation, reviewer, enqueue_execute, django_capture_on_commit_callbacks
):
    task = claimed(automation, reviewer)
    edited = {"team": "technical", "priority": "p2"}

    with django_capture_on_commit_callbacks(execute=True):
        review_decide(task_id=task.pk, user=reviewer, action="approve", arguments=edited)

    enqueue_execute.assert_called_once_with(task.run_id)
    label = Label.objects.get(review_task_id=task.pk)
    assert label.outcome == "edited"
    assert label.final_intent == {"intent": "route_ticket", "arguments": edited}
    assert label.diff == [{"path": "arguments.team", "from": "billing", "to": "technical"}]
    assert Run.objects.get(pk=task.run_id).final_intent == label.final_intent


def test_changing_the_intent_shows_in_the_diff(automation, reviewer, enqueue_execute):
    task = claimed(automation, reviewer)

    review_decide(
        task_id=task.pk,
        user=reviewer,
        action="approve",
        intent="close_ticket",
        arguments={"reason": "spam"},
    )

    diff = Label.objects.get(review_task_id=task.pk).diff
    assert {"path": "intent", "from": "route_ticket", "to": "close_ticket"} in diff
    assert {"path": "arguments.reason", "from": None, "to": "spam"} in diff
    assert {"path": "arguments.team", "from": "billing", "to": None} in diff


def test_invalid_edited_arguments_name_the_field_and_change_nothing(
    automation, reviewer, enqueue_execute
):
    task = claimed(automation, reviewer)
    before = snapshot(task)

    with pytest.raises(ReviewInvalid) as raised:
        review_decide(
            task_id=task.pk,
            user=reviewer,
            action="approve",
            arguments={"team": "legal", "extra": 1},
        )

    errors = raised.value.errors
    assert "arguments.team" in errors and "legal" in errors["arguments.team"]
    assert errors["arguments.priority"] == "is required"
    assert "extra" in errors["arguments"]
    assert snapshot(task) == before
    enqueue_execute.assert_not_called()


def test_arguments_must_be_an_object(automation, reviewer):
    task = claimed(automation, reviewer)

    with pytest.raises(ReviewInvalid) as raised:
        review_decide(task_id=task.pk, user=reviewer, action="approve", arguments=["billing"])

    assert raised.value.errors == {"arguments": "must be an object"}


def test_reject_records_the_reason_and_never_executes(
    automation, reviewer, enqueue_execute, django_capture_on_commit_callbacks
):
    task = claimed(automation, reviewer)

    with django_capture_on_commit_callbacks(execute=True):
        review_decide(
            task_id=task.pk,
            user=reviewer,
            action="reject",
            reject_reason="wrong_intent",
            note="should be closed",
        )

    enqueue_execute.assert_not_called()
    task = ReviewTask.objects.select_related("run").get(pk=task.pk)
    assert (task.outcome, task.reject_reason, task.note) == (
        "rejected",
        "wrong_intent",
        "should be closed",
    )
    assert task.run.state == "rejected"
    label = Label.objects.get(review_task=task)
    assert (label.outcome, label.final_intent, label.model_intent) == ("rejected", None, PROPOSED)


def test_reject_needs_a_listed_reason_and_a_note_for_other(automation, reviewer):
    task = claimed(automation, reviewer)
    before = snapshot(task)

    with pytest.raises(ReviewInvalid) as raised:
        review_decide(task_id=task.pk, user=reviewer, action="reject", reject_reason="meh")
    assert "reject_reason" in raised.value.errors
    with pytest.raises(ReviewInvalid) as raised:
        review_decide(task_id=task.pk, user=reviewer, action="reject", reject_reason="other")
    assert "note" in raised.value.errors
    assert snapshot(task) == before

    review_decide(
        task_id=task.pk, user=reviewer, action="reject", reject_reason="other", note="test data"
    )
    assert ReviewTask.objects.get(pk=task.pk).outcome == "rejected"


def test_reject_reasons_offer_the_documented_codes():
    codes = [code for code, _ in REJECT_REASONS]
    assert codes == [
        "wrong_intent",
        "wrong_arguments",
        "policy",
        "duplicate",
        "not_enough_information",
        "other",
    ]


@pytest.mark.parametrize(
    ("action", "arguments", "outcome", "final"),
    [
        ("use", None, "used", {"intent": "route_ticket", "arguments": PROPOSED["arguments"]}),
        (
            "use",
            {"team": "sales", "priority": "p2"},
            "used_edited",
            {"intent": "route_ticket", "arguments": {"team": "sales", "priority": "p2"}},
        ),
        ("discard", None, "discarded", None),
    ],
)
def test_suggest_drafts_are_recorded_and_never_executed(
    automation,
    reviewer,
    enqueue_execute,
    django_capture_on_commit_callbacks,
    action,
    arguments,
    outcome,
    final,
):
    task = claimed(automation, reviewer, kind="suggest")

    with django_capture_on_commit_callbacks(execute=True):
        review_decide(task_id=task.pk, user=reviewer, action=action, arguments=arguments)

    enqueue_execute.assert_not_called()
    task = ReviewTask.objects.select_related("run").get(pk=task.pk)
    assert (task.state, task.outcome) == ("done", outcome)
    assert task.run.state == "recorded"
    label = Label.objects.get(review_task=task)
    assert (label.outcome, label.final_intent) == (outcome, final)


def test_suggest_tasks_cannot_be_approved_and_approve_tasks_cannot_be_used(
    automation, reviewer, rosa
):
    draft = claimed(automation, reviewer, kind="suggest")
    task = claimed(automation, rosa)

    with pytest.raises(ReviewInvalid) as raised:
        review_decide(task_id=draft.pk, user=reviewer, action="approve")
    assert "action" in raised.value.errors
    with pytest.raises(ReviewInvalid):
        review_decide(task_id=task.pk, user=rosa, action="use")


def test_second_submit_fails_clearly_and_changes_nothing(automation, reviewer, enqueue_execute):
    task = claimed(automation, reviewer)
    review_decide(task_id=task.pk, user=reviewer, action="approve")
    before = snapshot(task)

    with pytest.raises(AlreadyDecided, match="already decided"):
        review_decide(task_id=task.pk, user=reviewer, action="reject", reject_reason="policy")

    assert snapshot(task) == before
    assert Label.objects.filter(review_task_id=task.pk).count() == 1


def test_when_the_model_failed_the_reviewer_must_choose_an_intent(
    automation, reviewer, enqueue_execute
):
    task = claimed(automation, reviewer, proposed=None)

    with pytest.raises(ReviewInvalid) as raised:
        review_decide(task_id=task.pk, user=reviewer, action="approve")
    assert "intent" in raised.value.errors
    with pytest.raises(ReviewInvalid) as raised:
        review_decide(task_id=task.pk, user=reviewer, action="approve", intent="refund")
    assert "not an intent" in raised.value.errors["intent"]

    arguments = {"team": "sales", "priority": "p1"}
    review_decide(
        task_id=task.pk, user=reviewer, action="approve", intent="route_ticket", arguments=arguments
    )

    label = Label.objects.get(review_task_id=task.pk)
    assert label.outcome == "edited"
    assert label.model_intent is None
    assert {"path": "intent", "from": None, "to": "route_ticket"} in label.diff
    assert Run.objects.get(pk=task.run_id).state == "approved"


def test_run_that_left_review_cannot_be_decided(automation, reviewer, enqueue_execute):
    task = claimed(automation, reviewer)
    Run.objects.filter(pk=task.run_id).update(state="blocked")
    before = snapshot(task)

    with pytest.raises(RunNotAwaitingReview, match="blocked"):
        review_decide(task_id=task.pk, user=reviewer, action="approve")

    assert snapshot(task) == before
    enqueue_execute.assert_not_called()


def test_reviewer_must_claim_before_deciding(automation, reviewer):
    task = make_task(automation)

    with pytest.raises(LeaseExpired, match="claim it first"):
        review_decide(task_id=task.pk, user=reviewer, action="reject", reject_reason="policy")


# Deciding and claiming the next task in one go (the console's submit).


def test_decide_and_claim_next_leases_the_next_oldest_task_of_the_queue(
    automation, reviewer, rosa, enqueue_execute
):
    now = timezone.now()
    first = make_task(automation, age_minutes=30)
    taken = make_task(automation, age_minutes=20)
    following = make_task(automation, age_minutes=10)
    other_queue = AutomationFactory(slug="other-queue", reviewers=[reviewer])
    make_task(other_queue, age_minutes=60)
    assert review_claim_next(user=reviewer, automation=automation, now=now).pk == first.pk
    assert review_claim_next(user=rosa, automation=automation, now=now).pk == taken.pk

    decided, got = review_decide_and_claim_next(
        task_id=first.pk, user=reviewer, action="reject", reject_reason="policy", now=now
    )

    assert (decided.pk, decided.state, decided.outcome) == (first.pk, "done", "rejected")
    assert got.pk == following.pk
    following.refresh_from_db()
    assert (following.state, following.claimed_by, following.lease_expires_at) == (
        "claimed",
        reviewer,
        now + LEASE,
    )
    assert Label.objects.get(review_task=first).outcome == "rejected"


def test_decide_and_claim_next_on_an_empty_queue_decides_and_gives_nothing(
    automation, reviewer, enqueue_execute
):
    task = claimed(automation, reviewer)

    decided, got = review_decide_and_claim_next(task_id=task.pk, user=reviewer, action="approve")

    assert got is None
    assert decided.outcome == "accepted"
    assert Run.objects.get(pk=task.run_id).state == "approved"


def test_a_refused_decision_claims_nothing(automation, reviewer, enqueue_execute):
    now = timezone.now()
    task = claimed(automation, reviewer, now=now)
    waiting = make_task(automation)
    Run.objects.filter(pk=task.run_id).update(state="halted")
    before = snapshot(task)

    with pytest.raises(RunNotAwaitingReview, match="halted"):
        review_decide_and_claim_next(task_id=task.pk, user=reviewer, action="approve", now=now)
    with pytest.raises(LeaseExpired):
        review_decide_and_claim_next(
            task_id=task.pk, user=reviewer, action="approve", now=now + LEASE
        )

    assert snapshot(task) == before
    waiting.refresh_from_db()
    assert (waiting.state, waiting.claimed_by) == ("pending", None)
    enqueue_execute.assert_not_called()


# Selectors.


def test_queues_show_counts_age_lateness_and_my_decisions_today(
    automation, reviewer, rosa, enqueue_execute
):
    automation.review_sla_minutes = 60
    automation.save()
    quiet = AutomationFactory(slug="quiet", reviewers=[reviewer], review_sla_minutes=60)
    AutomationFactory(slug="not-mine", reviewers=[rosa])
    done = claimed(automation, reviewer)
    review_decide(task_id=done.pk, user=reviewer, action="approve")
    make_task(automation, age_minutes=90)
    make_task(automation, age_minutes=10)
    make_task(automation, age_minutes=5)
    review_claim_next(user=rosa, automation=automation)  # takes the 90-minute-old one
    make_task(quiet, age_minutes=20)
    now = timezone.now()

    with_queries = review_queues_for(reviewer, now=now)

    by_slug = {queue.automation.slug: queue for queue in with_queries}
    assert set(by_slug) == {"support-triage", "quiet"}
    triage = by_slug["support-triage"]
    assert (triage.pending_count, triage.in_review_count, triage.decided_today) == (2, 1, 1)
    assert 90 * 60 <= triage.oldest_age_seconds < 91 * 60
    assert triage.late is True
    assert (by_slug["quiet"].pending_count, by_slug["quiet"].late) == (1, False)
    assert by_slug["quiet"].decided_today == 0


def test_queues_take_a_fixed_number_of_queries(automation, reviewer, django_assert_max_num_queries):
    for index in range(5):
        extra = AutomationFactory(slug=f"extra-{index}", reviewers=[reviewer])
        make_task(extra)
    make_task(automation)

    with django_assert_max_num_queries(2):
        queues = review_queues_for(reviewer)

    assert len(queues) == 6
    assert all(queue.pending_count == 1 for queue in queues)


def test_reviewer_without_assignments_sees_no_queue(db):
    loner = UserFactory(username="lonely", roles=["reviewer"])
    AutomationFactory(slug="someone-elses")

    assert review_queues_for(loner) == []


def test_task_detail_loads_everything_in_a_fixed_number_of_queries(
    automation, reviewer, django_assert_max_num_queries
):
    task = make_task(automation)
    task.run.verdicts = [
        {"check": name, "verdict": "pass", "reason": "", "details": {}}
        for name in ["kill_switch", "confidence", "pii"]
    ]
    task.run.save(update_fields=["verdicts"])
    for _ in range(3):
        ModelCall.objects.create(run=task.run, automation=automation, provider="rules")

    with django_assert_max_num_queries(7):
        detail = review_task_detail(task.pk, reviewer)
        names = [verdict["check"] for verdict in detail.run.verdicts]
        calls = len(detail.run.model_calls.all())
        intents = [intent.name for intent in detail.automation.intents.all()]
        payload = detail.run.event.payload

    assert names == ["kill_switch", "confidence", "pii"]
    assert calls == 3
    assert set(intents) == {"route_ticket", "close_ticket"}
    assert payload["subject"] == "Invoice"


def test_task_detail_refuses_other_queues_and_unknown_ids(automation, reviewer):
    outsider = UserFactory(username="otto", roles=["reviewer"])
    task = make_task(automation)

    with pytest.raises(PermissionDenied):
        review_task_detail(task.pk, outsider)
    with pytest.raises(Http404):
        review_task_detail(task.pk + 1000, reviewer)


def test_claim_and_decide_take_a_fixed_number_of_queries(
    automation, reviewer, enqueue_execute, django_assert_max_num_queries, settings
):
    settings.HANDRAIL_CONFIG_CACHE_SECONDS = 60
    for _ in range(20):
        make_task(automation)
    review_queues_for(reviewer)  # loads the user's roles once, as a request would
    intent_schema(automation.pk, "route_ticket")  # the intents, as a warm process has them

    # Inside the test's transaction each atomic block adds SAVEPOINT and RELEASE:
    # claim = held-and-allowed, the claim; decide = lock, access, task, label, trail
    # entry, run, transition; the next claim in the same transaction.
    with django_assert_max_num_queries(4):
        task = review_claim_next(user=reviewer, automation=automation)
    with django_assert_max_num_queries(9):
        review_decide(
            task_id=task.pk,
            user=reviewer,
            action="approve",
            arguments={"team": "sales", "priority": "p1"},
        )
    task = review_claim_next(user=reviewer, automation=automation)
    with django_assert_max_num_queries(10):
        review_decide_and_claim_next(task_id=task.pk, user=reviewer, action="approve")
