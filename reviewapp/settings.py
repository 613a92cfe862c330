"""Handrail settings: everything comes from the environment, with safe embedded defaults.

Without any variable set, Handrail runs on SQLite under var/ and runs Celery
tasks in process. Production sets DATABASE_URL, REDIS_URL, SECRET_KEY,
ALLOWED_HOSTS and HANDRAIL_HTTPS=1.
"""

import ipaddress
import os
import re
import secrets
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("HANDRAIL_VAR_DIR", BASE_DIR / "var"))


def envbool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value == "":
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {value!r}")


def envint(name: str, default: int, minimum: int = 0) -> int:
    value = os.environ.get(name, "").strip()
    if value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}")
    return number


def envregex(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip() or default
    try:
        re.compile(value)
    except re.error as error:
        raise ImproperlyConfigured(f"{name} must be a regular expression: {error}") from None
    return value


def envfloat(name: str, default: float, minimum: float = 0.0, maximum: float = 1.0) -> float:
    value = os.environ.get(name, "").strip()
    if value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {value!r}") from None
    if not minimum <= number <= maximum:
        raise ImproperlyConfigured(f"{name} must be between {minimum} and {maximum}, got {number}")
    return number


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _secret_key() -> str:
    """Use SECRET_KEY, else a random key kept under var/ so sessions survive restarts."""
    if key := os.environ.get("SECRET_KEY"):
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = envbool("DEBUG", False)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "simple_history",
    "template_partials",
    "ninja",
    "catalog",
    "automations",
    "automations.metrics",
    "axes",
    "csp",
]

MIDDLEWARE = [
    # First: every request starts with a clean trace context (JSON logs' trace_id).
    "automations.metrics.tracecontext.TraceContextMiddleware",
    # Counts ingestion requests by outcome for /metrics (refused ones store nothing).
    "automations.metrics.instruments.IngestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "reviewapp.middleware.DatabaseUnavailableMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, as axes asks: it turns a refused log-in into the lock-out page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "reviewapp.urls"
WSGI_APPLICATION = "reviewapp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: DATABASE_URL, else SQLite under var/.
VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {"default": dj_database_url.config(default=f"sqlite:///{VAR_DIR / 'handrail.sqlite3'}")}
# PostgreSQL: psycopg's pool keeps connections open across requests and tasks (a new
# connection costs about 6 ms); a connection that broke while the server was away is
# discarded when returned, and its replacement is made in the background. `timeout`
# bounds how long a request waits for one (then: 503). The pool tries to reconnect after
# 1, 2, 4, 8 ... s; `reconnect_timeout` ends such a series after 5 s and the next request
# starts another, so that a server back after a long outage is used within seconds
# rather than after the next doubling.
DATABASE_POOL = {
    "min_size": 1,
    "max_size": envint("HANDRAIL_DB_POOL_SIZE", 10, minimum=1),
    "timeout": envint("HANDRAIL_DB_POOL_TIMEOUT", 5, minimum=1),
    "reconnect_timeout": 5,
}
DATABASE_PREPARED = envbool("HANDRAIL_DB_PREPARED", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "pool": DATABASE_POOL,
            # JIT compiling costs tens of milliseconds and pays off only for long
            # analytic queries; the console's queue counts cross its cost threshold.
            "options": "-c jit=off",
            # Parameters bound by the server, and statements prepared from their fifth use:
            # PostgreSQL then plans a decision's twenty-odd statements once per connection
            # rather than on every call (bench/pipeline.py --queries: its CPU per decision
            # 6.4 -> 4.6 ms). Behind a proxy that pools transactions: HANDRAIL_DB_PREPARED=0.
            "server_side_binding": DATABASE_PREPARED,
            "prepare_threshold": 5 if DATABASE_PREPARED else None,
        }
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "landing"  # the queues or the catalog, by role (catalog/landing.py)
LOGOUT_REDIRECT_URL = "login"

# Login throttling (django-axes). A user name with HANDRAIL_LOGIN_FAILURE_LIMIT failed
# log-ins, from any addresses, is locked out; so, separately, is an address with that many
# failures for any user names (one stops an attacker rotating addresses on one account, the
# other one address spraying many). The site's and the admin's login count together. A
# lock-out lasts until the failures are HANDRAIL_LOGIN_COOLOFF_MINUTES old; tries during it
# are refused without being counted, so it ends when the lock-out page says.
# `manage.py axes_reset` lifts every lock-out (axes_reset_username, axes_reset_ip: one).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out request
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = envint("HANDRAIL_LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=envint("HANDRAIL_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# A successful log-in clears nothing: axes would clear the address's failures too, so one
# account of an attacker's own would restart its count of guesses at other accounts.
AXES_RESET_ON_SUCCESS = False
# reviewapp/login_throttle.py reads the database handler's rows to say when a lock-out ends.
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_LOCKOUT_CALLABLE = "reviewapp.login_throttle.lockout_response"
# The client address is REMOTE_ADDR. Behind reverse proxies, set HANDRAIL_TRUSTED_PROXIES to
# how many there are: the address the outermost one saw (its X-Forwarded-For entry) counts
# instead. Only then, since anyone can send X-Forwarded-For; and Handrail must then be
# reachable only through them.
HANDRAIL_TRUSTED_PROXIES = envint("HANDRAIL_TRUSTED_PROXIES", 0)
AXES_CLIENT_IP_CALLABLE = "reviewapp.login_throttle.client_address"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))

