"""Claims benchmark: many reviewers claiming and deciding review tasks on PostgreSQL.

Usage:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/claims.py [--tasks 1000000] [--automations 20] \\
        [--reviewers 32] [--seconds 20] [--processes 2] [--stretch 10] \\
        [--rate 0] [--mode services|bare] [--reuse]

It creates (drops first) its own database `handrail_bench_claims` on the
server of DATABASE_URL (`--db-name` to change), migrates it, bulk-loads
`--tasks` pending review tasks (Event, Run and ReviewTask rows made by
`INSERT ... SELECT generate_series`) spread over `--automations`
automations, then runs `--reviewers` reviewer threads, split over
`--processes` processes so the GIL is not the limit. `--reuse` keeps an
already loaded database of the same size (pending tasks are reset).

Each reviewer works one of its queues for a stretch of `--stretch` tasks
(default 10), then another, until the time is up, approving 80 % and
rejecting 20 %. Within a stretch each decision claims the next task in the
same call, as the console's submit does; `--stretch 1` claims and decides
separately every time. `--mode services` (the default) calls the real
services: `review_claim_next` (the task chosen with SKIP LOCKED and
claimed in one short transaction), `review_decide_and_claim_next` (in one
transaction: close the task, store the Label, move the run through
`run_transition`, claim the next task) and `review_decide`; execution is not
enqueued (the Celery hop is not part of this benchmark). `--mode bare` runs
the bare claim (`UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED)
RETURNING`) and a one-statement decision without Label or run, the ceiling
to compare with.

By default every reviewer claims again as soon as it has decided, with no
time spent reading the case: the reviewers always have 32 calls in flight,
the 2 cores are saturated, and by Little's law a claim waits 32 / throughput
on average whatever the code does (bare statements too). `--rate R` offers
R claims/s instead: each reviewer claims on its own schedule, R / reviewers
per second from a random phase, so the figures say what a reviewer waits
while the 32 of them together claim R tasks a second. A paced claim's
latency counts from its slot, not from when the call started, so a backlog
shows in the latencies (no coordinated omission), and claims/s counts only
the claims handed over by the end of the window.

A claim's latency is the wall time of the call that hands the task over: the
claim alone, or the decision and claim together. After the run every claim
is checked: a task claimed twice within one lease window (the lease outlives
the run, and nothing is released, so any task claimed twice) is a double
claim, and the database must agree with what the reviewers recorded.

Prints claims/s, claim latency p50/p95/p99, decisions/s, double claims, and
the CPU each claim cost the reviewer processes and PostgreSQL (from /proc).

Reading the figures: the development VMs differ by 2x between sessions and
drift within one, so compare a change only back to back with the code
before it, and the services only with `--mode bare` run in the same hour;
bench/ceilings.py says how this machine stands against the reference the
targets were set on. The CPU per claim, the reviewers' and PostgreSQL's,
says which side to work on. The targets and the latest figures are in
bench/README.md; what each session measured and tried is in
bench/claims-history.md.
"""

import argparse
import multiprocessing
import os
import random
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._support import (  # noqa: E402 (after the path is set)
    ROUTE_SCHEMA,
    CpuMeter,
    bench_database_urls,
    database_recreate,
    descendants,
    percentile,
    postgres_backends,
)

REASONS = ("wrong_intent", "wrong_arguments", "policy", "duplicate")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--automations", type=int, default=20)
    parser.add_argument("--reviewers", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds not measured")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--queues-per-reviewer", type=int, default=3)
    parser.add_argument(
        "--stretch",
        type=int,
        default=10,
        help="tasks a reviewer decides in one queue before moving to another",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="offered claims/s over all reviewers, each on its own schedule (0: back to back)",
    )
    parser.add_argument("--mode", choices=("services", "bare"), default="services")
    parser.add_argument("--db-name", default="handrail_bench_claims")
    parser.add_argument("--reuse", action="store_true", help="keep an already loaded database")
    return parser.parse_args()


