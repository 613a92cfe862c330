"""Secrets by name: only allowed variables may be named, written or read (security item 1)."""

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from automations.services.actions import action_attempt
from automations.services.decisions import run_decide
from catalog.loader import CatalogInvalid, load_catalog, parse_catalog
from catalog.models import Automation
from catalog.secret_env import SecretEnvRefused, secret_env_problem, secret_env_value
from reviewapp.settings import envregex
from tests.factories import AutomationFactory, EventFactory, IntentFactory, RunFactory, UserFactory
from tests.support.model_server import ModelServer
from tests.support.webhook_receiver import WebhookReceiver, new_webhook_secret

EXAMPLE = Path(__file__).parents[1] / "catalog" / "fixtures" / "support_triage.yaml"
# What a worker must never send anywhere.
STOLEN = "django-insecure-this-value-must-never-leave-0f9a"

ALLOWED = [
    "OPENAI_API_KEY",
    "SUPPORT_WEBHOOK_SECRET",
    "REFUND_SECRET",
    "HANDRAIL_TEST_WEBHOOK_SECRET",
]
# Handrail's own variables, including some the default pattern alone would let through.
DENIED = [
    "SECRET_KEY",
    "DATABASE_URL",
    "DATABASE_SECRET",
    "DJANGO_SECRET",
    "PGPASSWORD",
    "PG_API_KEY",
    "POSTGRES_PASSWORD",
    "REDIS_URL",
    "REDIS_SECRET",
    "CELERY_BROKER_URL",
    "BROKER_API_KEY",
    "HANDRAIL_METRICS_TOKEN",
    "HANDRAIL_TRAIL_SIGNING_KEY",
]
NOT_MATCHING = ["HOME", "PATH", "AWS_SECRET_ACCESS_KEY", "SUPPORT_WEBHOOK_SECRET_FILE"]


@pytest.mark.parametrize("name", ALLOWED)
def test_secret_variables_matching_the_default_pattern_are_allowed(name):
    assert secret_env_problem(name) is None


@pytest.mark.parametrize("name", DENIED)
def test_handrails_own_variables_are_refused_even_when_every_name_is_allowed(name, settings):
    settings.HANDRAIL_SECRET_ENV_ALLOWED = r".*"

    assert "Handrail's own configuration" in secret_env_problem(name)


@pytest.mark.parametrize("name", NOT_MATCHING)
def test_other_variables_are_refused_by_default(name):
    assert "not an allowed secret variable (HANDRAIL_SECRET_ENV_ALLOWED" in secret_env_problem(name)


def test_the_setting_narrows_the_allow_list(settings):
    settings.HANDRAIL_SECRET_ENV_ALLOWED = r"OPENAI_API_KEY"

    assert secret_env_problem("OPENAI_API_KEY") is None
    assert secret_env_problem("SUPPORT_WEBHOOK_SECRET") is not None


def test_a_bad_setting_stops_start_up(monkeypatch):
    monkeypatch.setenv("HANDRAIL_SECRET_ENV_ALLOWED", "[A-Z")

    with pytest.raises(ImproperlyConfigured, match="HANDRAIL_SECRET_ENV_ALLOWED"):
        envregex("HANDRAIL_SECRET_ENV_ALLOWED", ".*")


