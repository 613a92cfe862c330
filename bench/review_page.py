"""Review page benchmark: server time of the reviewer console with a million pending tasks.

Usage:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/review_page.py [--tasks 1000000] [--rounds 300]

It uses the database that bench/claims.py loads (`handrail_bench_claims`:
`--tasks` pending review tasks over 20 automations; loaded here first if it
is missing or of another size), resets it to all-pending, and then one
reviewer works a queue through the real console views with Django's test
client, in process, so the figures are server time without the network:

- `home`: GET /review/ (queues with pending counts, oldest age, today's throughput);
- `next`: POST /review/<slug>/next/ as htmx (claim and render the task panel);
- `page`: GET /review/tasks/<id>/ (the full review page);
- `decide`: POST /review/tasks/<id>/decide/ as htmx (approve with an edit, the
  Label, the run transition, claim the next task and render its panel).

Prints p50/p95/p99 and the query count of each. Target: the review page's
server time p95 <= 50 ms with 1M pending, in a number of queries that does
not grow with the queue.

Results on the 2-core development machine (2026-11-24, 300 rounds; two
runs hours apart, in slower phases of the VM than the first figures of the
day, 12.7 ms page p95):

    view      p50 ms       p95 ms       p99 ms       queries
    home      19.9-26.1    24.4-31.4    31.8-40.4          4   (3 queues of 50,000 pending)
    page      11.3-13.1    15.2-18.7    18.4-23.2          9
    decide    20.1-23.0    27.7-33.3    31.5-36.5         17   (decision and next claim + panel)

The single `next` sample is the first request of the process (templates
compiled on first use), about 200 ms; later claims are part of `decide`.
"""

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._support import bench_database_urls, percentile  # noqa: E402 (after the path)


def claims_module():
    """bench/claims.py, for its database set-up (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_claims", ROOT / "bench" / "claims.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--automations", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=300, help="tasks decided (one per round)")
    parser.add_argument("--db-name", default="handrail_bench_claims")
    args = parser.parse_args()
    # What bench/claims.py's catalog_load reads.
    args.reviewers, args.queues_per_reviewer = 32, 3
    return args


def timed(samples: dict, name: str, call):
    """Run `call`, keep its wall time (ms) and query count under `name`; return its response."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        response = call()
        elapsed = (time.perf_counter() - started) * 1000
    samples.setdefault(name, []).append((elapsed, len(queries)))
    if response.status_code >= 400:
        sys.exit(f"{name}: HTTP {response.status_code}\n{response.content[:2000]!r}")
    return response


def main() -> None:
    args = parse_args()
    claims = claims_module()
    url, admin_url = bench_database_urls(args.db_name)
    claims.database_create(admin_url, args.db_name, reuse=True)
    import os

    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    claims.django_setup(url)
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from automations.models import ReviewTask

    call_command("migrate", verbosity=0)
    automation_ids, own = claims.catalog_load(args)
    if ReviewTask.objects.count() != args.tasks:
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE automations_event, automations_run, automations_reviewtask,"
                " automations_label, automations_runtransition CASCADE"
            )
        print(f"loading {args.tasks:,} tasks ...", flush=True)
        print(f"loaded in {claims.tasks_load(args.tasks, automation_ids):.1f} s")
    else:
        claims.tasks_reset(args.tasks)
    claims.vacuum_analyze()

    user_id, queues = next(iter(own.items()))
    user = User.objects.get(pk=user_id)
    slug = f"bench-{automation_ids.index(queues[0])}"
    client = Client()
    client.force_login(user)
    htmx = {"HTTP_HX_REQUEST": "true"}
    samples: dict[str, list[tuple[float, int]]] = {}
    pending = ReviewTask.objects.filter(automation_id=queues[0], state="pending").count()
    print(
        f"{args.tasks:,} pending tasks; queue {slug} holds {pending:,}; {args.rounds} rounds ...",
        flush=True,
    )

    timed(samples, "next", lambda: client.post(reverse("review:next", args=[slug]), **htmx))
    for n in range(args.rounds):
        if n % 10 == 0:
            timed(samples, "home", lambda: client.get(reverse("review:home")))
        task = ReviewTask.objects.filter(claimed_by=user, state="claimed").first()
        page_url = reverse("review:task", args=[task.pk])
        decide_url = reverse("review:decide", args=[task.pk])
        timed(samples, "page", lambda url=page_url: client.get(url))
        form = {
            "action": "approve",
            "arg.team": "technical" if n % 2 else "billing",
            "arg.priority": "p2",
        }
        timed(samples, "decide", lambda url=decide_url, data=form: client.post(url, data, **htmx))

    print(
        f"{'view':8} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'mean ms':>8} "
        f"{'queries':>8}"
    )
    for name in ("home", "next", "page", "decide"):
        times = sorted(t for t, _ in samples[name])
        counts = sorted({q for _, q in samples[name]})
        shown = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
        print(
            f"{name:8} {len(times):>5} {percentile(times, 50):>8.1f} "
            f"{percentile(times, 95):>8.1f} {percentile(times, 99):>8.1f} "
            f"{statistics.fmean(times):>8.1f} {shown:>8}"
        )


if __name__ == "__main__":
    main()
