"""What-if benchmark: server time of each kind of preview over 1,000,000 runs of 30 days.

Usage:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/whatif.py [--runs 1000000] [--repeat 7] [--reuse]

It creates (drops first) its own database `handrail_bench_whatif` on the
server of DATABASE_URL (`--db-name` to change), migrates it and loads, with
`INSERT ... SELECT generate_series`, one autonomous automation
(min_confidence 0.7; segment `enterprise` on approve, `trial` with a policy
that keeps the mode, `smb` without a policy) and `--runs` decided runs
spread evenly over the last 30 days, each with its event and the six
guardrail verdicts a decision records, as the pipeline writes them:

- segments: half without one, 20 % enterprise, 20 % trial, 10 % smb;
- confidence from 0.35 to 1, most of it high (0.35 + 0.65 sqrt(u));
- 6 % of the proposals are of a high-risk intent (intent_risk: review), 4 %
  of the events say "lawyer" or "lawsuit", 0.5 % of the runs were blocked;
- the runs that waited for a person (enterprise, below 0.7, high-risk:
  about 46 %) have a done review task: 84 % accepted, 12 % edited,
  4 % rejected (the corrected cases).

`--reuse` keeps a database already loaded with as many runs.

Then each kind of preview runs `--repeat` times (after one warm-up) through
the real view, `GET /automations/<slug>/what-if/?...` as htmx, in process
with Django's test client: server time, the network left out. It prints
p50/p95 of each (and the query count), then the figures each preview gave:
runs judged, corrected cases, and before -> after for needing a person,
acting on its own, recorded, blocked, caught and let through.

Target (issue 23): every preview under 2 s for 1M runs.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._support import (  # noqa: E402 (after the path)
    ROUTE_SCHEMA,
    bench_database_urls,
    database_recreate,
    percentile,
)

SLUG = "bench-whatif"
# Each kind of preview: its name and query parameters.
PREVIEWS = [
    ("no change", {}),
    ("threshold 0.7 -> 0.8", {"min_confidence": "0.8"}),
    ("threshold 0.7 -> 0.6", {"min_confidence": "0.6"}),
    ("segment trial -> approve", {"segment": "trial", "mode": "approve"}),
    ("automation -> shadow", {"mode": "shadow"}),
    (
        "rule body matches, review",
        {
            "rule_field": "payload.body",
            "rule_operator": "matches",
            "rule_value": "(?i)lawyer|lawsuit",
            "rule_effect": "review",
        },
    ),
    (
        "rule body contains, block",
        {
            "rule_field": "payload.body",
            "rule_operator": "contains",
            "rule_value": "refund",
            "rule_effect": "block",
        },
    ),
    (
        "rule + threshold 0.9",
        {
            "rule_field": "source",
            "rule_operator": "equals",
            "rule_value": "email",
            "rule_effect": "review",
            "min_confidence": "0.9",
        },
    ),
]
FIGURES = ("person", "acts", "recorded", "blocked", "caught", "let_through")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--db-name", default="handrail_bench_whatif")
    parser.add_argument("--reuse", action="store_true", help="keep an already loaded database")
    return parser.parse_args()


def django_setup(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()


def loaded_runs(admin_url: str, db_name: str) -> int | None:
    """How many runs an existing bench database holds; None when there is none."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db_name]).fetchone():
            return None
    url, _ = bench_database_urls(db_name)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            return conn.execute("SELECT count(*) FROM automations_run").fetchone()[0]
    except psycopg.Error:
        return None


def catalog_load():
    """The admin who previews, and the automation with its intents and segments."""
    from django.contrib.auth.models import Group, User

    from catalog.models import Automation, Intent, SegmentPolicy

    admin, _ = User.objects.get_or_create(username="bench-admin")
    Group.objects.get(name="admin").user_set.add(admin)
    automation, created = Automation.objects.get_or_create(
        slug=SLUG,
        defaults={
            "name": "Bench what-if",
            "owner": admin,
            "purpose": "benchmark",
            "rollback_plan": "none",
            "risk_tier": "medium",
            "data_classification": "internal",
            "mode": "autonomous",
            "min_confidence": 0.7,
        },
    )
    if created:
        Intent.objects.create(
            automation=automation, name="route_ticket", arguments_schema=ROUTE_SCHEMA
        )
        Intent.objects.create(
            automation=automation, name="refund", risk="high", arguments_schema=ROUTE_SCHEMA
        )
        SegmentPolicy.objects.create(automation=automation, key="enterprise", mode="approve")
        SegmentPolicy.objects.create(automation=automation, key="trial", position=1)
    return admin, automation


