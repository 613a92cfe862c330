"""Kill switches in the browser: a reason, a confirmation, then the change; stop all."""

import pytest
from django.urls import reverse

from automations.models import Run
from catalog.models import Automation, GovernanceChange, SegmentPolicy
from tests.catalog.console_support import automation_fixture, login_fixture, people_fixture, stored  # noqa: F401
from tests.factories import EventFactory, RunFactory

pytestmark = pytest.mark.django_db


def url(automation) -> str:
    return reverse("automation_switches", args=[automation.slug])


def in_flight(automation, segment: str, **states: int) -> None:
    for state, count in states.items():
        for _ in range(count):
            RunFactory(event=EventFactory(automation=automation, segment=segment), state=state)


def test_asking_shows_a_confirmation_and_changes_nothing(login, automation):
    in_flight(automation, "trial", received=2, awaiting_review=3, approved=1)
    client = login("olivia")
    before = stored()

    response = client.post(
        url(automation), {"segment": "trial", "state": "off", "change_reason": "abuse wave"}
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "Switch off segment <code>trial</code> of Support triage?" in html
    assert (
        "6 runs in flight: 2 not decided will end blocked, 1 approved and not sent will end"
        " halted, 3 waiting for a person stay in review." in html
    )
    assert 'name="confirmed" value="on"' in html
    assert stored() == before


def test_confirming_switches_off_and_the_page_shows_who_why_and_when(login, automation):
    client = login("olivia")
    data = {"segment": "trial", "state": "off", "change_reason": "abuse wave"}

    response = client.post(url(automation), {**data, "confirmed": "on"})

    assert response.status_code == 303
    assert SegmentPolicy.objects.get(automation=automation, key="trial").enabled is False
    change = GovernanceChange.objects.get(kind="switch")
    assert (change.segment, change.to_value, change.by.username) == ("trial", "off", "olivia")
    page = client.get(response["Location"]).content.decode()
    assert "Segment trial: switched off." in page
    assert "abuse wave" in page and "(on → off)" in page


def test_htmx_gets_the_confirmation_alone_for_the_row(login, automation):
    client = login("olivia")

    response = client.post(
        url(automation),
        {"segment": "trial", "state": "off", "change_reason": "abuse wave"},
        headers={"HX-Request": "true", "HX-Target": "confirm-segment-trial"},
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div class="switch-confirm"')
    assert "<html" not in html
    assert "data-switch-confirm-button" in html


def test_stop_all_switches_the_whole_automation_off(login, automation):
    in_flight(automation, "", deciding=1)
    client = login("olivia")
    page = client.get(url(automation)).content.decode()
    assert "Stop all…" in page

    asked = client.post(url(automation), {"segment": "", "state": "off", "change_reason": "outage"})
    done = client.post(
        url(automation),
        {"segment": "", "state": "off", "change_reason": "outage", "confirmed": "on"},
    )

    assert "Switch off all of Support triage?" in asked.content.decode()
    assert done.status_code == 303
    assert Automation.objects.get(pk=automation.pk).enabled is False
    run = Run.objects.get(automation=automation)
    assert run.state == "deciding"  # the kill-switch guardrail stops it when it is decided


def test_a_reason_is_required_even_when_confirmed(login, automation):
    client = login("olivia")
    before = stored()

    response = client.post(
        url(automation),
        {"segment": "trial", "state": "off", "change_reason": " ", "confirmed": "on"},
    )

    assert response.status_code == 422
    assert "Reason: Say why: every change keeps its reason." in response.content.decode()
    assert stored() == before


def test_switching_off_a_segment_without_a_policy_checks_its_key(login, automation):
    client = login("olivia")
    before = stored()

    bad = client.post(
        url(automation),
        {"segment": "no way", "state": "off", "change_reason": "x", "confirmed": "on"},
    )
    good = client.post(
        url(automation),
        {"segment": "partners", "state": "off", "change_reason": "x", "confirmed": "on"},
    )

    assert bad.status_code == 422
    assert "must be lowercase letters, digits and hyphens" in bad.content.decode()
    assert good.status_code == 303
    assert SegmentPolicy.objects.get(automation=automation, key="partners").enabled is False
    assert stored() != before


def test_every_switch_shows_its_last_change_and_in_flight_count(login, automation):
    in_flight(automation, "enterprise", awaiting_review=4)
    client = login("olivia")
    client.post(
        url(automation),
        {"segment": "enterprise", "state": "off", "change_reason": "drill", "confirmed": "on"},
    )

    rows = {row.segment: row for row in client.get(url(automation)).context["rows"]}

    assert rows["enterprise"].in_flight.awaiting_review == 4
    assert rows[""].in_flight.total == 4
    assert rows["enterprise"].last_change.reason == "drill"
    assert rows["trial"].last_change is None
    assert (rows["enterprise"].on, rows[""].on) == (False, True)
