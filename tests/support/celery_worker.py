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
CELERY = [sys.executable, "-m", "celery", "-A", "reviewapp"]


def database_url() -> str:
    """URL of the database this test session really uses (the test_ one)."""
    s = connection.settings_dict
    auth = quote(s["USER"] or "")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"])
    host = s["HOST"] or "127.0.0.1"
    port = s["PORT"] or 5432
    return f"postgres://{auth}@{host}:{port}/{s['NAME']}"


def worker_argv(
    name: str, *, pool: str = "solo", concurrency: int = 1, loglevel: str = "info"
) -> list[str]:
    """`celery -A reviewapp` arguments for one worker on the pipeline's queue, named `name@host`.

    Solo by default, as the README recommends; `concurrency` counts a prefork
    worker's children. The tests log at INFO (every task received and done,
    every delivery) to explain a failure; the benchmarks start their workers
    with it too, at the README's level.
    """
    return [
        "worker",
        "-Q",
        "handrail",
        "--pool",
        pool,
        *(["-c", str(concurrency)] if pool == "prefork" else []),
        "-l",
        loglevel,
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-n",
        f"{name}@%h",
    ]


class CeleryWorker:
    """The deployment the README recommends: `concurrency` solo worker processes.

    They compete for the same queue, as production's do, so the tests also see
    two consumers racing for a run.
    """

    def __init__(self, *, redis_url: str, env: dict[str, str], concurrency: int = 2):
        self.log_paths = [
            ROOT / "var" / f"test-worker-{os.getpid()}-{n}.log" for n in range(concurrency)
        ]
        self.log_paths[0].parent.mkdir(exist_ok=True)
        self.env = {
            **os.environ,
            **env,
            "DATABASE_URL": database_url(),
            "REDIS_URL": redis_url,
            "PYTHONUNBUFFERED": "1",
            # Tests change rules between runs: the workers read them afresh (no 5 s copy).
            "HANDRAIL_CONFIG_CACHE_SECONDS": "0",
        }
        self.processes: list[subprocess.Popen] = []
        self.logs: list = []

    def start(self, timeout: float = 60) -> None:
        subprocess.run(
            [*CELERY, "purge", "-f", "-Q", "handrail"],
            cwd=ROOT,
            env=self.env,
            check=False,
            capture_output=True,
            timeout=60,
        )
        for n, log_path in enumerate(self.log_paths):
            log = log_path.open("w")
            self.logs.append(log)
            self.processes.append(
                subprocess.Popen(
                    [*CELERY, *worker_argv(f"test-{os.getpid()}-{n}")],
                    cwd=ROOT,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        deadline = time.monotonic() + timeout
        for process, log_path in zip(self.processes, self.log_paths, strict=True):
            while " ready." not in log_path.read_text():
                if process.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"celery worker exited:\n{self.log_tail()}")
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"celery worker not ready in {timeout}s:\n{self.log_tail()}")
                time.sleep(0.2)

    def stop(self) -> None:
        running = [process for process in self.processes if process.poll() is None]
        for process in running:
            process.terminate()
        for process in running:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in self.logs:
            log.close()

    def log_tail(self, chars: int = 4000) -> str:
        return "\n".join(
            f"[worker {n}] {path.read_text()[-chars // len(self.log_paths) :]}"
            for n, path in enumerate(self.log_paths)
        )
