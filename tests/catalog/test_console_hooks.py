"""The places left for the what-if preview and the diagram (served by another branch)."""

import pytest
from django.http import HttpResponse
from django.urls import path, reverse

from reviewapp.urls import urlpatterns as project_urlpatterns
from tests.catalog.console_support import (  # noqa: F401
    automation_fixture,
    login_fixture,
    people_fixture,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


def whatif(request, slug):
    return HttpResponse("<p>what if</p>")


def diagram(request, slug):
    return HttpResponse("<svg xmlns='http://www.w3.org/2000/svg'/>", content_type="image/svg+xml")


# The two names the governance-whatif branch provides, as the brief fixes them.
urlpatterns = [
    path("automations/<slug:slug>/what-if/", whatif, name="automation_whatif"),
    path("automations/<slug:slug>/diagram.svg", diagram, name="automation_diagram"),
    *project_urlpatterns,
]


def page(client, name: str, automation) -> str:
    response = client.get(reverse(name, args=[automation.slug]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_automation_page_shows_the_diagram(login, automation):
    html = page(login("olivia"), "automation_detail", automation)

    assert '<img class="diagram" src="/automations/support-triage/diagram.svg"' in html


def test_the_mode_and_threshold_forms_load_the_what_if_fragment(login, automation):
    client = login("olivia")

    modes = page(client, "automation_modes", automation)
    settings = page(client, "automation_settings", automation)

    assert 'hx-get="/automations/support-triage/what-if/" hx-trigger="change"' in modes
    assert 'name="segment" value="enterprise"' in modes
    assert 'hx-get="/automations/support-triage/what-if/"' in settings
    assert 'hx-include="#id_min_confidence"' in settings