def database_create(admin_url: str, db_name: str, reuse: bool) -> bool:
    """Create the bench database (dropping an old one unless reusing); True if it is new."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db_name]).fetchone()
    if exists and reuse:
        return False
    database_recreate(admin_url, db_name)
    return True


def django_setup(url: str, threads: int = 1) -> None:
    os.environ["DATABASE_URL"] = url
    # Every reviewer thread holds a pooled connection for its whole run.
    os.environ["HANDRAIL_DB_POOL_SIZE"] = str(threads + 2)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    # Execution is a Celery hop outside this benchmark: approved runs stay `approved`.
    from automations.services import dispatch

    dispatch.enqueue_execute = lambda run_id, countdown=0, priority=None: None
    # So is chaining the trail: beat's sequencer does it apart, not each decision's commit
    # (without Redis the app would chain in process, as the demo does).
    from catalog.audit import trail

    trail._in_process = lambda: False


def catalog_load(args) -> tuple[list[int], dict[int, list[int]]]:
    """Create (or find) the owner, reviewers and automations; return their ids."""
    from django.contrib.auth.models import Group, User

    from catalog.models import Automation, Intent

    owner, _ = User.objects.get_or_create(username="bench-owner")
    reviewers = []
    for n in range(args.reviewers):
        user, _ = User.objects.get_or_create(username=f"bench-reviewer-{n}")
        reviewers.append(user)
    Group.objects.get(name="reviewer").user_set.add(*reviewers)
    automations = []
    for n in range(args.automations):
        automation, created = Automation.objects.get_or_create(
            slug=f"bench-{n}",
            defaults={
                "name": f"Bench {n}",
                "owner": owner,
                "purpose": "benchmark",
                "rollback_plan": "none",
                "risk_tier": "low",
                "data_classification": "internal",
                "mode": "approve",
            },
        )
        if created:
            Intent.objects.create(
                automation=automation, name="route_ticket", arguments_schema=ROUTE_SCHEMA
            )
        automations.append(automation)
    own: dict[int, list[int]] = {}
    step = max(1, args.automations // args.queues_per_reviewer)
    for n, user in enumerate(reviewers):
        picks = {(n + j * step) % args.automations for j in range(args.queues_per_reviewer)}
        mine = [automations[i] for i in sorted(picks)]
        for automation in mine:
            automation.reviewers.add(user)
        own[user.pk] = [a.pk for a in mine]
    return [a.pk for a in automations], own


def tasks_load(count: int, automation_ids: list[int]) -> float:
    """Bulk-load `count` events, runs (awaiting review) and pending review tasks; seconds taken."""
    from django.db import connection

    started = time.perf_counter()
    ids = "ARRAY[" + ",".join(str(i) for i in automation_ids) + "]::bigint[]"
    pick = f"({ids})[1 + (i % {len(automation_ids)})]"
    # Older tasks first: created_at grows with i, one millisecond apart.
    created = f"now() - (({count} - i) * interval '1 millisecond')"
    proposed = """'{"intent": "route_ticket", "arguments": {"team": "billing", "priority": "p2"},
                   "confidence": 0.5, "rationale": "bench"}'::jsonb"""
    with connection.cursor() as cursor:
        cursor.execute(f"""
            INSERT INTO automations_event (id, automation_id, idempotency_key, segment, source,
                payload, body_sha256, payload_sha256, client, trace_id, received_at)
            SELECT i, {pick}, 'bench-' || i, '', 'bench',
                jsonb_build_object('subject', 'Invoice ' || i, 'body', 'Where is my invoice?'),
                md5(i::text), md5(i::text), 'bench', md5(i::text), {created}
            FROM generate_series(1, {count}) AS i""")
        cursor.execute(f"""
            INSERT INTO automations_run (id, event_id, automation_id, segment, state, trace_id,
                effective_mode, proposed_intent, decided_by, reason, created_at, updated_at,
                held_by, verdicts)
            SELECT i, i, {pick}, '', 'awaiting_review', md5(i::text), 'approve', {proposed},
                '', 'mode approve', {created}, {created}, '', '[]'::jsonb
            FROM generate_series(1, {count}) AS i""")
        cursor.execute(f"""
            INSERT INTO automations_reviewtask (id, run_id, automation_id, kind, reason, state,
                outcome, reject_reason, note, created_at)
            SELECT i, i, {pick}, 'approve', 'mode approve', 'pending', '', '', '', {created}
            FROM generate_series(1, {count}) AS i""")
        for table in ("automations_event", "automations_run", "automations_reviewtask"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {count})"  # noqa: S608
            )
    return time.perf_counter() - started


