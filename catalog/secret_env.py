"""Which environment variables an automation may name as holding its secrets, and reading them.

An owner writes `decision.api_key_env` and `intents[].action.secret_env`; the
worker then sends that variable's value to a host the owner also chose. So a
name must match `settings.HANDRAIL_SECRET_ENV_ALLOWED`, and never be one of
Handrail's own variables (Django's, the database's, the broker's, Handrail's
secrets), whatever that setting says. The check runs when a name is written
and again when a value is read, for rows stored before it existed.
"""

import os
import re
from functools import lru_cache

from django.conf import settings

NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
# Handrail's own configuration: no setting lifts these.
DENIED_NAMES = frozenset(
    {"SECRET_KEY", "DATABASE_URL", "HANDRAIL_METRICS_TOKEN", "HANDRAIL_TRAIL_SIGNING_KEY"}
)
DENIED_PREFIXES = ("DJANGO_", "DATABASE_", "PG", "POSTGRES", "REDIS_", "CELERY_", "BROKER_")


class SecretEnvRefused(Exception):
    """A variable an automation may not read its secret from."""


@lru_cache(maxsize=4)
def _allowed(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def secret_env_problem(name) -> str | None:
    """Why `name` may not hold an automation's secret, or None when it may."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        return "must be an environment variable name (A-Z, 0-9 and _, not starting with a digit)"
    if name in DENIED_NAMES or name.startswith(DENIED_PREFIXES):
        return (
            f"{name} is Handrail's own configuration (Django, database, broker or Handrail "
            "secrets) and may never hold an automation's secret"
        )
    pattern = settings.HANDRAIL_SECRET_ENV_ALLOWED
    if not _allowed(pattern).fullmatch(name):
        return f"{name} is not an allowed secret variable (HANDRAIL_SECRET_ENV_ALLOWED: {pattern})"
    return None


def secret_env_value(name: str) -> str:
    """The value of variable `name` ("" when unset); SecretEnvRefused when it may not be read."""
    problem = secret_env_problem(name)
    if problem is not None:
        raise SecretEnvRefused(f"refused to read the secret from {name or '(no name)'}: {problem}")
    return os.environ.get(name, "")
