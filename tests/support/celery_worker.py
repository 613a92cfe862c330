"""Start a real Celery worker process against the test database and Redis.

The worker is a separate process, so it only sees committed rows: tests that
use it need `transactional_db`. It reads the same settings module with
DATABASE_URL pointing at pytest-django's test database.
"""

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
TEST_WEBHOOK_SECRET_ENV = "HANDRAIL_TEST_WEBHOOK_SECRET"


def database_url() -> str:
    """URL of the database this test session really uses (the test_ one)."""
    s = connection.settings_dict
    auth = quote(s["USER"] or "")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"])
    host = s["HOST"] or "127.0.0.1"
    port = s["PORT"] or 5432
    return f"postgres://{auth}@{host}:{port}/{s['NAME']}"


class CeleryWorker:
    def __init__(self, *, redis_url: str, env: dict[str, str], concurrency: int = 2):
        self.log_path = ROOT / "var" / f"test-worker-{os.getpid()}.log"
        self.log_path.parent.mkdir(exist_ok=True)
        self.env = {
            **os.environ,
            **env,
            "DATABASE_URL": database_url(),
            "REDIS_URL": redis_url,
            "PYTHONUNBUFFERED": "1",
        }
        self.concurrency = concurrency
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> None:
        subprocess.run(
            [sys.executable, "-m", "celery", "-A", "reviewapp", "purge", "-f", "-Q", "handrail"],
            cwd=ROOT,
            env=self.env,
            check=False,
            capture_output=True,
            timeout=60,
        )
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "reviewapp",
                "worker",
                "-Q",
                "handrail",
                "-c",
                str(self.concurrency),
                "--pool",
                "prefork",
                "-l",
                "info",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"test-{os.getpid()}@%h",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited:\n{self.log_path.read_text()[-3000:]}")
            if " ready." in self.log_path.read_text():
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"celery worker not ready in {timeout}s:\n{self.log_path.read_text()[-3000:]}"
        )

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if getattr(self, "log", None):
            self.log.close()

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text()[-chars:]