def tasks_reset(count: int) -> None:
    """Put a reused database back to `count` pending tasks and no decisions."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM automations_label")
        cursor.execute("DELETE FROM automations_runtransition")
        cursor.execute(
            "UPDATE automations_run SET state = 'awaiting_review', final_intent = NULL,"
            " decided_by = '' WHERE state <> 'awaiting_review'"
        )
        cursor.execute(
            "UPDATE automations_reviewtask SET state = 'pending', claimed_by_id = NULL,"
            " claimed_at = NULL, lease_expires_at = NULL, decided_by_id = NULL,"
            " decided_at = NULL, outcome = '', reject_reason = '', review_ms = NULL"
            " WHERE state <> 'pending'"
        )
        cursor.execute("SELECT count(*) FROM automations_reviewtask")
        if cursor.fetchone()[0] != count:
            sys.exit("the reused database has a different --tasks; run without --reuse")


def vacuum_analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("automations_event", "automations_run", "automations_reviewtask"):
            cursor.execute(f"VACUUM ANALYZE {table}")


def claim_plan(automation_id: int) -> str:
    """EXPLAIN of the service's claim statement, to show it walks the partial index."""
    from django.db import connection
    from django.utils import timezone

    from automations.services.reviews import claim_statement

    sql, params = claim_statement(user_id=0, automation_id=automation_id, now=timezone.now())
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


class ServicesReviewer:
    """Claims and decides through the real services (access check, Label, run transition)."""

    def __init__(self, user_id: int, url: str):
        from django.contrib.auth.models import User

        from catalog.models import Automation

        self.user = User.objects.get(pk=user_id)
        self.automations = {a.pk: a for a in Automation.objects.all()}

    def claim(self, automation_id: int) -> int | None:
        from automations.services.reviews import review_claim_next

        task = review_claim_next(user=self.user, automation=self.automations[automation_id])
        return task.pk if task else None

    def decide(self, task_id: int, approve: bool, reason: str) -> None:
        from automations.services.reviews import review_decide

        if approve:
            review_decide(task_id=task_id, user=self.user, action="approve")
        else:
            review_decide(task_id=task_id, user=self.user, action="reject", reject_reason=reason)

    def decide_and_next(self, task_id: int, approve: bool, reason: str) -> int | None:
        from automations.services.reviews import review_decide_and_claim_next

        if approve:
            _, following = review_decide_and_claim_next(
                task_id=task_id, user=self.user, action="approve"
            )
        else:
            _, following = review_decide_and_claim_next(
                task_id=task_id, user=self.user, action="reject", reject_reason=reason
            )
        return following.pk if following else None

    def close(self) -> None:
        from django.db import connection

        connection.close()


SQL_BARE_CLAIM = """
UPDATE automations_reviewtask SET state = 'claimed', claimed_by_id = %(user)s,
    claimed_at = now(), lease_expires_at = now() + interval '600 seconds'
WHERE id = (
    SELECT id FROM automations_reviewtask
    WHERE automation_id = %(automation)s
      AND (state = 'pending' OR (state = 'claimed' AND lease_expires_at < now()))
    ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id"""
SQL_BARE_DECIDE = """
UPDATE automations_reviewtask SET state = 'done', claimed_by_id = NULL, decided_by_id = %(user)s,
    decided_at = now(), outcome = %(outcome)s, reject_reason = %(reason)s,
    review_ms = (extract(epoch FROM now() - claimed_at) * 1000)::int
WHERE id = %(task)s AND state = 'claimed' AND claimed_by_id = %(user)s
  AND lease_expires_at > now()
RETURNING automation_id"""


class BareReviewer:
    """The ceiling: one-statement claim and one-statement decision (no Label, run untouched)."""

    def __init__(self, user_id: int, url: str):
        import psycopg

        self.user_id = user_id
        self.conn = psycopg.connect(url, autocommit=True)

    def close(self) -> None:
        self.conn.close()

    def claim(self, automation_id: int) -> int | None:
        with self.conn.transaction():
            args = {"user": self.user_id, "automation": automation_id}
            row = self.conn.execute(SQL_BARE_CLAIM, args).fetchone()
            return row[0] if row else None

    def decide(self, task_id: int, approve: bool, reason: str) -> None:
        outcome = "accepted" if approve else "rejected"
        args = {"user": self.user_id, "task": task_id, "outcome": outcome, "reason": reason}
        with self.conn.transaction():
            if self.conn.execute(SQL_BARE_DECIDE, args).rowcount != 1:
                raise RuntimeError(f"task {task_id} was no longer ours to decide")

    def decide_and_next(self, task_id: int, approve: bool, reason: str) -> int | None:
        """The bare decision and the bare claim of the same queue, in one transaction."""
        outcome = "accepted" if approve else "rejected"
        args = {"user": self.user_id, "task": task_id, "outcome": outcome, "reason": reason}
        with self.conn.transaction():
            row = self.conn.execute(SQL_BARE_DECIDE, args).fetchone()
            if row is None:
                raise RuntimeError(f"task {task_id} was no longer ours to decide")
            args["automation"] = row[0]
            row = self.conn.execute(SQL_BARE_CLAIM, args).fetchone()
            return row[0] if row else None


