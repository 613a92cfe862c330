"""Django admin: configuration with history and change reasons; the run trail read-only."""

import hashlib
from datetime import timedelta

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from automations.models import (
    Action,
    ActionAttempt,
    Label,
    ModelCall,
    Run,
    RunTransition,
)
from catalog.models import ApiToken, AuditSample, AuditSampleItem, Automation, Intent
from tests.factories import (
    AutomationFactory,
    DoNotAutomateRuleFactory,
    IntentFactory,
    ReviewTaskFactory,
    SegmentPolicyFactory,
    UserFactory,
)

ADMINISTERED_APPS = {"catalog", "automations"}
TRAIL_MODELS = [model for model in admin.site._registry if model._meta.app_label == "automations"]


@pytest.fixture
def staff_compliance(db):
    return UserFactory(username="carla", roles=["compliance"], is_staff=True)


@pytest.fixture
def staff_owner(db):
    return UserFactory(username="olivia", roles=["owner"], is_staff=True)


@pytest.fixture
def one_of_everything(staff_owner, reviewer, admin_user):
    """One row of every administered model, linked the way the pipeline links them."""
    automation = AutomationFactory(slug="support-triage", owner=staff_owner, reviewers=[reviewer])
    IntentFactory(automation=automation)
    SegmentPolicyFactory(automation=automation)
    DoNotAutomateRuleFactory(automation=automation)
    token = ApiToken.objects.create(
        name="zendesk", token_hash=hashlib.sha256(b"hr_secret").hexdigest(), prefix="hr_secret"
    )
    token.automations.add(automation)
    task = ReviewTaskFactory(run__event__automation=automation)
    run = task.run
    RunTransition.objects.create(run=run, from_state="deciding", to_state="awaiting_review")
    ModelCall.objects.create(run=run, automation=automation, provider="rules")
    Run.objects.filter(pk=run.pk).update(
        verdicts=[{"check": "kill_switch", "verdict": "pass", "reason": "", "details": {}}]
    )
    Label.objects.create(
        review_task=task, run=run, automation=automation, outcome="accepted", reviewer=reviewer
    )
    action = Action.objects.create(
        run=run, automation=automation, adapter="webhook", idempotency_key="run-1-route"
    )
    ActionAttempt.objects.create(action=action, number=1, started_at=timezone.now())
    now = timezone.now()
    sample = AuditSample.objects.create(
        name="November", seed="1", since=now - timedelta(days=1), until=now, created_by=admin_user
    )
    stratum = sample.strata.create(position=0, key={"outcome": "approved"}, population=1)
    AuditSampleItem.objects.create(
        sample=sample, stratum=stratum, run=run, position=0, outcome="approved"
    )
    return automation


def admin_url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def registered_models():
    return [m for m in admin.site._registry if m._meta.app_label in ADMINISTERED_APPS]


def test_every_configuration_and_trail_model_is_registered():
    names = {m.__name__ for m in registered_models()}

    assert {
        "Automation",
        "Intent",
        "SegmentPolicy",
        "DoNotAutomateRule",
        "ApiToken",
        "AuditSample",
        "Event",
        "Run",
        "ModelCall",
        "ReviewTask",
        "Label",
        "Action",
    } <= names


@pytest.mark.parametrize("who", ["admin_user", "staff_compliance"])
def test_changelist_change_and_history_pages_open_for_every_model(
    client, request, who, one_of_everything
):
    client.force_login(request.getfixturevalue(who))

    assert client.get(reverse("admin:index")).status_code == 200
    for model in registered_models():
        obj = model.objects.first()
        assert obj is not None, model
        for view, args in [("changelist", ()), ("change", (obj.pk,)), ("history", (obj.pk,))]:
            response = client.get(admin_url(model, view, *args))
            assert response.status_code == 200, (model.__name__, view, response.status_code)


def test_admin_index_is_closed_to_staff_without_a_role(client, one_of_everything):
    client.force_login(UserFactory(username="stan", is_staff=True))

    response = client.get(admin_url(Automation, "changelist"))

    assert response.status_code == 403


@pytest.mark.parametrize("model", TRAIL_MODELS, ids=lambda m: m.__name__)
def test_trail_models_have_no_add_change_or_delete(rf, model, admin_user):
    superuser = UserFactory(username="root", is_staff=True, is_superuser=True)
    model_admin = admin.site._registry[model]
    for user in (admin_user, superuser):
        request = rf.get("/")
        request.user = user
        assert not model_admin.has_add_permission(request)
        assert not model_admin.has_change_permission(request)
        assert not model_admin.has_delete_permission(request)
        assert model_admin.has_view_permission(request)
        assert "delete_selected" not in model_admin.get_actions(request)
        for inline in model_admin.get_inline_instances(request):
            assert not inline.has_add_permission(request, None)
            assert not inline.has_change_permission(request)
            assert not inline.has_delete_permission(request)


def test_trail_cannot_be_added_or_edited_through_admin_urls(client, admin_user, one_of_everything):
    client.force_login(admin_user)
    run = one_of_everything.runs.get()

    assert client.get(admin_url(run._meta.model, "add")).status_code == 403
    response = client.post(admin_url(run._meta.model, "change", run.pk), {"state": "executed"})
    assert response.status_code == 403
    response = client.post(admin_url(run._meta.model, "delete", run.pk), {"post": "yes"})
    assert response.status_code == 403
    run.refresh_from_db()
    assert run.state == "awaiting_review"


