"""The reviewer console in the browser: queues, claiming, the review screen, deciding."""

import re
from datetime import timedelta
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from automations.models import Label, ModelCall, ReviewTask, Run
from automations.services.reviews import review_claim_next
from tests.factories import (
    PROPOSED,
    AutomationFactory,
    EventFactory,
    IntentFactory,
    ReviewTaskFactory,
    RunFactory,
    UserFactory,
)

HTMX = {"HX-Request": "true"}


@pytest.fixture
def enqueue_execute():
    with mock.patch("automations.services.dispatch.enqueue_execute") as patched:
        yield patched


@pytest.fixture
def automation(reviewer, rosa):
    automation = AutomationFactory(
        slug="support-triage", name="Support triage", reviewers=[reviewer, rosa]
    )
    IntentFactory(automation=automation, name="route_ticket", position=0)
    IntentFactory(
        automation=automation,
        name="close_ticket",
        position=1,
        arguments_schema={
            "type": "object",
            "properties": {"reason": {"type": "string", "minLength": 3}},
            "required": ["reason"],
            "additionalProperties": False,
        },
    )
    return automation


@pytest.fixture
def other(db):
    """Automation B, worked by someone else."""
    otto = UserFactory(username="otto", roles=["reviewer"])
    other = AutomationFactory(slug="refunds", name="Refunds", reviewers=[otto])
    IntentFactory(automation=other)
    return other


@pytest.fixture
def as_reviewer(client, reviewer):
    client.force_login(reviewer)
    return client


def make_task(automation, *, kind="approve", proposed=PROPOSED, age_minutes=0, payload=None):
    event = EventFactory(automation=automation, source="zendesk", client="zendesk-bridge")
    if payload is not None:
        event.payload = payload
        event.save(update_fields=["payload"])
    task = ReviewTaskFactory(
        run=RunFactory(event=event, state="awaiting_review", proposed_intent=proposed),
        kind=kind,
        reason="confidence 0.55 below 0.70",
    )
    if age_minutes:
        created = timezone.now() - timedelta(minutes=age_minutes)
        ReviewTask.objects.filter(pk=task.pk).update(created_at=created)
        task.refresh_from_db()
    return task


def claimed(automation, user, **kwargs):
    task = make_task(automation, **kwargs)
    got = review_claim_next(user=user, automation=automation)
    assert got.pk == task.pk
    return got


def task_url(task_or_pk) -> str:
    return reverse("review:task", args=[getattr(task_or_pk, "pk", task_or_pk)])


def decide_url(task_or_pk) -> str:
    return reverse("review:decide", args=[getattr(task_or_pk, "pk", task_or_pk)])


def approve_form(**arguments) -> dict:
    values = {**PROPOSED["arguments"], **arguments}
    return {"action": "approve", "intent": "route_ticket"} | {
        f"arg.{name}": value for name, value in values.items()
    }


def html(response) -> str:
    return response.content.decode()


def field_error(page: str, path: str) -> str | None:
    """The text of `.field-error[data-field=path]`, or None if the page has none."""
    pattern = r'<p class="field-error"[^>]*data-field="' + re.escape(path) + r'"[^>]*>(.*?)</p>'
    match = re.search(pattern, page, re.S)
    return match.group(1).strip() if match else None


# Home: the queues.


def test_home_lists_only_assigned_queues_with_pending_counts(as_reviewer, automation, other):
    make_task(automation, age_minutes=90)
    make_task(automation)
    make_task(other)

    response = as_reviewer.get(reverse("review:home"))

    assert response.status_code == 200
    page = html(response)
    assert 'data-queue="support-triage"' in page
    assert 'data-queue="refunds"' not in page
    row = page.split('data-queue="support-triage"')[1].split("</tr>")[0]
    assert re.search(r"<span data-pending>2</span>", row)
    assert 'data-action="next"' in row and "past SLA" in row
    assert 'id="shortcuts"' in page


