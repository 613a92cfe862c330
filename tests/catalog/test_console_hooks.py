"""The console pages load the what-if preview, and the automation page shows the diagram."""

import pytest
from django.urls import reverse

from tests.catalog.console_support import (  # noqa: F401
    automation_fixture,
    login_fixture,
    people_fixture,
)

pytestmark = pytest.mark.django_db


def page(client, name: str, automation) -> str:
    response = client.get(reverse(name, args=[automation.slug]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_automation_page_shows_the_diagram(login, automation):
    html = page(login("olivia"), "automation_detail", automation)

    assert '<img src="/automations/support-triage/diagram.svg"' in html


def test_the_mode_and_threshold_forms_load_the_what_if_fragment(login, automation):
    client = login("olivia")

    modes = page(client, "automation_modes", automation)
    settings = page(client, "automation_settings", automation)

    assert 'hx-get="/automations/support-triage/what-if/" hx-trigger="change"' in modes
    assert 'name="segment" value="enterprise"' in modes
    assert 'hx-get="/automations/support-triage/what-if/"' in settings
    assert 'hx-include="#id_min_confidence"' in settings


def test_the_what_if_fragment_answers_the_threshold_form(login, automation):
    client = login("olivia")
    url = reverse("automation_whatif", args=[automation.slug])

    good = client.get(
        url, {"min_confidence": "0.9", "mode": automation.mode}, HTTP_HX_REQUEST="true"
    )
    bad = client.get(url, {"min_confidence": "2"}, HTTP_HX_REQUEST="true")

    assert good.status_code == 200
    assert bad.status_code == 400 and b"min_confidence" in bad.content
