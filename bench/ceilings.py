"""Ceilings benchmark: what this machine can do, next to the reference machine's figures.

Usage:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/ceilings.py [--seconds 10] [--tasks 5000] \\
        [--redis-url redis://127.0.0.1:6379/6]

Why: the development VMs differ by up to 2x between sessions and drift
within one. The targets of issues 3 and 4 were set against the reference
ceilings in ../shared/DESIGN.md ("What this machine can do"), so a figure of
bench/pipeline.py or bench/claims.py means something only next to this
machine's ceilings, measured the same hour.

What it measures, each against the reference figure:
- Python: `sum(i * i for i in range(3_000_000))`, process time, best of 3
  (DESIGN.md gives no reference: compare it between our own runs);
- PostgreSQL, in its own database `handrail_bench_ceilings` on the server of
  DATABASE_URL (dropped first and again at the end): pgbench TPC-B at 8
  clients for `--seconds` on scale 10 (reference 2,700 tps; issue 3 says
  ~3,000), and INSERT then `SELECT 1` over one autocommit psycopg
  connection, 2,000 each (reference means 0.5 and 0.12 ms);
- Celery on Redis, with a no-op task of this module's own Celery app (no
  Django, and without hiredis, as a stock celery[redis] has it): `--tasks`
  tasks enqueued by one producer with `apply_async` (reference 1,500
  tasks/s), then drained by
  `celery -A bench.ceilings worker --pool prefork -c 2` with `acks_late`
  (reference 800 tasks/s; issue 3 says ~830). The drain is timed from the
  first task taken (so the worker's start-up is left out) until the queue
  and Redis's `unacked` hash are both empty;
- Django 5.2 under gunicorn (2 sync workers, persistent connections):
  bench/django_ceiling_site.py, a one-query view (a user by primary key,
  reference 1,400 requests/s; issue 3 says ~1,250) and a constant one
  (reference 3,500), for `--seconds` each under wrk (1 thread, 8
  connections, on the same cores) after a 2-second warm-up. wrk is a
  Debian package (`apt-get install wrk`); without it these two are skipped.

Each line gives the ratio to the reference, >1 meaning faster (for
latencies reference/ours); the summary is the geometric mean per system.

Results: bench/README.md.
"""

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# The reference's Celery figures come from a stock celery[redis], whose redis-py
# parses and packs in Python. Handrail installs hiredis, which would flatter this
# machine here; hidden before redis is imported (here and in the worker, which
# imports this module first), redis-py falls back to its own parser.
sys.modules["hiredis"] = None

import redis.utils  # noqa: E402
from celery import Celery  # noqa: E402

if redis.utils.HIREDIS_AVAILABLE:
    raise RuntimeError("redis was imported before bench.ceilings could hide hiredis")

from bench._support import (  # noqa: E402 (after the path is set)
    ROOT,
    Children,
    CpuMeter,
    bench_database_urls,
    database_drop,
    database_recreate,
    descendants,
    free_port,
    log_tail,
    percentile,
    port_wait,
)

DB_NAME = "handrail_bench_ceilings"
QUEUE = "bench_ceilings"
REDIS_ENV = "HANDRAIL_BENCH_CEILINGS_REDIS_URL"
VAR = ROOT / "var"
REFERENCE = {
    "tpcb": 2700.0,
    "insert": 0.5,
    "select": 0.12,
    "enqueue": 1500.0,
    "drain": 800.0,
    "one_query": 1400.0,
    "constant": 3500.0,
}

# The worker imports this module as bench.ceilings and finds `app`; it reads the broker from
# the environment because it never sees our arguments.
app = Celery("bench_ceilings", broker=os.environ.get(REDIS_ENV, "redis://127.0.0.1:6379/6"))
app.conf.update(
    task_acks_late=True,
    task_default_queue=QUEUE,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
)


@app.task(name="bench_ceilings.noop")
def noop() -> None:
    """Nothing: what is left is Celery's and Redis's own cost per task."""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="pgbench and wrk run time")
    parser.add_argument("--tasks", type=int, default=5000, help="no-op tasks enqueued, drained")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/6")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for a drain")
    args = parser.parse_args(argv)
    if min(args.seconds, args.tasks) < 1:
        parser.error("--seconds and --tasks must be > 0")
    if not args.redis_url.startswith(("redis://127.0.0.1", "redis://localhost")):
        parser.error("--redis-url must point at 127.0.0.1")
    return args


def report(name: str, ours: str, reference: str, ratio: float | None) -> None:
    shown = "n/a" if ratio is None else f"x{ratio:.2f}"
    print(f"{name:<34} {ours:<50} {reference:<16} {shown}", flush=True)


# -- Python --------------------------------------------------------------------------------


def python_ceiling() -> None:
    best = math.inf
    for _ in range(3):
        start = time.process_time()
        sum(i * i for i in range(3_000_000))
        best = min(best, time.process_time() - start)
    report("Python loop, 3M squares", f"{best * 1000:.0f} ms (best of 3)", "none", None)