def test_home_counts_what_the_reviewer_decided_today(as_reviewer, reviewer, automation):
    task = claimed(automation, reviewer)
    as_reviewer.post(decide_url(task), {"action": "reject", "reject_reason": "duplicate"})

    response = as_reviewer.get(reverse("review:home"))

    assert "You decided <strong>1</strong> task today" in html(response)


def test_reviewer_with_no_assignment_sees_no_queue(client, db):
    client.force_login(UserFactory(username="lonely", roles=["reviewer"]))

    response = client.get(reverse("review:home"))

    assert response.status_code == 200
    assert "No queues assigned to you" in html(response)


def test_user_without_a_reviewer_role_is_refused_the_console(client, automation):
    owner_only = UserFactory(username="olga", roles=["owner"])
    automation.reviewers.add(owner_only)
    task = make_task(automation)
    client.force_login(owner_only)

    assert client.get(reverse("review:home")).status_code == 403
    assert client.post(reverse("review:next", args=["support-triage"])).status_code == 403
    assert client.get(task_url(task)).status_code == 403
    assert client.post(decide_url(task), {"action": "approve"}).status_code == 403
    assert ReviewTask.objects.get(pk=task.pk).state == "pending"


def test_anonymous_visitor_is_sent_to_log_in(client, automation):
    task = make_task(automation)

    for response in (
        client.get(reverse("review:home")),
        client.get(task_url(task)),
        client.post(reverse("review:next", args=["support-triage"])),
    ):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_admin_works_only_the_queues_they_are_assigned_to(client, admin_user, automation, other):
    automation.reviewers.add(admin_user)
    mine, foreign = make_task(automation), make_task(other)
    client.force_login(admin_user)

    page = html(client.get(reverse("review:home")))
    response = client.post(reverse("review:next", args=["support-triage"]))

    assert 'data-queue="support-triage"' in page and 'data-queue="refunds"' not in page
    assert response["Location"] == task_url(mine)
    assert client.post(reverse("review:next", args=["refunds"])).status_code == 404
    assert client.get(task_url(foreign)).status_code == 403


# Next: claiming.


def test_next_claims_the_oldest_task_and_redirects_to_it(as_reviewer, reviewer, automation):
    make_task(automation, age_minutes=5)
    oldest = make_task(automation, age_minutes=30)

    response = as_reviewer.post(reverse("review:next", args=["support-triage"]))

    assert response.status_code == 303
    assert response["Location"] == task_url(oldest)
    oldest.refresh_from_db()
    assert (oldest.state, oldest.claimed_by) == ("claimed", reviewer)


def test_next_on_an_empty_queue_goes_home_with_a_message(as_reviewer, automation):
    response = as_reviewer.post(reverse("review:next", args=["support-triage"]), follow=True)

    assert response.redirect_chain == [(reverse("review:home"), 303)]
    assert "No pending tasks in Support triage." in html(response)


def test_next_with_htmx_renders_the_task_panel_and_pushes_its_url(as_reviewer, automation):
    task = make_task(automation)

    response = as_reviewer.post(reverse("review:next", args=["support-triage"]), headers=HTMX)

    assert response.status_code == 200
    assert response["HX-Push-Url"] == task_url(task)
    page = html(response)
    assert page.lstrip().startswith(
        f'<section id="review-panel" class="review-panel" data-task-id="{task.pk}"'
    )
    assert "<html" not in page


def test_next_with_htmx_on_an_empty_queue_renders_the_empty_panel(as_reviewer, automation):
    response = as_reviewer.post(reverse("review:next", args=["support-triage"]), headers=HTMX)

    page = html(response)
    assert 'id="review-panel"' in page and 'data-task-id=""' in page
    assert "No pending tasks in Support triage" in page
    assert 'data-action="next"' in page


