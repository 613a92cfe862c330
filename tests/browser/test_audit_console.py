"""Compliance in a real browser: work through a sample from the keyboard, and verify the trail."""

import re

import pytest
from playwright.sync_api import expect

from catalog.audit.arguments import sample_arguments
from catalog.audit.sampling import sample_draw
from catalog.models import AuditSampleItem, TrailEntry, TrailVerification
from tests.browser.conftest import login
from tests.catalog.audit_support import INSIDE, WINDOW, runs_of
from tests.factories import AutomationFactory, IntentFactory, UserFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def audit_setup(transactional_db):
    """Carla (compliance) and a sample of 3 runs: 2 autonomous (billing, p2), 1 rejected."""
    carla = UserFactory(username="carla", roles=["compliance"])
    automation = AutomationFactory(slug="support-triage", name="Support triage")
    IntentFactory(automation=automation)
    runs_of(automation, "autonomous", 2, at=INSIDE)
    runs_of(automation, "rejected", 1, at=INSIDE)
    arguments = sample_arguments(name="November", size="3", seed="7", stratify="outcome", **WINDOW)
    sample = sample_draw(arguments=arguments, by=carla)
    return carla, sample, list(sample.items.order_by("position"))


def panel(page):
    return page.locator("#audit-panel")


def test_work_through_a_sample_from_the_keyboard_with_a_blind_re_review(page, audit_setup):
    carla, sample, (first, second, third) = audit_setup
    login(page, carla)
    page.goto(f"/audit/samples/{sample.pk}/")
    page.click("#start")
    expect(panel(page)).to_have_attribute("data-item-id", str(first.pk))
    expect(panel(page)).to_have_attribute("data-revealed", "false")
    expect(page.locator("#done-title")).to_have_count(0)
    page.wait_for_load_state()  # the shortcut script is deferred: keys work after load
    page.evaluate("window.__marker = 1")

    # Blind: the only intent is chosen already; give its arguments from the keyboard.
    page.keyboard.press("b")
    expect(page.locator("#blind-intent")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("#arg-team")).to_be_focused()
    page.keyboard.press("ArrowDown")  # — -> billing, on a closed <select>
    expect(page.locator("#arg-team")).to_have_value("billing")
    page.keyboard.press("Tab")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")  # — -> p1 -> p2
    expect(page.locator("#arg-priority")).to_have_value("p2")
    page.keyboard.press("Control+Enter")

    expect(panel(page)).to_have_attribute("data-revealed", "true")
    expect(page.locator("[data-comparison]")).to_have_attribute("data-comparison", "agrees")
    expect(page.locator("[data-done-intent]")).to_have_text("route_ticket")
    page.keyboard.press("c")

    expect(panel(page)).to_have_attribute("data-item-id", str(second.pk))
    expect(page).to_have_url(re.compile(rf"/audit/items/{second.pk}/$"))
    expect(page.locator("#audit-status")).to_contain_text("Recorded compliant for item 1")
    assert page.evaluate("window.__marker") == 1, "the verdict reloaded the whole page"

    # Skip the blind step, then an issue: category from the keyboard, Enter records it.
    page.keyboard.press("s")
    expect(panel(page)).to_have_attribute("data-revealed", "true")
    page.keyboard.press("i")
    expect(page.locator("#category")).to_be_focused()
    page.keyboard.press("ArrowDown")  # — -> wrong_intent
    expect(page.locator("#category")).to_have_value("wrong_intent")
    page.keyboard.press("Enter")

    expect(panel(page)).to_have_attribute("data-item-id", str(third.pk))
    expect(page.locator("#audit-status")).to_contain_text("Recorded issue for item 2")
    page.keyboard.press("p")
    expect(panel(page)).to_have_attribute("data-item-id", str(second.pk))
    expect(page.locator(".badge.verdict-issue")).to_contain_text("wrong_intent")
    page.keyboard.press("n")
    expect(panel(page)).to_have_attribute("data-item-id", str(third.pk))

    # The last item: compliant, and back to the sample.
    page.keyboard.press("s")
    expect(panel(page)).to_have_attribute("data-revealed", "true")
    page.keyboard.press("c")
    expect(page).to_have_url(re.compile(rf"/audit/samples/{sample.pk}/$"))
    expect(page.locator(".messages")).to_contain_text("That was the last item of the sample.")

    verdicts = dict(AuditSampleItem.objects.values_list("pk", "verdict"))
    assert verdicts == {first.pk: "compliant", second.pk: "issue", third.pk: "compliant"}
    first.refresh_from_db()
    assert first.blind_intent == {
        "intent": "route_ticket",
        "arguments": {"team": "billing", "priority": "p2"},
    }
    assert TrailEntry.objects.filter(kind="audit_verdict").count() == 3

    page.goto(f"/audit/samples/{sample.pk}/report/")
    expect(page.locator("svg.report-chart circle")).to_have_count(3)  # 2 strata and overall


def test_verify_now_shows_the_result_on_the_trail_page(page, transactional_db):
    carla = UserFactory(username="carla", roles=["compliance"])
    login(page, carla)
    page.goto("/audit/trail/")
    page.wait_for_load_state()

    page.click("button[data-action=verify]")

    expect(page.locator("[data-verification-ok]")).to_have_attribute("data-verification-ok", "true")
    expect(page.locator("#verification")).to_contain_text("trail ok:")
    assert TrailVerification.objects.get().by == carla