# -- PostgreSQL ----------------------------------------------------------------------------


def pgbench_ceiling(database_url: str, seconds: int) -> float | None:
    """TPC-B transactions/s at 8 clients, or None without pgbench."""
    pgbench = shutil.which("pgbench")
    if pgbench is None:
        print("pgbench is not on PATH: TPC-B skipped")
        return None
    run = dict(capture_output=True, text=True, check=False, timeout=seconds + 300)
    init = subprocess.run([pgbench, "-i", "-s", "10", "-q", database_url], **run)  # noqa: S603
    if init.returncode != 0:
        sys.exit(f"pgbench -i failed:\n{init.stderr[-3000:]}")
    bench = subprocess.run(  # noqa: S603
        [pgbench, "-c", "8", "-j", "2", "-T", str(seconds), database_url], **run
    )
    found = re.search(r"^tps = ([\d.]+)", bench.stdout, re.MULTILINE)
    if bench.returncode != 0 or not found:
        sys.exit(f"pgbench failed:\n{bench.stdout[-2000:]}{bench.stderr[-2000:]}")
    tps = float(found.group(1))
    ratio = tps / REFERENCE["tpcb"]
    report("PostgreSQL TPC-B, 8 clients", f"{tps:,.0f} tps", "2,700 tps", ratio)
    return ratio


def latency_ceiling(conn, name: str, sql: str, params, reference: float) -> float:
    """Time `sql` 2,000 times after a warm-up (which also lets psycopg prepare it)."""
    for _ in range(50):
        conn.execute(sql, params).fetchall()
    times = []
    for _ in range(2000):
        start = time.perf_counter()
        conn.execute(sql, params).fetchall()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    mean = sum(times) / len(times)
    ours = f"{mean:.3f} ms (p50 {percentile(times, 50):.3f}, p99 {percentile(times, 99):.3f})"
    report(name, ours, f"{reference} ms", reference / mean)
    return reference / mean


def postgres_ceilings(database_url: str, seconds: int) -> list[float]:
    import psycopg

    ratios = []
    tpcb = pgbench_ceiling(database_url, seconds)
    if tpcb is not None:
        ratios.append(tpcb)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE ceiling (id bigserial PRIMARY KEY, n integer NOT NULL)")
        # Autocommit: each INSERT is its own transaction, so every one waits for its WAL flush.
        insert = "INSERT INTO ceiling (n) VALUES (%s) RETURNING id"
        ratios.append(latency_ceiling(conn, "PostgreSQL INSERT+COMMIT", insert, (1,), 0.5))
        ratios.append(latency_ceiling(conn, "PostgreSQL SELECT 1", "SELECT 1", None, 0.12))
    return ratios


# -- Celery --------------------------------------------------------------------------------


def queue_purge(client) -> None:
    """Empty our queue and our leftovers in `unacked`; refuse a DB other consumers use."""
    client.delete(QUEUE)
    for tag, raw in client.hscan_iter("unacked"):
        if json.loads(raw)[2] == QUEUE:  # [message, exchange, routing key]
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)
    if client.hlen("unacked"):
        sys.exit("Redis's `unacked` hash holds other queues' messages: use a Redis DB of its own")


def enqueue_ceiling(count: int) -> float:
    noop.apply_async()  # connects and declares the queue before the clock starts
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        noop.apply_async()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    rate = count / elapsed
    ours = f"{rate:,.0f} tasks/s ({cpu / count * 1000:.2f} ms CPU each)"
    report("Celery enqueue, one producer", ours, "1,500 tasks/s", rate / REFERENCE["enqueue"])
    return rate / REFERENCE["enqueue"]


def worker_start(children: Children, redis_url: str) -> tuple:
    env = {
        **os.environ,
        REDIS_ENV: redis_url,
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
    }
    argv = [
        sys.executable, "-m", "celery", "-A", "bench.ceilings", "worker",
        "--pool", "prefork", "-c", "2",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
        "-Q", QUEUE, "--loglevel", "WARNING", "-n", f"bench-ceilings-{os.getpid()}@%h",
    ]  # fmt: skip
    log = VAR / "bench-ceilings-worker.log"
    return children.start(argv, env=env, log=log), log


def backlog(client) -> tuple[int, int]:
    """(messages waiting in the queue, messages taken but not acknowledged yet)."""
    pipe = client.pipeline(transaction=False)
    return tuple(pipe.llen(QUEUE).hlen("unacked").execute())


