"""Per-token request limits over fixed one-minute windows, counted in Django's cache."""

import functools
import logging
import math
import time
from dataclasses import dataclass

import redis.exceptions
from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
# What counting raises while Redis is down or unreachable.
STORE_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def clock() -> float:
    return time.time()


@dataclass(frozen=True)
class RateLimitResult:
    allowed: bool
    retry_after: int  # seconds until the window resets; 0 when allowed


def rate_limit_hit(*, key: str, limit: int | None = None) -> RateLimitResult:
    """Count one request for `key` in the current minute; refuse it past `limit` a minute.

    `limit` defaults to settings.HANDRAIL_RATE_LIMIT_PER_MINUTE. The counter is
    incremented atomically (Redis INCR, or the local-memory cache's lock).
    """
    limit = settings.HANDRAIL_RATE_LIMIT_PER_MINUTE if limit is None else limit
    now = clock()
    window = int(now // WINDOW_SECONDS)
    try:
        count = window_count(f"handrail:ratelimit:{key}:{window}")
    except STORE_DOWN as exc:
        # Redis is down: an event the database can still take is not refused for want of a
        # counter. Limits resume with Redis.
        logger.warning("rate limit not counted, its store is unavailable: %s", exc)
        return RateLimitResult(allowed=True, retry_after=0)
    if count <= limit:
        return RateLimitResult(allowed=True, retry_after=0)
    retry_after = max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
    return RateLimitResult(allowed=False, retry_after=retry_after)


def window_count(cache_key: str) -> int:
    """Add one to the window's counter and return it; the counter expires after its window."""
    # Kept a little past its window so a slow request still finds it.
    timeout = WINDOW_SECONDS + 5
    client = redis_client()
    if client is not None:
        # One round trip instead of three (add, then incr's EXISTS and INCR).
        redis_key = cache.make_and_validate_key(cache_key)
        pipe = client.pipeline(transaction=False)
        pipe.set(redis_key, 0, ex=timeout, nx=True)
        pipe.incr(redis_key)
        return pipe.execute()[1]
    cache.add(cache_key, 0, timeout=timeout)
    try:
        return cache.incr(cache_key)
    except ValueError:
        # Evicted between add and incr: start the window again.
        cache.set(cache_key, 1, timeout=timeout)
        return 1


@functools.cache
def redis_client():
    """A redis-py client on REDIS_URL (one per process, thread-safe), or None without Redis."""
    if not isinstance(caches["default"], RedisCache):
        return None
    import redis

    return redis.Redis.from_url(settings.REDIS_URL)
