"""The run page in a real browser: its SVG timeline under the strict CSP, found from a trace id."""

import pytest
from playwright.sync_api import expect

from tests.automations.test_run_page import traced_run
from tests.browser.conftest import PASSWORD, login
from tests.browser.test_content_security_policy import assert_clean
from tests.factories import AutomationFactory, UserFactory

pytestmark = pytest.mark.browser


def test_compliance_finds_a_run_by_its_trace_id_and_reads_its_timeline(
    page, page_records, base_url
):
    reviewer = UserFactory(username="ravi", roles=["reviewer"])
    automation = AutomationFactory(
        slug="support-triage", name="Support triage", reviewers=[reviewer]
    )
    run = traced_run(automation, reviewer=reviewer)
    login(page, UserFactory(username="carla", roles=["compliance"]), PASSWORD)

    page.goto("/runs/?automation=support-triage")
    page.fill("#trace-id", run.trace_id)
    with page.expect_navigation():
        page.press("#trace-id", "Enter")
    page.get_by_role("link", name=str(run.pk), exact=True).click()

    timeline = page.locator("svg.timeline")
    expect(timeline).to_be_visible()
    expect(timeline.locator("g.span")).to_have_count(11)
    assert timeline.bounding_box()["width"] >= 720
    expect(page.get_by_role("img", name=f"Timeline of run {run.pk}")).to_be_visible()
    page.click("#trace-id")  # one click selects the whole trace id, ready to copy
    assert page.evaluate("window.getSelection().toString()").strip() == run.trace_id
    assert_clean(page_records[page])
