"""Every console page works under the strict Content-Security-Policy, in a real browser:
nothing refused, no console error, and the header on every document."""

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from automations.models import ReviewTask
from tests.browser.conftest import login
from tests.factories import UserFactory
from tests.security.test_content_security_policy import EXPECTED

pytestmark = pytest.mark.browser


def policy(header: str | None) -> dict[str, list[str]]:
    assert header, "a document without a Content-Security-Policy header"
    return {name: sources for name, *sources in (part.split() for part in header.split(";"))}


def assert_clean(record) -> None:
    assert record.violations == []
    assert record.console_errors == []
    assert record.documents, "no document loaded"
    for url, header in record.documents:
        assert policy(header) == EXPECTED, url


def panel(page):
    return page.locator("#review-panel")


def test_review_console_under_the_policy(page, page_records, reviewer_setup):
    setup = reviewer_setup(tasks=4)
    first, second, third, fourth = setup.tasks

    login(page, setup.reviewer, setup.password)  # the login page, then the review queues
    page.goto("/")
    expect(page.locator("table.catalog")).to_be_visible()
    page.goto(f"/automations/{setup.automation.slug}/")
    expect(page.locator("h1")).to_contain_text(setup.automation.name)
    page.goto("/review/")
    page.wait_for_load_state()

    page.keyboard.press("n")
    expect(panel(page)).to_have_attribute("data-task-id", str(first.pk))
    page.wait_for_load_state()
    page.keyboard.press("a")  # approve as proposed: the next task swaps in
    expect(panel(page)).to_have_attribute("data-task-id", str(second.pk))

    page.keyboard.press("e")
    expect(page.locator("#arg-team")).to_be_focused()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Escape")
    page.keyboard.press("a")  # approve as edited
    expect(panel(page)).to_have_attribute("data-task-id", str(third.pk))

    page.keyboard.press("r")
    page.keyboard.type("Dup")
    page.keyboard.press("Enter")  # reject
    expect(panel(page)).to_have_attribute("data-task-id", str(fourth.pk))
    expect(page.locator("#review-status")).to_contain_text(f"Rejected task {third.pk}")

    outcomes = dict(
        ReviewTask.objects.filter(pk__in=[first.pk, second.pk, third.pk]).values_list(
            "pk", "outcome"
        )
    )
    assert outcomes == {first.pk: "accepted", second.pk: "edited", third.pk: "rejected"}
    loaded = {urlsplit(url).path for url, _ in page_records[page].documents}
    slug = setup.automation.slug
    assert {"/accounts/login/", "/", f"/automations/{slug}/", "/review/"} <= loaded
    assert_clean(page_records[page])


def test_admin_changelist_and_change_form_under_the_policy(page, page_records, reviewer_setup):
    setup = reviewer_setup(tasks=1)
    ada = UserFactory(username="ada", roles=["admin"], is_staff=True)

    page.goto("/admin/login/")
    page.fill("input[name=username]", ada.username)
    page.fill("input[name=password]", setup.password)
    with page.expect_navigation():
        page.press("input[name=password]", "Enter")
    expect(page).to_have_url(re.compile(r"/admin/$"))

    page.goto("/admin/catalog/automation/")
    expect(page.locator("#result_list")).to_contain_text(setup.automation.slug)
    page.locator("#action-toggle").check()  # the changelist's own script
    expect(page.locator(".action-counter")).to_contain_text("1 of 1 selected")

    page.goto(f"/admin/catalog/automation/{setup.automation.pk}/change/")
    expect(page.locator("#automation_form")).to_be_visible()
    expect(page.locator("#id_reviewers_from")).to_be_visible()  # filter_horizontal's script ran
    page.locator("#intents-group .add-row a").click()  # inlines' script adds a form
    expect(page.locator("#intents-group .dynamic-intents")).to_have_count(2)

    assert_clean(page_records[page])


def test_the_browser_enforces_the_policy_and_the_recorder_sees_it(page, page_records, live_server):
    page.goto("/accounts/login/")

    page.evaluate(
        "document.head.insertAdjacentHTML('beforeend', '<style>body { color: red; }</style>')"
    )

    expect(page.locator("body")).not_to_have_css("color", "rgb(255, 0, 0)")
    record = page_records[page]
    page.wait_for_function("true")  # let the violation report arrive
    assert any("style-src" in text for text in record.violations), record.violations
    record.violations.clear()  # seen on purpose: not a failure of this test