REVIEWERS = {"services": ServicesReviewer, "bare": BareReviewer}


def reviewer_loop(user_id, automation_ids, url, deadline, measure_from, out, errors):
    """One reviewer: work one queue for a stretch, then another, until the deadline.

    In a stretch each decision claims the next task with it, as the console's
    submit does; the last one of the stretch is decided alone, right after
    the stretch's last claim. A claim's latency is the wall time of the call
    that hands the task over (for the combined call, the decision included),
    counted from the claim's slot when paced (see Pacer).
    """
    rng = random.Random(user_id)
    pacer = Pacer(RATE / REVIEWER_COUNT if RATE else 0.0, deadline, rng)
    latencies, claims, decisions, handed = [], [], 0, 0
    reviewer = None
    try:
        reviewer = REVIEWERS[MODE](user_id, url)
        while (started := pacer.slot()) is not None:
            task_id = reviewer.claim(rng.choice(automation_ids))
            for left in range(STRETCH - 1, -1, -1):
                if task_id is None:
                    break
                if started >= measure_from:
                    ended = time.perf_counter()
                    latencies.append(ended - started)
                    # Throughput counts claims handed over by the deadline: a paced
                    # reviewer that fell behind makes its last slots after it.
                    handed += ended <= deadline
                claims.append(task_id)
                approve, reason = rng.random() < 0.8, rng.choice(REASONS)
                if left and (started := pacer.slot()) is not None:
                    following = reviewer.decide_and_next(task_id, approve, reason)
                else:
                    reviewer.decide(task_id, approve, reason)
                    following = None
                decisions += measure_from <= time.perf_counter() <= deadline
                task_id = following
    except Exception as exc:  # counted and printed; a failed reviewer must not hide the others
        errors.append(f"reviewer {user_id}: {type(exc).__name__}: {exc}")
    finally:
        if reviewer is not None:
            reviewer.close()
    out.append((user_id, latencies, claims, decisions, handed))


class Pacer:
    """When a reviewer makes its next claim: at once, or on a fixed schedule.

    Paced (`per_second` > 0), claim n is due at a random phase plus n
    intervals, and its latency counts from then, not from when the call
    started: a reviewer that falls behind its schedule shows the backlog in
    its latencies instead of quietly offering less (coordinated omission).
    """

    def __init__(self, per_second: float, deadline: float, rng: random.Random):
        self.interval = 1 / per_second if per_second else 0.0
        self.deadline = deadline
        self.due = time.perf_counter() + rng.random() * self.interval

    def slot(self) -> float | None:
        """Wait for the next claim's slot; its time, or None once the deadline has come."""
        now = time.perf_counter()
        if not self.interval:
            return now if now < self.deadline else None
        due, self.due = self.due, self.due + self.interval
        if due >= self.deadline:
            return None
        if due > now:
            time.sleep(due - now)
        return due


