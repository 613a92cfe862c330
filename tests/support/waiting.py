"""Bounded waiting for work another process does (a Celery worker, a server thread)."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    probe: Callable[[], T],
    *,
    timeout: float,
    interval: float = 0.05,
    describe: Callable[[], str] | None = None,
) -> T:
    """The first truthy value `probe()` returns, polling for at most `timeout` seconds.

    On timeout raises AssertionError with `describe()` (say, the worker's log tail).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = describe() if describe else ""
            raise AssertionError(f"not done within {timeout} s\n{detail}".rstrip())
        time.sleep(interval)
