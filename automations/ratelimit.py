"""Per-token request limits over fixed one-minute windows, counted in Django's cache."""

import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

WINDOW_SECONDS = 60


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
    cache_key = f"handrail:ratelimit:{key}:{window}"
    # Keep the counter a little past its window so a slow request still finds it.
    cache.add(cache_key, 0, timeout=WINDOW_SECONDS + 5)
    try:
        count = cache.incr(cache_key)
    except ValueError:
        # Evicted between add and incr: start the window again.
        cache.set(cache_key, 1, timeout=WINDOW_SECONDS + 5)
        count = 1
    if count <= limit:
        return RateLimitResult(allowed=True, retry_after=0)
    retry_after = max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
    return RateLimitResult(allowed=False, retry_after=retry_after)
