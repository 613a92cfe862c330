"""Faults under load, measured from outside (bench/chaos.py, tests/automations/test_chaos.py).

A `Stand` deploys Handrail as the README's "Running it" says (gunicorn, solo
Celery workers, Celery beat) against a database and a Redis server the
caller owns, so that Redis (and, in the benchmark, PostgreSQL) can be
restarted at will. An `EventFlow` posts events through the API the way a
real integration does: paced, each event retried with its idempotency key on
503, 429, 5xx and connection errors until acknowledged. `experiment_run`
posts one batch of events, fires the faults it is given as the flow passes
their marks, waits until every acknowledged event's run has settled, and
returns the `Figures`: events, runs, terminal, lost, duplicate deliveries by
`webhook-id`, 5xx answers, and recovery times.

Import it once Django is set up. Recovery is timed from outside, by polling
the runs every POLL_SECONDS:
- after a worker is killed, from the kill until the last run it held (its
  `held_by` when it died) has been picked up again: held by another worker
  or moved on;
- after Redis or PostgreSQL is back, from that moment until each run still
  in flight then (its message lost, or its task failed) has moved. The
  first one says when the pipeline moved again; the last one also waited for
  its turn behind the others, at the pipeline's pace.
The bound (HANDRAIL_RECOVERY_SECONDS) holds for the last run a killed worker
held; after a Redis restart (every queued message lost), for the last
waiting run to be handed to a worker again (moved, or sent again by the
sweep); after a PostgreSQL restart, for the first waiting run to move.
"""

from __future__ import annotations

import http.client
import json
import math
import statistics
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth.models import User
from django.db import DatabaseError, connection

from automations.models import ActionAttempt, Run
from automations.services.actions import IN_FLIGHT as ATTEMPT_IN_FLIGHT
from automations.services.runs import IN_FLIGHT_STATES, SWEPT
from catalog.models import Automation, Intent
from catalog.tokens import token_issue
from tests.factories import ROUTE_SCHEMA
from tests.support.celery_worker import CeleryBeat, CeleryWorker, database_url
from tests.support.gunicorn_server import GunicornServer
from tests.support.private_servers import PostgresServer, RedisServer
from tests.support.webhook_receiver import Answer, WebhookReceiver

SLUG = "chaos-triage"
SECRET_ENV = "HANDRAIL_CHAOS_WEBHOOK_SECRET"
POLL_SECONDS = 0.1

# -- the automation -----------------------------------------------------------------------------


def catalog_create(*, hook_url: str, timeout_seconds: float, latency_budget_ms: int) -> str:
    """An autonomous automation on the rules provider with one webhook intent; a raw API token."""
    owner, _ = User.objects.get_or_create(username="chaos-owner")
    automation = Automation.objects.create(
        slug=SLUG,
        name="Chaos triage",
        owner=owner,
        purpose="faults under load",
        rollback_plan="none",
        risk_tier="low",
        data_classification="internal",
        mode="autonomous",
        latency_budget_ms=latency_budget_ms,
        daily_budget_usd=1_000_000,
        provider="rules",
        rules=[
            {
                "when": {"field": "payload.body", "contains": "invoice"},
                "intent": "route_ticket",
                "arguments": {"team": "billing", "priority": "p2"},
                "confidence": 0.95,
            }
        ],
    )
    Intent.objects.create(
        automation=automation,
        name="route_ticket",
        description="Send the ticket to a team queue.",
        arguments_schema=ROUTE_SCHEMA,
        action_adapter="webhook",
        action_config={
            "url": hook_url,
            "secret_env": SECRET_ENV,
            "timeout_seconds": timeout_seconds,
        },
    )
    return token_issue(name="chaos-client")[1]


# -- the deployment -----------------------------------------------------------------------------


