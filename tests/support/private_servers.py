"""Private Redis and PostgreSQL servers on spare ports, to stop and start at will.

The shared servers (127.0.0.1:6379 and :5432) belong to everyone on the
machine and must never be restarted; these belong to whoever started them.

    with RedisServer() as redis_server:
        redis_server.url(3)                 # redis://127.0.0.1:PORT/3
        redis_server.restart(down_seconds=2)  # everything it held is gone (no persistence)

    with PostgresServer() as postgres:     # initdb into a temporary directory
        postgres.create_database("bench")
        postgres.url("bench")
        postgres.stop(); postgres.start()  # a fast shutdown, then up again
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

POSTGRES_BIN = Path(os.environ.get("HANDRAIL_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
SHARED_PORTS = frozenset({5432, 6379})


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (never a shared server's)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in SHARED_PORTS:
            return port


def accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait(probe, *, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{what} not within {timeout} s\n{tail}".rstrip())
        time.sleep(0.05)


class RedisServer:
    """`redis-server` on a spare port of 127.0.0.1 without persistence: a restart empties it."""

    def __init__(self, *, directory: Path | None = None):
        self._own_directory = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="hr-redis-"))
        self.port = free_port()
        self.log_path = self.directory / f"redis-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 10) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 (a fixed command)
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        _wait(lambda: self._answers(), timeout=timeout, what="redis-server", log=self.log_path)

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"redis-server exited:\n{self.log_path.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, timeout: float = 10) -> None:
        """Shut the server down (SIGTERM: SHUTDOWN, nothing saved)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self, *, down_seconds: float = 0) -> float:
        """Stop, stay down `down_seconds`, start on the same port; when (monotonic) it was back."""
        self.stop()
        time.sleep(down_seconds)
        self.start()
        return time.monotonic()

    def close(self) -> None:
        self.stop()
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)


class PostgresServer:
    """A PostgreSQL cluster of its own (initdb) in a temporary directory, on a spare port.

    initdb refuses to run as root: as root, the directory goes to the `postgres`
    user and every server command runs through `runuser -u postgres --`.
    """

    def __init__(self, *, bin_dir: Path = POSTGRES_BIN):
        self.bin_dir = bin_dir
        self.directory = Path(tempfile.mkdtemp(prefix="hr-pg-"))
        self.data = self.directory / "data"
        self.log_path = self.directory / "postgres.log"
        self.port = free_port()
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.initialised = False

    def __enter__(self) -> PostgresServer:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def url(self, db: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def _run(self, *argv: str, timeout: float = 120) -> None:
        result = subprocess.run(  # noqa: S603 (PostgreSQL's own programs)
            [*self._as_postgres, str(self.bin_dir / argv[0]), *argv[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed:\n{result.stdout}{result.stderr}")

    def _initdb(self) -> None:
        if self._as_postgres:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-sync", "--no-instructions",
        )  # fmt: skip
        self.initialised = True

    def start(self, timeout: float = 60) -> float:
        """Start the server (initdb first, once); when (monotonic) it accepted connections."""
        if not self.initialised:
            self._initdb()
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory}"
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-o", options,
            "-w", "-t", str(int(timeout)), "start",
        )  # fmt: skip
        _wait(lambda: accepts_connections(self.port), timeout=timeout, what="PostgreSQL")
        return time.monotonic()

    def stop(self, *, mode: str = "fast", timeout: float = 60) -> None:
        """Shut down (`fast`: clients are disconnected, open transactions roll back)."""
        if self.initialised and (self.data / "postmaster.pid").exists():
            wait = ("-w", "-t", str(int(timeout)))
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, *wait, "stop")

    def restart(self, *, down_seconds: float = 0) -> float:
        """Fast shutdown, `down_seconds` down, start again; when (monotonic) it was back."""
        self.stop()
        time.sleep(down_seconds)
        return self.start()

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.stop(mode="immediate", timeout=30)  # the directory goes anyway
        shutil.rmtree(self.directory, ignore_errors=True)
