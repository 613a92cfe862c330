"""Tasks published through the Redis transport share one client object per connection pool."""

import os

import pytest
from kombu import Connection

from reviewapp.broker import Channel

pytestmark = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")


@pytest.fixture
def connection():
    with Connection(os.environ["REDIS_URL"], transport="reviewapp.broker:Transport") as conn:
        yield conn


def test_publishes_reuse_one_client_and_land_in_the_queue(connection):
    queue = connection.SimpleQueue("handrail-test-broker")
    queue.clear()
    channel = queue.channel
    assert isinstance(channel, Channel)

    for number in range(3):
        queue.put({"number": number})
    client = channel._create_client()

    assert channel._create_client() is client
    assert [queue.get(timeout=1).payload["number"] for _ in range(3)] == [0, 1, 2]
    queue.close()


def test_a_new_pool_gets_a_new_client(connection):
    channel = connection.default_channel
    before = channel._create_client()

    channel._disconnect_pools()  # what kombu does after a fork or a failed ping
    after = channel._create_client()

    assert after is not before
    assert after.connection_pool is channel.pool
    assert after.ping()


def test_the_celery_app_publishes_through_it():
    from reviewapp.celery import app

    with app.connection_for_write() as conn:
        assert isinstance(conn.default_channel, Channel)
