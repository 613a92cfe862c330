"""Start a real Celery worker process against the test database and Redis.

The worker is a separate process, so it only sees committed rows: tests that
use it need `transactional_db`. It reads the same settings module with
DATABASE_URL pointing at pytest-django's test database.
"""

import os
import signal
import socket
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
    two consumers racing for a run. `kill(n)` and `restart(n)` let a test lose
    one of them the hard way and bring it back.
    """

    def __init__(
        self,
        *,
        redis_url: str,
        env: dict[str, str],
        concurrency: int = 2,
        name: str = "test",
        log_dir: Path | None = None,
    ):
        log_dir = log_dir or ROOT / "var"
        self.name = name
        self.log_paths = [
            log_dir / f"{name}-worker-{os.getpid()}-{n}.log" for n in range(concurrency)
        ]
        log_dir.mkdir(exist_ok=True)
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
        offsets = [self._spawn(n) for n in range(len(self.log_paths))]
        deadline = time.monotonic() + timeout
        for n, offset in enumerate(offsets):
            self._wait_ready(n, offset, deadline, timeout)

    def _spawn(self, n: int) -> int:
        """Start worker `n` (appending to its log); the log's length before it started."""
        log = self.log_paths[n].open("a")
        offset = log.tell()
        process = subprocess.Popen(
            [*CELERY, *worker_argv(f"{self.name}-{os.getpid()}-{n}")],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        if n < len(self.processes):
            self.logs[n].close()
            self.processes[n], self.logs[n] = process, log
        else:
            self.processes.append(process)
            self.logs.append(log)
        return offset

    def _wait_ready(self, n: int, offset: int, deadline: float, timeout: float) -> None:
        process, log_path = self.processes[n], self.log_paths[n]
        while " ready." not in log_path.read_text()[offset:]:
            if process.poll() is not None:
                self.stop()
                raise RuntimeError(f"celery worker exited:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"celery worker not ready in {timeout}s:\n{self.log_tail()}")
            time.sleep(0.2)

    def actor(self, n: int) -> str:
        """What worker `n` records as `held_by` on the runs it holds (runs.worker_actor)."""
        return f"worker:{socket.gethostname()}:{self.processes[n].pid}"

    def kill(self, n: int) -> str:
        """SIGKILL worker `n`, as the kernel's OOM killer or a lost machine would; its actor."""
        actor = self.actor(n)
        self.processes[n].send_signal(signal.SIGKILL)
        self.processes[n].wait()
        return actor

    def restart(self, n: int, timeout: float = 60) -> None:
        """Start worker `n` again (after `kill`) and wait until it consumes."""
        offset = self._spawn(n)
        self._wait_ready(n, offset, time.monotonic() + timeout, timeout)

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


class CeleryBeat:
    """`celery -A reviewapp beat`: the schedule that runs the sweep (settings CELERY_BEAT_SCHEDULE).

    Its schedule file goes to `directory`, which the caller owns.
    """

    def __init__(self, *, env: dict[str, str], directory: Path):
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.directory = directory
        self.log_path = directory / "beat.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> None:
        argv = [*CELERY, "beat", "-l", "info", "-s", str(self.directory / "beat-schedule")]
        with self.log_path.open("a") as log:
            offset = log.tell()
            self.process = subprocess.Popen(
                argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        # Logged once beat has loaded its schedule and is about to send the first sweep.
        while "beat: Starting..." not in self.log_path.read_text()[offset:]:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"celery beat did not start:\n{self.log_tail()}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text()[-chars:]
        except OSError:
            return "(no log)"
