"""kombu's Redis transport, with one Redis client object per connection pool.

kombu makes a new redis.Redis object for every publish and for each of the
worker's two updates of its unacked index per task (Channel._create_client),
and redis-py copies its ~170 response callbacks into every new one: about
0.06 ms of CPU each time, three times per task. The object holds no
connection of its own (the channel's pool does), so one per pool serves all
of them; a new pool (after a fork or a lost connection) gets a new one.

settings.CELERY_BROKER_TRANSPORT names it when REDIS_URL is set.
"""

from kombu.transport import redis


class Channel(redis.Channel):
    _pooled_client = None

    def _create_client(self, asynchronous=False):
        if asynchronous:
            return super()._create_client(asynchronous=True)
        pool = self.pool
        if self._pooled_client is None or self._pooled_client.connection_pool is not pool:
            self._pooled_client = super()._create_client()
        return self._pooled_client


class Transport(redis.Transport):
    Channel = Channel
