"""Dashboard benchmark: server time of the metrics dashboards over 2,000,000 runs in 90 days.

Usage:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/dashboard.py [--runs 2000000] [--days 90] [--automations 20]
            [--segments 5] [--rounds 60] [--job-runs 20000] [--reuse]

In its own database (`handrail_bench_dashboard`), it loads the rollups that
the periodic job would have kept for `--runs` runs over `--days` days across
`--automations` automations of `--segments` segments each: one row per
automation, segment and hour, one per day (the sum of its hours), and the
counts per guardrail check and corrected field beside them, exactly as
rollup.tally_write lays them out. Each run is drawn one by one (decision
latency, review or not, outcome, end to end, confidence, tokens, cost), so
the buckets hold realistic shapes. The rollups, not the runs, are loaded:
the dashboards never read runs, and 2,000,000 runs with their transitions,
model calls and labels would take the job about as long to read as the
`--job-runs` sample below says, which it measures separately: that many
real runs (arrival, decision, finish, model call, a review for some) go
through the real rollup job, which prints the job's rate.

Then, in process with Django's test client (server time, no network), an
admin (who sees every automation) loads, `--rounds` times per window
(24h, 7d, 30d):

- `overview`: GET /dashboards/?window=W, every automation added up;
- `automation`: GET /dashboards/automations/SLUG/?window=W, one, per segment;
- `refresh`: the overview's htmx refresh (the figures section alone);

and `/metrics` (`--rounds` scrapes). It prints p50/p95/p99 and the query
count of each, and the process's resident memory after each window.
Target: p95 under 150 ms for every window, memory flat in the number of
runs: the rows a window reads depend on its days, the automations and their
segments, never on the runs, so a run with `--runs 200000` prints the same.

Results on the 2-core development machine (2026-12-06, other sessions keeping
it busy, load average 4-5; 2,000,038 runs, 224,330 rollup rows; 60 rounds):

    view                   24h p50/p95 ms   7d p50/p95 ms   30d p50/p95 ms   queries
    overview               44.8 / 71.6      48.3 / 57.0     82.3 / 124.0          11
    automation             32.5 / 47.9      31.5 / 41.7     49.5 / 70.1           11
    refresh (htmx)         41.7 / 65.3      46.7 / 63.5     81.3 / 121.2          11
    /metrics               41.7 / 74.6                                             6

Resident memory 123 MB before, 138 MB after the 30-day window (with
--runs 200000: 139 MB and 142 MB). The rollup job: 14,060 source rows/s
(2,812 runs/s). More in bench/README.md ("dashboard.py").
"""

import argparse
import math
import os
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._support import bench_database_urls, database_recreate, percentile  # noqa: E402

