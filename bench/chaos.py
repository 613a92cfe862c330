"""Chaos benchmark: the pipeline under faults, measured from outside with the app's own API.

Usage:

    .venv/bin/python bench/chaos.py [--events 600] [--rate 20] [--kills 4]
        [--recovery-seconds 12] [--receiver-delay 0.2] [--only a,b,c,d]

(`make chaos` runs it with the defaults; `make chaos CHAOS_ARGS="--events 100"`.)

What it starts (all on 127.0.0.1, all stopped and removed on exit, Ctrl-C included):
- its own PostgreSQL 15 cluster (initdb into a temporary directory, on a
  spare port; as root, through `runuser -u postgres --`) and its own Redis
  (`redis-server --save "" --appendonly no`, on a spare port): the shared
  servers on :5432 and :6379 are never touched, since these are restarted;
- Handrail as README's "Running it" deploys it (tests/support/chaos.py's
  Stand): gunicorn with reviewapp/gunicorn.conf.py, two solo Celery workers,
  Celery beat;
- a Standard Webhooks receiver (tests/support/webhook_receiver.py) that
  records every delivery with its `webhook-id` when it arrives, before it
  answers, and can answer slowly.

One autonomous automation on the offline rules provider, whose one intent
is a signed webhook to the receiver (timeout `--webhook-timeout`). The
client posts `--events` events per experiment at `--rate` events/s from
eight threads, as a careful integration does: each event retried with its
idempotency key on 503 and 429 (after Retry-After), on any other 5xx and
on connection errors, until acknowledged. Experiments:

(a) no faults;
(b) `--kills` times SIGKILL of a worker while events flow, every other one
    in the middle of a delivery (the receiver answers after
    `--receiver-delay` seconds, so the kill lands while the request is out),
    the worker started again a second later;
(c) Redis stopped mid-run (everything it held is lost: queue, unacknowledged
    messages, rate-limit counters), started again 3 s later;
(d) PostgreSQL shut down mid-run (`pg_ctl stop -m fast`), started again 3 s
    later.
In (c) and (d) the receiver answers after `--restart-receiver-delay` (30 ms),
so that deliveries are out when the server goes, while the workers still
keep up with the events offered: a backlog would keep runs in flight that
wait for nothing but their turn, and the recovery time would measure it.

Per experiment it prints: events, runs acknowledged, runs terminal, lost
(acknowledged, no terminal run once settled), duplicate deliveries (the
same `webhook-id` received more than once) with their rate, answers >= 500
the clients got (and how many of them were 503), and recovery times:
- kills: from the kill to the moment the last run the killed worker held
  (its `held_by` at the kill) was picked up again (held by another worker,
  or moved on); max and p50 over the kills that left a run held;
- restarts: from the server being back to the first and the last run that
  was in flight then moving on (the last one also waits for its turn: the
  pipeline works through everything that waited at its own pace, which on
  a busy machine is not much above the 20 events/s still arriving); the
  details also say when the last of them was handed to a worker again
  (moved, or sent again by the sweep).
Exit status 1 when an invariant breaks: an event never acknowledged, a lost
run, an answer >= 500 other than 503, or a recovery over
HANDRAIL_RECOVERY_SECONDS: the last run a killed worker held picked up
again, after the Redis restart the last waiting run handed to a worker
again (every message was lost with Redis), after the PostgreSQL restart the
first waiting run moving.

HANDRAIL_RECOVERY_SECONDS is 12 here (production's default is 60) so that
each recovery takes seconds and the four experiments a few minutes: every
step of it scales with the bound (the sweep runs every 2 s, a worker's hold
lapses 4 s after the worker stops renewing it, a queued run is due 6 s
after its message went out), and 12 s is still long enough for the steps
that do not scale (a worker's restart, its reconnection to Redis after 2,
then 4 s, PostgreSQL's restart) to be measured against it. The automation
keeps the model's default latency budget (8 s) and the adapter's default
timeout (10 s): with holds renewed while the work goes on, they no longer
bear on how soon a killed worker's run is taken over.

Results on the 2-core development machine: bench/README.md.
"""

import argparse
import base64
import contextlib
import os
import secrets
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.private_servers import (  # noqa: E402 (after the path is set)
    PostgresServer,
    RedisServer,
)
from tests.support.webhook_receiver import WebhookReceiver  # noqa: E402

DB_NAME = "handrail_chaos"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=600, help="events per experiment")
    parser.add_argument("--rate", type=float, default=20.0, help="events offered per second")
    parser.add_argument("--kills", type=int, default=4, help="worker kills in experiment (b)")
    parser.add_argument("--recovery-seconds", type=int, default=12)
    parser.add_argument(
        "--receiver-delay", type=float, default=0.2, help="seconds the receiver waits, in (b)"
    )
    parser.add_argument(
        "--restart-receiver-delay",
        type=float,
        default=0.03,
        help="seconds the receiver waits, in (c) and (d)",
    )
    parser.add_argument(
        "--webhook-timeout", type=float, default=10.0, help="the adapter's timeout (its default)"
    )
    parser.add_argument("--down-seconds", type=float, default=3.0, help="restarts: time down")
    parser.add_argument("--only", default="a,b,c,d", help="experiments to run, e.g. a,c")
    parser.add_argument(
        "--settle-timeout", type=float, default=180.0, help="seconds to wait for runs to settle"
    )
    parser.add_argument(
        "--log-dir", type=Path, help="keep the servers' and workers' logs here (default: removed)"
    )
    args = parser.parse_args(argv)
    args.only = {name.strip() for name in args.only.split(",") if name.strip()}
    if not args.only <= set("abcd"):
        parser.error("--only takes a comma-separated subset of a,b,c,d")
    if min(args.events, args.rate, args.recovery_seconds) <= 0 or args.kills < 0:
        parser.error("--events, --rate and --recovery-seconds must be > 0, --kills >= 0")
    return args