# Security: HANDRAIL_HTTPS=1 behind TLS turns on the settings `check --deploy` asks for.
HTTPS = envbool("HANDRAIL_HTTPS", False)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp): pages run and style only what static/ serves. No
# inline <script>, <style>, style="" or on*= handlers in templates, no eval: htmx is told
# not to inject its indicator <style> nor to evaluate hx-on (templates/base.html).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
        "object-src": [NONE],
    }
}

# Celery (read by reviewapp/celery.py, the official Django recipe): Redis as broker
# when REDIS_URL is set; otherwise tasks run in process.
REDIS_URL = os.environ.get("REDIS_URL", "")
# In process (no REDIS_URL) Celery still opens an in-memory broker connection to
# serialise eager tasks; naming its host keeps kombu from warning about it.
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = envint("HANDRAIL_WORKER_PREFETCH", 4, minimum=1)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "handrail"
# Redis serves the lower priorities of a queue first (0, then 3, 6, 9): pipeline tasks wait
# at 5 (served with 3), the sweep and the runs it hands on go at 0, ahead of any backlog,
# so that recovery does not wait behind it.
CELERY_TASK_DEFAULT_PRIORITY = 5
HANDRAIL_RECOVERY_PRIORITY = 0
# Workers wait for a lost broker as long as it takes (Celery's default gives up after 100
# tries), and a request publishing while it is down gives up fast: the sweep sends later.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2}

# Cache (rate limits, lease bookkeeping): Redis when REDIS_URL is set.
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Models.
OPENAI_API_KEY = os.environ.get("OPENAI_API_KEY", "")
OPENAI_BASE_URL = os.environ.get("OPENAI_BASE_URL", "")
# USD per 1M tokens (input, output); unknown models cost the default row.
HANDRAIL_MODEL_PRICES = {
    "gpt-4.1": (Decimal("2.00"), Decimal("8.00")),
    "gpt-4.1-mini": (Decimal("0.40"), Decimal("1.60")),
    "gpt-4.1-nano": (Decimal("0.10"), Decimal("0.40")),
    "gpt-4o": (Decimal("2.50"), Decimal("10.00")),
    "gpt-4o-mini": (Decimal("0.15"), Decimal("0.60")),
    "default": (Decimal("1.00"), Decimal("4.00")),
}
# Hosts allowed to see unredacted PII of restricted automations.
HANDRAIL_PRIVATE_MODEL_HOSTS = envlist("HANDRAIL_PRIVATE_MODEL_HOSTS")

