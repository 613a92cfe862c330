"""Helpers shared by the benchmarks: a throwaway database, child processes, CPU, percentiles."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests.support.private_servers import free_port  # noqa: F401 (the benchmarks' import)

ROOT = Path(__file__).resolve().parent.parent

# The arguments schema of the benchmarks' one intent, route_ticket.
ROUTE_SCHEMA = {
    "type": "object",
    "properties": {
        "team": {"type": "string", "enum": ["billing", "technical", "sales"]},
        "priority": {"type": "string", "enum": ["p1", "p2", "p3"]},
    },
    "required": ["team", "priority"],
    "additionalProperties": False,
}


def bench_database_urls(db_name: str) -> tuple[str, str]:
    """(URL of the bench database, URL of the server's maintenance database) from DATABASE_URL."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("set DATABASE_URL=postgres://USER@HOST:PORT/ANY to a PostgreSQL server")
    parts = urlsplit(url)
    return (
        urlunsplit(parts._replace(path=f"/{db_name}")),
        urlunsplit(parts._replace(path="/postgres")),
    )


def database_drop(admin_url: str, db_name: str) -> None:
    """Drop the bench database if it exists, whoever is still connected to it."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def database_recreate(admin_url: str, db_name: str) -> None:
    """Drop the bench database if it exists and create it empty."""
    import psycopg

    database_drop(admin_url, db_name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')


def port_wait(port: int, *, timeout: float, process: subprocess.Popen, log: Path) -> None:
    """Wait until something accepts connections on 127.0.0.1:`port`; exit if `process` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{process.args[0]} exited:\n{log_tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing listens on port {port} after {timeout} s:\n{log_tail(log)}")


def log_tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


class Children:
    """Child processes started in their own session, stopped (TERM, then KILL) on exit or signal."""

    def __init__(self):
        self.processes: list[subprocess.Popen] = []
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def start(self, argv: list[str], *, env: dict, log: Path) -> subprocess.Popen:
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603 (our own commands)
                argv,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def stop(self, process: subprocess.Popen, timeout: float = 15) -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if process in self.processes:
            self.processes.remove(process)

    def stop_all(self) -> None:
        # A second Ctrl-C (or the whole process group's signal) must not cut the cleanup short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for process in reversed(list(self.processes)):
            self.stop(process)

    def _on_signal(self, signum, frame):
        # Once: further signals (Ctrl-C reaches the whole process group) would cut the
        # cleanup short. Raised in the main thread; the caller's `finally` stops every child.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt(f"signal {signum}")


def percentile(sorted_values: list[float], q: float) -> float:
    """The nearest-rank percentile of already sorted values (nan when empty)."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


class CpuMeter:
    """CPU seconds used by process groups, read from /proc (Linux)."""

    def __init__(self, groups: dict[str, callable]):
        self.groups = groups
        self.tick = os.sysconf("SC_CLK_TCK")

    def read(self) -> dict[str, float]:
        used = {name: sum(self._cpu(pid) for pid in pids()) for name, pids in self.groups.items()}
        used["machine"] = self._machine()
        return used

    def _machine(self) -> float:
        # Busy time of all CPUs: user, nice, system, irq, softirq, steal.
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        ticks = [int(x) for x in fields]
        return (sum(ticks[0:3]) + sum(ticks[5:8])) / self.tick

    def _cpu(self, pid: int) -> float:
        return process_cpu(pid, self.tick)


def process_cpu(pid: int, tick: int | None = None) -> float:
    """CPU seconds (user + system) process `pid` has used so far; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / (tick or os.sysconf("SC_CLK_TCK"))


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def postgres_backends(db_name: str) -> list[int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [db_name])
        return [row[0] for row in cursor.fetchall()]
