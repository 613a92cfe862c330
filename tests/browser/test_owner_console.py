"""The owner console in a real browser: a kill switch with its confirmation, a promotion."""

import re

import pytest
from playwright.sync_api import expect

from catalog.loader import load_catalog
from catalog.models import Automation, GovernanceChange, SegmentPolicy
from tests.browser.conftest import login
from tests.catalog.console_support import make_ready, reviewed, support_triage
from tests.factories import UserFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def console(transactional_db):
    """Olivia owns support-triage (approve mode, segments enterprise and trial)."""
    olivia = UserFactory(username="olivia", roles=["owner"])
    UserFactory(username="ravi", roles=["reviewer"])
    load_catalog({"automations": [support_triage()]}, source="test.yaml")
    return olivia, Automation.objects.get(slug="support-triage")


def test_owner_switches_a_segment_off_only_after_confirming(page, console):
    olivia, automation = console
    login(page, olivia)
    page.goto(f"/automations/{automation.slug}/switches/")
    row = page.locator("#segment-trial")
    expect(row.locator("[data-switch]")).to_have_text("on")

    row.get_by_role("button", name="Switch off…").click()  # no reason yet
    expect(row.locator("[data-form-errors]")).to_contain_text(
        "Reason: Say why: every change keeps its reason."
    )
    expect(row.get_by_label("Reason")).to_be_focused()

    row.get_by_label("Reason").fill("abuse wave from trial sign-ups")
    row.get_by_role("button", name="Switch off…").click()

    confirm = row.locator("[data-switch-confirm]")
    expect(confirm).to_contain_text("Switch off segment trial of Support triage?")
    expect(confirm).to_contain_text("abuse wave from trial sign-ups")
    expect(confirm.get_by_role("button", name="Yes, switch off")).to_be_focused()
    assert SegmentPolicy.objects.get(automation=automation, key="trial").enabled is True

    page.keyboard.press("Escape")  # second thoughts: nothing happens
    expect(confirm).to_have_count(0)
    expect(row.get_by_label("Reason")).to_be_focused()
    assert not GovernanceChange.objects.exists()

    row.get_by_role("button", name="Switch off…").click()
    expect(row.get_by_role("button", name="Yes, switch off")).to_be_focused()
    with page.expect_navigation():
        page.keyboard.press("Enter")

    expect(page.locator(".messages")).to_contain_text("Segment trial: switched off.")
    expect(page.locator("#segment-trial [data-switch]")).to_have_text("off")
    expect(page.locator("#segment-trial")).to_contain_text("abuse wave from trial sign-ups")
    assert SegmentPolicy.objects.get(automation=automation, key="trial").enabled is False
    change = GovernanceChange.objects.get()
    assert (change.segment, change.to_value, change.by) == ("trial", "off", olivia)


def test_owner_promotes_to_autonomous_with_the_evidence_on_the_page(page, console):
    olivia, automation = console
    make_ready(automation, olivia)
    reviewed(automation, 200, overridden=2)
    login(page, olivia)
    page.goto(f"/automations/{automation.slug}/")
    page.get_by_role("navigation", name="Automation").get_by_role("link", name="Modes").click()

    row = page.locator("#automation")
    expect(row.locator("[data-reviewed]")).to_have_text("200")
    expect(row.locator("[data-rate]")).to_have_text("1.0%")
    expect(row.locator("svg.evidence-bar.within")).to_be_visible()
    expect(row).to_contain_text("The evidence suffices.")
    expect(page.locator("#readiness .missing")).to_have_count(0)

    row.get_by_label("Reason").fill("200 cases, 1 % overridden: the pilot goes live")
    row.get_by_role("button", name="Promote to autonomous").click()

    expect(page.locator(".messages")).to_contain_text("mode approve → autonomous")
    expect(page.locator("#automation [data-mode]")).to_have_text("autonomous")
    assert Automation.objects.get(pk=automation.pk).mode == "autonomous"
    page.get_by_role("link", name="History").click()
    expect(page).to_have_url(re.compile(r"/history/$"))
    expect(page.locator("table.history tbody tr").first).to_contain_text("the pilot goes live")


def test_a_promotion_without_evidence_is_refused_on_the_page(page, console):
    olivia, automation = console
    login(page, olivia)
    page.goto(f"/automations/{automation.slug}/modes/")
    row = page.locator("#segment-enterprise")

    row.get_by_label("Reason").fill("looks fine")
    row.get_by_role("button", name="Promote to autonomous").click()

    refused = page.locator("#segment-enterprise [data-refused]")
    expect(refused).to_contain_text("evidence: 0 reviewed cases in the last 14 days, 200 needed")
    expect(refused).to_contain_text("readiness: an owner on call")
    assert SegmentPolicy.objects.get(automation=automation, key="enterprise").mode == "approve"