SEGMENTS_WEIGHTS = (0.4, 0.25, 0.15, 0.12, 0.08)
CHECKS_FOR_REVIEW = ("confidence", "intent_risk", "do_not_automate")
FIELDS = ("arguments.priority", "arguments.team", "intent")
WINDOWS = ("24h", "7d", "30d")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--automations", type=int, default=20)
    parser.add_argument("--segments", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--job-runs", type=int, default=20_000)
    parser.add_argument("--db-name", default="handrail_bench_dashboard")
    parser.add_argument("--reuse", action="store_true", help="keep a database loaded before")
    return parser.parse_args()


def rss_mb() -> float:
    """The process's resident memory now, in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def django_setup(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    os.environ["HANDRAIL_METRICS_TOKEN"] = "bench-metrics-token"
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def catalog_load(count: int):
    """An admin and `count` automations, each with its reviewer rate and manual minutes."""
    from django.contrib.auth.models import Group, User

    from catalog.models import Automation

    admin, _ = User.objects.get_or_create(username="bench-admin", defaults={"is_staff": True})
    admin.groups.add(Group.objects.get_or_create(name="admin")[0])
    automations = []
    for n in range(count):
        automation, _ = Automation.objects.get_or_create(
            slug=f"bench-{n}",
            defaults={
                "name": f"Bench automation {n}",
                "owner": admin,
                "purpose": "Benchmark.",
                "rollback_plan": "None.",
                "risk_tier": "low",
                "data_classification": "internal",
                "mode": "autonomous",
                "reviewer_hourly_usd": Decimal("48"),
                "manual_minutes_per_case": 4,
            },
        )
        automations.append(automation)
    return admin, automations


def one_run(rng: random.Random, add, add_key) -> None:
    """Draw one run's facts and count them as the rollup job would."""
    from automations.metrics.buckets import (
        DECISION_BOUNDS_MS,
        END_TO_END_BOUNDS_MS,
        bucket_index,
        confidence_bin,
    )

    decision_ms = rng.lognormvariate(math.log(400), 0.8)
    add("runs", 1)
    add("decisions", 1)
    add("decision_ms_sum", round(decision_ms))
    add(f"decision_b{bucket_index(decision_ms, DECISION_BOUNDS_MS)}", 1)
    add(f"confidence_b{confidence_bin(rng.betavariate(8, 2))}", 1)
    add("model_calls", 1)
    add("input_tokens", 800)
    add("output_tokens", 60)
    add("cost_usd", Decimal("0.000416"))
    if rng.random() < 0.02:
        add("model_errors", 1)
        if rng.random() < 0.25:
            add("model_timeouts", 1)
    if rng.random() < 0.3:  # a person decides it
        add("needed_person", 1)
        add("guardrail_triggered", 1)
        add_key("check", rng.choice(CHECKS_FOR_REVIEW))
        review_ms = round(rng.uniform(20_000, 180_000))
        add("reviewed", 1)
        add("review_ms_sum", review_ms)
        roll = rng.random()
        outcome = "approved" if roll < 0.88 else "edited" if roll < 0.96 else "rejected"
        if outcome != "approved":
            add("overridden", 1)
        if outcome == "edited":
            add_key("field", rng.choice(FIELDS))
        end_to_end = decision_ms + rng.lognormvariate(math.log(20 * 60_000), 1.0)
    else:
        outcome = "autonomous" if rng.random() < 0.93 else "blocked"
        if outcome == "blocked":
            add("guardrail_triggered", 1)
            add_key("check", "do_not_automate")
        end_to_end = decision_ms + rng.uniform(100, 900)
    add("finished", 1)
    add(outcome, 1)
    add("e2e_ms_sum", round(end_to_end))
    add(f"e2e_b{bucket_index(end_to_end, END_TO_END_BOUNDS_MS)}", 1)


def rollups_load(automations, args, url: str) -> int:
    """COPY the hour, day and key rows of `args.runs` runs over `args.days` days; runs drawn."""
    import psycopg

    from automations.metrics.models import SUM_FIELDS

    rng = random.Random(20261124)
    now = datetime.now(tz=UTC).replace(minute=0, second=0, microsecond=0)
    first_hour = now - timedelta(days=args.days) + timedelta(hours=1)
    weights = SEGMENTS_WEIGHTS[: args.segments] or (1.0,)
    segment_weights = [w / sum(weights) for w in weights]
    automation_weights = [rng.uniform(0.5, 1.5) for _ in automations]
    hours = args.days * 24
    diurnal = [1 + 0.7 * math.sin((h - 9) / 24 * 2 * math.pi) for h in range(24)]
    scale = args.runs / (hours * sum(automation_weights) * sum(diurnal) / 24)
    columns = ", ".join(["automation_id", "period", "start", "segment", *SUM_FIELDS])
    key_columns = "automation_id, period, start, segment, kind, key, count"
    total = 0
    # Two COPYs at once need two connections: one for the rows, one for the keys beside them.
    with (
        psycopg.connect(url) as rows_conn,
        psycopg.connect(url) as keys_conn,
        rows_conn.cursor().copy(f"COPY metrics_rollup ({columns}) FROM STDIN") as rows,
        keys_conn.cursor().copy(f"COPY metrics_rollupkey ({key_columns}) FROM STDIN") as keys,
    ):
        for a_index, automation in enumerate(automations):
            for s_index, s_weight in enumerate(segment_weights):
                segment = f"segment-{s_index}"
                day_sums: dict = defaultdict(Counter)
                day_keys: dict = defaultdict(Counter)
                for h in range(hours):
                    start = first_hour + timedelta(hours=h)
                    expected = scale * automation_weights[a_index] * s_weight * diurnal[start.hour]
                    runs = int(expected) + (rng.random() < expected - int(expected))
                    if not runs:
                        continue
                    sums, hour_keys = runs_drawn(rng, runs)
                    total += runs
                    rows.write_row(
                        [automation.pk, "h", start, segment, *(sums[f] for f in SUM_FIELDS)]
                    )
                    for (kind, key), n in hour_keys.items():
                        keys.write_row([automation.pk, "h", start, segment, kind, key, n])
                    day = start.replace(hour=0)
                    day_sums[day].update(sums)
                    day_keys[day].update(hour_keys)
                for day, sums in day_sums.items():
                    rows.write_row(
                        [automation.pk, "d", day, segment, *(sums[f] for f in SUM_FIELDS)]
                    )
                    for (kind, key), n in day_keys[day].items():
                        keys.write_row([automation.pk, "d", day, segment, kind, key, n])
            print(f"  automation {a_index + 1}/{len(automations)}: {total:,} runs", flush=True)
    return total


def runs_drawn(rng: random.Random, runs: int) -> tuple[Counter, Counter]:
    """What `runs` drawn runs add to a rollup row, and to its keys."""
    sums: Counter = Counter()
    keys: Counter = Counter()

    def add(name, n):
        sums[name] += n

    def add_key(kind, key):
        keys[(kind, key)] += 1

    for _ in range(runs):
        one_run(rng, add, add_key)
    return sums, keys


def job_sample(count: int, admin) -> tuple[int, float]:
    """`count` real runs through the real rollup job: (source rows read, seconds)."""
    from django.utils import timezone

    from automations.metrics.rollup import rollup_run
    from automations.models import Event, Label, ModelCall, ReviewTask, Run, RunTransition
    from catalog.models import Automation

    automation = Automation.objects.create(
        slug="bench-job", name="Bench job", owner=admin, purpose="-", rollback_plan="-",
        risk_tier="low", data_classification="internal",
    )  # fmt: skip
    rng = random.Random(7)
    rollup_run()  # catch up first: what follows is the sample alone
    batch = 2000
    for offset in range(0, count, batch):
        n = min(batch, count - offset)
        events = Event.objects.bulk_create(
            Event(
                automation=automation, idempotency_key=f"job-{offset + i}", payload={},
                body_sha256="0" * 64, payload_sha256="0" * 64, trace_id=f"{offset + i:032x}",
                segment=f"segment-{i % 3}",
            )
            for i in range(n)
        )  # fmt: skip
        reviewed = [rng.random() < 0.3 for _ in events]
        runs = Run.objects.bulk_create(
            Run(
                event=event, automation=automation, segment=event.segment, trace_id=event.trace_id,
                state="awaiting_review" if person else "executed",
                decided_by="" if person else "model",
                proposed_intent={"intent": "route_ticket", "arguments": {}, "confidence": 0.9},
                verdicts=[{"check": "confidence", "verdict": "review" if person else "pass"}],
            )
            for event, person in zip(events, reviewed, strict=True)
        )  # fmt: skip
        steps = []
        for run, person in zip(runs, reviewed, strict=True):
            path = ["received", "deciding", "awaiting_review" if person else "executing"]
            path += [] if person else ["executed"]
            steps += [
                RunTransition(run=run, from_state=a, to_state=b, actor="bench")
                for a, b in zip(["", *path[:-1]], path, strict=True)
            ]
        RunTransition.objects.bulk_create(steps)
        ModelCall.objects.bulk_create(
            ModelCall(run=run, automation=automation, provider="openai", input_tokens=800,
                      output_tokens=60, cost_usd=Decimal("0.000416"), latency_ms=400)
            for run in runs
        )  # fmt: skip
        tasks = ReviewTask.objects.bulk_create(
            ReviewTask(run=run, automation=automation, state="done", outcome="accepted",
                       review_ms=60_000, decided_by=admin, decided_at=timezone.now())
            for run, person in zip(runs, reviewed, strict=True)
            if person
        )  # fmt: skip
        Label.objects.bulk_create(
            Label(review_task=task, run_id=task.run_id, automation=automation, outcome="accepted",
                  reviewer=admin)
            for task in tasks
        )  # fmt: skip
    started = time.perf_counter()
    read = rollup_run()
    return read, time.perf_counter() - started


def vacuum_analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("metrics_rollup", "metrics_rollupkey", "metrics_alert"):
            cursor.execute(f"VACUUM ANALYZE {table}")


def timed(samples: list, call):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        response = call()
        elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        sys.exit(f"HTTP {response.status_code}\n{response.content[:2000]!r}")
    samples.append((elapsed, len(queries)))


def summary(name: str, samples: list) -> str:
    times = sorted(t for t, _ in samples)
    counts = sorted({q for _, q in samples})
    shown = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    return (
        f"{name:22} {len(times):>5} {percentile(times, 50):>8.1f} {percentile(times, 95):>8.1f} "
        f"{percentile(times, 99):>8.1f} {statistics.fmean(times):>8.1f} {shown:>8}"
    )


def main() -> None:
    args = parse_args()
    url, admin_url = bench_database_urls(args.db_name)
    fresh = not args.reuse
    if fresh:
        database_recreate(admin_url, args.db_name)
    django_setup(url)
    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse

    from automations.metrics.models import Rollup, RollupKey

    call_command("migrate", verbosity=0)
    admin, automations = catalog_load(args.automations)
    if fresh:
        print(
            f"drawing and loading the rollups of {args.runs:,} runs over {args.days} days,"
            f" {args.automations} automations x {args.segments} segments ...",
            flush=True,
        )
        started = time.perf_counter()
        total = rollups_load(automations, args, url)
        print(f"loaded {total:,} runs in {time.perf_counter() - started:.0f} s")
        if args.job_runs:
            read, seconds = job_sample(args.job_runs, admin)
            print(
                f"rollup job: {args.job_runs:,} real runs, {read:,} source rows in {seconds:.2f} s"
                f" ({read / seconds:,.0f} rows/s, {args.job_runs / seconds:,.0f} runs/s)"
            )
        vacuum_analyze()
    print(
        f"rollup rows: {Rollup.objects.count():,}, key rows: {RollupKey.objects.count():,};"
        f" {args.rounds} rounds per window",
        flush=True,
    )

    client = Client()
    client.force_login(admin)
    slug = automations[0].slug
    pages = {
        "overview": lambda w: client.get(reverse("metrics:overview"), {"window": w}),
        "automation": lambda w: client.get(
            reverse("metrics:automation", args=[slug]), {"window": w}
        ),
        "refresh": lambda w: client.get(
            reverse("metrics:overview"), {"window": w}, headers={"HX-Request": "true"}
        ),
    }
    for page in pages.values():  # templates compiled, connections open
        page("24h")
    memory = [("before", rss_mb())]
    samples: dict[str, list] = {}
    for window in WINDOWS:
        for _ in range(args.rounds):
            for name, page in pages.items():
                timed(samples.setdefault(f"{name} {window}", []), lambda p=page, w=window: p(w))
        memory.append((f"after {window}", rss_mb()))
    auth = {"Authorization": "Bearer bench-metrics-token"}
    for _ in range(args.rounds):
        timed(samples.setdefault("/metrics", []), lambda: client.get("/metrics", headers=auth))
    memory.append(("after /metrics", rss_mb()))

    print(
        f"{'view':22} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'mean ms':>8} "
        f"{'queries':>8}"
    )
    for name, taken in samples.items():
        print(summary(name, taken))
    print("resident memory: " + ", ".join(f"{when} {mb:.0f} MB" for when, mb in memory))


if __name__ == "__main__":
    main()
