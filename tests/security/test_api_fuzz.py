"""Schemathesis with all its checks against the API under a real gunicorn (PostgreSQL).

Every operation is fuzzed with at most MAX_EXAMPLES cases per phase: schema-valid
bodies must be accepted (ST202), invalid ones refused, every answer must match the
schema, no 500s, no undocumented status codes. The fuzzer posts to a real automation
with a real token; the events it stores are decided in the server process (no REDIS_URL
reaches it), by the rules provider, which sends them to review.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.db import connection

from catalog.tokens import token_issue
from tests.factories import AutomationFactory, RunFactory
from tests.support.celery_worker import database_url
from tests.support.gunicorn_server import GunicornServer

MAX_EXAMPLES = 50
TIME_LIMIT_SECONDS = 100
SCHEMATHESIS = [sys.executable, "-m", "schemathesis.cli"]

CONFIG = """
[[operations]]
include-name = "POST /api/v1/automations/{{slug}}/events"
parameters = {{ "path.slug" = "{slug}" }}

[[operations]]
include-name = "GET /api/v1/runs/{{run_id}}"
parameters = {{ "path.run_id" = "{run_id}" }}
"""


@pytest.fixture
def server(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL): the server shares the test database")
    env = {"DATABASE_URL": database_url(), "HANDRAIL_RATE_LIMIT_PER_MINUTE": "1000000"}
    with GunicornServer(env=env) as running:
        yield running


@pytest.mark.postgres
def test_schemathesis_finds_nothing_with_all_checks(server):
    automation = AutomationFactory(slug="support-triage")
    run = RunFactory(event__automation=automation)
    _, token = token_issue(name="fuzzer", automations=[automation])

    with tempfile.TemporaryDirectory(prefix="hr-fuzz-") as directory:
        config = Path(directory) / "schemathesis.toml"
        config.write_text(CONFIG.format(slug=automation.slug, run_id=run.pk))
        argv = [
            *(*SCHEMATHESIS, "--config-file", str(config), "--no-color", "run"),
            f"{server.url}/api/v1/openapi.json",
            *("--checks", "all", "--max-examples", str(MAX_EXAMPLES)),
            *("--header", f"Authorization: Bearer {token}"),
            *("--generation-database", "none", "--request-timeout", "20"),
        ]
        # Its own working directory: schemathesis keeps a cache in the current one.
        finished = subprocess.run(
            argv, cwd=directory, capture_output=True, text=True, timeout=TIME_LIMIT_SECONDS
        )

    report = finished.stdout + finished.stderr
    assert finished.returncode == 0, f"{report}\n--- gunicorn ---\n{server.log_tail()}"
    assert "No issues found" in report, report
