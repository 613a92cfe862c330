"""Sixteen clients post the same idempotency key at once over real HTTP: one event, one run."""

import json
import threading
import urllib.error
import urllib.request

import pytest
from django.db import connection

from automations.models import Event, Run
from catalog.tokens import token_issue
from tests.factories import AutomationFactory
from tests.support.api_client import event_body

CLIENTS = 16


@pytest.fixture
def postgres_only(db):
    if connection.vendor != "postgresql":
        pytest.skip(
            "needs PostgreSQL (set DATABASE_URL): SQLite serialises every writer, "
            "so it cannot show the race on the unique key"
        )


def post(url: str, token: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 -- 127.0.0.1
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_posts_of_one_key_store_one_event_and_one_run(postgres_only, live_server):
    automation = AutomationFactory(slug="support-triage")
    _, token = token_issue(name="load-test")
    url = f"{live_server.url}/api/v1/automations/{automation.slug}/events"
    body = json.dumps(event_body("ticket-race")).encode()
    barrier = threading.Barrier(CLIENTS)
    results: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def client():
        barrier.wait()
        outcome = post(url, token, body)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(results) == CLIENTS
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * (CLIENTS - 1) + [202], results
    assert len({payload["run_id"] for _, payload in results}) == 1
    assert len({payload["trace_id"] for _, payload in results}) == 1
    assert Event.objects.filter(idempotency_key="ticket-race").count() == 1
    assert Run.objects.filter(event__idempotency_key="ticket-race").count() == 1