class Stand:
    """gunicorn, solo Celery workers and Celery beat on the caller's database and Redis."""

    def __init__(
        self,
        *,
        redis: RedisServer,
        directory: Path,
        env: dict[str, str],
        workers: int = 2,
        gunicorn_workers: int = 1,
        name: str = "chaos",
    ):
        self.redis = redis
        self.directory = directory
        self.env = {
            **env,
            "DATABASE_URL": database_url(),
            "REDIS_URL": redis.url(0),
            "HANDRAIL_VAR_DIR": str(directory),
        }
        self.workers = CeleryWorker(
            redis_url=self.env["REDIS_URL"],
            env=self.env,
            concurrency=workers,
            name=name,
            log_dir=directory,
        )
        self.beat = CeleryBeat(env=self.env, directory=directory)
        self.api = GunicornServer(env=self.env, workers=gunicorn_workers)
        self._restarts: list[threading.Thread] = []
        self._stopping = threading.Event()

    def start(self) -> None:
        try:
            self.workers.start()
            self.beat.start()
            self.api.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._restarts:
            thread.join(timeout=60)
        self.api.close()
        self.beat.stop()
        self.workers.stop()

    def restart_later(self, n: int, delay: float) -> threading.Thread:
        """Start worker `n` again after `delay` seconds, in the background."""

        def restart():
            if self._stopping.wait(delay):
                return
            try:
                self.workers.restart(n)
            except RuntimeError:
                if not self._stopping.is_set():
                    raise  # the worker did not start: its log says why

        self.wait_restarted(n)
        thread = threading.Thread(target=restart, name=f"restart-worker-{n}", daemon=True)
        thread.start()
        self._restarts.append(thread)
        return thread

    def wait_restarted(self, n: int, timeout: float = 90) -> None:
        """Wait until a restart of worker `n` begun by restart_later is done."""
        for thread in self._restarts:
            if thread.name == f"restart-worker-{n}":
                thread.join(timeout)

    def logs(self) -> str:
        return (
            f"{self.workers.log_tail()}\n[beat] {self.beat.log_tail()}\n"
            f"[gunicorn] {self.api.log_tail()}"
        )


# -- the client ---------------------------------------------------------------------------------


@dataclass
class Posted:
    """One event as its client saw it: every answer (0: none), and its run once acknowledged."""

    key: str
    statuses: list[int] = field(default_factory=list)
    run_id: int | None = None


