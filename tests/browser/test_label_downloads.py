"""Downloading labels in a real browser: the progress shown while the export streams."""

import csv
import io

import pytest
from playwright.sync_api import expect

from automations.models import Label
from tests.browser.conftest import PASSWORD, login
from tests.browser.test_content_security_policy import assert_clean
from tests.factories import (
    AutomationFactory,
    IntentFactory,
    ReviewTaskFactory,
    RunFactory,
    UserFactory,
)

pytestmark = pytest.mark.browser

PROPOSED = {"intent": "route_ticket", "arguments": {"team": "billing", "priority": "p2"}}
LABELS = 40


def labelled(automation, reviewer, count: int) -> None:
    """`count` reviewed cases, every fourth one rejected."""
    for n in range(count):
        run = RunFactory(event__automation=automation, state="executed", proposed_intent=PROPOSED)
        rejected = n % 4 == 3
        task = ReviewTaskFactory(
            run=run, state="done", outcome="rejected" if rejected else "accepted"
        )
        Label.objects.create(
            review_task=task,
            run=run,
            automation=automation,
            outcome="rejected" if rejected else "accepted",
            model_intent=PROPOSED,
            final_intent=None if rejected else PROPOSED,
            reviewer=reviewer,
        )


def test_an_owner_downloads_labels_and_sees_how_far_the_export_got(page, page_records):
    owner = UserFactory(username="oscar", roles=["owner"])
    reviewer = UserFactory(username="ravi", roles=["reviewer"])
    automation = AutomationFactory(slug="support-triage", owner=owner, reviewers=[reviewer])
    IntentFactory(automation=automation)
    labelled(automation, reviewer, LABELS)
    login(page, owner, PASSWORD)
    page.goto("/automations/support-triage/")
    progress = page.locator("#labels-progress")
    expect(progress).to_be_hidden()

    with page.expect_download() as csv_download:
        page.get_by_role("button", name="CSV").click()

    download = csv_download.value
    assert download.suggested_filename == "support-triage-labels.csv"
    rows = list(csv.DictReader(io.StringIO(download.path().read_text(encoding="utf-8"))))
    assert len(rows) == LABELS
    expect(progress.get_by_role("status")).to_have_text(
        f"Saved support-triage-labels.csv: {LABELS} of {LABELS} labels."
    )
    assert progress.locator("progress").evaluate("bar => [bar.value, bar.max]") == [LABELS] * 2

    with page.expect_download() as jsonl_download:
        page.get_by_role("button", name="OpenAI chat JSONL").click()

    answered = LABELS - LABELS // 4  # the rejections have no answer to train on
    lines = jsonl_download.value.path().read_text(encoding="utf-8").splitlines()
    assert len(lines) == answered
    expect(progress.get_by_role("status")).to_have_text(
        f"Saved support-triage-labels.jsonl: {answered} of {answered} labels."
    )
    assert_clean(page_records[page])


def test_a_refused_export_says_why_on_the_page(page):
    owner = UserFactory(username="oscar", roles=["owner"])
    AutomationFactory(slug="support-triage", owner=owner)
    login(page, owner, PASSWORD)
    page.goto("/automations/support-triage/")
    # A date the server refuses; the date input's own checks are bypassed, as an old browser would.
    page.locator("#labels-since").evaluate("input => { input.type = 'text'; }")
    page.fill("#labels-since", "2025-02-30")

    page.get_by_role("button", name="CSV").click()

    expect(page.locator("#labels-progress").get_by_role("status")).to_contain_text(
        "The export failed: since must be a date written YYYY-MM-DD"
    )
