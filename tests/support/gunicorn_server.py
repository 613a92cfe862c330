"""Run Handrail under a real gunicorn, as the README's "Running it" command does.

with GunicornServer(env={"DATABASE_URL": database_url()}) as server:
    server.url            # http://127.0.0.1:PORT, an ephemeral port gunicorn chose
    server.request(b"GET / HTTP/1.1\\r\\n...")   # raw bytes in, raw response bytes out

No REDIS_URL reaches the server unless `env` names one, so its Celery tasks run in
process. The server is a separate process: it only sees committed rows (tests that
use it with the database need `transactional_db`).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = "reviewapp/gunicorn.conf.py"
LISTENING_RE = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)")


class GunicornServer:
    """One sync gunicorn worker on 127.0.0.1 with reviewapp/gunicorn.conf.py."""

    def __init__(self, *, env: dict[str, str] | None = None, workers: int = 1):
        # Short: gunicorn's control socket goes under it, and socket paths are limited to 108.
        self.directory = Path(tempfile.mkdtemp(prefix="hr-gunicorn-"))
        self.log_path = self.directory / "gunicorn.log"
        inherited = {
            name: value
            for name, value in os.environ.items()
            if name not in ("DATABASE_URL", "REDIS_URL")
        }
        self.env = {
            **inherited,
            # Without DATABASE_URL the settings fall back to SQLite here, never to var/.
            "HANDRAIL_VAR_DIR": str(self.directory),
            "XDG_RUNTIME_DIR": str(self.directory),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.argv = [
            *(sys.executable, "-m", "gunicorn", "-c", CONFIG),
            *("--bind", "127.0.0.1:0", "--workers", str(workers), "--timeout", "60"),
        ]
        self.process: subprocess.Popen | None = None
        self.port = 0

    def __enter__(self) -> GunicornServer:
        try:
            self.start()
        except BaseException:
            shutil.rmtree(self.directory, ignore_errors=True)
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Stop gunicorn and remove its directory, log included."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while True:
            log_text = self.log_path.read_text()
            if (match := LISTENING_RE.search(log_text)) and "Booting worker" in log_text:
                self.port = int(match.group(1))
                break
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gunicorn did not start:\n{self.log_tail()}")
            time.sleep(0.1)
        self._wait_until_answering(deadline)

    def _wait_until_answering(self, deadline: float) -> None:
        # The worker imports Django after it boots: wait until it answers a request.
        while True:
            try:
                if self.request(b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gunicorn does not answer:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop gunicorn; its log stays readable until the context manager exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def request(self, raw: bytes, timeout: float = 30) -> bytes:
        """Send `raw` as is on a new connection; the whole response, read until gunicorn closes."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as connection:
            connection.sendall(raw)
            connection.shutdown(socket.SHUT_WR)
            chunks = []
            while chunk := connection.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text()[-chars:]
        except OSError:
            return "(no log)"
