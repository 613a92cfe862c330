"""Verifying the trail: how much CPU `verify_trail` takes for 1,000,000 entries.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/trail.py

Creates its own database (`handrail_bench_trail`, dropped first), migrates it,
and loads --entries chained entries shaped like decision entries (about 700
bytes of canonical JSON each) with COPY, chained exactly as the sequencer
chains them. Then it runs the verification (catalog.audit.trail.trail_verify)
--repeat times and prints, per run, the wall time, this process's CPU (the
hashing and the walk: the target, "under 10 s of CPU, reading aside") and
the PostgreSQL backend's CPU (reading the rows and comparing each entry's
data with its canonical bytes as jsonb).

Target (issue 22): under 10 s of CPU for 1,000,000 entries.
"""

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import (  # noqa: E402
    bench_database_urls,
    database_drop,
    database_recreate,
    postgres_backends,
    process_cpu,
)

DB_NAME = "handrail_bench_trail"
DOMAIN = b"handrail.trail.v1\x00"


def django_setup(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
    import django

    django.setup()


def entry(n: int) -> dict:
    """A decision-shaped entry: what the pipeline appends most."""
    return {
        "automation": "support-triage",
        "at": f"2026-12-01T10:{n % 60:02d}:{n % 59:02d}.{n % 999999:06d}+00:00",
        "by": "worker:bench:1",
        "event_sha256": hashlib.sha256(str(n).encode()).hexdigest(),
        "intent": {
            "arguments": {"priority": "p2", "team": "billing"},
            "confidence": 0.9,
            "intent": "route_ticket",
            "rationale": "Invoice question.",
        },
        "kind": "decision",
        "mode": "autonomous",
        "reason": "autonomous: every guardrail passed",
        "route": "approved",
        "run": n,
        "segment": "enterprise",
        "trace_id": f"{n:032x}",
        "verdicts": [
            {"check": check, "details": {}, "reason": "passed", "verdict": "pass"}
            for check in ("segment_policy", "do_not_automate", "budget", "pii_policy")
        ],
    }


def canonical(data: dict) -> bytes:
    # For ASCII strings, integers and this one float, sorted compact JSON is RFC 8785.
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def load(url: str, count: int) -> None:
    """COPY `count` chained entries in, and point the head at the last one."""
    import psycopg

    prev = bytes(32)
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        columns = "seq, kind, data, canonical, prev_hash, hash, created_at"
        with cursor.copy(f"COPY catalog_trailentry ({columns}) FROM STDIN") as copy:
            for n in range(1, count + 1):
                data = entry(n)
                raw = canonical(data)
                digest = hashlib.sha256(DOMAIN + prev + raw).digest()
                copy.write_row(
                    (n, "decision", json.dumps(data), raw, prev, digest, "2026-12-01T10:00:00Z")
                )
                prev = digest
                if n % 200_000 == 0:
                    print(f"  loaded {n:,} entries", file=sys.stderr)
        cursor.execute(
            "UPDATE catalog_trailhead SET seq = %s, hash = %s WHERE id = 1", [count, prev]
        )
        cursor.execute("ANALYZE catalog_trailentry")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    url, admin_url = bench_database_urls(DB_NAME)
    database_recreate(admin_url, DB_NAME)
    try:
        django_setup(url)
        from django.core.management import call_command
        from django.db import connection

        from catalog.audit.trail import trail_verify

        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        load(url, args.entries)
        print(f"loaded {args.entries:,} entries in {time.perf_counter() - started:.1f} s")
        connection.ensure_connection()
        backends = postgres_backends(DB_NAME)
        print("run  entries     wall s  client CPU s  PostgreSQL CPU s  result")
        for run in range(1, args.repeat + 1):
            server_before = sum(process_cpu(pid) for pid in backends)
            cpu_before, wall_before = time.process_time(), time.perf_counter()
            verdict = trail_verify()
            cpu = time.process_time() - cpu_before
            wall = time.perf_counter() - wall_before
            server = sum(process_cpu(pid) for pid in backends) - server_before
            print(
                f"{run:>3}  {verdict.entries:>9,}  {wall:>8.2f}  {cpu:>12.2f}  {server:>16.2f}"
                f"  {verdict.line()}"
            )
        connection.close()
    finally:
        if not args.keep:
            database_drop(admin_url, DB_NAME)


if __name__ == "__main__":
    main()