# Per run i: a uniform u in [0, 1) and the choices made from it, in SQL.
RUN_COLUMNS = """
    SELECT i,
        ((i::bigint * 7919) % 100003) / 100003.0 AS u,
        ((i::bigint * 104729) % 1000) AS pick,
        now() - ((i::bigint * 2580000000) / {count}) * interval '1 millisecond' AS at,
        CASE WHEN i % 10 < 5 THEN '' WHEN i % 10 < 7 THEN 'enterprise'
             WHEN i % 10 < 9 THEN 'trial' ELSE 'smb' END AS segment
    FROM generate_series(1, {count}) AS i
"""
RUN_FACTS = """
    SELECT *, round((0.35 + 0.65 * sqrt(u))::numeric, 3) AS confidence,
        pick < 60 AS high_risk, pick % 200 = 7 AS blocked,
        CASE WHEN pick % 50 = 3 THEN 'My lawyer will hear about this.'
             WHEN pick % 50 = 4 THEN 'A lawsuit is coming.'
             WHEN pick % 7 = 0 THEN 'I want a refund for order ' || i
             ELSE 'Where is my invoice for order ' || i || '?' END AS body
    FROM ({columns}) AS columns
"""
VERDICT = (
    "jsonb_build_object('check', {check}, 'verdict', {verdict}, 'reason', {reason},"
    " 'details', {details})"
)


def verdicts_sql() -> str:
    """The six verdicts of a decision, as the guardrails write them."""
    rows = [
        VERDICT.format(
            check="'segment_policy'",
            verdict="'pass'",
            reason="CASE WHEN segment = '' THEN 'no segment: mode autonomous applies'"
            " ELSE 'segment ' || segment || ' is on: mode ' || mode END",
            details="jsonb_build_object('effective_mode', mode)",
        ),
        VERDICT.format(
            check="'do_not_automate'",
            verdict="'pass'",
            reason="'no do-not-automate rule matched'",
            details="'{}'::jsonb",
        ),
        VERDICT.format(
            check="'budget'",
            verdict="'pass'",
            reason="'provider rules has no model cost'",
            details="'{}'::jsonb",
        ),
        VERDICT.format(
            check="'pii_policy'",
            verdict="'pass'",
            reason="'data is internal: no redaction needed'",
            details="'{}'::jsonb",
        ),
        VERDICT.format(
            check="'intent_risk'",
            verdict="CASE WHEN high_risk THEN 'review' ELSE 'pass' END",
            reason="CASE WHEN high_risk THEN 'intent \"refund\" is high-risk: a person approves it'"
            " ELSE 'intent \"route_ticket\" is low-risk' END",
            details="jsonb_build_object('risk', CASE WHEN high_risk THEN 'high' ELSE 'low' END)",
        ),
        VERDICT.format(
            check="'confidence'",
            verdict="CASE WHEN confidence < 0.7 THEN 'review' ELSE 'pass' END",
            reason="'confidence ' || confidence || CASE WHEN confidence < 0.7"
            " THEN ' is below 0.70' ELSE ' meets 0.70' END",
            details="jsonb_build_object('confidence', confidence, 'min_confidence', 0.7)",
        ),
    ]
    return "jsonb_build_array(" + ", ".join(rows) + ")"


