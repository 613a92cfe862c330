"""The admin answers from the roles alone (contracts §2), whatever Django permissions say."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django.utils import timezone

from automations.models import Action, ActionAttempt
from catalog.models import ApiToken
from catalog.tokens import token_issue
from tests.factories import AutomationFactory, ReviewTaskFactory, UserFactory
from tests.security.html_form import form_data

EXCERPT = "receiver says: account 7 has balance 1,000"


@pytest.fixture
def carla(db):
    return UserFactory(username="carla", roles=["compliance"], is_staff=True)


@pytest.fixture
def action(db):
    run = ReviewTaskFactory().run
    action = Action.objects.create(
        run=run, automation=run.automation, adapter="webhook", idempotency_key="run-1-route"
    )
    ActionAttempt.objects.create(
        action=action,
        number=1,
        started_at=timezone.now(),
        status_code=500,
        error="receiver answered 500",
        response_excerpt=EXCERPT,
    )
    return action


def with_permissions(user, *codenames):
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def test_compliance_reads_an_action_without_the_receivers_answer(client, carla, action):
    client.force_login(carla)

    page = client.get(reverse("admin:automations_action_change", args=[action.pk]))

    assert page.status_code == 200
    html = page.content.decode()
    assert "receiver answered 500" in html
    assert EXCERPT not in html


def test_admins_read_the_receivers_answer(client, admin_user, action):
    client.force_login(admin_user)

    page = client.get(reverse("admin:automations_action_change", args=[action.pk]))

    assert EXCERPT in page.content.decode()


def test_a_django_permission_does_not_let_staff_without_a_role_revoke_tokens(client, db):
    token, _ = token_issue(name="zendesk")
    stan = with_permissions(
        UserFactory(username="stan", is_staff=True), "view_apitoken", "change_apitoken"
    )
    client.force_login(stan)

    response = client.post(
        reverse("admin:catalog_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
    )

    assert response.status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None


def test_a_django_permission_does_not_let_compliance_make_itself_admin(client, carla):
    with_permissions(carla, "view_user", "change_user", "view_group", "change_group")
    client.force_login(carla)
    url = reverse("admin:auth_user_change", args=[carla.pk])
    data = form_data(client.get(url).content.decode(), "user_form")
    data["groups"] = [str(g.pk) for g in Group.objects.filter(name__in=["compliance", "admin"])]

    response = client.post(url, data)

    assert response.status_code == 403
    assert set(carla.groups.values_list("name", flat=True)) == {"compliance"}


def test_admins_manage_users_and_their_roles_without_being_superusers(client, admin_user):
    olivia = UserFactory(username="olivia", is_staff=True)
    client.force_login(admin_user)
    url = reverse("admin:auth_user_change", args=[olivia.pk])
    data = form_data(client.get(url).content.decode(), "user_form")
    data["groups"] = [str(Group.objects.get(name="owner").pk)]

    response = client.post(url, data)

    assert response.status_code == 302
    assert list(olivia.groups.values_list("name", flat=True)) == ["owner"]


def test_compliance_reads_users_and_groups_but_changes_nothing(client, carla):
    client.force_login(carla)
    owners = Group.objects.get(name="owner")

    assert client.get(reverse("admin:auth_user_changelist")).status_code == 200
    assert client.get(reverse("admin:auth_group_change", args=[owners.pk])).status_code == 200
    response = client.post(
        reverse("admin:auth_group_change", args=[owners.pk]), {"name": "owners-renamed"}
    )
    assert response.status_code == 403
    assert Group.objects.filter(name="owner").exists()


def test_owners_cannot_reach_users_groups_or_tokens(client, db):
    olivia = UserFactory(username="olivia", roles=["owner"], is_staff=True)
    AutomationFactory(owner=olivia)
    client.force_login(olivia)

    for name in ["auth_user", "auth_group", "catalog_apitoken"]:
        assert client.get(reverse(f"admin:{name}_changelist")).status_code == 403, name
    assert ApiToken.objects.count() == 0