class EventFlow:
    """Posts `count` events at `rate`/s, each retried as a careful integration retries it.

    503 and 429 wait their Retry-After (at most 10 s); other 5xx wait a second;
    no answer at all backs off from 0.25 s to 5 s. Every try reuses the event's
    idempotency key. An event gives up after `give_up_after` seconds.
    """

    def __init__(
        self,
        *,
        port: int,
        token: str,
        prefix: str,
        count: int,
        rate: float,
        threads: int = 8,
        give_up_after: float = 180,
    ):
        self.port, self.token, self.rate = port, token, rate
        self.events = [Posted(f"{prefix}-{n}") for n in range(count)]
        self.threads = threads
        self.give_up_after = give_up_after
        self._next = iter(range(count))
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self.started = 0.0

    def start(self) -> EventFlow:
        self.started = time.monotonic()
        self._workers = [
            threading.Thread(target=self._loop, daemon=True) for _ in range(self.threads)
        ]
        for thread in self._workers:
            thread.start()
        return self

    @property
    def done(self) -> bool:
        return not any(thread.is_alive() for thread in self._workers)

    def acknowledged(self) -> int:
        return sum(1 for event in self.events if event.run_id is not None)

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._workers:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _loop(self) -> None:
        while True:
            with self._lock:
                number = next(self._next, None)
            if number is None:
                return
            delay = self.started + number / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._deliver(self.events[number], number)

    def _deliver(self, event: Posted, number: int) -> None:
        body = json.dumps(
            {
                "idempotency_key": event.key,
                "source": "chaos",
                "payload": {"subject": f"Invoice {number}", "body": "Where is my invoice?"},
            }
        )
        deadline = time.monotonic() + self.give_up_after
        failures = 0
        while time.monotonic() < deadline:
            status, retry_after, answer = self._post(body)
            event.statuses.append(status)
            if status in (200, 202):
                event.run_id = int(answer["run_id"])
                return
            if 400 <= status < 500 and status != 429:
                return  # refused for good: the figures show it
            failures += 1
            if status in (429, 503):
                wait = min(retry_after or 1.0, 10.0)
            elif status >= 500:
                wait = 1.0
            else:
                wait = min(0.25 * 2 ** (failures - 1), 5.0)
            time.sleep(wait)

    def _post(self, body: str) -> tuple[int, float | None, dict]:
        """(status or 0, Retry-After seconds, JSON answer)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(
                "POST",
                f"/api/v1/automations/{SLUG}/events",
                body=body,
                headers={
                    "Authorization": f"Bearer {self.token}",
                    "Content-Type": "application/json",
                },
            )
            response = conn.getresponse()
            data = response.read()
            retry_after = response.getheader("Retry-After")
        except (OSError, http.client.HTTPException):
            return 0, None, {}
        finally:
            conn.close()
        try:
            answer = json.loads(data)
        except ValueError:
            answer = {}
        seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
        return response.status, seconds, answer


# -- watching runs ------------------------------------------------------------------------------


def db_read(query: Callable[[], object], *, default=None):
    """`query()`, or `default` while the database is away (its connection is dropped)."""
    try:
        return query()
    except DatabaseError:
        connection.close()
        return default


def run_marks(run_ids) -> dict[int, tuple[str, str]]:
    """(state, held_by) of each run."""
    rows = Run.objects.filter(pk__in=list(run_ids)).values_list("pk", "state", "held_by")
    return {pk: (state, held_by) for pk, state, held_by in rows}


def picked_up(before: tuple[str, str], now: tuple[str, str] | None) -> bool:
    """Whether a run moved on, or another worker holds it (the sweep's mark is not a holder)."""
    if now is None or now[0] != before[0]:
        return True
    return now[1].startswith("worker:") and now[1] != before[1]


@dataclass
class Watch:
    """Runs seen at `since` (a kill, or a server back up), until each has moved on from there."""

    label: str
    since: float  # monotonic
    marks: dict[int, tuple[str, str]]  # run id -> (state, held_by) at `since`
    moved: dict[int, float] = field(default_factory=dict)  # run id -> seconds after `since`
    # Moved, or sent to the queue again by the sweep (held by "sweep"): seconds after `since`.
    handed: dict[int, float] = field(default_factory=dict)
    in_flight_keys: set[str] = field(default_factory=set)  # kills: attempts sent, unanswered
    lost_messages: bool = False  # restarts: every message queued was lost with the server

    @property
    def waiting(self) -> list[int]:
        return [pk for pk in self.marks if pk not in self.moved]

    def poll(self) -> None:
        waiting = self.waiting
        if not waiting:
            return
        now = db_read(lambda: run_marks(waiting))
        if now is None:
            return
        at = time.monotonic() - self.since
        for pk in waiting:
            if picked_up(self.marks[pk], now.get(pk)):
                self.moved[pk] = at
            if pk in self.moved or (pk in now and now[pk][1] == SWEPT):
                self.handed.setdefault(pk, at)

    def first(self) -> float | None:
        return min(self.moved.values()) if self.moved else None

    def last(self) -> float | None:
        if not self.marks or self.waiting:
            return None
        return max(self.moved.values())

    def last_handed(self) -> float | None:
        if not self.marks or len(self.handed) < len(self.marks):
            return None
        return max(self.handed.values())

    def recovery(self) -> float | None:
        """What the bound holds for (see the module's docstring)."""
        if self.label.startswith("kill"):
            return self.last()
        if self.lost_messages:
            return self.last_handed()
        return self.first()


# -- faults -------------------------------------------------------------------------------------


@dataclass
class Fault(ABC):
    """Something that goes wrong once the flow has had `at` (0-1) of its events acknowledged."""

    at: float

    @abstractmethod
    def fire(self, context: ExperimentContext) -> None:
        """Make it go wrong (each kind of fault says how)."""


@dataclass
class WorkerKill(Fault):
    """SIGKILL a worker (mid-delivery if `while_sending`); start it again `restart_after` on."""

    worker: int = 0
    while_sending: bool = False
    restart_after: float = 1.0

    def fire(self, context: ExperimentContext) -> None:
        stand = context.stand
        stand.wait_restarted(self.worker)
        actor = stand.workers.actor(self.worker)
        sending = ActionAttempt.objects.filter(
            action__run__held_by=actor, action__run__state="executing", error=ATTEMPT_IN_FLIGHT
        )
        if self.while_sending:
            # Wait (briefly) for the worker to be in the middle of a delivery.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not sending.exists():
                time.sleep(0.005)
        stand.workers.kill(self.worker)
        killed_at = time.monotonic()
        held = Run.objects.filter(held_by=actor, state__in=IN_FLIGHT_STATES)
        keys = set(sending.values_list("action__idempotency_key", flat=True))
        context.watches.append(
            Watch(
                label=f"kill worker {self.worker}",
                since=killed_at,
                marks=run_marks(held.values_list("pk", flat=True)),
                in_flight_keys=keys,
            )
        )
        stand.restart_later(self.worker, self.restart_after)


@dataclass
class ServerRestart(Fault):
    """Restart Redis or PostgreSQL (`server`), down for `down_seconds`."""

    server: RedisServer | PostgresServer | None = None
    down_seconds: float = 2.0
    label: str = "restart"
    lost_messages: bool = False  # a Redis without persistence: its queue is gone

    def fire(self, context: ExperimentContext) -> None:
        server = self.server

        def restart():
            back = server.restart(down_seconds=self.down_seconds)
            context.backs.append((self.label, back, self.lost_messages))

        thread = threading.Thread(target=restart, name=self.label, daemon=True)
        thread.start()
        context.threads.append(thread)


@dataclass
class ExperimentContext:
    stand: Stand
    watches: list[Watch] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    # (label, monotonic time it was back, whether its messages were lost)
    backs: list[tuple[str, float, bool]] = field(default_factory=list)


# -- the figures --------------------------------------------------------------------------------

TERMINAL = frozenset(
    {"executed", "failed", "halted", "rejected", "blocked", "recorded", "compensated"}
)


@dataclass
class Figures:
    name: str
    events: int
    acknowledged: int
    refused: Counter  # event -> the 4xx it ended on (none expected)
    runs: int
    states: Counter
    terminal: int
    lost: int
    deliveries: int
    delivered_ids: int
    duplicates: int
    duplicate_ids: set[str]
    server_errors: Counter  # status -> answers, every try of every event
    unanswered: int  # tries that got no answer at all (connection refused or reset, timeout)
    watches: list[Watch]
    settle_seconds: float
    recovery_bound: float

    @property
    def duplicate_rate(self) -> float:
        return self.duplicates / self.delivered_ids if self.delivered_ids else 0.0

    @property
    def in_flight_at_kills(self) -> set[str]:
        return set().union(*(w.in_flight_keys for w in self.watches))

    def kill_recoveries(self) -> list[float]:
        """Seconds from each kill that left runs held to the last of them picked up again."""
        return [w.last() for w in self.watches if w.label.startswith("kill") and w.marks]

    def restart_recoveries(self) -> list[tuple[str, float | None, float | None]]:
        return [(w.label, w.first(), w.last()) for w in self.watches if w.label.endswith("back")]

    def unrecovered(self) -> list[Watch]:
        return [w for w in self.watches if w.marks and w.last() is None]

    def problems(self) -> list[str]:
        """The invariants this experiment broke, in words (duplicates are measured, not refused)."""
        found = []
        if self.acknowledged < self.events:
            found.append(f"{self.events - self.acknowledged} events never acknowledged")
        if self.lost:
            found.append(f"{self.lost} acknowledged events have no terminal run")
        other = {status: n for status, n in self.server_errors.items() if status != 503}
        if other:
            found.append(f"answers other than 503 among the 5xx: {other}")
        for watch in self.unrecovered():
            found.append(f"{watch.label}: {len(watch.waiting)} runs never moved")
        for watch in self.watches:
            took = watch.recovery()
            if took is not None and took > self.recovery_bound:
                found.append(
                    f"{watch.label}: recovery took {took:.1f} s, over {self.recovery_bound:g} s"
                )
        return found


def seconds(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.1f}"


def table(all_figures: list[Figures]) -> str:
    """One line per experiment."""
    header = (
        f"{'experiment':<22}{'events':>7}{'runs':>6}{'terminal':>9}{'lost':>5}"
        f"{'dup (rate)':>14}{'5xx (503)':>11}  recovery s (max / p50; first-last)"
    )
    lines = [header, "-" * len(header)]
    for f in all_figures:
        kills = [value for value in f.kill_recoveries() if value is not None]
        recovery = []
        if kills:
            recovery.append(
                f"{len(kills)} kills: {seconds(max(kills))} / {seconds(statistics.median(kills))}"
            )
        for label, first, last in f.restart_recoveries():
            recovery.append(f"{label}: {seconds(first)}-{seconds(last)}")
        errors = sum(f.server_errors.values())
        lines.append(
            f"{f.name:<22}{f.events:>7}{f.runs:>6}{f.terminal:>9}{f.lost:>5}"
            f"{f'{f.duplicates} ({f.duplicate_rate:.1%})':>14}"
            f"{f'{errors} ({f.server_errors.get(503, 0)})':>11}  {'; '.join(recovery) or '-'}"
        )
    return "\n".join(lines)


# -- one experiment -----------------------------------------------------------------------------


def runs_in_flight(run_ids) -> dict[int, tuple[str, str]]:
    rows = Run.objects.filter(pk__in=list(run_ids), state__in=IN_FLIGHT_STATES)
    marks = rows.values_list("pk", "state", "held_by")
    return {pk: (state, held_by) for pk, state, held_by in marks}


def experiment_run(
    *,
    name: str,
    stand: Stand,
    receiver: WebhookReceiver,
    token: str,
    events: int,
    rate: float,
    faults: list[Fault],
    recovery_bound: float,
    settle_timeout: float,
    receiver_delay: float = 0.0,
    log: Callable[[str], None] = lambda line: None,
) -> Figures:
    """Post `events` events, fire `faults` at their marks, settle, and measure."""
    receiver.reset()
    receiver.default = Answer(delay=receiver_delay)
    context = ExperimentContext(stand=stand)
    flow = EventFlow(port=stand.api.port, token=token, prefix=name, count=events, rate=rate)
    flow.start()
    pending = sorted(faults, key=lambda fault: fault.at)
    seen_backs = 0
    deadline = time.monotonic() + events / rate + settle_timeout
    while (not flow.done or pending) and time.monotonic() < deadline:
        if pending and flow.acknowledged() >= pending[0].at * events:
            fault = pending.pop(0)
            log(f"  {name}: {type(fault).__name__} at {flow.acknowledged()} acknowledged")
            fault.fire(context)
        seen_backs = _watch_backs(context, flow, seen_backs)
        for watch in context.watches:
            watch.poll()
        time.sleep(POLL_SECONDS)
    for thread in context.threads:
        thread.join(timeout=max(1.0, deadline - time.monotonic()))
    flow.join(timeout=max(1.0, deadline - time.monotonic()))
    _watch_backs(context, flow, seen_backs)

    # Settle: every acknowledged event's run out of the pipeline (or the time is up).
    run_ids = [event.run_id for event in flow.events if event.run_id is not None]
    settle_started = time.monotonic()
    while time.monotonic() < deadline:
        for watch in context.watches:
            watch.poll()
        left = db_read(lambda: runs_in_flight(run_ids), default={0: None})
        if not left and not any(watch.waiting for watch in context.watches):
            break
        time.sleep(POLL_SECONDS)
    settle_seconds = time.monotonic() - settle_started
    time.sleep(0.5)  # a late twin delivery, if any, arrives meanwhile

    states = Counter(Run.objects.filter(pk__in=run_ids).values_list("state", flat=True))
    terminal = sum(n for state, n in states.items() if state in TERMINAL)
    ids = Counter(delivery.headers.get("webhook-id") for delivery in receiver.deliveries)
    server_errors = Counter(s for event in flow.events for s in event.statuses if s >= 500)
    refused = Counter(
        event.statuses[-1] for event in flow.events if event.run_id is None and event.statuses
    )
    return Figures(
        name=name,
        events=events,
        acknowledged=len(run_ids),
        refused=refused,
        runs=len(set(run_ids)),
        states=states,
        terminal=terminal,
        lost=len(set(run_ids)) - terminal,
        deliveries=sum(ids.values()),
        delivered_ids=len(ids),
        duplicates=sum(n - 1 for n in ids.values()),
        duplicate_ids={key for key, n in ids.items() if n > 1},
        server_errors=server_errors,
        unanswered=sum(s == 0 for event in flow.events for s in event.statuses),
        watches=context.watches,
        settle_seconds=settle_seconds,
        recovery_bound=recovery_bound,
    )


def _watch_backs(context: ExperimentContext, flow: EventFlow, seen: int) -> int:
    """Start watching the runs in flight when a restarted server came back."""
    for label, back, lost_messages in context.backs[seen:]:
        run_ids = [event.run_id for event in flow.events if event.run_id is not None]
        marks = None
        while marks is None:  # the database may be the server that just came back
            marks = db_read(lambda ids=run_ids: runs_in_flight(ids))
            if marks is None:
                time.sleep(POLL_SECONDS)
        context.watches.append(
            Watch(label=f"{label} back", since=back, marks=marks, lost_messages=lost_messages)
        )
    return len(context.backs)
