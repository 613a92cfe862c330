"""The reviewer console in a real browser: claim, edit, decide, and the next task swapped in."""

import re
import time

import pytest
from playwright.sync_api import expect
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from automations.models import Label, ReviewTask
from tests.browser.conftest import login
from tests.support.webhook_receiver import new_webhook_secret

pytestmark = pytest.mark.browser


def task_url(pk) -> re.Pattern:
    return re.compile(rf"/review/tasks/{pk}/$")


def panel(page):
    return page.locator("#review-panel")


def claim_next(page, setup, *, expected) -> None:
    """From the reviewer home, press the queue's Next and land on task `expected`."""
    page.goto("/review/")
    row = page.locator(f'tr[data-queue="{setup.automation.slug}"]')
    row.locator('button[data-action="next"]').click()
    expect(page).to_have_url(task_url(expected.pk))
    expect(panel(page)).to_have_attribute("data-task-id", str(expected.pk))
    page.wait_for_load_state()  # the shortcut script is deferred: keys work after load


def decision(task):
    task = ReviewTask.objects.select_related("run").get(pk=task.pk)
    return task, task.run


def test_claim_edit_approve_swaps_in_the_next_task_without_a_page_load(page, reviewer_setup):
    setup = reviewer_setup(tasks=3)
    first, second, _ = setup.tasks
    login(page, setup.reviewer, setup.password)

    page.goto("/review/")
    row = page.locator(f'tr[data-queue="{setup.automation.slug}"]')
    expect(row.locator("[data-pending]")).to_contain_text("3")
    row.locator('button[data-action="next"]').click()
    expect(page).to_have_url(task_url(first.pk))
    expect(panel(page)).to_have_attribute("data-task-id", str(first.pk))
    expect(page.locator("#arg-team")).to_have_value("billing")
    page.wait_for_load_state()  # htmx is loaded: a click now swaps instead of navigating

    page.select_option("#arg-team", "technical")
    page.evaluate("window.__marker = 1")
    page.click("button[name=action][value=approve]")

    expect(panel(page)).to_have_attribute("data-task-id", str(second.pk))
    expect(page).to_have_url(task_url(second.pk))
    expect(page.locator("#review-status")).to_contain_text(f"Approved task {first.pk}")
    expect(page.locator("#review-status")).to_contain_text("edited")
    assert page.evaluate("window.__marker") == 1, "the approval reloaded the whole page"
    expect(page.locator("#arg-team")).to_have_value("billing")  # the next task's own proposal

    task, run = decision(first)
    assert (task.state, task.outcome, task.decided_by) == ("done", "edited", setup.reviewer)
    assert run.final_intent["arguments"]["team"] == "technical"
    assert run.decided_by == "reviewer"
    assert ReviewTask.objects.get(pk=second.pk).claimed_by == setup.reviewer


def test_keyboard_only_next_edit_escape_approve(page, reviewer_setup):
    setup = reviewer_setup(tasks=2)
    first, second = setup.tasks
    login(page, setup.reviewer, setup.password, next_url="/review/")
    expect(page).to_have_url(re.compile(r"/review/$"))

    page.keyboard.press("n")
    expect(page).to_have_url(task_url(first.pk))
    expect(panel(page)).to_have_attribute("data-task-id", str(first.pk))
    page.wait_for_load_state()
    page.evaluate("window.__marker = 1")

    page.keyboard.press("e")
    expect(page.locator("#arg-team")).to_be_focused()
    page.keyboard.press("ArrowDown")  # billing -> technical, on a closed <select>
    expect(page.locator("#arg-team")).to_have_value("technical")
    page.keyboard.press("Escape")
    expect(page.locator("#arg-team")).not_to_be_focused()
    page.keyboard.press("a")

    expect(panel(page)).to_have_attribute("data-task-id", str(second.pk))
    expect(page).to_have_url(task_url(second.pk))
    expect(page.locator("#review-status")).to_contain_text(f"Approved task {first.pk}")
    expect(page.locator("#review-status")).to_contain_text("edited")
    assert page.evaluate("window.__marker") == 1, "the approval reloaded the whole page"
    task, run = decision(first)
    assert (task.outcome, run.final_intent["arguments"]["team"]) == ("edited", "technical")