def test_the_reader_refuses_a_name_that_is_not_allowed(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", STOLEN)

    with pytest.raises(SecretEnvRefused) as refused:
        secret_env_value("SECRET_KEY")

    assert STOLEN not in str(refused.value)
    monkeypatch.setenv("SUPPORT_WEBHOOK_SECRET", "whsec_c2VjcmV0")
    assert secret_env_value("SUPPORT_WEBHOOK_SECRET") == "whsec_c2VjcmV0"


# Write time: the loader.


@pytest.fixture
def people(db):
    return {name: UserFactory(username=name, password=None) for name in ("olivia", "ravi", "rosa")}


def errors_of(document) -> list[str]:
    with pytest.raises(CatalogInvalid) as caught:
        load_catalog(document, source="test.yaml")
    return caught.value.errors


def test_loader_refuses_an_api_key_variable_that_is_not_allowed(people):
    document = parse_catalog(EXAMPLE.read_text())
    document["automations"][0]["decision"]["api_key_env"] = "SECRET_KEY"

    [error] = errors_of(document)

    assert error.startswith("automations[0].decision.api_key_env: SECRET_KEY is Handrail's own")
    assert Automation.objects.count() == 0


def test_loader_refuses_a_webhook_secret_variable_that_is_not_allowed(people):
    document = parse_catalog(EXAMPLE.read_text())
    document["automations"][0]["intents"][0]["action"]["secret_env"] = "HOME"

    assert errors_of(document) == [
        "automations[0].intents[0].action.secret_env: HOME is not an allowed secret variable "
        r"(HANDRAIL_SECRET_ENV_ALLOWED: ^[A-Z][A-Z0-9_]*_(API_KEY|WEBHOOK_SECRET|SECRET)$)"
    ]
    assert Automation.objects.count() == 0


# Use time: rows stored before the allow-list must not leak either.


@pytest.fixture
def model_server():
    with ModelServer() as server:
        yield server


def test_stored_api_key_variable_that_is_not_allowed_sends_nothing_and_goes_to_review(
    db, model_server, monkeypatch
):
    monkeypatch.setenv("SECRET_KEY", STOLEN)
    automation = AutomationFactory(
        provider="openai",
        model="gpt-4.1-mini",
        base_url=model_server.base_url,
        api_key_env="SECRET_KEY",  # stored before the fix: the factory skips validation
        mode="autonomous",
    )
    IntentFactory(automation=automation)
    run = RunFactory(event=EventFactory(automation=automation))

    run_decide(run_id=run.pk, actor="worker:test")

    run.refresh_from_db()
    assert run.state == "awaiting_review"
    assert "refused to read the secret from SECRET_KEY" in run.review_task.reason
    assert model_server.requests == []
    assert STOLEN not in run.review_task.reason
    assert STOLEN not in run.model_calls.get().error


@pytest.fixture
def receiver():
    with WebhookReceiver() as running:
        yield running


def test_stored_webhook_secret_variable_that_is_not_allowed_fails_at_once_unsent(
    db, receiver, monkeypatch
):
    # A whsec_ value, so that only the allow-list stands between it and a signed delivery.
    monkeypatch.setenv("SECRET_KEY", new_webhook_secret())
    automation = AutomationFactory(mode="approve")
    IntentFactory(
        automation=automation,
        action_config={"url": receiver.url("/hooks/route"), "secret_env": "SECRET_KEY"},
    )
    run = RunFactory(
        event=EventFactory(automation=automation),
        state="approved",
        final_intent={"intent": "route_ticket", "arguments": {"team": "billing", "priority": "p2"}},
        decided_by="model",
    )

    outcome = action_attempt(run_id=run.pk, actor="worker:test")

    run.refresh_from_db()
    assert outcome.kind == "failed"  # permanent: not retried
    assert run.state == "failed"
    assert "refused to read the secret from SECRET_KEY" in run.reason
    assert receiver.deliveries == []


# The catalog page.


@pytest.fixture
def page_automation(db, monkeypatch):
    monkeypatch.setenv("SUPPORT_API_KEY", "sk-never-shown")
    owner = UserFactory(username="olivia", roles=["owner"])
    reviewer = UserFactory(username="ravi", roles=["reviewer"])
    automation = AutomationFactory(
        slug="support-triage",
        owner=owner,
        reviewers=[reviewer],
        provider="openai",
        model="gpt-4.1-mini",
        api_key_env="SUPPORT_API_KEY",
    )
    return automation


def api_key_line(client, user, automation) -> str:
    client.force_login(user)
    html = client.get(reverse("automation_detail", args=[automation.slug])).content.decode()
    start = html.index("<dt>API key</dt>")
    return html[start : html.index("</dd>", start)]


@pytest.mark.parametrize("who", ["olivia", "ravi"])
def test_the_page_names_the_variable_but_tells_non_admins_nothing_about_it(
    client, page_automation, who
):
    line = api_key_line(client, UserFactory(username=who), page_automation)

    assert "SUPPORT_API_KEY" in line
    assert "set" not in line.replace("SUPPORT_API_KEY", "")
    assert "sk-never-shown" not in line


def test_admins_see_whether_the_variable_is_set_or_refused(client, page_automation, monkeypatch):
    admin = UserFactory(username="ada", roles=["admin"])

    assert '<span class="badge state-live">set</span>' in api_key_line(
        client, admin, page_automation
    )
    monkeypatch.delenv("SUPPORT_API_KEY")
    assert "not set" in api_key_line(client, admin, page_automation)
    Automation.objects.filter(pk=page_automation.pk).update(api_key_env="SECRET_KEY")
    assert "refused" in api_key_line(client, admin, page_automation)
