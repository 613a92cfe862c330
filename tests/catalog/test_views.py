"""The catalog list and the automation page: who sees what, what is shown, in bounded queries."""

import pytest
from django.urls import reverse

from tests.factories import (
    AutomationFactory,
    DoNotAutomateRuleFactory,
    IntentFactory,
    RunFactory,
    SegmentPolicyFactory,
    UserFactory,
)

SECRET_VALUE = "sk-h3-this-must-never-be-shown-0f9a"
WEBHOOK_SECRET_VALUE = "whsec_aDNuZXZlci1zaG93LXRoaXM="


@pytest.fixture
def two_automations(reviewer, owner):
    """A is worked by `reviewer` and owned by `owner`; B belongs to someone else."""
    a = AutomationFactory(slug="support-triage", name="Support triage", owner=owner)
    a.reviewers.add(reviewer)
    b = AutomationFactory(slug="refunds", name="Refund approvals")
    return a, b


def catalog_slugs(client):
    response = client.get(reverse("home"))
    assert response.status_code == 200
    return {a.slug for a in response.context["automations"]}


def test_reviewer_sees_only_the_automations_they_review(client, reviewer, two_automations):
    client.force_login(reviewer)

    assert catalog_slugs(client) == {"support-triage"}


def test_owner_sees_only_their_own(client, owner, two_automations):
    client.force_login(owner)

    assert catalog_slugs(client) == {"support-triage"}


@pytest.mark.parametrize("who", ["compliance", "admin_user"])
def test_compliance_and_admin_see_every_automation(client, request, who, two_automations):
    client.force_login(request.getfixturevalue(who))

    assert catalog_slugs(client) == {"support-triage", "refunds"}


def test_user_without_role_gets_an_explanation(client, two_automations):
    client.force_login(UserFactory(username="nobody"))

    response = client.get(reverse("home"))

    assert list(response.context["automations"]) == []
    html = response.content.decode()
    assert "Your account has no role yet" in html
    assert "Support triage" not in html


def test_reviewer_assigned_to_nothing_sees_an_empty_catalog(client, reviewer):
    AutomationFactory(slug="refunds")
    client.force_login(reviewer)

    html = client.get(reverse("home")).content.decode()

    assert "No automations to show" in html
    assert "refunds" not in html


def test_catalog_row_shows_owner_mode_risk_and_counts(client, admin_user, owner):
    automation = AutomationFactory(
        slug="support-triage",
        name="Support triage",
        owner=owner,
        mode="approve",
        risk_tier="high",
        data_classification="restricted",
    )
    RunFactory.create_batch(2, event__automation=automation, state="awaiting_review")
    RunFactory(event__automation=automation, state="executed")
    client.force_login(admin_user)

    response = client.get(reverse("home"))

    row = response.context["automations"][0]
    assert (row.awaiting_review, row.runs_today) == (2, 3)
    html = response.content.decode()
    for text in ["Support triage", "support-triage", "olivia", "approve", "high", "restricted"]:
        assert text in html


def test_status_says_live_shadow_or_segments_off(client, admin_user):
    live = AutomationFactory(slug="live-one", mode="autonomous")
    shadow = AutomationFactory(slug="shadow-one", mode="shadow")
    partly_off = AutomationFactory(slug="partly-off", mode="approve")
    SegmentPolicyFactory(automation=partly_off, key="enterprise", enabled=False)
    SegmentPolicyFactory(automation=partly_off, key="smb", enabled=True)
    SegmentPolicyFactory(automation=partly_off, key="trial", enabled=True)
    client.force_login(admin_user)

    rows = {a.slug: a for a in client.get(reverse("home")).context["automations"]}

    assert [label for label, _ in rows[live.slug].status_badges] == ["live"]
    assert [label for label, _ in rows[shadow.slug].status_badges] == ["shadow only"]
    assert [label for label, _ in rows[partly_off.slug].status_badges] == [
        "live",
        "1 of 3 segments off",
    ]


def _catalog_of(size, owner, reviewer):
    for n in range(size):
        automation = AutomationFactory(slug=f"automation-q{n}", owner=owner, reviewers=[reviewer])
        SegmentPolicyFactory(automation=automation, key="enterprise", enabled=n % 2 == 0)
        RunFactory(event__automation=automation, state="awaiting_review")


@pytest.mark.parametrize("size", [1, 15])
@pytest.mark.parametrize("who", ["reviewer", "owner", "admin_user"])
def test_catalog_query_count_does_not_grow_with_the_catalog(
    client, request, django_assert_max_num_queries, owner, reviewer, size, who
):
    _catalog_of(size, owner, reviewer)
    client.force_login(request.getfixturevalue(who))

    # Session, user, roles, the annotated list: the same for 1 or 15 automations.
    with django_assert_max_num_queries(4):
        response = client.get(reverse("home"))

    assert len(response.context["automations"]) == size