def click_together(pages, selector: str, *, lead_ms: int = 250) -> None:
    """Click `selector` in every page at one shared instant (the same clock, a timer in each)."""
    at = pages[0].evaluate("Date.now()") + lead_ms
    for page in pages:
        page.evaluate(
            "([selector, at]) => setTimeout(() => document.querySelector(selector).click(),"
            " at - Date.now())",
            [selector, at],
        )


def test_two_reviewers_claiming_at_once_get_different_tasks(new_page, reviewer_setup):
    setup = reviewer_setup(tasks=3, reviewers=("ravi", "rosa"))
    pages = [new_page(), new_page()]
    for page, person in zip(pages, setup.reviewers, strict=True):
        login(page, person, setup.password, next_url="/review/")
    sent, answered = [], []
    for page in pages:
        page.on("request", lambda r: "/next/" in r.url and sent.append(time.monotonic()))
        page.on("response", lambda r: "/next/" in r.url and answered.append(time.monotonic()))

    click_together(pages, f'tr[data-queue="{setup.automation.slug}"] button[data-action="next"]')

    for page in pages:
        expect(page).to_have_url(re.compile(r"/review/tasks/\d+/$"))
        expect(panel(page)).not_to_have_attribute("data-task-id", "")
    assert len(sent) == 2 and max(sent) < min(answered), "the two claims did not overlap"
    claimed = [int(panel(page).get_attribute("data-task-id")) for page in pages]
    assert claimed[0] != claimed[1]
    assert set(claimed) == {setup.tasks[0].pk, setup.tasks[1].pk}
    holders = dict(ReviewTask.objects.filter(pk__in=claimed).values_list("pk", "claimed_by"))
    assert holders == {claimed[0]: setup.reviewers[0].pk, claimed[1]: setup.reviewers[1].pk}
    assert ReviewTask.objects.get(pk=setup.tasks[2].pk).state == "pending"


def test_approved_edited_intent_reaches_the_webhook_receiver_signed(page, reviewer_setup):
    setup = reviewer_setup(tasks=1)
    [task] = setup.tasks
    login(page, setup.reviewer, setup.password)
    claim_next(page, setup, expected=task)

    page.select_option("#arg-team", "sales")
    page.fill("#arg-ticket_ref", "T-777")
    page.click("button[name=action][value=approve]")

    expect(page.locator("#review-status")).to_contain_text(f"Approved task {task.pk}")
    [delivery] = setup.receiver.wait_for(1, timeout=10)
    body = Webhook(setup.secret).verify(delivery.body, delivery.headers)
    assert body["arguments"] == {"team": "sales", "priority": "p2", "ticket_ref": "T-777"}
    assert (body["decided_by"], body["reviewer"]) == ("reviewer", setup.reviewer.username)
    assert (body["run_id"], body["intent"]) == (str(task.run_id), "route_ticket")
    assert delivery.path == f"/hooks/{setup.automation.slug}"
    with pytest.raises(WebhookVerificationError):
        Webhook(new_webhook_secret()).verify(delivery.body, delivery.headers)
    # The queue is empty now: the panel says so instead of showing a task.
    expect(panel(page)).to_have_attribute("data-task-id", "")
    expect(panel(page)).to_contain_text("No pending tasks")


def test_reject_with_a_reason_from_the_keyboard(page, reviewer_setup):
    setup = reviewer_setup(tasks=2)
    first, second = setup.tasks
    login(page, setup.reviewer, setup.password)
    claim_next(page, setup, expected=first)

    page.keyboard.press("r")
    reason = page.locator("select[name=reject_reason]")
    expect(reason).to_be_focused()
    page.keyboard.type("Dup")  # the select's type-ahead picks "Duplicate"
    expect(reason).to_have_value("duplicate")
    page.keyboard.press("Enter")

    expect(panel(page)).to_have_attribute("data-task-id", str(second.pk))
    expect(page.locator("#review-status")).to_contain_text(f"Rejected task {first.pk}")
    task, run = decision(first)
    assert (task.outcome, task.reject_reason, run.state) == ("rejected", "duplicate", "rejected")
    assert run.final_intent is None
    assert setup.receiver.deliveries == []


