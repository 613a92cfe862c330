"""`manage.py check --deploy` passes with production-like variables and warns without TLS."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture
def production_env(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HANDRAIL_", "DJANGO_")) and key not in ("DEBUG", "REDIS_URL")
    }
    env.update(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(45)[:60],
        ALLOWED_HOSTS="handrail.example.com",
        HANDRAIL_HTTPS="1",
        HANDRAIL_VAR_DIR=str(tmp_path / "var"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
        DJANGO_SETTINGS_MODULE="reviewapp.settings",
    )
    return env


def deploy_check(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_deploy_check_passes_with_production_settings(production_env):
    result = deploy_check(production_env)

    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_check_warns_without_https(production_env):
    del production_env["HANDRAIL_HTTPS"]

    result = deploy_check(production_env)

    assert result.returncode != 0
    assert "SECURE_SSL_REDIRECT" in result.stderr + result.stdout