@pytest.fixture
def configured(owner, reviewer, monkeypatch):
    """An automation with intents, segments and rules, whose secrets live in the environment."""
    monkeypatch.setenv("H3_TEST_OPENAI_KEY", SECRET_VALUE)
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", WEBHOOK_SECRET_VALUE)
    automation = AutomationFactory(
        slug="support-triage",
        name="Support triage",
        owner=owner,
        reviewers=[reviewer],
        purpose="Route tickets and draft first replies.",
        rollback_plan="Set mode to suggest; agents route by hand.",
        provider="openai",
        model="gpt-4.1-mini",
        base_url="http://127.0.0.1:8001/v1",
        api_key_env="H3_TEST_OPENAI_KEY",
        min_confidence=0.85,
    )
    IntentFactory(automation=automation, name="route_ticket", risk="low")
    IntentFactory(automation=automation, name="issue_refund", risk="high", position=1)
    SegmentPolicyFactory(automation=automation, key="enterprise", enabled=True, mode="approve")
    SegmentPolicyFactory(automation=automation, key="trial", enabled=False, position=1)
    DoNotAutomateRuleFactory(automation=automation, name="legal threat", effect="block")
    return automation


def detail_url(automation):
    return reverse("automation_detail", args=[automation.slug])


def test_detail_shows_settings_intents_segments_and_rules(client, reviewer, configured):
    client.force_login(reviewer)

    response = client.get(detail_url(configured))

    assert response.status_code == 200
    html = response.content.decode()
    for text in [
        "Route tickets and draft first replies.",
        "Set mode to suggest; agents route by hand.",
        "olivia",  # owner
        "ravi",  # reviewer
        "gpt-4.1-mini",
        "http://127.0.0.1:8001/v1",
        "0.85",
        "route_ticket",
        "issue_refund",
        "high risk",
        "http://127.0.0.1:9000/hooks/route",
        "&quot;additionalProperties&quot;: false",  # the schema, pretty-printed
        "enterprise",
        "off (kill switch)",
        "legal threat",
        "payload.body",
    ]:
        assert text in html, text


def test_detail_names_secret_variables_but_never_shows_their_values(client, admin_user, configured):
    client.force_login(admin_user)

    html = client.get(detail_url(configured)).content.decode()

    assert "H3_TEST_OPENAI_KEY" in html
    assert "TEST_WEBHOOK_SECRET" in html
    assert SECRET_VALUE not in html
    assert WEBHOOK_SECRET_VALUE not in html


def test_detail_is_404_for_a_reviewer_not_assigned(client, configured):
    stranger = UserFactory(username="rosa", roles=["reviewer"])
    client.force_login(stranger)

    assert client.get(detail_url(configured)).status_code == 404


def test_detail_is_404_for_another_owner_and_for_no_role(client, configured):
    for person in [UserFactory(username="otto", roles=["owner"]), UserFactory(username="nobody")]:
        client.force_login(person)
        assert client.get(detail_url(configured)).status_code == 404


def test_detail_of_unknown_slug_is_404(client, admin_user):
    client.force_login(admin_user)

    assert client.get(reverse("automation_detail", args=["nope"])).status_code == 404


def test_detail_requires_login(client, configured):
    response = client.get(detail_url(configured))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_history_shows_who_why_and_what_changed(client, compliance, admin_user, configured):
    configured._change_reason = "raise the bar after the March audit"
    configured.min_confidence = 0.9
    configured.save()
    segment = configured.segments.get(key="enterprise")
    segment._change_reason = "incident 42: stop enterprise actions"
    segment.enabled = False
    segment.save()
    client.force_login(compliance)

    response = client.get(detail_url(configured))

    history = response.context["history"]
    assert history[0].subject == "segment enterprise"
    assert history[0].reason == "incident 42: stop enterprise actions"
    assert ("enabled", "True", "False") in history[0].changes
    assert history[1].reason == "raise the bar after the March audit"
    assert ("min_confidence", "0.85", "0.9") in history[1].changes
    html = response.content.decode()
    assert "raise the bar after the March audit" in html
    assert "incident 42: stop enterprise actions" in html


def test_history_records_reviewer_and_owner_changes_by_name(client, admin_user, configured):
    rosa = UserFactory(username="rosa", roles=["reviewer"])
    configured._change_reason = "rosa joins the queue"
    configured.reviewers.add(rosa)
    configured.owner = UserFactory(username="omar", roles=["owner"])
    configured._change_reason = "omar takes over"
    configured.save()
    client.force_login(admin_user)

    history = client.get(detail_url(configured)).context["history"]

    assert ("owner", "olivia", "omar") in history[0].changes
    assert ("reviewers", "ravi", "ravi, rosa") in history[1].changes


def test_history_keeps_the_last_twenty_changes(client, admin_user, configured):
    for n in range(25):
        configured.latency_budget_ms = 1000 + n
        configured._change_reason = f"tune {n}"
        configured.save()
    client.force_login(admin_user)

    history = client.get(detail_url(configured)).context["history"]

    assert len(history) == 20
    assert history[0].reason == "tune 24"


@pytest.mark.parametrize("changes", [1, 25])
def test_detail_query_count_does_not_grow_with_history(
    client, admin_user, configured, django_assert_max_num_queries, changes
):
    for n in range(changes):
        intent = configured.intents.first()
        intent.description = f"version {n}"
        intent.save()
        configured.min_confidence = 0.5 + n / 100
        configured.save()
    client.force_login(admin_user)

    # Session, user, roles; automation and 4 prefetches; 2 per history model; reviewer snapshots.
    with django_assert_max_num_queries(17):
        response = client.get(detail_url(configured))

    assert response.status_code == 200
