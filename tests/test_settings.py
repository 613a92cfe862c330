"""The settings helpers fail loudly on a bad environment value instead of guessing; the
database pool comes back soon after an outage."""

import contextlib
import itertools
import socket
import threading
import time

import pytest
from django.core.exceptions import ImproperlyConfigured

from reviewapp.settings import envbool, envint


@pytest.mark.parametrize("value", ["maybe", "2", "enabled", "tru"])
def test_bad_boolean_value_raises(monkeypatch, value):
    monkeypatch.setenv("HANDRAIL_TEST_FLAG", value)

    with pytest.raises(ImproperlyConfigured, match="HANDRAIL_TEST_FLAG"):
        envbool("HANDRAIL_TEST_FLAG")


@pytest.mark.parametrize(
    ("value", "expected"), [("1", True), ("yes", True), ("OFF", False), ("0", False)]
)
def test_boolean_values_are_read(monkeypatch, value, expected):
    monkeypatch.setenv("HANDRAIL_TEST_FLAG", value)

    assert envbool("HANDRAIL_TEST_FLAG", default=not expected) is expected


def test_unset_or_empty_boolean_takes_the_default(monkeypatch):
    monkeypatch.setenv("HANDRAIL_TEST_FLAG", " ")

    assert envbool("HANDRAIL_TEST_FLAG", default=True) is True


@pytest.mark.parametrize("value", ["ten", "1.5", "0x10"])
def test_non_integer_value_raises(monkeypatch, value):
    monkeypatch.setenv("HANDRAIL_TEST_NUMBER", value)

    with pytest.raises(ImproperlyConfigured, match="must be an integer"):
        envint("HANDRAIL_TEST_NUMBER", 5)


def test_integer_below_minimum_raises(monkeypatch):
    monkeypatch.setenv("HANDRAIL_TEST_NUMBER", "0")

    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        envint("HANDRAIL_TEST_NUMBER", 5, minimum=1)


def test_integer_value_is_read(monkeypatch):
    monkeypatch.setenv("HANDRAIL_TEST_NUMBER", "42")

    assert envint("HANDRAIL_TEST_NUMBER", 5) == 42


def test_the_database_pool_keeps_trying_every_few_seconds_during_a_long_outage(settings):
    # psycopg's pool alone tries again after 1, 2, 4, 8, 16 ... s: a server back after a
    # minute's outage waits up to another minute. The pool Handrail configures starts over
    # every 5 s while requests keep asking, as they do during an outage.
    from psycopg_pool import ConnectionPool, PoolTimeout

    tries: list[float] = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        port = server.getsockname()[1]

        def refuse():  # a server that hangs up on every connection, as one shutting down
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                tries.append(time.monotonic())
                conn.close()

        threading.Thread(target=refuse, daemon=True).start()
        options = {**settings.DATABASE_POOL, "timeout": 1}
        pool = ConnectionPool(f"host=127.0.0.1 port={port} user=x dbname=x", open=False, **options)
        pool.open(wait=False)
        started = time.monotonic()
        try:
            while time.monotonic() - started < 9:
                with contextlib.suppress(PoolTimeout):
                    pool.getconn()
        finally:
            pool.close(timeout=1)

    gaps = [later - earlier for earlier, later in itertools.pairwise([started, *tries])]
    assert tries and max(gaps) < 3, gaps
