"""A connection that just worked skips Django's health check; an idle or failed one does not."""

import time

import pytest
from django.db import OperationalError, connection, connections

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL (set DATABASE_URL)"
    ),
]


@pytest.fixture
def wrapper(monkeypatch):
    """A connection of its own, outside the test's transaction, counting its health checks."""
    own = connections.create_connection("default")
    own.checks = 0
    usable = own.is_usable

    def counted():
        own.checks += 1
        return usable()

    monkeypatch.setattr(own, "is_usable", counted)
    yield own
    own.close()


def request(wrapper) -> int:
    """One request or task as Django and reviewapp/celery.py run it; the backend's pid."""
    wrapper.close_if_unusable_or_obsolete()
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]
    finally:
        wrapper.close_if_unusable_or_obsolete()


def backend_kill(pid: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    time.sleep(0.05)  # the server closes the socket a moment later


def test_back_to_back_requests_keep_their_connection_without_a_check(wrapper):
    first = request(wrapper)

    assert [request(wrapper) for _ in range(3)] == [first] * 3
    assert wrapper.checks == 0


def test_a_connection_idle_past_the_window_is_checked_and_a_dead_one_replaced(wrapper):
    wrapper.healthy_for = 0.05
    first = request(wrapper)
    backend_kill(first)
    time.sleep(0.1)

    second = request(wrapper)

    assert second != first
    assert wrapper.checks == 1


def test_a_connection_lost_inside_the_window_fails_one_request_then_recovers(wrapper):
    first = request(wrapper)
    backend_kill(first)

    with pytest.raises(OperationalError):
        request(wrapper)
    second = request(wrapper)

    assert second != first
