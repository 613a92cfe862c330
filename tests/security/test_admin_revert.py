"""simple-history's revert form (/admin/.../history/<id>/) obeys the console's rule.

The form saves whatever it is sent: it must check that the user may change the
row as it is stored *now* (not as it was in the version shown), and the result
must be one the change form would accept.
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from catalog.models import ApiToken, AuditSample, AuditSampleItem, Automation, Intent
from catalog.tokens import token_issue
from tests.factories import AutomationFactory, IntentFactory, ReviewTaskFactory, UserFactory
from tests.security.html_form import form_data


@pytest.fixture
def olivia(db):
    return UserFactory(username="olivia", roles=["owner"], is_staff=True)


@pytest.fixture
def oscar(db):
    return UserFactory(username="oscar", roles=["owner"], is_staff=True)


@pytest.fixture
def carla(db):
    return UserFactory(username="carla", roles=["compliance"], is_staff=True)


@pytest.fixture
def automation(olivia):
    return AutomationFactory(slug="support-triage", owner=olivia, mode="approve")


def revert_url(obj, version) -> str:
    opts = obj._meta
    name = f"admin:{opts.app_label}_{opts.model_name}_simple_history"
    return reverse(name, args=[obj.pk, version.history_id])


def revert_form(client, admin_user, obj, version) -> dict:
    """The revert form of `version` as an admin's browser would send it."""
    client.force_login(admin_user)
    page = client.get(revert_url(obj, version))
    assert page.status_code == 200
    client.logout()
    return form_data(page.content.decode())


def rows(model) -> list[dict]:
    return list(model.objects.order_by("pk").values())


def test_compliance_cannot_unrevoke_a_token_by_reverting_it(client, admin_user, carla):
    token, _ = token_issue(name="zendesk")
    before_revoke = token.history.latest()
    token.revoked_at = timezone.now()
    token._change_reason = "leaked"
    token.save()
    data = revert_form(client, admin_user, token, before_revoke)
    stored = rows(ApiToken)

    client.force_login(carla)
    response = client.post(revert_url(token, before_revoke), data)

    assert response.status_code == 403
    assert rows(ApiToken) == stored
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_compliance_cannot_take_an_automation_or_make_it_autonomous(
    client, admin_user, carla, automation
):
    version = automation.history.latest()
    data = revert_form(client, admin_user, automation, version)
    data.update(owner=[str(carla.pk)], mode=["autonomous"])
    stored = rows(Automation)

    client.force_login(carla)
    response = client.post(revert_url(automation, version), data)

    assert response.status_code == 403
    assert rows(Automation) == stored
    assert automation.history.count() == 1


def test_compliance_cannot_change_a_webhook_url_by_reverting_an_intent(
    client, admin_user, carla, automation
):
    intent = IntentFactory(automation=automation)
    version = intent.history.latest()
    data = revert_form(client, admin_user, intent, version)
    data["action_config"] = ['{"url": "https://attacker.example/hook", "secret_env": "X_SECRET"}']
    stored = rows(Intent)

    client.force_login(carla)
    response = client.post(revert_url(intent, version), data)

    assert response.status_code == 403
    assert rows(Intent) == stored


def test_compliance_cannot_rewrite_an_audit_verdict_by_reverting_it(
    client, admin_user, carla, automation
):
    now = timezone.now()
    sample = AuditSample.objects.create(
        name="November", seed="s", since=now - timedelta(days=1), until=now, created_by=admin_user
    )
    stratum = sample.strata.create(position=0, key={"outcome": "approved"}, population=1)
    item = AuditSampleItem.objects.create(
        sample=sample, stratum=stratum, run=ReviewTaskFactory().run, position=0, outcome="approved"
    )
    pending = item.history.latest()
    item.verdict, item.verdict_by, item.verdict_at = "issue", carla, now
    item.save()
    data = revert_form(client, admin_user, item, pending)

    client.force_login(carla)
    response = client.post(revert_url(item, pending), data)

    assert response.status_code == 403
    item.refresh_from_db()
    assert (item.verdict, item.verdict_by) == ("issue", carla)


def test_an_owner_cannot_revert_an_automation_someone_else_owns_now(
    client, admin_user, olivia, oscar, automation
):
    when_olivia_owned_it = automation.history.latest()
    automation.owner = oscar
    automation._change_reason = "handed over"
    automation.save()
    data = revert_form(client, admin_user, automation, when_olivia_owned_it)
    data["mode"] = ["autonomous"]
    stored = rows(Automation)

    client.force_login(olivia)
    assert client.get(revert_url(automation, when_olivia_owned_it)).status_code == 403
    response = client.post(revert_url(automation, when_olivia_owned_it), data)

    assert response.status_code == 403
    assert rows(Automation) == stored


def test_an_owner_cannot_hand_an_automation_to_someone_else_by_reverting(
    client, admin_user, olivia, oscar
):
    automation = AutomationFactory(slug="refunds", owner=oscar)
    when_oscar_owned_it = automation.history.latest()
    automation.owner = olivia
    automation.save()
    data = revert_form(client, admin_user, automation, when_oscar_owned_it)
    stored = rows(Automation)

    client.force_login(olivia)
    response = client.post(revert_url(automation, when_oscar_owned_it), data)

    assert response.status_code == 200  # the form again, with the owner refused
    assert "owner" in response.context["adminform"].form.errors
    assert rows(Automation) == stored


def test_an_owner_reverts_their_own_automation(client, admin_user, olivia, automation):
    shadow = automation.history.latest()
    automation.mode = "approve"
    automation.min_confidence = 0.9
    automation.save()
    data = revert_form(client, admin_user, automation, shadow)

    client.force_login(olivia)
    response = client.post(revert_url(automation, shadow), data)

    assert response.status_code == 302
    automation.refresh_from_db()
    assert automation.min_confidence == shadow.min_confidence
    assert automation.history.latest().history_user == olivia


def test_an_admin_reverts_any_automation_and_the_history_says_who(
    client, admin_user, olivia, oscar, automation
):
    version = automation.history.latest()
    automation.owner = oscar
    automation.mode = "shadow"
    automation.save()
    data = revert_form(client, admin_user, automation, version)

    client.force_login(admin_user)
    response = client.post(revert_url(automation, version), data)

    assert response.status_code == 302
    automation.refresh_from_db()
    assert (automation.owner, automation.mode) == (olivia, "approve")
    assert automation.history.latest().history_user == admin_user


def test_an_owner_cannot_read_the_history_of_someone_elses_automation(client, olivia, oscar):
    theirs = AutomationFactory(slug="refunds", owner=oscar)
    client.force_login(olivia)

    history = reverse("admin:catalog_automation_history", args=[theirs.pk])
    assert client.get(history).status_code == 403
    assert client.get(revert_url(theirs, theirs.history.latest())).status_code == 403


def test_a_deleted_row_is_brought_back_by_admins_only(client, admin_user, olivia, automation):
    intent = IntentFactory(automation=automation)
    version, pk = intent.history.latest(), intent.pk
    data = revert_form(client, admin_user, intent, version)
    intent.delete()
    url = reverse("admin:catalog_intent_simple_history", args=[pk, version.history_id])

    client.force_login(olivia)
    assert client.post(url, data).status_code == 403
    assert not Intent.objects.filter(pk=pk).exists()

    client.force_login(admin_user)
    assert client.post(url, data).status_code == 302
    assert Intent.objects.filter(pk=pk, automation=automation).exists()