# Secrets by name: the variables an automation may name (api_key_env, secret_env) must
# match this whole; catalog/secret_env.py refuses Django's, the database's, the broker's
# and Handrail's own variables on top, whatever this says.
HANDRAIL_SECRET_ENV_ALLOWED = envregex(
    "HANDRAIL_SECRET_ENV_ALLOWED", r"^[A-Z][A-Z0-9_]*_(API_KEY|WEBHOOK_SECRET|SECRET)$"
)

# Outbound requests (model calls, webhook deliveries; automations/outbound.py) may not
# reach loopback, private, link-local (cloud metadata) or other internal addresses
# unless listed here: comma-separated host names, IP addresses or CIDR networks.
HANDRAIL_ALLOWED_PRIVATE_HOSTS = envlist("HANDRAIL_ALLOWED_PRIVATE_HOSTS")
for _network in (entry for entry in HANDRAIL_ALLOWED_PRIVATE_HOSTS if "/" in entry):
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"HANDRAIL_ALLOWED_PRIVATE_HOSTS: {_network!r} is not an IP network"
        ) from None
# They go out through httpx's own transport, or with `curl` through libcurl (pycurl),
# which costs less CPU per request when a worker makes many.
HANDRAIL_HTTP_TRANSPORT = os.environ.get("HANDRAIL_HTTP_TRANSPORT", "").strip().lower() or "httpx"
if HANDRAIL_HTTP_TRANSPORT not in ("httpx", "curl"):
    raise ImproperlyConfigured(
        f"HANDRAIL_HTTP_TRANSPORT must be httpx or curl, got {HANDRAIL_HTTP_TRANSPORT!r}"
    )

