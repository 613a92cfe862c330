"""The history page: every change of the automation and its children, field by field."""

import pytest
from django.urls import reverse

from catalog.governance.changes import mode_set, switch_set
from catalog.models import SegmentPolicy
from tests.catalog.console_support import automation_fixture, login_fixture, people_fixture  # noqa: F401

pytestmark = pytest.mark.django_db


def history(client, automation):
    return client.get(reverse("automation_history", args=[automation.slug]))


def test_each_change_shows_who_when_why_and_every_field_before_and_after(login, automation, people):
    olivia = people["olivia"]
    switch_set(automation=automation, on=False, reason="abuse wave", by=olivia, segment="trial")
    mode_set(automation=automation, mode="shadow", reason="bad week", by=olivia)
    policy = SegmentPolicy(automation=automation, key="beta", mode="suggest")
    policy._change_reason, policy._history_user = "beta starts", olivia
    policy.save()

    response = history(login("carla"), automation)

    assert response.status_code == 200
    entries = response.context["history"]
    summary = [(e.subject, e.kind, e.who, e.reason, e.changes) for e in entries[:3]]
    assert summary == [
        ("segment beta", "created", "olivia", "beta starts",
         [("key", "∅", "beta"), ("enabled", "∅", "True"), ("mode", "∅", "suggest")]),
        ("automation", "changed", "olivia", "bad week", [("mode", "approve", "shadow")]),
        ("segment trial", "changed", "olivia", "abuse wave", [("enabled", "True", "False")]),
    ]  # fmt: skip
    html = response.content.decode()
    assert "<del>approve</del> → <ins>shadow</ins>" in html
    assert "evidence overridden" not in html


def test_the_page_reaches_further_back_than_the_automation_page(login, automation, people):
    for n in range(30):
        automation.latency_budget_ms = 1000 + n
        automation._change_reason = f"tune {n}"
        automation.save()
    client = login("olivia")

    full = history(client, automation).context["history"]
    short = client.get(reverse("automation_detail", args=[automation.slug])).context["history"]

    assert len(short) == 20
    assert [e.reason for e in full[:30]] == [f"tune {n}" for n in reversed(range(30))]


@pytest.mark.parametrize("changes", [1, 40])
def test_the_history_page_reads_in_bounded_queries(
    login, automation, people, django_assert_max_num_queries, changes
):
    for n in range(changes):
        mode_set(automation=automation, mode=["shadow", "approve"][n % 2], reason=f"r{n}", by=None)
    client = login("ada")

    # Session, user, roles; the automation and its segments; 2 per history model,
    # reviewer snapshots, overrides.
    with django_assert_max_num_queries(15):
        response = history(client, automation)

    assert response.status_code == 200
