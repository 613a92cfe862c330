"""Faults while events flow: a worker killed mid-delivery and Redis restarted lose nothing.

The short version of bench/chaos.py, on tests/support/chaos.py as the benchmark is:
gunicorn, two solo Celery workers and Celery beat on the suite's PostgreSQL
database, with a Redis server of their own on a spare port (the test restarts
it; the shared one is never touched), HANDRAIL_RECOVERY_SECONDS at 12 as in the
benchmark. Skipped without PostgreSQL and REDIS_URL, as the other worker tests.
"""

import base64
import os
import secrets
import shutil
from collections import Counter

import pytest
from django.db import connection

from automations.models import ActionAttempt
from tests.support.chaos import (
    SECRET_ENV,
    ServerRestart,
    Stand,
    WorkerKill,
    catalog_create,
    experiment_run,
)
from tests.support.private_servers import RedisServer
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.postgres, pytest.mark.worker]

RECOVERY_SECONDS = 12
LEASE_SECONDS = RECOVERY_SECONDS / 3  # a worker's hold, renewed while it works


@pytest.fixture(scope="module")
def stand(django_db_setup, django_db_blocker, tmp_path_factory):
    with django_db_blocker.unblock():
        vendor = connection.vendor
    if vendor != "postgresql" or not os.environ.get("REDIS_URL"):
        pytest.skip("needs PostgreSQL (DATABASE_URL) and REDIS_URL, as every worker test")
    if not shutil.which("redis-server"):
        pytest.skip("needs redis-server to start a Redis of its own")
    directory = tmp_path_factory.mktemp("chaos")
    with RedisServer(directory=directory) as redis:
        with django_db_blocker.unblock():  # the workers' DATABASE_URL is the test database's
            deployed = Stand(
                redis=redis,
                directory=directory,
                name="test-chaos",
                env={
                    "HANDRAIL_RECOVERY_SECONDS": str(RECOVERY_SECONDS),
                    "HANDRAIL_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
                    "HANDRAIL_RATE_LIMIT_PER_MINUTE": "100000000",
                    SECRET_ENV: "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
                },
            )
        deployed.start()
        try:
            yield deployed
        finally:
            deployed.stop()


@pytest.fixture(scope="module")
def receiver():
    with WebhookReceiver() as running:
        yield running


@pytest.fixture
def token(stand, receiver, transactional_db):
    # The adapter's own default timeout: a delivery may take longer than a hold lasts.
    return catalog_create(
        hook_url=receiver.url("/hooks/chaos"), timeout_seconds=10, latency_budget_ms=8000
    )


def test_a_killed_worker_and_a_restarted_redis_lose_nothing_and_recover_in_time(
    stand, receiver, token
):
    figures = experiment_run(
        name="suite",
        stand=stand,
        receiver=receiver,
        token=token,
        events=100,
        rate=20,
        faults=[
            WorkerKill(at=0.3, worker=0, while_sending=True),
            # Down 1 s: the workers' first try to reconnect, 2 s on, finds it back (kombu's
            # next one is 4 s later, which on a loaded machine eats most of the bound).
            ServerRestart(
                at=0.6, server=stand.redis, down_seconds=1, label="redis", lost_messages=True
            ),
        ],
        recovery_bound=RECOVERY_SECONDS,
        settle_timeout=90,
        receiver_delay=0.1,
    )

    logs = stand.logs()
    assert figures.acknowledged == figures.runs == 100, figures.refused
    assert figures.terminal == 100 and figures.lost == 0, (figures.states, logs)
    assert figures.server_errors == Counter()  # the database stayed up: not even a 503
    [kill, restart] = figures.watches
    # The kill landed mid-delivery; the run is taken over within the bound, and only
    # that delivery, sent but not recorded when its worker died, may arrive twice.
    assert kill.marks and kill.in_flight_keys
    assert kill.last() is not None and kill.last() <= RECOVERY_SECONDS, logs
    assert figures.duplicate_ids <= kill.in_flight_keys
    # Every message Redis held was lost with it: the sweep sends those runs again within
    # the bound, and they move on (the last once the pipeline has worked through them all).
    assert restart.marks and restart.last() is not None
    assert restart.last_handed() <= RECOVERY_SECONDS, (restart, logs)
    assert figures.problems() == []


def test_a_delivery_slower_than_a_hold_lasts_is_not_taken_over(stand, receiver, token):
    figures = experiment_run(
        name="slow",
        stand=stand,
        receiver=receiver,
        token=token,
        events=1,
        rate=1,
        faults=[],
        recovery_bound=RECOVERY_SECONDS,
        settle_timeout=60,
        receiver_delay=LEASE_SECONDS * 2,
    )

    # Its worker renewed its hold while the receiver took its time: no other worker took
    # the run over and sent it again.
    assert figures.terminal == 1, stand.logs()
    assert (figures.deliveries, figures.duplicates) == (1, 0)
    attempts = ActionAttempt.objects.filter(action__run__event__idempotency_key="slow-0")
    assert list(attempts.values_list("number", "error")) == [(1, "")]
