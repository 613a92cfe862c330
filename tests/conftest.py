import os
import secrets

import pytest
from django.db import connection
from django.test import override_settings

from catalog.config_cache import automation_config_forget
from reviewapp.celery import app as celery_app
from tests.factories import UserFactory
from tests.support.celery_worker import TEST_WEBHOOK_SECRET_ENV, CeleryWorker

# The tests' model servers and webhook receivers listen on 127.0.0.1: the address policy
# (automations/outbound.py) lets requests reach them, in this process and in the workers.
TEST_PRIVATE_HOSTS = "127.0.0.1,localhost"


@pytest.fixture(scope="session", autouse=True)
def _test_servers_allowed():
    with override_settings(HANDRAIL_ALLOWED_PRIVATE_HOSTS=TEST_PRIVATE_HOSTS.split(",")):
        yield


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Factories and logins hash passwords; PBKDF2 is slow on purpose, tests need not be."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _no_config_cache(settings):
    """Tests change an automation's rules between decisions: read them afresh every time.

    tests/catalog/test_config_cache.py turns the cache on where it is the subject.
    """
    settings.HANDRAIL_CONFIG_CACHE_SECONDS = 0
    automation_config_forget()
    yield
    automation_config_forget()


@pytest.fixture(autouse=True)
def _tasks_run_in_process():
    """Unit and view tests run Celery tasks in process; `celery_worker` tests turn it off."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture(scope="session")
def test_webhook_secret():
    return "whsec_" + __import__("base64").b64encode(secrets.token_bytes(24)).decode()


@pytest.fixture(scope="session")
def _celery_worker_process(django_db_setup, django_db_blocker, test_webhook_secret):
    redis_url = os.environ.get("REDIS_URL")
    with django_db_blocker.unblock():
        vendor = connection.vendor
    if not redis_url or vendor != "postgresql":
        pytest.skip("needs REDIS_URL and PostgreSQL (DATABASE_URL) for a real Celery worker")
    with django_db_blocker.unblock():
        worker = CeleryWorker(
            redis_url=redis_url,
            env={
                TEST_WEBHOOK_SECRET_ENV: test_webhook_secret,
                "OPENAI_API_KEY": "test-key",
                "HANDRAIL_ALLOWED_PRIVATE_HOSTS": TEST_PRIVATE_HOSTS,
            },
        )
        worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def celery_worker(_celery_worker_process, transactional_db, monkeypatch, test_webhook_secret):
    """A real worker on Redis; tasks enqueued by this test go to it."""
    monkeypatch.setenv(TEST_WEBHOOK_SECRET_ENV, test_webhook_secret)
    celery_app.conf.task_always_eager = False
    yield _celery_worker_process
    celery_app.conf.task_always_eager = True


@pytest.fixture
def reviewer(db):
    return UserFactory(username="ravi", roles=["reviewer"])


@pytest.fixture
def rosa(db):
    """A second reviewer."""
    return UserFactory(username="rosa", roles=["reviewer"])


@pytest.fixture
def owner(db):
    return UserFactory(username="olivia", roles=["owner"])


@pytest.fixture
def compliance(db):
    return UserFactory(username="carla", roles=["compliance"])


@pytest.fixture
def admin_user(db):
    return UserFactory(username="ada", roles=["admin"], is_staff=True)