# Ingestion.
HANDRAIL_MAX_EVENT_BYTES = envint("HANDRAIL_MAX_EVENT_BYTES", 262144, minimum=1)
HANDRAIL_RATE_LIMIT_PER_MINUTE = envint("HANDRAIL_RATE_LIMIT_PER_MINUTE", 6000, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(2621440, HANDRAIL_MAX_EVENT_BYTES + 1)

# `make demo` serves a webhook receiver at /demo/hooks/ (never in production).
HANDRAIL_DEMO_RECEIVER = envbool("HANDRAIL_DEMO_RECEIVER", False)

# Decisions: how long a worker keeps an automation, its intents, rules and segment policies
# before reading them again (catalog/config_cache.py; switches and modes are always fresh).
HANDRAIL_CONFIG_CACHE_SECONDS = envint("HANDRAIL_CONFIG_CACHE_SECONDS", 5)

# Recovery: a run a lost message or a killed worker left behind is handed to a worker
# again within this many seconds (services/recovery.py; the sweep runs every sixth of it).
HANDRAIL_RECOVERY_SECONDS = envint("HANDRAIL_RECOVERY_SECONDS", 60, minimum=6)
CELERY_BEAT_SCHEDULE = {
    "sweep-overdue-runs": {
        "task": "automations.sweep",
        "schedule": HANDRAIL_RECOVERY_SECONDS / 6,
        # A sweep that could not start within half the bound is of no use to it; the
        # sweeps sent since then do its work.
        "options": {
            "priority": HANDRAIL_RECOVERY_PRIORITY,
            "expires": HANDRAIL_RECOVERY_SECONDS / 2,
        },
    },
    # Every trail entry is chained within a few seconds of its commit.
    "chain-trail": {
        "task": "catalog.chain_trail",
        "schedule": 1.0,
        "options": {"priority": HANDRAIL_RECOVERY_PRIORITY, "expires": 1.0},
    },
    "demote-segments": {"task": "catalog.demote_segments", "schedule": 300.0},
    # Newly finished autonomous runs join their automation's standing audit sample.
    "audit-standing-queue": {
        "task": "catalog.audit_standing_queue",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    # The dashboards' rollups take in what the pipeline did since the last minute.
    "metrics-rollup": {"task": "metrics.rollup", "schedule": 60.0, "options": {"expires": 60.0}},
    "metrics-drift": {
        "task": "metrics.check_drift",
        "schedule": 300.0,
        "options": {"expires": 300.0},
    },
}

# The tamper-evident trail (catalog/audit/trail.py): on unless turned off (benchmarks
# measure the pipeline with and without it).
HANDRAIL_TRAIL = envbool("HANDRAIL_TRAIL", True)

# Governance: promoting to autonomous needs this many reviewed cases in the window, with
# the override rate's Wilson 95 % upper bound at most this (catalog/governance/evidence.py).
HANDRAIL_PROMOTION_MIN_REVIEWS = envint("HANDRAIL_PROMOTION_MIN_REVIEWS", 200, minimum=1)
HANDRAIL_PROMOTION_WINDOW_DAYS = envint("HANDRAIL_PROMOTION_WINDOW_DAYS", 14, minimum=1)
HANDRAIL_PROMOTION_MAX_OVERRIDE = envfloat("HANDRAIL_PROMOTION_MAX_OVERRIDE", 0.05)

# Review.
HANDRAIL_REVIEW_LEASE_SECONDS = envint("HANDRAIL_REVIEW_LEASE_SECONDS", 600, minimum=1)

# Metrics (automations/metrics/). GET /metrics answers only with
# `Authorization: Bearer HANDRAIL_METRICS_TOKEN`; unset, it is off (404).
HANDRAIL_METRICS_TOKEN = os.environ.get("HANDRAIL_METRICS_TOKEN", "")
# Drift and alerts (automations/metrics/drift.py), checked every 5 minutes by Celery beat.
HANDRAIL_DRIFT_WINDOW_HOURS = envint("HANDRAIL_DRIFT_WINDOW_HOURS", 24, minimum=1)
HANDRAIL_DRIFT_BASELINE_DAYS = envint("HANDRAIL_DRIFT_BASELINE_DAYS", 7, minimum=1)
HANDRAIL_DRIFT_OVERRIDE_MARGIN = envfloat("HANDRAIL_DRIFT_OVERRIDE_MARGIN", 0.10)
HANDRAIL_DRIFT_MIN_REVIEWED = envint("HANDRAIL_DRIFT_MIN_REVIEWED", 30, minimum=1)
HANDRAIL_DRIFT_PSI_THRESHOLD = envfloat("HANDRAIL_DRIFT_PSI_THRESHOLD", 0.2, maximum=10.0)
# Calibrated: at 300 decisions per window, PSI >= 0.2 on a stationary distribution is
# rarer than 1 in 100 (tests/automations/test_metrics_drift.py); fewer alarm more often.
HANDRAIL_DRIFT_PSI_MIN_SAMPLE = envint("HANDRAIL_DRIFT_PSI_MIN_SAMPLE", 300, minimum=1)
HANDRAIL_ALERT_SPEND_SHARE = envfloat("HANDRAIL_ALERT_SPEND_SHARE", 0.8)

# Logs: JSON lines with the trace id of the work at hand (automations/metrics/jsonlog.py),
# or HANDRAIL_LOG_FORMAT=plain for text.
HANDRAIL_LOG_FORMAT = os.environ.get("HANDRAIL_LOG_FORMAT", "").strip().lower() or "json"
if HANDRAIL_LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(
        f"HANDRAIL_LOG_FORMAT must be json or plain, got {HANDRAIL_LOG_FORMAT!r}"
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "automations.metrics.jsonlog.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": HANDRAIL_LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # The HTTP clients log every request's URL at INFO: a receiver's URL may carry a
    # token, and the line costs the worker about 2 % of its CPU. Their warnings stay.
    "loggers": {
        name: {"level": "WARNING"} for name in ("httpx", "httpx2", "httpcore", "httpcore2")
    },
}
