"""Logging in and finding an automation in the catalog, in a real browser."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import login
from tests.factories import AutomationFactory

pytestmark = pytest.mark.browser


def test_reviewer_lands_on_the_queues_and_opens_their_automation_from_the_catalog(
    page, reviewer_setup
):
    setup = reviewer_setup(tasks=2)
    AutomationFactory(slug="not-mine", name="Not Mine")

    login(page, setup.reviewer, setup.password)

    expect(page).to_have_url(re.compile(r"/review/$"))
    expect(page.locator("h1")).to_have_text("Review queues")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Catalog").click()
    expect(page).to_have_url(re.compile(r"/$"))
    table = page.locator("table.catalog")
    expect(table.get_by_role("link", name="Support Triage")).to_be_visible()
    expect(table.get_by_role("link", name="Not Mine")).to_have_count(0)
    expect(page.locator("header .username")).to_have_text("ravi")

    table.get_by_role("link", name="Support Triage").click()

    expect(page).to_have_url(re.compile(r"/automations/support-triage/$"))
    expect(page.locator("h1")).to_contain_text("Support Triage")


def test_wrong_password_stays_on_the_login_page_with_an_error(page, reviewer_setup):
    setup = reviewer_setup(tasks=0)

    page.goto("/accounts/login/")
    page.fill("input[name=username]", setup.reviewer.username)
    page.fill("input[name=password]", "not-the-password")
    page.click("button[type=submit]")

    expect(page.locator(".form-errors")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))


def test_anonymous_visitor_is_sent_to_log_in(page, live_server):
    page.goto("/review/")

    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/review/"))


def test_locked_out_person_is_told_on_the_login_page_until_when(page, reviewer_setup, settings):
    setup = reviewer_setup(tasks=0)

    def submit(password: str):
        page.fill("input[name=username]", setup.reviewer.username)
        page.fill("input[name=password]", password)
        with page.expect_navigation() as navigation:
            page.click("button[type=submit]")
        return navigation.value

    page.goto("/accounts/login/")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        submit("not-the-password")
    response = submit(setup.password)

    assert response.status == 429
    alert = page.locator(".form-errors[role=alert]")
    expect(alert).to_contain_text("Too many failed log-ins")
    expect(alert).to_contain_text(
        # Near midnight the message names the day too.
        re.compile(r"locked until (\d{4}-\d\d-\d\d )?\d\d:\d\d UTC \(\d+ minutes from now\)")
    )
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    expect(page.locator("input[name=username]")).to_have_value(setup.reviewer.username)
    page.goto("/review/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/review/"))