def test_owner_and_reviewer_cannot_read_the_trail(client, staff_owner, one_of_everything):
    client.force_login(staff_owner)
    run = one_of_everything.runs.get()

    assert client.get(admin_url(run._meta.model, "changelist")).status_code == 403


def change_form_data(response) -> dict:
    """The POST body a browser would send for the change form as rendered."""
    data = {}

    def add(form):
        for field in form:
            value = field.value()
            if value is None:
                continue
            if isinstance(value, bool):
                if value:
                    data[field.html_name] = "on"
            elif isinstance(value, list | tuple):
                data[field.html_name] = [str(v) for v in value]
            else:
                data[field.html_name] = value

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        add(inline.formset.management_form)
        for form in inline.formset.forms:
            add(form)
    return data


def test_automation_change_records_the_reason_for_it_and_its_inlines(
    client, admin_user, one_of_everything
):
    automation = one_of_everything
    url = admin_url(Automation, "change", automation.pk)
    client.force_login(admin_user)
    data = change_form_data(client.get(url))
    data["min_confidence"] = "0.95"
    data["intents-0-description"] = "Send it to the right team."
    data["change_reason"] = "incident 42: back to shadow"

    response = client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    latest = automation.history.latest()
    assert (latest.min_confidence, latest.history_change_reason) == (
        0.95,
        "incident 42: back to shadow",
    )
    assert latest.history_user == admin_user
    intent_record = Intent.history.filter(automation_id=automation.pk).latest()
    assert intent_record.history_change_reason == "incident 42: back to shadow"
    # The automation page shows it too.
    page = client.get(reverse("automation_detail", args=[automation.slug]))
    assert "incident 42: back to shadow" in page.content.decode()


def test_automation_change_without_reason_is_still_explained(client, admin_user, one_of_everything):
    automation = one_of_everything
    url = admin_url(Automation, "change", automation.pk)
    client.force_login(admin_user)
    data = change_form_data(client.get(url))
    data["min_confidence"] = "0.9"

    client.post(url, data)

    assert automation.history.latest().history_change_reason == "edited in admin"


def test_owner_changes_own_automation_but_not_anothers(client, staff_owner, one_of_everything):
    other = AutomationFactory(slug="refunds")
    client.force_login(staff_owner)

    own_url = admin_url(Automation, "change", one_of_everything.pk)
    data = change_form_data(client.get(own_url))
    data["min_confidence"] = "0.95"
    assert client.post(own_url, data).status_code == 302
    one_of_everything.refresh_from_db()
    assert one_of_everything.min_confidence == 0.95

    changelist = client.get(admin_url(Automation, "changelist")).content.decode()
    assert "refunds" not in changelist
    assert client.get(admin_url(Automation, "change", other.pk)).status_code == 302  # not found


def test_compliance_reads_configuration_but_cannot_change_it(
    client, staff_compliance, one_of_everything
):
    url = admin_url(Automation, "change", one_of_everything.pk)
    client.force_login(staff_compliance)

    page = client.get(url)
    assert page.status_code == 200
    assert 'name="change_reason"' not in page.content.decode()

    assert client.post(url, {"mode": "autonomous"}).status_code == 403
    one_of_everything.refresh_from_db()
    assert one_of_everything.mode == "approve"


def test_api_token_page_shows_the_hash_read_only_and_offers_no_add(
    client, admin_user, one_of_everything
):
    token = ApiToken.objects.get()
    client.force_login(admin_user)

    html = client.get(admin_url(ApiToken, "change", token.pk)).content.decode()

    assert token.token_hash in html
    assert 'name="token_hash"' not in html
    assert client.get(admin_url(ApiToken, "add")).status_code == 403


def test_revoking_a_token_is_recorded_in_its_history(client, admin_user, one_of_everything):
    token = ApiToken.objects.get()
    client.force_login(admin_user)

    response = client.post(
        admin_url(ApiToken, "changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
    )

    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert token.history.latest().history_change_reason == "revoked in admin"


def test_audit_samples_are_read_only_in_the_admin(client, staff_compliance, one_of_everything):
    # Verdicts are recorded on the audit pages, which put each one on the trail.
    sample = AuditSample.objects.get()
    url = admin_url(AuditSample, "change", sample.pk)
    client.force_login(staff_compliance)

    page = client.get(url)

    assert page.status_code == 200
    assert 'name="items-0-verdict"' not in page.content.decode()
    assert client.post(url, {"name": "changed"}).status_code == 403
    sample.refresh_from_db()
    assert sample.name == "November"


def test_modes_and_switches_are_read_only_in_the_admin(client, admin_user, one_of_everything):
    # They change through the owner console or set_mode/set_switch: evidence, reason, lock, trail.
    automation = one_of_everything
    url = admin_url(Automation, "change", automation.pk)
    client.force_login(admin_user)
    data = change_form_data(client.get(url))
    before = (automation.mode, automation.enabled)
    data["mode"], data["enabled"] = "autonomous", ""
    data["change_reason"] = "sneaking past the evidence"

    assert client.post(url, data).status_code == 302

    automation.refresh_from_db()
    assert (automation.mode, automation.enabled) == before
