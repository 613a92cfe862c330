"""The modes page: promotion with evidence, refused without, admin overrides, one-click demotion."""

import re

import pytest
from django.urls import reverse

from catalog.models import Automation, GovernanceChange, SegmentPolicy, TrailEntry
from tests.catalog.console_support import (  # noqa: F401
    automation_fixture,
    login_fixture,
    make_ready,
    people_fixture,
    reviewed,
    stored,
)

pytestmark = pytest.mark.django_db


def url(automation) -> str:
    return reverse("automation_modes", args=[automation.slug])


def promote(client, automation, *, segment="", **extra):
    data = {"segment": segment, "mode": "autonomous", "change_reason": "ready", **extra}
    return client.post(url(automation), data)


def test_promotion_without_evidence_is_refused_and_the_page_says_what_is_missing(login, automation):
    client = login("olivia")
    before = stored()

    response = promote(client, automation)

    assert response.status_code == 409
    html = response.content.decode()
    refused = re.search(r"<div class=\"form-errors refused\".*?</div>", html, re.DOTALL)[0]
    assert "evidence: 0 reviewed cases in the last 14 days, 200 needed" in refused
    assert "readiness: success metrics written" in refused
    assert "readiness: kill switch exercised in the last 30 days" in refused
    assert 'value="ready"' in html  # the reason typed is kept
    assert stored() == before


def test_promotion_with_evidence_and_a_complete_checklist_goes_through(login, automation, people):
    make_ready(automation, people["olivia"])
    reviewed(automation, 200, overridden=3)
    client = login("olivia")
    page = client.get(url(automation))
    row = page.context["rows"][0]
    assert (row.evidence.reviewed, row.evidence.missing()) == (200, [])
    assert all(item.done for item in page.context["readiness"])
    html = page.content.decode()
    assert "The evidence suffices." in html
    assert 'class="evidence-bar within"' in html

    response = promote(client, automation)

    assert response.status_code == 303
    assert Automation.objects.get(pk=automation.pk).mode == "autonomous"
    change = GovernanceChange.objects.get(kind="mode")
    assert (change.from_value, change.to_value, change.override) == ("approve", "autonomous", False)
    followed = client.get(response["Location"])
    assert "Support triage: mode approve → autonomous." in followed.content.decode()


def test_an_override_rate_too_high_is_refused_with_its_upper_bound(login, automation, people):
    make_ready(automation, people["olivia"])
    reviewed(automation, 200, overridden=4)
    client = login("olivia")

    response = promote(client, automation)

    assert response.status_code == 409
    assert "the override rate&#x27;s upper bound is 5.0% (4 of 200)" in response.content.decode()
    assert 'class="evidence-bar beyond"' in response.content.decode()
    assert Automation.objects.get(pk=automation.pk).mode == "approve"


def test_only_admins_see_the_override_and_their_override_is_recorded_as_such(login, automation):
    owner_page = login("olivia").get(url(automation)).content.decode()
    assert 'name="override_evidence"' not in owner_page
    refused = promote(login("olivia"), automation, override_evidence="on")
    assert refused.status_code == 409
    assert "only an admin may promote without the evidence" in refused.content.decode()
    client = login("ada")
    assert 'name="override_evidence"' in client.get(url(automation)).content.decode()

    response = promote(client, automation, override_evidence="on", change_reason="board said so")

    assert response.status_code == 303
    change = GovernanceChange.objects.get(kind="mode")
    assert (change.override, change.by.username, change.reason) == (True, "ada", "board said so")
    assert TrailEntry.objects.get(kind="mode").data["override"] is True
    history = client.get(reverse("automation_history", args=[automation.slug]))
    entry = history.context["history"][0]
    assert (entry.override, entry.reason) == (True, "board said so")
    assert ("mode", "approve", "autonomous") in entry.changes
    assert "evidence overridden" in history.content.decode()


def test_demotion_is_one_click_and_never_refused(login, automation):
    Automation.objects.filter(pk=automation.pk).update(mode="autonomous")
    client = login("olivia")
    html = client.get(url(automation)).content.decode()
    assert 'name="mode" value="approve"' in html and "Demote to approve" in html

    response = client.post(
        url(automation), {"segment": "", "mode": "approve", "change_reason": "odd replies"}
    )

    assert response.status_code == 303
    assert Automation.objects.get(pk=automation.pk).mode == "approve"


def test_a_segment_is_promoted_on_its_own_evidence(login, automation, people):
    make_ready(automation, people["olivia"])
    reviewed(automation, 200, segment="enterprise")
    client = login("olivia")
    rows = {row.segment: row for row in client.get(url(automation)).context["rows"]}
    assert rows["enterprise"].evidence.reviewed == 200
    assert rows["trial"].evidence.reviewed == 0

    refused = promote(client, automation, segment="trial")
    promoted = promote(client, automation, segment="enterprise")

    assert refused.status_code == 409
    assert promoted.status_code == 303
    modes = dict(SegmentPolicy.objects.filter(automation=automation).values_list("key", "mode"))
    assert modes == {"enterprise": "autonomous", "trial": "", "drill": ""}


def test_a_mode_change_needs_a_reason(login, automation):
    client = login("olivia")
    before = stored()

    response = client.post(url(automation), {"segment": "", "mode": "shadow"})

    assert response.status_code == 422
    assert "Say why: every change keeps its reason." in response.content.decode()
    assert stored() == before


def test_another_segment_gets_a_policy_only_with_a_key_the_loader_accepts(login, automation):
    client = login("olivia")
    before = stored()

    bad = client.post(
        url(automation), {"segment": "Not OK", "mode": "shadow", "change_reason": "x"}
    )
    good = client.post(
        url(automation), {"segment": "beta", "mode": "shadow", "change_reason": "beta in shadow"}
    )

    assert bad.status_code == 422
    assert "must be lowercase letters, digits and hyphens" in bad.content.decode()
    assert good.status_code == 303
    assert SegmentPolicy.objects.get(automation=automation, key="beta").mode == "shadow"
    assert before != stored()