def test_invalid_argument_is_shown_at_the_field_and_nothing_is_stored(page, reviewer_setup):
    setup = reviewer_setup(tasks=2)
    first, second = setup.tasks
    login(page, setup.reviewer, setup.password)
    claim_next(page, setup, expected=first)
    page.evaluate("window.__marker = 1")

    page.fill("#arg-ticket_ref", "not a ticket")
    page.keyboard.press("Control+Enter")  # approve from inside the field

    error = page.locator('.field-error[data-field="arguments.ticket_ref"]')
    expect(error).to_be_visible()
    expect(panel(page)).to_have_attribute("data-task-id", str(first.pk))
    expect(page).to_have_url(task_url(first.pk))
    expect(page.locator("#arg-ticket_ref")).to_have_value("not a ticket")
    task, run = decision(first)
    assert (task.state, task.claimed_by, task.outcome) == ("claimed", setup.reviewer, "")
    assert (run.state, run.final_intent) == ("awaiting_review", None)
    assert not Label.objects.filter(review_task=first).exists()

    page.fill("#arg-ticket_ref", "T-42")
    page.keyboard.press("Control+Enter")

    expect(panel(page)).to_have_attribute("data-task-id", str(second.pk))
    assert page.evaluate("window.__marker") == 1
    task, run = decision(first)
    assert (task.outcome, run.final_intent["arguments"]["ticket_ref"]) == ("edited", "T-42")


def test_shortcut_help_and_release_from_the_keyboard(page, reviewer_setup):
    setup = reviewer_setup(tasks=1)
    [task] = setup.tasks
    login(page, setup.reviewer, setup.password)
    claim_next(page, setup, expected=task)

    keys = page.locator("#shortcuts kbd").all_inner_texts()
    assert {"a", "e", "r", "l", "?"} <= {k.strip() for k in keys}
    help_text = page.locator("#shortcut-help")
    expect(help_text).to_be_hidden()
    page.keyboard.press("?")
    expect(help_text).to_be_visible()
    page.keyboard.press("?")
    expect(help_text).to_be_hidden()

    page.keyboard.press("l")

    expect(page.locator("#review-status")).to_contain_text(f"Released task {task.pk}")
    expect(panel(page)).to_have_attribute("data-task-id", "")
    task.refresh_from_db()
    assert (task.state, task.claimed_by) == ("pending", None)


def test_reviewer_cannot_open_or_decide_another_automations_task(page, reviewer_setup):
    mine = reviewer_setup(tasks=1, reviewers=("ravi",), slug="support-triage")
    theirs = reviewer_setup(tasks=1, reviewers=("rosa",), slug="refunds")
    [foreign] = theirs.tasks
    login(page, mine.reviewer, mine.password)

    page.goto("/review/")
    expect(page.locator(f'tr[data-queue="{mine.automation.slug}"]')).to_have_count(1)
    expect(page.locator(f'tr[data-queue="{theirs.automation.slug}"]')).to_have_count(0)

    response = page.goto(f"/review/tasks/{foreign.pk}/")

    assert response.status in (403, 404)
    expect(page.locator("#review-panel")).to_have_count(0)
    expect(page.locator("select[name^='arg.']")).to_have_count(0)

    # Not by a hand-made POST either (same session, a valid CSRF token).
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    posted = page.request.post(
        f"/review/tasks/{foreign.pk}/decide/",
        form={"action": "approve", "arg.team": "sales"},
        headers={"X-CSRFToken": csrf},
    )
    assert posted.status in (403, 404)
    assert "CSRF" not in posted.text(), "refused by the CSRF check, not by access control"
    task, run = decision(foreign)
    assert (task.state, task.claimed_by, task.outcome) == ("pending", None, "")
    assert run.state == "awaiting_review"
    assert theirs.receiver.deliveries == []
