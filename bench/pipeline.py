"""Pipeline benchmark: events through ingest → decide → autonomous action, end to end.

Usage:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/pipeline.py [--events 2000] [--paced-events 500] [--rate 50] \\
        [--provider openai|rules] [--redis-url redis://127.0.0.1:6379/4] \\
        [--gunicorn-workers 1] [--concurrency 2] [--pool solo|prefork] [--producers 4] \\
        [--drain TASKS_PER_S] [--profile] [--queries]

What it starts (all on 127.0.0.1, all stopped on exit, Ctrl-C included):
- its own PostgreSQL database `handrail_bench_pipeline` on the server of
  DATABASE_URL (dropped and created again, then migrated; `--db-name`);
- a scripted OpenAI-compatible model server answering at once, reached
  through the real `openai` SDK provider (`--provider rules` skips the model),
  and a Standard Webhooks receiver answering 200 at once, both in a child
  process of their own so they do not share this script's GIL, both lean
  asyncio servers (bench/_stand_ins.py) so they take little of the cores;
- the Django app under gunicorn (`--gunicorn-workers` sync workers; one
  takes events about twice as fast as two Celery workers decide them, and a
  second only competes with them for the 2 cores);
- `--concurrency` solo Celery workers (`celery -A reviewapp worker --pool
  solo`, the README's deployment), each fetching and running its own tasks,
  on `--redis-url` (Redis DB 4 by default; its queue is purged first); with
  `--pool prefork`, one prefork worker with `--concurrency` children instead.

One automation in autonomous mode with one low-risk intent whose action is a
signed webhook to the receiver. After a short warm-up it runs two phases:

(a) max throughput: `--events` events POSTed to the ingestion API by
    `--producers` threads as fast as gunicorn takes them;
(b) paced: `--paced-events` events offered at `--rate` events/s by an
    open-loop producer (each event has its own send time).

For each phase it waits (at most `--timeout` seconds) until every run has
left the pipeline, then prints:
- decisions/s sustained end to end: executed runs / (last `executed`
  transition - first POST);
- the platform's overhead per decision, p50/p95/p99: for each run, the time
  from the event's `received_at` to its `executed` transition, minus the
  model's latency (ModelCall.latency_ms) and minus the time spent waiting on
  the webhook receiver (ActionAttempt.duration_ms). Both are whole
  milliseconds rounded down, so the overhead is overstated by up to 2 ms;
- the overhead split by stage: queue wait until the decision starts, the
  decision's own work (up to the `executing` transition it commits, with
  the first attempt reserved), then the hop to the sending task and the
  sending's own work together (the reserved attempt is stamped at the
  decision, so the hop cannot be told apart);
- the API's answer time as the producer saw it, and CPU seconds per
  decision of each process group (from /proc), which says where the 2 cores
  went.
It then checks the invariants: every run `executed`, one action per run, the
receiver saw exactly one successful delivery per action (distinct
`webhook-id`s, no duplicates) and every signature verifies. Exit status 1 if
any check fails.

`--profile` runs the workers (prefork: their children) under cProfile and
prints the top functions. `--queries` skips the benchmark and prints the SQL
queries, the transactions and the CPU time of each step of one decision,
run in process `--events` times, with the CPU its PostgreSQL backend spent
on the step's statements.

Reading the figures: the development VMs differ by 2x between sessions and
drift within one, so a decisions/s figure means something only next to
bench/ceilings.py's Celery no-op drain measured just before and after it.
A decision is 2 Celery tasks (decide, send), so the target (issue 20) is
decisions/s >= 25% of drain / 2; `--drain` takes the drain ceilings.py just
printed and prints the target next to the figure. The pipeline is
CPU-bound, so the 2 cores cap it at 2,000 ms / (CPU ms per decision) times
how busy they are: the CPU line says which process group to work on. Only
alternating runs (A, B, A, B ...) settle what a change is worth. Targets
and the latest figures are in bench/README.md; what each session measured
and tried, and where the time went, in bench/pipeline-history.md.
"""