def test_two_reviewers_pressing_next_get_different_tasks(client, reviewer, rosa, automation):
    make_task(automation, age_minutes=2)
    make_task(automation, age_minutes=1)

    client.force_login(reviewer)
    first = client.post(reverse("review:next", args=["support-triage"]))["Location"]
    client.force_login(rosa)
    second = client.post(reverse("review:next", args=["support-triage"]))["Location"]

    assert first != second
    assert ReviewTask.objects.filter(state="claimed").count() == 2


def test_reviewer_of_one_automation_cannot_reach_anothers_tasks(
    as_reviewer, automation, other, enqueue_execute
):
    foreign = make_task(other)

    assert as_reviewer.post(reverse("review:next", args=["refunds"])).status_code == 404
    assert as_reviewer.get(task_url(foreign)).status_code == 403
    assert as_reviewer.post(decide_url(foreign), approve_form()).status_code == 403
    assert as_reviewer.get(task_url(999_999)).status_code == 404
    assert ReviewTask.objects.get(pk=foreign.pk).state == "pending"


# The review screen.


def test_review_page_shows_the_event_its_provenance_the_intent_and_every_verdict(
    as_reviewer, reviewer, automation
):
    task = claimed(
        automation,
        reviewer,
        payload={"subject": "Invoice", "customer": {"tier": "gold"}, "tags": ["a", "b"]},
    )
    task.run.verdicts = [
        {"check": "kill_switch", "verdict": "pass", "reason": "", "details": {}},
        {"check": "confidence", "verdict": "review", "reason": "0.55 is below 0.70", "details": {}},
    ]
    task.run.save(update_fields=["verdicts"])
    event = task.run.event

    page = html(as_reviewer.get(task_url(task)))

    assert f'data-task-id="{task.pk}"' in page
    assert "<dt>customer.tier</dt><dd>gold</dd>" in page
    assert "<dt>tags</dt><dd>a, b</dd>" in page
    for fact in (event.source, event.client, event.body_sha256, task.run.trace_id):
        assert fact in page
    assert "route_ticket" in page and "0.55" in page and "Invoice question." in page
    assert "confidence 0.55 below 0.70" in page  # the task's reason
    assert "kill_switch" in page and "0.55 is below 0.70" in page
    assert 'name="arg.team" id="arg-team"' in page
    assert '<option value="billing" selected>' in page
    for action in ("approve", "reject", "release"):
        assert f'name="action" value="{action}"' in page
    assert 'name="reject_reason"' in page and 'name="note"' in page
    shortcuts = page.split('id="shortcuts"')[1]
    for key in ("a", "e", "r", "l", "?"):
        assert f'<kbd class="kbd">{key}</kbd>' in shortcuts


def test_required_fields_are_marked(as_reviewer, reviewer, automation):
    task = claimed(automation, reviewer)

    page = html(as_reviewer.get(task_url(task)))

    label = page.split('<label for="arg-team">')[1].split("</label>")[0]
    assert 'class="required"' in label


def test_a_task_the_reviewer_does_not_hold_is_read_only_with_a_claim_button(
    as_reviewer, rosa, automation
):
    held = claimed(automation, rosa)
    pending = make_task(automation)

    pending_page = html(as_reviewer.get(task_url(pending)))
    held_page = html(as_reviewer.get(task_url(held)))

    assert 'name="action"' not in pending_page
    assert "You do not hold this task" in pending_page
    assert reverse("review:next", args=["support-triage"]) in pending_page
    assert 'name="action"' not in held_page
    assert "rosa is reviewing this task" in held_page


def test_a_decided_task_shows_its_outcome(as_reviewer, reviewer, automation, enqueue_execute):
    task = claimed(automation, reviewer)
    as_reviewer.post(decide_url(task), approve_form(team="technical"))

    page = html(as_reviewer.get(task_url(task)))

    assert "Decided:" in page and "Edited" in page
    assert "arguments.team" in page and "technical" in page
    assert 'name="action"' not in page


# Deciding.