def drain_ceiling(client, children: Children, redis_url: str, timeout: float) -> float:
    total = sum(backlog(client))
    worker, log = worker_start(children, redis_url)
    meter = CpuMeter({"worker": lambda: descendants(worker.pid)})
    start = counted = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            sys.exit(f"the celery worker exited:\n{log_tail(log)}")
        waiting, unacked = backlog(client)
        now = time.monotonic()
        if start is None and waiting < total:
            # Tasks still waiting or taken at this moment are the ones we time.
            start, counted, cpu = now, waiting + unacked, meter.read()
        elif start is not None and waiting == 0 and unacked == 0:
            # A message is in neither between the worker's BRPOP and its HSET: look again.
            time.sleep(0.005)
            if backlog(client) == (0, 0):
                return drain_report(counted / (now - start), now - start, cpu, meter.read())
        time.sleep(0.002 if start is None else 0.02)
    sys.exit(f"the queue did not drain in {timeout:g} s:\n{log_tail(log)}")


def drain_report(rate: float, elapsed: float, before: dict, after: dict) -> float:
    worker = (after["worker"] - before["worker"]) / (rate * elapsed) * 1000
    busy = (after["machine"] - before["machine"]) / (elapsed * os.cpu_count()) * 100
    ours = f"{rate:,.0f} tasks/s ({worker:.2f} ms CPU each, CPUs {busy:.0f}% busy)"
    report("Celery drain, prefork -c 2", ours, "800 tasks/s", rate / REFERENCE["drain"])
    return rate / REFERENCE["drain"]


def celery_ceilings(args, children: Children) -> list[float]:
    import redis

    app.conf.broker_url = args.redis_url
    client = redis.Redis.from_url(args.redis_url)
    queue_purge(client)
    ratios = [enqueue_ceiling(args.tasks)]
    ratios.append(drain_ceiling(client, children, args.redis_url, args.timeout))
    return ratios


# -- Django --------------------------------------------------------------------------------


def wrk_rate(wrk: str, url: str, seconds: int) -> float:
    """Requests/s that wrk (1 thread, 8 connections, on the same cores) gets from `url`."""
    run = subprocess.run(  # noqa: S603
        [wrk, "-t1", "-c8", f"-d{seconds}s", url],
        capture_output=True,
        text=True,
        check=False,
        timeout=seconds + 60,
    )
    found = re.search(r"^Requests/sec:\s+([\d.]+)", run.stdout, re.MULTILINE)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", run.stdout)
    if run.returncode != 0 or not found or errors:
        sys.exit(f"wrk failed on {url}:\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
    return float(found.group(1))


def django_ceilings(database_url: str, children: Children, seconds: int) -> list[float]:
    """DESIGN.md's Django figures: bench/django_ceiling_site.py under gunicorn, 2 workers."""
    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk is not on PATH (Debian: apt-get install wrk): the Django ceilings skipped")
        return []
    env = {**os.environ, "CEILING_DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    subprocess.run(  # noqa: S603
        [sys.executable, "-m", "bench.django_ceiling_site"], cwd=ROOT, env=env, check=True
    )
    port = free_port()
    log = VAR / "bench-ceilings-django.log"
    argv = [
        str(Path(sys.executable).parent / "gunicorn"),
        "bench.django_ceiling_site:application",
        "--bind", f"127.0.0.1:{port}", "--workers", "2", "--log-level", "warning",
    ]  # fmt: skip
    server = children.start(argv, env=env, log=log)
    port_wait(port, timeout=60, process=server, log=log)
    ratios = []
    try:
        for path, name, reference in (
            ("one-query", "Django one-query view, 2 workers", "one_query"),
            ("constant", "Django constant view, 2 workers", "constant"),
        ):
            url = f"http://127.0.0.1:{port}/{path}"
            wrk_rate(wrk, url, 2)  # warm-up: imports, connections, prepared plans
            rate = wrk_rate(wrk, url, seconds)
            ratio = rate / REFERENCE[reference]
            report(name, f"{rate:,.0f} requests/s", f"{REFERENCE[reference]:,.0f} req/s", ratio)
            ratios.append(ratio)
    finally:
        children.stop(server)
    return ratios


# -- main ----------------------------------------------------------------------------------


def geometric_mean(ratios: list[float]) -> float:
    return math.exp(sum(math.log(r) for r in ratios) / len(ratios))


def main() -> None:
    args = parse_args()
    VAR.mkdir(exist_ok=True)
    database_url, admin_url = bench_database_urls(DB_NAME)
    children = Children()
    print(f"{os.cpu_count()} CPUs; ratio > 1: faster than the reference machine\n")
    print(f"{'ceiling':<34} {'this machine':<50} {'reference':<16} ratio")
    try:
        python_ceiling()
        database_recreate(admin_url, DB_NAME)
        postgres = postgres_ceilings(database_url, args.seconds)
        celery = celery_ceilings(args, children)
        django = django_ceilings(database_url, children, args.seconds)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping what this script started", file=sys.stderr)
        sys.exit(130)
    finally:
        children.stop_all()  # ignores further signals from here on
        database_drop(admin_url, DB_NAME)
    summary = f"PostgreSQL x{geometric_mean(postgres):.2f}, Celery x{geometric_mean(celery):.2f}"
    if django:
        summary += f", Django x{geometric_mean(django):.2f}"
    print(f"\nthis machine vs the reference: {summary}")


if __name__ == "__main__":
    main()