import argparse
import contextlib
import cProfile
import gc
import json
import os
import pstats
import secrets
import socket
import sys
import threading
import time
from collections import Counter
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import (  # noqa: E402 (after the path is set)
    ROOT,
    ROUTE_SCHEMA,
    Children,
    CpuMeter,
    bench_database_urls,
    database_recreate,
    descendants,
    free_port,
    log_tail,
    percentile,
    port_wait,
    postgres_backends,
    process_cpu,
)

SLUG = "bench-pipeline"
SECRET_ENV = "HANDRAIL_BENCH_WEBHOOK_SECRET"
DECISION = {
    "intent": "route_ticket",
    "arguments": {"team": "billing", "priority": "p2"},
    "confidence": 0.93,
    "rationale": "Invoice question.",
}
IN_FLIGHT_STATES = ("received", "deciding", "approved", "executing")
VAR = ROOT / "var"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="events at max throughput")
    parser.add_argument("--paced-events", type=int, default=500, help="events at --rate")
    parser.add_argument("--rate", type=float, default=50.0, help="offered events/s, paced phase")
    parser.add_argument("--warmup", type=int, default=40, help="events before measuring")
    parser.add_argument("--provider", choices=("openai", "rules"), default="openai")
    parser.add_argument("--producers", type=int, default=4, help="posting threads, phase (a)")
    parser.add_argument("--gunicorn-workers", type=int, default=1)
    parser.add_argument(
        "--concurrency", type=int, default=2, help="solo workers, or celery prefork processes"
    )
    parser.add_argument(
        "--pool",
        choices=("solo", "prefork"),
        default="solo",
        help="--concurrency solo workers (the README's deployment), or one prefork worker",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/4")
    parser.add_argument("--db-name", default="handrail_bench_pipeline")
    parser.add_argument(
        "--drain", type=float, default=0.0, help="ceilings.py's no-op drain, tasks/s (target)"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait per phase")
    parser.add_argument("--profile", action="store_true", help="cProfile the workers' tasks")
    parser.add_argument("--queries", action="store_true", help="count queries of one decision")
    args = parser.parse_args(argv)
    if min(args.events, args.paced_events, args.producers, args.concurrency) < 1 or args.rate <= 0:
        parser.error("--events, --paced-events, --producers, --concurrency and --rate must be > 0")
    return args


# -- the model server and the webhook receiver, in a child process --------------------------


def servers_main(conn, secret: str) -> None:
    """Serve the scripted model and the receiver until told to stop; report what was received."""
    import signal

    from standardwebhooks.webhooks import Webhook

    from bench._stand_ins import Receiver, ScriptedModel
    from tests.support.model_server import completion

    # Ctrl-C reaches the whole process group: the parent decides when this one stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    model, receiver = ScriptedModel(completion(DECISION).body), Receiver()
    conn.send({"model_url": model.base_url, "hook_url": receiver.server.url("/hooks/route")})
    while True:
        command = conn.recv()
        if command == "stop":
            return
        deliveries = list(receiver.deliveries)
        ok = Counter(headers.get("webhook-id") for headers, _ in deliveries)
        bad = 0
        for headers, body in deliveries:
            try:
                Webhook(secret).verify(body, headers)
            except Exception:  # any verification failure counts
                bad += 1
        conn.send(
            {
                "deliveries": len(deliveries),
                "ok_ids": dict(ok),
                "bad_signatures": bad,
                "model_requests": model.requests,
            }
        )


# -- the worker wrapper that profiles its children ---------------------------------------------


def profiled_worker_main(out_dir: str, celery_argv: list[str]) -> None:
    """Run `celery worker` under cProfile, dumped when it exits.

    A solo worker is profiled whole (it runs its tasks itself); a prefork
    worker, each of its children.
    """
    from celery import signals

    from reviewapp.celery import app

    # CPU time, not wall time: on 2 cores the question is where the CPU goes.
    profiler = cProfile.Profile(time.process_time)
    solo = "solo" in celery_argv
    started = signals.worker_ready if solo else signals.worker_process_init
    stopped = signals.worker_shutdown if solo else signals.worker_process_shutdown

    @started.connect(weak=False)
    def start(**kwargs):
        profiler.enable()

    @stopped.connect(weak=False)
    def dump(**kwargs):
        profiler.disable()
        profiler.dump_stats(os.path.join(out_dir, f"worker-{os.getpid()}.prof"))

    app.worker_main(argv=celery_argv)


# -- setup ------------------------------------------------------------------------------------


def django_setup(database_url: str, redis_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ["REDIS_URL"] = redis_url
    # As for the servers (child_env): --queries ingests its --events in process, and
    # runs a minute apart would otherwise share one window of the token's rate limit.
    os.environ["HANDRAIL_RATE_LIMIT_PER_MINUTE"] = "100000000"
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # the workers' level (worker_start)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
    import django

    django.setup()


def catalog_create(*, provider: str, model_url: str, hook_url: str) -> str:
    """The automation, its intent and an API token; returns the raw token."""
    from django.contrib.auth.models import User

    from catalog.models import Automation, Intent, SegmentPolicy
    from catalog.tokens import token_issue

    owner = User.objects.create(username="bench-owner")
    automation = Automation.objects.create(
        slug=SLUG,
        name="Bench pipeline",
        owner=owner,
        purpose="benchmark",
        rollback_plan="none",
        risk_tier="low",
        data_classification="internal",
        mode="autonomous",
        min_confidence=0.7,
        latency_budget_ms=5000,
        daily_budget_usd=1_000_000,
        provider=provider,
        model="gpt-4.1-mini",
        base_url=model_url,
        api_key_env="OPENAI_API_KEY",
        instructions="You triage customer support tickets. Pick exactly one intent.",
        rules=[
            {
                "when": {"field": "payload.body", "contains": "invoice"},
                "intent": "route_ticket",
                "arguments": DECISION["arguments"],
                "confidence": 0.95,
            }
        ],
    )
    Intent.objects.create(
        automation=automation,
        name="route_ticket",
        description="Send the ticket to a team queue.",
        risk="low",
        arguments_schema=ROUTE_SCHEMA,
        action_adapter="webhook",
        action_config={"url": hook_url, "secret_env": SECRET_ENV, "timeout_seconds": 5},
    )
    SegmentPolicy.objects.create(automation=automation, key="enterprise", enabled=True)
    _, raw = token_issue(name="bench")
    return raw


def child_env(args, database_url: str, secret: str) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": args.redis_url,
        "DJANGO_SETTINGS_MODULE": "reviewapp.settings",
        "OPENAI_API_KEY": "bench-key",
        SECRET_ENV: secret,
        "HANDRAIL_RATE_LIMIT_PER_MINUTE": "100000000",
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "WARNING",
    }


def worker_start(children: Children, args, env: dict, profile_dir: Path | None) -> list:
    """Start the Celery worker(s): --concurrency solo workers, or one prefork worker."""
    import subprocess

    from tests.support.celery_worker import CELERY, worker_argv

    subprocess.run(  # noqa: S603
        [*CELERY, "purge", "-f", "-Q", "handrail"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=False,
        timeout=60,
    )
    count = args.concurrency if args.pool == "solo" else 1
    started = []
    for n in range(count):
        # At Celery's default level, WARNING, as the README's command runs them: the
        # tests' INFO lines (each task received and done, each delivery) cost a worker
        # about 4 % of its CPU.
        worker_args = worker_argv(
            f"bench-pipeline-{os.getpid()}-{n}",
            pool=args.pool,
            concurrency=args.concurrency,
            loglevel="warning",
        )
        if profile_dir is not None:
            argv = [sys.executable, __file__, "--worker-profiled", str(profile_dir), *worker_args]
        else:
            argv = [*CELERY, *worker_args]
        log = VAR / f"bench-pipeline-worker-{n}.log"
        started.append((children.start(argv, env=env, log=log), log))
    consumers_wait(args.redis_url, count, started)
    return [process for process, _ in started]


def consumers_wait(redis_url: str, count: int, started: list, timeout: float = 60) -> None:
    """Wait until `count` workers block on the queue (their "ready." line is INFO, not logged)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    db = client.connection_pool.connection_kwargs.get("db", 0)
    deadline = time.monotonic() + timeout
    while True:
        waiting = [c for c in client.client_list() if c["cmd"] == "brpop" and int(c["db"]) == db]
        if len(waiting) >= count:
            client.close()
            return
        for process, log in started:
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the celery worker did not start:\n{log_tail(log)}")
        time.sleep(0.2)


def gunicorn_start(children: Children, args, env: dict) -> tuple:
    port = free_port()
    log = VAR / "bench-pipeline-gunicorn.log"
    argv = [
        str(Path(sys.executable).parent / "gunicorn"),
        "reviewapp.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(args.gunicorn_workers),
        "--worker-class",
        "sync",
        "--backlog",
        "256",
        "--log-level",
        "warning",
    ]
    process = children.start(argv, env=env, log=log)
    port_wait(port, timeout=60, process=process, log=log)
    return process, port


# -- producers --------------------------------------------------------------------------------


class Poster:
    """POSTs events to the API, one connection each (gunicorn's sync workers close it anyway).

    A raw socket with the request bytes built here: http.client parses every
    answer's headers through the email package, which cost the producer, on
    the platform's cores, more than the answer is worth.
    """

    def __init__(self, port: int, token: str):
        self.port = port
        self.head = (
            f"POST /api/v1/automations/{SLUG}/events HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nConnection: close\r\n"
        )

    def post(self, key: str, number: int) -> tuple[int, int | None, float]:
        """(status, run id, seconds the API took to answer)."""
        body = json.dumps(
            {
                "idempotency_key": key,
                "segment": "enterprise" if number % 2 else "",
                "source": "bench",
                "payload": {"subject": f"Invoice {number}", "body": "Where is my invoice?"},
            }
        ).encode()
        request = f"{self.head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        started = time.perf_counter()
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
                sock.sendall(request)
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError:
            return 0, None, time.perf_counter() - started
        elapsed = time.perf_counter() - started
        answer = b"".join(chunks)
        head, _, data = answer.partition(b"\r\n\r\n")
        try:
            status = int(head.split(b" ", 2)[1])
        except (IndexError, ValueError):
            return 0, None, elapsed
        run_id = json.loads(data)["run_id"] if status in (200, 202) else None
        return status, int(run_id) if run_id else None, elapsed


def produce(*, port: int, token: str, prefix: str, count: int, threads: int, rate: float | None):
    """POST `count` events from `threads` threads; paced at `rate`/s when given (open loop).

    Returns (time of the first POST, run ids, API answer times, failed posts).
    """
    lock = threading.Lock()
    next_number = iter(range(count))
    run_ids, answer_times, failures = [], [], []
    start = time.time() + 0.05
    start_perf = time.perf_counter() + 0.05

    def loop():
        poster = Poster(port, token)
        while True:
            with lock:
                number = next(next_number, None)
            if number is None:
                return
            if rate:
                delay = start_perf + number / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            status, run_id, elapsed = poster.post(f"{prefix}-{number}", number)
            with lock:
                answer_times.append(elapsed)
                if status == 202 and run_id:
                    run_ids.append(run_id)
                else:
                    failures.append(status)

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    while time.perf_counter() < start_perf:
        time.sleep(0.001)
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return start, run_ids, answer_times, failures


def runs_settle(run_ids: list[int], timeout: float, processes=()) -> Counter:
    """Wait until no run is still in the pipeline; the final count of runs by state.

    Gives up after `timeout` seconds, or as soon as one of `processes` has exited.
    """
    from automations.models import Run

    def final() -> Counter:
        return Counter(Run.objects.filter(pk__in=run_ids).values_list("state", flat=True))

    # Polled through the (automation, state) index, not the run ids: a list of
    # thousands of ids four times a second cost the cores the pipeline runs on.
    in_flight = Run.objects.filter(automation__slug=SLUG, state__in=IN_FLIGHT_STATES)
    deadline = time.monotonic() + timeout
    while in_flight.exists() and time.monotonic() < deadline:
        dead = [p.args[-1] for p in processes if p.poll() is not None]
        if dead:
            print(f"PROBLEM: exited while runs were in flight: {dead}", file=sys.stderr)
            break
        time.sleep(0.25)
    return final()


# -- measuring --------------------------------------------------------------------------------

TIMELINE_SQL = """
SELECT r.id,
       extract(epoch FROM e.received_at),
       extract(epoch FROM d.at),
       extract(epoch FROM x.at),
       extract(epoch FROM t.at),
       coalesce((SELECT sum(latency_ms) FROM automations_modelcall m WHERE m.run_id = r.id), 0),
       coalesce((SELECT sum(duration_ms) FROM automations_actionattempt aa
                 JOIN automations_action ac ON ac.id = aa.action_id WHERE ac.run_id = r.id), 0)
FROM automations_run r
JOIN automations_event e ON e.id = r.event_id
JOIN automations_runtransition d ON d.run_id = r.id AND d.to_state = 'deciding'
JOIN automations_runtransition x ON x.run_id = r.id AND x.to_state = 'executing'
JOIN automations_runtransition t ON t.run_id = r.id AND t.to_state = 'executed'
WHERE r.id = ANY(%s)
"""


def timelines(run_ids: list[int]) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(TIMELINE_SQL, [run_ids])
        return cursor.fetchall()


def figures(p: list[float]) -> str:
    p = sorted(p)
    return (
        f"p50 {percentile(p, 50):7.1f}  p95 {percentile(p, 95):7.1f}  "
        f"p99 {percentile(p, 99):7.1f} ms"
    )


def phase_report(name: str, start: float, run_ids, answer_times, failures, states, cpu) -> dict:
    rows = timelines(run_ids)
    executed = len(rows)
    last = max((row[4] for row in rows), default=start)
    elapsed = float(last) - start
    rate = executed / elapsed if elapsed > 0 else 0.0
    overhead, queue, decide, execute, model, hook = [], [], [], [], [], []
    for _, received, deciding, executing, done, model_ms, hook_ms in rows:
        received, deciding = float(received), float(deciding)
        executing, done = float(executing), float(done)
        total = (done - received) * 1000
        overhead.append(total - model_ms - hook_ms)
        queue.append((deciding - received) * 1000)
        decide.append((executing - deciding) * 1000 - model_ms)
        execute.append((done - executing) * 1000 - hook_ms)
        model.append(model_ms)
        hook.append(hook_ms)
    print(f"\n== {name}")
    print(f"events posted        {len(run_ids) + len(failures)} ({len(failures)} failed posts)")
    print(f"runs by state        {dict(states)}")
    print(
        f"decisions/s          {rate:,.1f}  ({executed} executed in {elapsed:.2f} s, "
        f"first POST to last executed)"
    )
    print(
        f"overhead/decision    {figures(overhead)}   (received → executed, minus model "
        f"and receiver)"
    )
    print(f"  queue → decide     {figures(queue)}")
    print(f"  decide (own work)  {figures(decide)}")
    print(f"  hop + execute      {figures(execute)}")
    print(f"  model latency      {figures(model)}")
    print(f"  receiver wait      {figures(hook)}")
    print(f"API answer time      {figures([t * 1000 for t in answer_times])}")
    if cpu:
        machine = cpu.pop("machine")
        total = sum(cpu.values())
        parts = "  ".join(f"{k} {v / max(executed, 1) * 1000:.1f}" for k, v in cpu.items())
        print(f"CPU ms per decision  {total / max(executed, 1) * 1000:.1f}: {parts}")
        seconds = elapsed if elapsed > 0 else 1
        cores = os.cpu_count() or 1
        print(
            f"CPU busy             {machine / seconds / cores:.0%} of {cores} CPUs, of which "
            f"{max(machine - total, 0) / seconds / cores:.0%} by processes not ours"
        )
    return {"rate": rate, "overhead": sorted(overhead), "executed": executed}


def redis_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "redis-server":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def cpu_delta(before: dict, after: dict) -> dict:
    return {name: after[name] - before.get(name, 0.0) for name in after}


def run_phase(name, *, args, meter, port, token, prefix, count, threads, rate, processes) -> dict:
    before = meter.read()
    start, run_ids, answers, failures = produce(
        port=port, token=token, prefix=prefix, count=count, threads=threads, rate=rate
    )
    states = runs_settle(run_ids, args.timeout, processes)
    cpu = cpu_delta(before, meter.read())
    return {
        "run_ids": run_ids,
        **phase_report(name, start, run_ids, answers, failures, states, cpu),
        "states": states,
        "failures": failures,
    }


def invariants_check(all_run_ids: list[int], stats: dict) -> list[str]:
    from django.db.models import Count

    from automations.models import Action, ActionAttempt, Run, RunTransition

    problems = []
    states = Counter(Run.objects.filter(pk__in=all_run_ids).values_list("state", flat=True))
    if states.get("executed", 0) != len(all_run_ids):
        problems.append(f"not every run was executed: {dict(states)}")
    keys = set(
        Action.objects.filter(run_id__in=all_run_ids).values_list("idempotency_key", flat=True)
    )
    if len(keys) != len(all_run_ids):
        problems.append(f"{len(keys)} actions for {len(all_run_ids)} runs")
    ok = stats["ok_ids"]
    duplicates = sum(n - 1 for n in ok.values() if n > 1)
    if duplicates:
        problems.append(f"{duplicates} duplicate successful deliveries")
    if set(ok) != keys:
        problems.append(f"{len(set(ok) ^ keys)} actions and deliveries do not match")
    if stats["bad_signatures"]:
        problems.append(f"{stats['bad_signatures']} deliveries failed signature verification")
    retried = ActionAttempt.objects.filter(number__gt=1).count()
    if retried:
        problems.append(f"{retried} delivery attempts were retries")
    twice = (
        RunTransition.objects.filter(run_id__in=all_run_ids)
        .values("run_id", "to_state")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    if twice:
        problems.append(f"{twice} transitions recorded twice")
    return problems


# -- the query-count harness ------------------------------------------------------------------


def queries_harness(token: str, events: int = 300, profile: bool = False) -> None:
    """Ingest, decide and execute `events` events in process; print queries and CPU per step.

    The CPU per step is the mean over the events after the first 5, run as the
    worker runs them; the queries are captured from one more event at the end
    (capturing makes Django format every statement, which would inflate the
    CPU). With `profile`, each step also runs under cProfile and its top
    functions are printed.
    """
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from automations.services import ingestion
    from automations.services.decisions import run_advance
    from automations.services.runs import worker_actor
    from reviewapp.celery import app

    app.conf.task_always_eager = False

    ingestion.enqueue_decide = lambda run_id: None
    client = Client(HTTP_HOST="127.0.0.1")
    actor = worker_actor()

    def ingest(number: int) -> int:
        body = json.dumps(
            {
                "idempotency_key": f"q-{number}",
                "segment": "enterprise",
                "payload": {"subject": "Invoice", "body": "Where is my invoice?"},
            }
        )
        response = client.post(
            f"/api/v1/automations/{SLUG}/events",
            body,
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )
        return int(response.json()["run_id"])

    def decide(run_id: int) -> None:
        run_advance(run_id=run_id, actor=actor)  # the decide task's one call

    steps = {"ingest (API view)": ingest, "decide + attempt": decide}
    # The statements' server-side work: the connection's backend, read between
    # the steps (outside their timing). /proc counts whole clock ticks, so only
    # the sum over many events means anything.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    server = {name: 0.0 for name in steps}
    # The migrations and set-up left ~200k objects that each full collection
    # would walk (~90 ms, about once per 150 events here), where a worker child
    # ran none in 1,000 decisions. Frozen, they no longer blur the steps' CPU.
    gc.collect()
    gc.freeze()
    cpu = {name: 0.0 for name in steps}
    profilers = {name: cProfile.Profile(time.process_time) for name in steps}
    for number in range(events):
        measured = number >= 5
        value = number
        for name, step in steps.items():
            if measured and profile:
                profilers[name].enable()
            server_before = process_cpu(backend)
            started = time.process_time()
            value = step(value)
            elapsed = time.process_time() - started
            profilers[name].disable()
            if measured:
                cpu[name] += elapsed
                server[name] += process_cpu(backend) - server_before
    print(f"\nper decision, in process: CPU the mean over {events - 5} events, queries of one")
    value = events
    for name, step in steps.items():
        with CaptureQueriesContext(connection) as captured:
            value = step(value)
        statements = [q["sql"] for q in captured.captured_queries]
        commits = statements.count("COMMIT")
        print(
            f"  {name:20} {len(statements):3} queries, {commits} commits,"
            f" {cpu[name] / (events - 5) * 1000:5.2f} ms CPU,"
            f" PostgreSQL {server[name] / (events - 5) * 1000:5.2f} ms"
        )
        for statement in statements:
            print(f"      {statement[:110]}")
    if profile:
        for name, profiler in profilers.items():
            stats = pstats.Stats(profiler)
            print(f"\n-- {name}: CPU by area (profiler overhead included)")
            areas_print(stats)
            stats.sort_stats("cumulative").print_stats(30)


# -- main -------------------------------------------------------------------------------------


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--worker-profiled":
        profiled_worker_main(sys.argv[2], sys.argv[3:])
        return
    args = parse_args()
    VAR.mkdir(exist_ok=True)
    database_url, admin_url = bench_database_urls(args.db_name)
    if not args.redis_url.startswith("redis://127.0.0.1") and "localhost" not in args.redis_url:
        sys.exit("--redis-url must point at 127.0.0.1")
    database_recreate(admin_url, args.db_name)
    secret = "whsec_" + __import__("base64").b64encode(secrets.token_bytes(24)).decode()
    os.environ["OPENAI_API_KEY"] = "bench-key"
    os.environ[SECRET_ENV] = secret
    # The stand-in model and receiver listen on 127.0.0.1 (the address policy refuses it
    # unless listed), and the figures are libcurl's: HANDRAIL_HTTP_TRANSPORT=httpx for the default.
    os.environ["HANDRAIL_ALLOWED_PRIVATE_HOSTS"] = "127.0.0.1"
    os.environ.setdefault("HANDRAIL_HTTP_TRANSPORT", "curl")

    children = Children()
    context = get_context("fork")  # before Django, threads or connections exist here
    parent_conn, child_conn = context.Pipe()
    servers = context.Process(target=servers_main, args=(child_conn, secret), daemon=True)
    servers.start()
    try:
        urls = parent_conn.recv()
        django_setup(database_url, args.redis_url)
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        token = catalog_create(
            provider=args.provider, model_url=urls["model_url"], hook_url=urls["hook_url"]
        )
        if args.queries:
            queries_harness(token, events=args.events, profile=args.profile)
            return
        env = child_env(args, database_url, secret)
        profile_dir = None
        if args.profile:
            profile_dir = VAR / "bench-pipeline-profile"
            profile_dir.mkdir(exist_ok=True)
            for old in profile_dir.glob("*.prof"):
                old.unlink()
        workers = worker_start(children, args, env, profile_dir)
        api, port = gunicorn_start(children, args, env)
        connection.close()

        print(
            f"provider {args.provider}, {args.concurrency} celery {args.pool} processes, "
            f"{args.gunicorn_workers} gunicorn workers, {os.cpu_count()} CPUs"
        )
        warm = produce(
            port=port, token=token, prefix="warm", count=args.warmup, threads=2, rate=None
        )
        runs_settle(warm[1], args.timeout, [*workers, api])
        if args.pool == "solo":
            worker_groups = {"workers": lambda: [w.pid for w in workers]}
        else:
            worker_groups = {
                "worker main": lambda: [w.pid for w in workers],
                "worker children": lambda: [p for w in workers for p in descendants(w.pid)[1:]],
            }
        meter = CpuMeter(
            {
                "api": lambda: descendants(api.pid),
                **worker_groups,
                "postgres": lambda: postgres_backends(args.db_name),
                "redis": redis_pids,
                "servers": lambda: [servers.pid],
                "bench": lambda: [os.getpid()],
            }
        )
        phase = dict(args=args, meter=meter, port=port, token=token, processes=[*workers, api])
        fast = run_phase(
            "(a) max throughput", **phase, prefix="max", count=args.events,
            threads=args.producers, rate=None,
        )  # fmt: skip
        paced = run_phase(
            f"(b) offered {args.rate:g} events/s", **phase, prefix="paced",
            count=args.paced_events, threads=4, rate=args.rate,
        )  # fmt: skip
        children.stop(api)
        for worker in workers:
            children.stop(worker, timeout=30)
        parent_conn.send("stats")
        stats = parent_conn.recv()
        all_ids = warm[1] + fast["run_ids"] + paced["run_ids"]
        problems = invariants_check(all_ids, stats)
        print(
            f"\nreceiver: {stats['deliveries']} deliveries, {len(stats['ok_ids'])} distinct "
            f"webhook-ids, {stats['bad_signatures']} bad signatures; "
            f"model requests {stats['model_requests']}"
        )
        if profile_dir is not None:
            profile_print(profile_dir)
        wanted = f">= {args.drain / 2 * 0.25:.0f}" if args.drain else ">= 25% of drain / 2"
        print(f"\ntargets: {wanted} decisions/s; overhead at 50/s p50 <= 15 ms, p99 <= 60 ms")
        o = paced["overhead"]
        print(
            f"measured: {fast['rate']:.0f} decisions/s; overhead at {args.rate:g}/s "
            f"p50 {percentile(o, 50):.1f} ms, p99 {percentile(o, 99):.1f} ms"
        )
        for problem in problems:
            print(f"PROBLEM: {problem}")
        if problems:
            sys.exit(1)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping what this script started", file=sys.stderr)
        sys.exit(130)
    finally:
        children.stop_all()  # ignores further signals from here on
        if servers.is_alive():
            with contextlib.suppress(OSError):
                parent_conn.send("stop")
            servers.join(timeout=5)
            if servers.is_alive():
                servers.kill()


AREAS = [
    ("automations/", "handrail code"),
    ("catalog/", "handrail code"),
    ("django/db/models", "Django ORM (building queries, making objects)"),
    ("django/db/backends", "Django DB backend"),
    ("django/", "Django, other"),
    ("psycopg", "psycopg (driver)"),
    ("openai", "openai SDK"),
    ("pydantic", "pydantic (openai SDK models)"),
    ("httpx", "httpx2 (HTTP client)"),
    ("httpcore", "httpx2 (HTTP client)"),
    ("h11", "httpx2 (HTTP client)"),
    ("jsonschema", "jsonschema"),
    ("referencing", "jsonschema"),
    ("standardwebhooks", "standardwebhooks"),
    ("celery", "celery/kombu/billiard"),
    ("kombu", "celery/kombu/billiard"),
    ("billiard", "celery/kombu/billiard"),
    ("redis", "redis client"),
    ("logging", "logging"),
    ("json", "json"),
]


def area_of(filename: str) -> str:
    for marker, area in AREAS:
        if marker in filename:
            return area
    return "other (stdlib, builtins)"


def areas_print(stats: pstats.Stats) -> None:
    by_area: Counter = Counter()
    for (filename, _, _), (_, _, tottime, *_) in stats.stats.items():
        by_area[area_of(filename)] += tottime
    total = sum(by_area.values()) or 1
    for area, seconds in by_area.most_common():
        print(f"  {area:48} {seconds / total:6.1%}")


def profile_print(profile_dir: Path) -> None:
    files = sorted(profile_dir.glob("*.prof"))
    if not files:
        print("\nno worker profile was written")
        return
    stats = pstats.Stats(*map(str, files))
    tasks = sum(
        nc for (f, _, name), (_, nc, *_) in stats.stats.items() if name == "fast_trace_task"
    )
    total = sum(tottime for (_, _, tottime, *_) in stats.stats.values())
    print(
        f"\nworker CPU profile ({len(files)} files in {profile_dir}), {tasks} tasks,"
        f" {total / max(tasks, 1) * 1000:.2f} ms CPU per task (profiler overhead included):"
    )
    areas_print(stats)
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