def runs_load(count: int, automation_id: int, reviewer_id: int) -> float:
    """Bulk-load `count` events, decided runs and the review tasks of those a person saw."""
    from django.db import connection

    started = time.perf_counter()
    facts = RUN_FACTS.format(columns=RUN_COLUMNS.format(count=count))
    decided = f"""
        SELECT *, {verdicts_sql()} AS verdicts,
            CASE WHEN blocked THEN 'blocked'
                 WHEN mode = 'approve' OR high_risk OR confidence < 0.7 THEN 'reviewed'
                 ELSE 'acted' END AS route
        FROM (SELECT *, CASE WHEN segment = 'enterprise' THEN 'approve' ELSE 'autonomous' END
                  AS mode FROM ({facts}) AS facts) AS moded
    """
    intent = """jsonb_build_object('intent', CASE WHEN high_risk THEN 'refund' ELSE 'route_ticket'
        END, 'arguments', jsonb_build_object('team', 'billing', 'priority', 'p2'),
        'confidence', confidence, 'rationale', 'Invoice question.')"""
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE UNLOGGED TABLE bench_runs AS {decided}")
        cursor.execute(f"""
            INSERT INTO automations_event (id, automation_id, idempotency_key, segment, source,
                payload, body_sha256, payload_sha256, client, trace_id, received_at)
            SELECT i, {automation_id}, 'bench-' || i, segment,
                CASE WHEN pick % 3 = 0 THEN 'email' ELSE 'zendesk' END,
                jsonb_build_object('subject', 'Ticket ' || i, 'body', body,
                    'tags', jsonb_build_array('support', segment)),
                md5(i::text), md5(i::text), 'bench', md5(i::text), at
            FROM bench_runs""")
        cursor.execute(f"""
            INSERT INTO automations_run (id, event_id, automation_id, segment, state, trace_id,
                effective_mode, proposed_intent, final_intent, decided_by, verdicts, reason,
                held_by, created_at, updated_at)
            SELECT i, i, {automation_id}, segment,
                CASE route WHEN 'blocked' THEN 'blocked' WHEN 'acted' THEN 'executed'
                    ELSE CASE WHEN pick % 25 = 1 THEN 'rejected' ELSE 'executed' END END,
                md5(i::text), mode, {intent},
                CASE WHEN route = 'blocked' THEN NULL ELSE {intent} END,
                CASE route WHEN 'acted' THEN 'model' WHEN 'reviewed' THEN 'reviewer' ELSE '' END,
                verdicts,
                CASE route WHEN 'acted' THEN 'autonomous: every guardrail passed'
                    WHEN 'blocked' THEN 'the automation is switched off (while deciding)'
                    ELSE 'approve mode: a person approves every action' END,
                '', at, at
            FROM bench_runs""")
        cursor.execute(f"""
            INSERT INTO automations_reviewtask (id, run_id, automation_id, kind, reason, state,
                outcome, reject_reason, note, decided_by_id, decided_at, review_ms, created_at)
            SELECT i, i, {automation_id}, 'approve', 'a person approves', 'done',
                CASE WHEN pick % 25 = 1 THEN 'rejected' WHEN pick % 25 IN (2, 5, 8) THEN 'edited'
                    ELSE 'accepted' END,
                CASE WHEN pick % 25 = 1 THEN 'wrong_intent' ELSE '' END, '',
                {reviewer_id}, at + interval '5 minutes', 30000, at
            FROM bench_runs WHERE route = 'reviewed'""")
        cursor.execute("DROP TABLE bench_runs")
        for table in ("automations_event", "automations_run", "automations_reviewtask"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"  # noqa: S608
                f" (SELECT coalesce(max(id), 1) FROM {table}))"
            )
            cursor.execute(f"VACUUM ANALYZE {table}")
    return time.perf_counter() - started


def timed(client, url: str, params: dict, repeat: int) -> tuple[list[float], int]:
    """Server times (ms) of `repeat` requests after one warm-up, and the queries of one."""
    from django.db import connection

    headers = {"HX-Request": "true"}
    queries = []
    with connection.execute_wrapper(lambda execute, *a: queries.append(a[0]) or execute(*a)):
        response = client.get(url, params, headers=headers)
    if response.status_code != 200:
        sys.exit(f"GET {url} {params}: {response.status_code}\n{response.content.decode()[:2000]}")
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.get(url, params, headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
    return sorted(samples), len(queries)


def figures_of(automation, params: dict):
    """The preview's figures, through the form the view uses."""
    from catalog.governance.whatif import whatif_preview
    from catalog.governance.whatif_form import WhatIfForm

    form = WhatIfForm(params)
    if not form.is_valid():
        sys.exit(f"{params}: {form.errors.as_text()}")
    return whatif_preview(automation=automation, proposal=form.proposal())


def main() -> None:
    args = parse_args()
    url, admin_url = bench_database_urls(args.db_name)
    reuse = args.reuse and loaded_runs(admin_url, args.db_name) == args.runs
    if not reuse:
        database_recreate(admin_url, args.db_name)
    django_setup(url)
    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse

    if not reuse:
        print(f"migrating {args.db_name} ...", flush=True)
        call_command("migrate", verbosity=0)
    admin, automation = catalog_load()
    if not reuse:
        print(f"loading {args.runs:,} runs ...", flush=True)
        seconds = runs_load(args.runs, automation.pk, admin.pk)
        print(f"loaded in {seconds:.0f} s", flush=True)
    client = Client()
    client.force_login(admin)
    url = reverse("automation_whatif", args=[SLUG])

    print(f"\n{'preview':28} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8} {'queries':>8}")
    results = []
    for name, params in PREVIEWS:
        samples, queries = timed(client, url, params, args.repeat)
        print(
            f"{name:28} {percentile(samples, 50):8.0f} {percentile(samples, 95):8.0f}"
            f" {statistics.fmean(samples):8.0f} {queries:8d}",
            flush=True,
        )
        results.append((name, figures_of(automation, params)))

    print(
        f"\n{'preview':28} {'runs':>9} {'corrected':>9}  "
        + "  ".join(f"{name + ' before->after':>26}" for name in FIGURES)
    )
    for name, result in results:
        cells = "  ".join(
            f"{getattr(result.before, f):>12,} -> {getattr(result.after, f):<10,}" for f in FIGURES
        )
        print(f"{name:28} {result.runs:9,} {result.corrected:9,}  {cells}")


if __name__ == "__main__":
    main()