def test_approve_as_is_approves_the_run_and_enqueues_the_webhook(
    as_reviewer, reviewer, automation, enqueue_execute, django_capture_on_commit_callbacks
):
    task = claimed(automation, reviewer)

    with django_capture_on_commit_callbacks(execute=True):
        response = as_reviewer.post(decide_url(task), approve_form())

    assert response.status_code == 303
    enqueue_execute.assert_called_once_with(task.run_id)
    task.refresh_from_db()
    assert (task.state, task.outcome, task.decided_by) == ("done", "accepted", reviewer)
    assert Run.objects.get(pk=task.run_id).state == "approved"
    assert Label.objects.get(review_task=task).diff == []


def test_edit_then_approve_records_edited_with_the_diff(
    as_reviewer, reviewer, automation, enqueue_execute
):
    task = claimed(automation, reviewer)

    as_reviewer.post(decide_url(task), approve_form(team="technical"))

    label = Label.objects.get(review_task_id=task.pk)
    assert label.outcome == "edited"
    assert label.diff == [{"path": "arguments.team", "from": "billing", "to": "technical"}]
    assert Run.objects.get(pk=task.run_id).final_intent == {
        "intent": "route_ticket",
        "arguments": {"team": "technical", "priority": "p2"},
    }


def test_invalid_field_is_shown_at_the_field_and_nothing_is_stored(
    as_reviewer, reviewer, automation, enqueue_execute
):
    task = claimed(automation, reviewer)

    response = as_reviewer.post(decide_url(task), approve_form(team="legal", priority=""))

    assert response.status_code == 422
    page = html(response)
    assert "legal" in field_error(page, "arguments.team")
    assert field_error(page, "arguments.priority") == "is required"
    assert '<option value="legal"' not in page  # the select still offers only the schema's values
    task.refresh_from_db()
    assert (task.state, task.outcome) == ("claimed", "")
    assert not Label.objects.exists()
    enqueue_execute.assert_not_called()


def test_htmx_validation_errors_come_back_as_the_panel_to_swap(as_reviewer, reviewer, automation):
    task = claimed(automation, reviewer)

    response = as_reviewer.post(decide_url(task), approve_form(team="legal"), headers=HTMX)

    assert response.status_code == 422
    page = html(response)
    assert page.lstrip().startswith('<section id="review-panel"')
    assert field_error(page, "arguments.team")
    assert "HX-Push-Url" not in response


def test_unreadable_json_is_an_error_at_its_field(as_reviewer, reviewer, automation):
    IntentFactory(
        automation=automation,
        name="tag_ticket",
        position=2,
        arguments_schema={
            "type": "object",
            "properties": {"tags": {"type": "array", "items": {"type": "string"}}},
            "required": ["tags"],
        },
    )
    task = claimed(automation, reviewer)

    response = as_reviewer.post(
        decide_url(task), {"action": "approve", "intent": "tag_ticket", "arg.tags": "[oops"}
    )

    assert response.status_code == 422
    assert field_error(html(response), "arguments.tags").startswith("not valid JSON")
    assert ReviewTask.objects.get(pk=task.pk).state == "claimed"


def test_reject_needs_a_reason(as_reviewer, reviewer, automation):
    task = claimed(automation, reviewer)

    response = as_reviewer.post(decide_url(task), {"action": "reject", "reject_reason": ""})

    assert response.status_code == 422
    assert field_error(html(response), "reject_reason") == "choose a reason from the list"
    assert ReviewTask.objects.get(pk=task.pk).state == "claimed"


def test_reject_other_needs_a_note_and_keeps_what_was_typed(as_reviewer, reviewer, automation):
    task = claimed(automation, reviewer)

    response = as_reviewer.post(decide_url(task), {"action": "reject", "reject_reason": "other"})

    page = html(response)
    assert field_error(page, "note") == "explain the reason in the note"
    assert '<option value="other" selected>' in page


