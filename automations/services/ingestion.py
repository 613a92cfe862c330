"""Store an incoming event once per (automation, idempotency key) and open its run."""

import hashlib
import json
import secrets
from dataclasses import dataclass
from functools import partial

from django.db import IntegrityError, transaction

from automations.models import Event, Run, RunTransition
from automations.services.dispatch import enqueue_decide
from automations.states import RunState
from catalog.models import ApiToken, Automation
from reviewapp.rows import insert_values


class IdempotencyConflict(Exception):
    """The key was used before with a different payload."""

    def __init__(self, run: Run):
        super().__init__("this idempotency_key was already used with a different payload")
        self.run = run


@dataclass(frozen=True)
class IngestResult:
    run: Run
    created: bool


def payload_digest(payload: dict) -> str:
    """SHA-256 of the payload in canonical form, so key order and spacing do not matter."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def new_trace_id() -> str:
    return secrets.token_hex(16)


def event_ingest(
    *,
    automation: Automation,
    idempotency_key: str,
    payload: dict,
    raw_body: bytes,
    segment: str = "",
    source: str = "",
    client: str = "",
    api_token: ApiToken | None = None,
    trace_id: str | None = None,
    decide: bool = False,
) -> IngestResult:
    """Store the event and its run in state `received`, exactly once per key.

    A replay of the key with the same payload returns the first run
    (`created=False`); a different payload raises IdempotencyConflict. The
    unique constraint settles concurrent posts: the loser reads the winner's run.
    With `decide`, the run's decision is enqueued once the event has committed;
    a replay of a run still in `received` enqueues it again (deciding twice
    changes nothing), so a decision lost with the broker heals when the client
    retries.
    """
    digest = payload_digest(payload)
    event = Event(
        automation=automation,
        idempotency_key=idempotency_key,
        segment=segment,
        source=source,
        payload=payload,
        body_sha256=hashlib.sha256(raw_body).hexdigest(),
        payload_sha256=digest,
        api_token=api_token,
        client=client,
        trace_id=trace_id or new_trace_id(),
    )
    run = Run(
        event=event,
        automation=automation,
        segment=segment,
        trace_id=event.trace_id,
        state=RunState.RECEIVED,
    )
    transition = RunTransition(
        run=run, from_state="", to_state=RunState.RECEIVED, actor=client or "api"
    )
    # The unique key settles concurrent posts: the loser inserts nothing and reads the winner.
    try:
        if transaction.get_connection().vendor == "postgresql":
            created = _insert_postgresql(event, run, transition)
        else:
            with transaction.atomic():
                event.save(force_insert=True)
                run.event = event
                run.save(force_insert=True)
                transition.run = run
                transition.save(force_insert=True)
            created = True
    except IntegrityError:
        created = False
    if created:
        if decide:
            transaction.on_commit(partial(enqueue_decide, run.pk))
        return IngestResult(run=run, created=True)
    run = Run.objects.select_related("event").get(
        event__automation=automation, event__idempotency_key=idempotency_key
    )
    if run.event.payload_sha256 != digest:
        raise IdempotencyConflict(run)
    if decide and run.state == RunState.RECEIVED:
        transaction.on_commit(partial(enqueue_decide, run.pk))
    return IngestResult(run=run, created=False)


def _insert_postgresql(event: Event, run: Run, transition: RunTransition) -> bool:
    """Insert the event, its run and the first transition in one statement; False on a replay.

    ON CONFLICT DO NOTHING on the event's key: a replay (or the loser of a
    concurrent post) inserts nothing at all, and the caller reads the winner.
    """
    connection = transaction.get_connection()
    event_columns, event_params = insert_values(event, connection)
    run_columns, run_params = insert_values(run, connection, skip=("event",))
    step_columns, step_params = insert_values(transition, connection, skip=("run",))
    sql = (
        "WITH event AS ("  # noqa: S608 (table and column names from the models, values bound)
        f" INSERT INTO {Event._meta.db_table} ({', '.join(event_columns)})"
        f" VALUES ({', '.join(['%s'] * len(event_params))})"
        " ON CONFLICT (automation_id, idempotency_key) DO NOTHING RETURNING id"
        "), run AS ("
        f" INSERT INTO {Run._meta.db_table} (event_id, {', '.join(run_columns)})"
        f" SELECT event.id, {', '.join(['%s'] * len(run_params))} FROM event RETURNING id"
        "), step AS ("
        f" INSERT INTO {RunTransition._meta.db_table} (run_id, {', '.join(step_columns)})"
        f" SELECT run.id, {', '.join(['%s'] * len(step_params))} FROM run"
        ") SELECT event.id, run.id FROM event, run"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, event_params + run_params + step_params)
        row = cursor.fetchone()
    if row is None:
        return False
    event.pk, run.pk = row
    run.event = event
    transition.run = run
    return True