def process_main(url, args, reviewers, deadline_in, result_queue):
    """One worker process: its share of the reviewers as threads."""
    global MODE, STRETCH, RATE, REVIEWER_COUNT
    MODE, STRETCH, RATE, REVIEWER_COUNT = args.mode, args.stretch, args.rate, args.reviewers
    django_setup(url)
    now = time.perf_counter()
    deadline, measure_from = now + deadline_in, now + args.warmup
    out, errors = [], []
    threads = [
        threading.Thread(
            target=reviewer_loop,
            args=(uid, queues, url, deadline, measure_from, out, errors),
        )
        for uid, queues in reviewers
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result_queue.put((out, errors))


MODE = "services"
STRETCH = 10
RATE = 0.0  # offered claims/s over all reviewers; 0: each claims again at once
REVIEWER_COUNT = 32


def verify(results) -> tuple[int, list[str]]:
    """Double claims among what reviewers recorded, and disagreements with the database."""
    from django.db import connection

    owner_of: dict[int, int] = {}
    counts: Counter = Counter()
    for user_id, _, claims, *_ in results:
        for task_id in claims:
            counts[task_id] += 1
            owner_of[task_id] = user_id
    doubles = sum(1 for n in counts.values() if n > 1)
    problems = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, decided_by_id FROM automations_reviewtask WHERE state = 'done'")
        done = dict(cursor.fetchall())
    if set(done) - set(counts):
        problems.append(f"{len(set(done) - set(counts))} tasks done that no reviewer claimed")
    wrong = sum(1 for task_id, user_id in done.items() if owner_of.get(task_id) != user_id)
    if wrong:
        problems.append(f"{wrong} tasks decided by someone other than their claimer")
    if MODE != "bare":
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM automations_label")
            labels = cursor.fetchone()[0]
        if labels != len(done):
            problems.append(f"{labels} labels for {len(done)} decided tasks")
    return doubles, problems


def main() -> None:
    global MODE
    args = parse_args()
    MODE = args.mode
    url, admin_url = bench_database_urls(args.db_name)
    fresh = database_create(admin_url, args.db_name, args.reuse)
    django_setup(url, threads=-(-args.reviewers // args.processes))
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", verbosity=0)  # a reused database may predate a migration
    automation_ids, own = catalog_load(args)
    if fresh:
        print(f"loading {args.tasks:,} tasks ...", flush=True)
        seconds = tasks_load(args.tasks, automation_ids)
        print(f"loaded {args.tasks:,} events, runs and review tasks in {seconds:.1f} s")
    else:
        tasks_reset(args.tasks)
    started = time.perf_counter()
    vacuum_analyze()
    print(f"vacuum analyze {time.perf_counter() - started:.1f} s")
    print("claim plan:\n  " + claim_plan(automation_ids[0]).replace("\n", "\n  "))
    connections.close_all()
    # A pool's open sockets must not cross the fork: each child opens its own.
    connections["default"].close_pool()

    reviewers = list(own.items())
    shares = [reviewers[n :: args.processes] for n in range(args.processes)]
    results_queue = multiprocessing.get_context("fork").Queue()
    duration = args.warmup + args.seconds
    processes = [
        multiprocessing.get_context("fork").Process(
            target=process_main,
            args=(url, args, share, duration, results_queue),
        )
        for share in shares
        if share
    ]
    print(
        f"{args.reviewers} reviewers in {len(processes)} processes, mode {args.mode}, "
        + (f"offered {args.rate:,.0f} claims/s, " if args.rate else "back to back, ")
        + f"{args.warmup:.0f} s warm-up + {args.seconds:.0f} s measured ...",
        flush=True,
    )
    for process in processes:
        process.start()
    # CPU over the measured window: the reviewers (this process's children) and PostgreSQL.
    meter = CpuMeter(
        {
            "reviewers": lambda: [p for p in descendants(os.getpid()) if p != os.getpid()],
            "postgres": lambda: postgres_backends(args.db_name),
        }
    )
    time.sleep(args.warmup)
    cpu_start = meter.read()
    time.sleep(args.seconds - 0.5)
    cpu = {name: used - cpu_start[name] for name, used in meter.read().items()}
    connections.close_all()
    results, errors = [], []
    for _ in processes:
        out, errs = results_queue.get()
        results.extend(out)
        errors.extend(errs)
    for process in processes:
        process.join()

    latencies = sorted(x for _, lat, *_ in results for x in lat)
    in_window = sum(handed for *_, handed in results)
    decisions = sum(d for _, _, _, d, _ in results)
    total_claims = sum(len(c) for _, _, c, *_ in results)
    doubles, problems = verify(results)
    ms = [x * 1000 for x in latencies]
    print(f"tasks {args.tasks:,}  automations {args.automations}  reviewers {args.reviewers}")
    print(f"claims/s        {in_window / args.seconds:,.0f}")
    print(
        f"claim latency   p50 {percentile(ms, 50):.1f} ms  p95 {percentile(ms, 95):.1f} ms  "
        f"p99 {percentile(ms, 99):.1f} ms  mean {statistics.fmean(ms) if ms else 0:.1f} ms"
    )
    print(f"decisions/s     {decisions / args.seconds:,.0f}")
    measured = max(1, len(latencies)) * (args.seconds - 0.5) / args.seconds
    print(
        f"CPU ms per claim  reviewers {cpu['reviewers'] / measured * 1000:.2f}  "
        f"postgres {cpu['postgres'] / measured * 1000:.2f}  "
        f"(CPUs {cpu['machine'] / (args.seconds - 0.5) / (os.cpu_count() or 1):.0%} busy)"
    )
    print(f"claims in total {total_claims:,} (warm-up included)")
    print(f"double claims   {doubles}")
    for line in errors[:10] + problems:
        print(f"PROBLEM: {line}")
    sys.exit(1 if doubles or errors or problems else 0)


if __name__ == "__main__":
    main()
