"""Store an incoming event once per (automation, idempotency key) and open its run."""

import hashlib
import json
import secrets
from dataclasses import dataclass
from functools import partial

from django.db import IntegrityError, transaction

from automations.models import Event, Run
from automations.services.dispatch import enqueue_decide
from automations.services.runs import run_open
from automations.states import RunState
from catalog.models import ApiToken
from reviewapp.rows import row_insert


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
    automation_id: int,
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
    try:
        # A savepoint, so that a replay's IntegrityError leaves the caller's transaction usable.
        with transaction.atomic():
            event = Event(
                automation_id=automation_id,
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
            row_insert(event)
            run = run_open(event=event, actor=client or "api")
    except IntegrityError:
        return _replayed(automation_id, idempotency_key, digest, decide)
    if decide:
        transaction.on_commit(partial(enqueue_decide, run.pk))
    return IngestResult(run=run, created=True)


def _replayed(automation_id: int, idempotency_key: str, digest: str, decide: bool) -> IngestResult:
    """The run a key already stored (the unique key settled a concurrent post, or a retry)."""
    run = Run.objects.select_related("event").get(
        event__automation_id=automation_id, event__idempotency_key=idempotency_key
    )
    if run.event.payload_sha256 != digest:
        raise IdempotencyConflict(run) from None  # raised while the IntegrityError is handled
    if decide and run.state == RunState.RECEIVED:
        transaction.on_commit(partial(enqueue_decide, run.pk))
    return IngestResult(run=run, created=False)