def test_reject_with_a_reason_rejects_and_never_executes(
    as_reviewer, reviewer, automation, enqueue_execute, django_capture_on_commit_callbacks
):
    task = claimed(automation, reviewer)

    with django_capture_on_commit_callbacks(execute=True):
        as_reviewer.post(
            decide_url(task),
            {**approve_form(), "action": "reject", "reject_reason": "wrong_intent", "note": "x"},
        )

    task.refresh_from_db()
    assert (task.outcome, task.reject_reason, task.note) == ("rejected", "wrong_intent", "x")
    assert Run.objects.get(pk=task.run_id).state == "rejected"
    enqueue_execute.assert_not_called()


def test_expired_lease_is_refused_clearly_and_nothing_changes(
    as_reviewer, reviewer, automation, enqueue_execute
):
    task = claimed(automation, reviewer)
    ReviewTask.objects.filter(pk=task.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    response = as_reviewer.post(decide_url(task), approve_form(), follow=True)

    assert response.redirect_chain == [(task_url(task), 303)]
    assert "Nothing was changed: your lease on this task expired" in html(response)
    task.refresh_from_db()
    assert (task.state, task.outcome) == ("claimed", "")
    enqueue_execute.assert_not_called()


def test_expired_lease_with_htmx_swaps_in_the_read_only_panel_with_the_reason(
    as_reviewer, reviewer, automation
):
    task = claimed(automation, reviewer)
    ReviewTask.objects.filter(pk=task.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    response = as_reviewer.post(decide_url(task), approve_form(), headers=HTMX)

    assert response.status_code == 409
    page = html(response)
    assert '<p class="form-error" role="alert">Nothing was changed' in page
    assert "You do not hold this task" in page


def test_unreadable_input_after_the_lease_lapsed_is_refused_not_shown_as_field_errors(
    as_reviewer, reviewer, automation
):
    IntentFactory(
        automation=automation,
        name="tag_ticket",
        position=2,
        arguments_schema={"type": "object", "properties": {"tags": {"type": "array"}}},
    )
    task = claimed(automation, reviewer)
    ReviewTask.objects.filter(pk=task.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    response = as_reviewer.post(
        decide_url(task),
        {"action": "approve", "intent": "tag_ticket", "arg.tags": "[oops"},
        headers=HTMX,
    )

    assert response.status_code == 409
    assert "Nothing was changed: you do not hold a live lease" in html(response)


def test_second_submit_says_it_was_already_decided(
    as_reviewer, reviewer, automation, enqueue_execute
):
    task = claimed(automation, reviewer)
    as_reviewer.post(decide_url(task), approve_form())

    response = as_reviewer.post(decide_url(task), approve_form(), headers=HTMX)

    assert response.status_code == 409
    assert "already decided" in html(response)
    assert Label.objects.count() == 1


def test_release_puts_the_task_back_and_does_not_hand_it_out_again(
    as_reviewer, reviewer, automation
):
    task = claimed(automation, reviewer)

    response = as_reviewer.post(decide_url(task), {"action": "release"}, headers=HTMX)

    task.refresh_from_db()
    assert (task.state, task.claimed_by) == ("pending", None)
    page = html(response)
    assert 'data-task-id=""' in page
    assert f"Released task {task.pk}" in page
    assert response["HX-Push-Url"] == reverse("review:home")


def test_release_without_js_goes_back_to_the_queues(as_reviewer, reviewer, automation):
    task = claimed(automation, reviewer)

    response = as_reviewer.post(decide_url(task), {"action": "release"}, follow=True)

    assert response.redirect_chain == [(reverse("review:home"), 303)]
    assert f"Released task {task.pk}" in html(response)
    assert ReviewTask.objects.get(pk=task.pk).state == "pending"


@pytest.mark.parametrize(
    ("form", "outcome"),
    [
        ({"action": "use"}, "used"),
        ({"action": "use", "arg.team": "sales"}, "used_edited"),
        ({"action": "discard", "arg.team": "sales"}, "discarded"),
    ],
)
def test_suggest_drafts_are_used_or_discarded_never_executed(
    as_reviewer, reviewer, automation, enqueue_execute, form, outcome
):
    task = claimed(automation, reviewer, kind="suggest")
    page = html(as_reviewer.get(task_url(task)))
    assert 'value="use"' in page and 'value="discard"' in page
    assert 'value="approve"' not in page and 'name="reject_reason"' not in page

    as_reviewer.post(decide_url(task), approve_form() | form)

    task.refresh_from_db()
    assert (task.state, task.outcome) == ("done", outcome)
    assert Run.objects.get(pk=task.run_id).state == "recorded"
    enqueue_execute.assert_not_called()


def test_htmx_decide_returns_the_next_task_panel_and_pushes_its_url(
    as_reviewer, reviewer, automation, enqueue_execute
):
    task = claimed(automation, reviewer)
    following = make_task(automation)

    response = as_reviewer.post(decide_url(task), approve_form(team="sales"), headers=HTMX)

    assert response.status_code == 200
    assert response["HX-Push-Url"] == task_url(following)
    page = html(response)
    assert f'data-task-id="{following.pk}"' in page
    assert re.search(
        rf'<p id="review-status"[^>]*role="status">Approved task {task.pk} \(edited\)\.</p>', page
    )
    assert ReviewTask.objects.get(pk=following.pk).claimed_by == reviewer


def test_htmx_decide_on_the_last_task_returns_the_empty_panel(
    as_reviewer, reviewer, automation, enqueue_execute
):
    task = claimed(automation, reviewer)

    response = as_reviewer.post(
        decide_url(task), {"action": "reject", "reject_reason": "duplicate"}, headers=HTMX
    )

    page = html(response)
    assert 'id="review-panel"' in page and 'data-task-id=""' in page
    assert "No pending tasks" in page
    assert f"Rejected task {task.pk} (duplicate)." in page
    assert response["HX-Push-Url"] == reverse("review:home")


def test_decide_without_js_redirects_303_to_the_next_task_with_the_status(
    as_reviewer, reviewer, automation, enqueue_execute
):
    task = claimed(automation, reviewer)
    following = make_task(automation)

    response = as_reviewer.post(decide_url(task), approve_form())

    assert response.status_code == 303
    assert response["Location"] == task_url(following)
    page = html(as_reviewer.get(response["Location"]))
    assert f"Approved task {task.pk}." in page
    assert "Approved task" not in html(as_reviewer.get(response["Location"]))  # said once


def test_decide_without_js_on_the_last_task_goes_home(
    as_reviewer, reviewer, automation, enqueue_execute
):
    task = claimed(automation, reviewer)

    response = as_reviewer.post(decide_url(task), approve_form(), follow=True)

    assert response.redirect_chain == [(reverse("review:home"), 303)]
    page = html(response)
    assert f"Approved task {task.pk}." in page
    assert "No pending tasks in Support triage." in page


# The model proposed nothing: the reviewer chooses the intent.


def test_without_a_proposal_the_reviewer_must_choose_an_intent(
    as_reviewer, reviewer, automation, enqueue_execute
):
    task = claimed(automation, reviewer, proposed=None)

    page = html(as_reviewer.get(task_url(task)))
    assert '<select name="intent" id="intent"' in page
    assert '<option value="" selected>— choose an intent —</option>' in page
    assert 'name="arg.' not in page

    refused = as_reviewer.post(decide_url(task), {"action": "approve", "intent": ""})
    assert refused.status_code == 422
    assert "choose one" in field_error(html(refused), "intent")

    as_reviewer.post(
        decide_url(task),
        {"action": "approve", "intent": "close_ticket", "arg.reason": "spam"},
    )
    label = Label.objects.get(review_task_id=task.pk)
    assert (label.outcome, label.final_intent) == (
        "edited",
        {"intent": "close_ticket", "arguments": {"reason": "spam"}},
    )


def test_choosing_an_intent_with_htmx_renders_its_fields(as_reviewer, reviewer, automation):
    task = claimed(automation, reviewer, proposed=None)

    response = as_reviewer.get(
        task_url(task) + "?intent=close_ticket",
        headers={**HTMX, "HX-Target": "argument-fields"},
    )

    page = html(response)
    assert page.lstrip().startswith('<div id="argument-fields"')
    assert 'name="arg.reason" id="arg-reason"' in page


def test_show_fields_without_js_rerenders_the_form_for_the_chosen_intent(
    as_reviewer, reviewer, automation
):
    task = claimed(automation, reviewer, proposed=None)

    response = as_reviewer.post(
        decide_url(task), {"show_fields": "1", "intent": "close_ticket", "note": "keep me"}
    )

    assert response.status_code == 200
    page = html(response)
    assert 'name="arg.reason"' in page
    assert '<option value="close_ticket" selected>' in page
    assert "keep me" in page
    assert ReviewTask.objects.get(pk=task.pk).state == "claimed"


# Queries.


def queue_with_tasks(automation, reviewer, size):
    for _ in range(size - 1):
        make_task(automation, age_minutes=1)
    task = make_task(automation, age_minutes=5)
    task.run.verdicts = [
        {"check": name, "verdict": "pass", "reason": name, "details": {}}
        for name in ["kill_switch", "dna", "confidence", "pii", "budget"]
    ]
    task.run.save(update_fields=["verdicts"])
    for _ in range(3):
        ModelCall.objects.create(run=task.run, automation=automation, provider="rules")
    assert review_claim_next(user=reviewer, automation=automation).pk == task.pk
    return task


def queries_for_sizes(client, reviewer, sizes, request_for, django_assert_max_num_queries, limit):
    """The query count of `request_for(task)` on a fresh queue of each size."""
    client.force_login(reviewer)
    counts = []
    for size in sizes:
        automation = AutomationFactory(slug=f"queue-of-{size}", reviewers=[reviewer])
        IntentFactory(automation=automation)
        task = queue_with_tasks(automation, reviewer, size)
        with django_assert_max_num_queries(limit) as captured:
            response = request_for(task)
        assert response.status_code == 200
        counts.append(len(captured.captured_queries))
    return counts


def test_review_page_takes_as_many_queries_for_a_queue_of_1_as_of_50(
    client, reviewer, django_assert_max_num_queries
):
    counts = queries_for_sizes(
        client,
        reviewer,
        [1, 50],
        lambda task: client.get(task_url(task)),
        django_assert_max_num_queries,
        limit=10,
    )

    assert counts[0] == counts[1]


def test_htmx_decide_and_the_next_panel_take_a_bounded_number_of_queries(
    client, reviewer, enqueue_execute, django_assert_max_num_queries
):
    # Queues of at least 2, so that every decision is followed by a next task's panel.
    counts = queries_for_sizes(
        client,
        reviewer,
        [2, 50],
        lambda task: client.post(decide_url(task), approve_form(team="sales"), headers=HTMX),
        django_assert_max_num_queries,
        limit=32,
    )

    assert counts[0] == counts[1]


def test_refusals_are_pages_with_the_layout_and_a_way_back(client, admin_user, automation, other):
    automation.reviewers.add(admin_user)
    foreign = make_task(other)
    client.force_login(admin_user)

    denied = client.get(task_url(foreign))
    missing = client.get(task_url(999_999))

    assert denied.status_code == 403
    assert "You may not open this page" in html(denied)
    assert "you do not review this automation" in html(denied)
    assert missing.status_code == 404 and "Nothing here" in html(missing)
    for response in (denied, missing):
        assert 'class="topbar"' in html(response)
        assert f'href="{reverse("home")}"' in html(response)
