"""Segment policies: add, edit, remove, each with a reason, under the same rules as the commands."""

import pytest
from django.urls import reverse

from catalog.models import GovernanceChange, SegmentPolicy, TrailEntry
from tests.catalog.console_support import (  # noqa: F401
    automation_fixture,
    login_fixture,
    make_ready,
    people_fixture,
    reviewed,
    stored,
)

pytestmark = pytest.mark.django_db


def segments_url(automation) -> str:
    return reverse("automation_segments", args=[automation.slug])


def segment_url(automation, key: str, *, remove: bool = False) -> str:
    name = "automation_segment_remove" if remove else "automation_segment"
    return reverse(name, args=[automation.slug, key])


def test_adding_a_policy_switched_off_records_the_switch_with_its_reason(login, automation):
    client = login("olivia")

    response = client.post(
        segments_url(automation),
        {"key": "partners", "mode": "suggest", "change_reason": "pilot with partners"},
    )

    assert response.status_code == 303
    policy = SegmentPolicy.objects.get(automation=automation, key="partners")
    assert (policy.enabled, policy.mode) == (False, "suggest")
    changes = GovernanceChange.objects.filter(segment="partners").order_by("pk")
    assert [(c.kind, c.to_value, c.reason) for c in changes] == [
        ("switch", "off", "pilot with partners"),
        ("mode", "suggest", "pilot with partners"),
    ]
    assert policy.history.first().history_change_reason == "pilot with partners"
    listed = client.get(segments_url(automation)).content.decode()
    assert 'data-segment="partners"' in listed


def test_a_key_the_loader_refuses_is_refused_next_to_it(login, automation):
    client = login("olivia")
    before = stored()

    bad = client.post(
        segments_url(automation), {"key": "Big Customers", "enabled": "on", "change_reason": "x"}
    )
    twice = client.post(
        segments_url(automation), {"key": "trial", "enabled": "on", "change_reason": "x"}
    )

    assert bad.status_code == twice.status_code == 422
    assert bad.context["form"].errors["key"] == ["must be lowercase letters, digits and hyphens"]
    assert twice.context["form"].errors["key"] == ['duplicate segment key "trial"']
    assert stored() == before


def test_adding_an_autonomous_policy_needs_the_segments_evidence(login, automation):
    client = login("olivia")
    before = stored()

    response = client.post(
        segments_url(automation),
        {"key": "vip", "enabled": "on", "mode": "autonomous", "change_reason": "go"},
    )

    assert response.status_code == 409
    errors = response.context["form"].non_field_errors()
    assert "evidence: 0 reviewed cases in the last 14 days, 200 needed" in errors
    assert stored() == before


def test_editing_switches_and_modes_through_the_governance_services(login, automation):
    client = login("olivia")

    response = client.post(
        segment_url(automation, "enterprise"),
        {"mode": "suggest", "change_reason": "incident 7: hold enterprise"},
    )

    assert response.status_code == 303
    policy = SegmentPolicy.objects.get(automation=automation, key="enterprise")
    assert (policy.enabled, policy.mode) == (False, "suggest")
    kinds = GovernanceChange.objects.filter(segment="enterprise").values_list("kind", "to_value")
    assert set(kinds) == {("switch", "off"), ("mode", "suggest")}
    assert TrailEntry.objects.filter(kind="switch", data__segment="enterprise").exists()


def test_a_reason_is_required_to_edit_or_remove(login, automation):
    client = login("olivia")
    before = stored()

    edited = client.post(segment_url(automation, "enterprise"), {"mode": "shadow"})
    removed = client.post(segment_url(automation, "enterprise", remove=True), {})

    assert edited.status_code == removed.status_code == 422
    assert edited.context["form"].errors["change_reason"] == [
        "Say why: every change keeps its reason."
    ]
    assert removed.context["remove_form"].errors["change_reason"]
    assert stored() == before


def test_following_an_autonomous_automation_is_no_way_round_the_evidence(login, automation):
    automation.mode = "autonomous"
    automation.save()
    client = login("olivia")
    before = stored()

    inherit = client.post(
        segment_url(automation, "enterprise"), {"enabled": "on", "change_reason": "simplify"}
    )
    remove = client.post(
        segment_url(automation, "enterprise", remove=True), {"remove-change_reason": "tidy"}
    )

    assert inherit.status_code == remove.status_code == 409
    assert "promote the segment to autonomous first" in inherit.content.decode()
    assert "promote the segment to autonomous first" in remove.content.decode()
    assert stored() == before


def test_removing_a_policy_that_is_off_switches_the_segment_on_with_the_reason(login, automation):
    client = login("olivia")
    SegmentPolicy.objects.filter(automation=automation, key="trial").update(enabled=False)

    response = client.post(
        segment_url(automation, "trial", remove=True), {"remove-change_reason": "trial is over"}
    )

    assert response.status_code == 303
    assert not SegmentPolicy.objects.filter(automation=automation, key="trial").exists()
    change = GovernanceChange.objects.get(segment="trial")
    assert (change.kind, change.to_value, change.reason) == ("switch", "on", "trial is over")
    deleted = SegmentPolicy.history.filter(key="trial").first()
    assert (deleted.history_type, deleted.history_change_reason) == ("-", "trial is over")
    entry = client.get(reverse("automation_history", args=[automation.slug])).context["history"][0]
    assert (entry.subject, entry.kind) == ("segment trial", "deleted")
    assert ("key", "trial", "∅") in entry.changes


def test_an_admin_may_add_an_autonomous_policy_without_evidence_marked_as_override(
    login, automation
):
    client = login("ada")

    response = client.post(
        segments_url(automation),
        {
            "key": "vip",
            "enabled": "on",
            "mode": "autonomous",
            "override_evidence": "on",
            "change_reason": "board decision",
        },
    )

    assert response.status_code == 303
    change = GovernanceChange.objects.get(segment="vip", kind="mode")
    assert (change.override, change.by.username) == (True, "ada")
