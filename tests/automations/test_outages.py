"""While PostgreSQL or Redis is away: 503 with Retry-After (never a 500), events still taken."""

from unittest import mock

import pytest
import redis.exceptions
from django.db import OperationalError

from automations.models import Run
from catalog.tokens import token_issue
from tests.factories import AutomationFactory, IntentFactory, UserFactory
from tests.support.api_client import event_body, post_event

pytestmark = pytest.mark.django_db

DATABASE_DOWN = OperationalError("connection to server at 127.0.0.1 port 5432 failed")


@pytest.fixture
def token():
    automation = AutomationFactory(slug="support-triage", mode="shadow")
    IntentFactory(automation=automation)
    return token_issue(name="zendesk")[1]


def test_an_event_while_the_database_is_down_gets_503_json_and_retry_after(client, token):
    with mock.patch("automations.api.event_ingest", side_effect=DATABASE_DOWN):
        response = post_event(client, "support-triage", event_body(), token=token)

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "5"
    assert response.json() == {
        "error": "unavailable",
        "message": "the database is unavailable; nothing was stored, try again shortly",
        "field": None,
    }


def test_the_token_check_losing_the_database_is_503_too(client, token):
    with mock.patch("automations.api.token_authenticate_for", side_effect=DATABASE_DOWN):
        response = post_event(client, "support-triage", event_body(), token=token)

    assert (response.status_code, response.json()["error"]) == (503, "unavailable")


def test_a_page_while_the_database_is_down_says_so_with_503(client):
    client.force_login(UserFactory(roles=["owner"]))

    with mock.patch("catalog.views.render", side_effect=DATABASE_DOWN):
        response = client.get("/")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert b"cannot reach its database" in response.content


def test_events_are_taken_while_the_rate_limit_store_is_down(client, token):
    down = redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379")

    with mock.patch("automations.ratelimit.window_count", side_effect=down):
        response = post_event(client, "support-triage", event_body(), token=token)

    assert response.status_code == 202
    assert Run.objects.filter(pk=response.json()["run_id"]).exists()