def interrupt(signum, frame):
    # Once: the cleanup below must not be cut short by the next signal.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")


def django_setup(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.pop("REDIS_URL", None)  # this process only reads runs; it publishes nothing
    os.environ["DJANGO_SETTINGS_MODULE"] = "reviewapp.settings"
    import django

    django.setup()


def experiments(args, *, stand, postgres, redis) -> list[tuple[str, dict]]:
    from tests.support.chaos import ServerRestart, WorkerKill

    kills = [
        WorkerKill(at=(k + 1) / (args.kills + 1), worker=k % 2, while_sending=k % 2 == 0)
        for k in range(args.kills)
    ]
    down = args.down_seconds
    chosen = {
        "a": ("a no faults", {"faults": []}),
        "b": (
            "b worker kill -9",
            {"faults": kills, "receiver_delay": args.receiver_delay},
        ),
        "c": (
            "c redis restart",
            {
                "faults": [
                    ServerRestart(
                        at=0.4, server=redis, down_seconds=down, label="redis", lost_messages=True
                    )
                ],
                "receiver_delay": args.restart_receiver_delay,
            },
        ),
        "d": (
            "d postgres restart",
            {
                "faults": [
                    ServerRestart(at=0.4, server=postgres, down_seconds=down, label="postgres")
                ],
                "receiver_delay": args.restart_receiver_delay,
            },
        ),
    }
    return [chosen[name] for name in "abcd" if name in args.only]


def details(figures) -> list[str]:
    """What the table leaves out: states, answers, each recovery, duplicates against kills."""
    from tests.support.chaos import seconds

    lines = [
        f"{figures.name}: runs by state {dict(figures.states)}; "
        f"{figures.deliveries} deliveries of {figures.delivered_ids} actions; "
        f"answers >= 500 {dict(figures.server_errors) or 0}, no answer {figures.unanswered}; "
        f"settled in {figures.settle_seconds:.1f} s"
    ]
    for watch in figures.watches:
        lines.append(
            f"  {watch.label}: {len(watch.marks)} runs held or in flight, "
            f"{len(watch.in_flight_keys)} deliveries in flight; all handed to a worker again "
            f"in {seconds(watch.last_handed())} s, all moved on in {seconds(watch.last())} s"
        )
    if figures.duplicate_ids:
        outside = figures.duplicate_ids - figures.in_flight_at_kills
        lines.append(
            f"  duplicated actions {len(figures.duplicate_ids)}, of which in flight at a kill "
            f"{len(figures.duplicate_ids) - len(outside)}"
        )
    if figures.refused:
        lines.append(f"  events refused for good: {dict(figures.refused)}")
    return lines


def main() -> None:
    args = parse_args()
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    problems: list[str] = []
    with contextlib.ExitStack() as stack:
        try:
            if args.log_dir:
                directory = args.log_dir.resolve()
                directory.mkdir(parents=True, exist_ok=True)
            else:
                directory = Path(
                    stack.enter_context(tempfile.TemporaryDirectory(prefix="hr-chaos-"))
                )
            print("starting PostgreSQL, Redis, the receiver", flush=True)
            postgres = stack.enter_context(PostgresServer())
            redis = stack.enter_context(RedisServer())
            receiver = stack.enter_context(WebhookReceiver())
            postgres.create_database(DB_NAME)
            django_setup(postgres.url(DB_NAME))
            from django.core.management import call_command

            from tests.support.chaos import SECRET_ENV, Stand, catalog_create, experiment_run, table

            call_command("migrate", verbosity=0)
            token = catalog_create(
                hook_url=receiver.url("/hooks/chaos"),
                timeout_seconds=args.webhook_timeout,
                latency_budget_ms=8000,  # the model's default
            )
            secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
            stand = Stand(
                redis=redis,
                directory=directory,
                env={
                    "HANDRAIL_RECOVERY_SECONDS": str(args.recovery_seconds),
                    "HANDRAIL_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
                    "HANDRAIL_RATE_LIMIT_PER_MINUTE": "100000000",
                    SECRET_ENV: secret,
                },
            )
            print("starting gunicorn, 2 solo workers and beat", flush=True)
            stand.start()
            stack.callback(stand.stop)
            results = []
            for name, spec in experiments(args, stand=stand, postgres=postgres, redis=redis):
                print(f"experiment {name}: {args.events} events at {args.rate:g}/s", flush=True)
                started = time.monotonic()
                figures = experiment_run(
                    name=name,
                    stand=stand,
                    receiver=receiver,
                    token=token,
                    events=args.events,
                    rate=args.rate,
                    recovery_bound=args.recovery_seconds,
                    settle_timeout=args.settle_timeout,
                    log=lambda line: print(line, flush=True),
                    **spec,
                )
                print(f"  done in {time.monotonic() - started:.0f} s", flush=True)
                results.append(figures)
                problems += [f"{name}: {problem}" for problem in figures.problems()]
            print(
                f"\nHANDRAIL_RECOVERY_SECONDS={args.recovery_seconds}, {args.events} events per "
                f"experiment at {args.rate:g}/s, {os.cpu_count()} CPUs\n"
            )
            print(table(results))
            print()
            for figures in results:
                print("\n".join(details(figures)))
            if problems:
                print(f"\nthe end of the logs (all of them: --log-dir)\n{stand.logs()[-6000:]}")
        except KeyboardInterrupt:
            print("\ninterrupted: stopping what this script started", file=sys.stderr)
            sys.exit(130)
    for problem in problems:
        print(f"PROBLEM: {problem}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
