"""The settings page: each change with a reason, the loader's validation, nothing saved on error."""

import json

import pytest
from django.urls import reverse

from catalog.models import Automation, TrailEntry
from tests.catalog.console_support import automation_fixture, login_fixture, people_fixture, stored  # noqa: F401
from tests.factories import BILLING_RULE, UserFactory

pytestmark = pytest.mark.django_db


def url(automation) -> str:
    return reverse("automation_settings", args=[automation.slug])


def form_data(client, automation, **changes) -> dict:
    """The form as the page renders it, with `changes` typed in."""
    form = client.get(url(automation)).context["form"]
    data = {}
    for field in form:
        value = field.value()
        if field.name == "reviewers":
            data["reviewers"] = [str(pk) for pk in value or []]
        elif value is True:
            data[field.name] = "on"
        elif value is not None and value is not False:
            data[field.name] = str(value)
    data.update(changes)
    return {name: value for name, value in data.items() if value is not None}


def test_owner_changes_thresholds_and_readiness_with_a_reason_kept_in_the_history(
    login, automation
):
    client = login("olivia")
    data = form_data(
        client,
        automation,
        min_confidence="0.85",
        daily_budget_usd="40",
        on_call="support-ops rotation",
        change_reason="tighten after the March review",
    )

    response = client.post(url(automation), data)

    assert response.status_code == 303
    automation.refresh_from_db()
    assert (automation.min_confidence, automation.daily_budget_usd) == (0.85, 40)
    assert automation.on_call == "support-ops rotation"
    record = automation.history.first()
    assert record.history_change_reason == "tighten after the March review"
    assert record.history_user.username == "olivia"
    trail = TrailEntry.objects.filter(kind="config").order_by("-id").first()
    assert trail.data["reason"] == "tighten after the March review"
    history = client.get(reverse("automation_history", args=[automation.slug]))
    html = history.content.decode()
    assert "tighten after the March review" in html
    changes = history.context["history"][0].changes
    assert ("min_confidence", "0.7", "0.85") in changes
    assert ("on_call", "∅", "support-ops rotation") in changes


def test_a_reason_is_required_and_nothing_is_saved_without_one(login, automation):
    client = login("olivia")
    before = stored()

    response = client.post(url(automation), form_data(client, automation, min_confidence="0.9"))

    assert response.status_code == 422
    assert "Say why: every change keeps its reason." in response.content.decode()
    assert stored() == before


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("notify_url", "not a url", "not a URL"),
        ("notify_url", "http://169.254.169.254/latest/meta-data", "targets a private address"),
        ("notify_url", "http://10.1.2.3/hooks", "targets a private address"),
        ("notify_secret_env", "DATABASE_URL", "Handrail's own configuration"),
        ("notify_secret_env", "HOME_DIRECTORY", "is not an allowed secret variable"),
        ("min_confidence", "1.5", "must be between 0 and 1"),
        ("latency_budget_ms", "0", "must be between 1 and"),
    ],
)
def test_the_form_refuses_what_the_loader_refuses_next_to_the_field(
    login, automation, field, value, message
):
    client = login("olivia")
    before = stored()

    response = client.post(
        url(automation), form_data(client, automation, **{field: value}, change_reason="try")
    )

    assert response.status_code == 422
    errors = response.context["form"].errors[field]
    assert any(message in error for error in errors), errors
    assert stored() == before


def test_a_decision_rule_naming_a_missing_intent_is_refused(login, automation):
    client = login("olivia")
    rule = {**BILLING_RULE, "intent": "issue_refund"}
    before = stored()

    response = client.post(
        url(automation),
        form_data(client, automation, rules=f"[{_json(rule)}]", change_reason="refunds too"),
    )

    assert response.status_code == 422
    assert response.context["form"].errors["rules"] == [
        'rules[0].intent: no intent named "issue_refund"'
    ]
    assert stored() == before


def test_a_decision_rule_with_a_bad_regex_is_refused(login, automation):
    client = login("olivia")
    rule = {**BILLING_RULE, "when": {"field": "payload.body", "matches": "(?i)invoice("}}
    before = stored()

    response = client.post(
        url(automation),
        form_data(client, automation, rules=f"[{_json(rule)}]", change_reason="broader"),
    )

    assert response.status_code == 422
    [error] = response.context["form"].errors["rules"]
    assert error.startswith("rules[0].when.matches: not a valid regular expression")
    assert stored() == before


def test_reviewers_are_chosen_among_people_with_the_reviewer_role(login, automation, people):
    client = login("olivia")
    UserFactory(username="nora")  # no role: not offered
    offered = {
        user.username
        for user in client.get(url(automation)).context["form"].fields["reviewers"].queryset
    }
    assert offered == {"ravi", "rosa"}
    data = form_data(
        client,
        automation,
        reviewers=[str(people["ravi"].pk), str(people["rosa"].pk)],
        change_reason="rosa joins the queue",
    )

    response = client.post(url(automation), data)

    assert response.status_code == 303
    assert set(automation.reviewers.values_list("username", flat=True)) == {"ravi", "rosa"}
    record = automation.history.first()
    assert record.history_change_reason == "rosa joins the queue"
    entry = client.get(reverse("automation_history", args=[automation.slug])).context["history"][0]
    assert ("reviewers", "ravi", "ravi, rosa") in entry.changes
    assert entry.reason == "rosa joins the queue"


def test_a_person_without_the_reviewer_role_cannot_be_made_a_reviewer(login, automation):
    client = login("olivia")
    nora = UserFactory(username="nora")
    before = stored()

    response = client.post(
        url(automation),
        form_data(client, automation, reviewers=[str(nora.pk)], change_reason="help out"),
    )

    assert response.status_code == 422
    assert "reviewers" in response.context["form"].errors
    assert stored() == before


def test_saving_settings_never_undoes_a_switch_or_mode_changed_meanwhile(login, automation):
    client = login("olivia")
    data = form_data(client, automation, min_confidence="0.8", change_reason="tune")
    # Between showing the form and saving it, someone stops the automation.
    Automation.objects.filter(pk=automation.pk).update(enabled=False, mode="shadow")

    response = client.post(url(automation), data)

    assert response.status_code == 303
    automation.refresh_from_db()
    assert (automation.enabled, automation.mode, automation.min_confidence) == (
        False,
        "shadow",
        0.8,
    )
    record = automation.history.first()
    assert (record.enabled, record.mode) == (False, "shadow")


def test_saving_the_same_values_records_nothing(login, automation):
    client = login("olivia")
    before = stored()

    response = client.post(url(automation), form_data(client, automation, change_reason="look"))

    assert response.status_code == 303
    assert stored() == before


def _json(value) -> str:
    return json.dumps(value)
