"""The rollup job: what the pipeline's tables gained since its last run, added to the rollups.

Three append-only sources, each read forward by id from its cursor: run
transitions (arrivals, decisions, finishes), model calls, and labels (one per
review). Every fact is counted in the UTC hour it happened, in that hour's
row and its day's row (models.Rollup).

Incremental and idempotent: each batch adds its counts and moves its cursor
in one transaction, under the cursor's row lock, so a batch counts once or
not at all and two jobs never read the same rows. Ids are handed out when a
row is inserted, not when it commits, so an id the job reads past may still
be in flight: it is kept as pending and read when it shows up, or given up
after GAP_SECONDS (its transaction rolled back).
"""

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from django.db import IntegrityError, models, transaction
from django.db.models import BooleanField, ExpressionWrapper, F, Max, Min, Q
from django.utils import timezone

from automations.models import Label, ModelCall, Run, RunTransition
from automations.selectors import OVERRIDDEN_OUTCOMES
from automations.states import RunState
from catalog.audit.outcomes import finished_runs

from .buckets import (
    DECISION_BOUNDS_MS,
    END_TO_END_BOUNDS_MS,
    bucket_index,
    confidence_bin,
)
from .models import (
    CONFIDENCE_FIELDS,
    DECISION_BUCKET_FIELDS,
    END_TO_END_BUCKET_FIELDS,
    KeyKind,
    Period,
    Rollup,
    RollupCursor,
    RollupKey,
    RollupRebuild,
    Source,
)
from .windows import day_floor, hour_floor

BATCH = 5000
# An id missing this long after the job first read past it belonged to a rolled-back insert.
GAP_SECONDS = 300
# A jump this wide is a sequence moving on (a restart), not transactions in flight.
MAX_GAP_IDS = 1000
MAX_PENDING = 10_000
# A run's first arrival in one of these is its finish (compensated only ever follows one).
FINISH_STATES = frozenset(
    {
        RunState.EXECUTED,
        RunState.FAILED,
        RunState.HALTED,
        RunState.REJECTED,
        RunState.BLOCKED,
        RunState.RECORDED,
    }
)
# How the openai provider words a call that ran out of its latency budget.
TIMEOUT_MARK = "timed out"
KEY_MAX_LENGTH = 200

Key = tuple[int, str, datetime]  # automation id, segment, hour


class Tally:
    """What one batch adds: counts per (automation, segment, hour), and per name."""

    def __init__(self):
        self.rows: dict[Key, Counter] = defaultdict(Counter)
        self.keys: Counter = Counter()

    def add(self, key: Key, **values) -> None:
        self.rows[key].update(values)

    def add_key(self, key: Key, kind: str, name: str) -> None:
        self.keys[(key, kind, name[:KEY_MAX_LENGTH])] += 1


def _ms(start: datetime, end: datetime) -> int:
    return max(0, round((end - start).total_seconds() * 1000))


# -- the sources -------------------------------------------------------------------------


class Transition(NamedTuple):
    id: int
    run_id: int
    from_state: str
    to_state: str
    at: datetime
    created_at: datetime
    automation_id: int
    segment: str


def transitions_read(rows: models.QuerySet) -> list[Transition]:
    fields = ("id", "run_id", "from_state", "to_state", "at")
    run_fields = ("run__created_at", "run__automation_id", "run__segment")
    return [Transition(*row) for row in rows.values_list(*fields, *run_fields)]


def transitions_tally(rows: list[Transition], tally: Tally) -> None:
    """Arrivals, decisions (with verdicts and confidence) and finishes (with their outcome)."""
    decided = {r.run_id for r in rows if r.from_state == RunState.DECIDING}
    finishing = {r.run_id for r in rows if _finishes(r)}
    decisions = {
        pk: (verdicts, confidence)
        for pk, verdicts, confidence in Run.objects.filter(pk__in=decided).values_list(
            "pk", "verdicts", "proposed_intent__confidence"
        )
    }
    outcomes = dict(finished_runs().filter(pk__in=finishing).values_list("pk", "outcome"))
    for row in rows:
        key = (row.automation_id, row.segment, hour_floor(row.at))
        if row.to_state == RunState.RECEIVED:
            tally.add(key, runs=1)
        if row.from_state == RunState.DECIDING:
            verdicts, confidence = decisions.get(row.run_id, ([], None))
            _decision_tally(tally, key, row, verdicts or [], confidence)
        if _finishes(row):
            ms = _ms(row.created_at, row.at)
            index = bucket_index(ms, END_TO_END_BOUNDS_MS)
            values = {"finished": 1, "e2e_ms_sum": ms, END_TO_END_BUCKET_FIELDS[index]: 1}
            if outcome := outcomes.get(row.run_id):
                values[outcome] = 1
            tally.add(key, **values)


def _finishes(row: Transition) -> bool:
    return row.to_state in FINISH_STATES and row.from_state not in FINISH_STATES


def _decision_tally(tally: Tally, key: Key, row: Transition, verdicts: list, confidence) -> None:
    ms = _ms(row.created_at, row.at)
    objected = [v.get("check", "") for v in verdicts if v.get("verdict") != "pass"]
    values = {
        "decisions": 1,
        "decision_ms_sum": ms,
        DECISION_BUCKET_FIELDS[bucket_index(ms, DECISION_BOUNDS_MS)]: 1,
        "needed_person": int(row.to_state == RunState.AWAITING_REVIEW),
        "guardrail_triggered": int(bool(objected)),
    }
    if (index := confidence_bin(confidence)) is not None:
        values[CONFIDENCE_FIELDS[index]] = 1
    tally.add(key, **values)
    for check in objected:
        tally.add_key(key, KeyKind.CHECK, check)


def model_calls_read(rows: models.QuerySet) -> list[tuple]:
    return list(
        rows.annotate(
            errored=ExpressionWrapper(~Q(error=""), output_field=BooleanField()),
            timed_out=ExpressionWrapper(
                Q(error__contains=TIMEOUT_MARK), output_field=BooleanField()
            ),
        ).values_list(
            "id",
            "created_at",
            "automation_id",
            "run__segment",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "errored",
            "timed_out",
        )
    )


def model_calls_tally(rows: list[tuple], tally: Tally) -> None:
    for (
        _,
        created_at,
        automation_id,
        segment,
        tokens_in,
        tokens_out,
        cost,
        errored,
        timed_out,
    ) in rows:
        tally.add(
            (automation_id, segment, hour_floor(created_at)),
            model_calls=1,
            model_errors=int(bool(errored)),
            model_timeouts=int(bool(timed_out)),
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost_usd=Decimal(cost or 0),
        )


def labels_read(rows: models.QuerySet) -> list[tuple]:
    return list(
        rows.values_list(
            "id",
            "created_at",
            "automation_id",
            "run__segment",
            "outcome",
            "diff",
            "review_task__review_ms",
        )
    )


def labels_tally(rows: list[tuple], tally: Tally) -> None:
    """Reviews: how many, how many overridden, the time spent, and which fields were changed."""
    for _, created_at, automation_id, segment, outcome, diff, review_ms in rows:
        key = (automation_id, segment, hour_floor(created_at))
        tally.add(
            key,
            reviewed=1,
            overridden=int(outcome in OVERRIDDEN_OUTCOMES),
            review_ms_sum=review_ms or 0,
        )
        for change in diff or []:
            if isinstance(change, dict) and change.get("path"):
                tally.add_key(key, KeyKind.FIELD, str(change["path"]))


@dataclass(frozen=True)
class Reader:
    model: type[models.Model]
    read: Callable[[models.QuerySet], list]
    tally: Callable[[list, Tally], None]


READERS = {
    Source.TRANSITION: Reader(RunTransition, transitions_read, transitions_tally),
    Source.MODEL_CALL: Reader(ModelCall, model_calls_read, model_calls_tally),
    Source.LABEL: Reader(Label, labels_read, labels_tally),
}


# -- writing -----------------------------------------------------------------------------


def _add(model: type[models.Model], lookup: dict, values: dict) -> None:
    """Add `values` to the row `lookup` names, creating it on its first count."""
    changes = {name: F(name) + value for name, value in values.items() if value}
    if not changes:
        return
    if model.objects.filter(**lookup).update(**changes):
        return
    try:
        with transaction.atomic():
            model.objects.create(**lookup, **values)
    except IntegrityError:
        # Another job created the row first (only while one rebuilds): add to it.
        model.objects.filter(**lookup).update(**changes)


def tally_write(tally: Tally) -> None:
    """Add a batch's counts to its hour rows and their day rows."""
    rows: dict[tuple, Counter] = defaultdict(Counter)
    for (automation_id, segment, hour), values in tally.rows.items():
        rows[(automation_id, segment, Period.HOUR, hour)].update(values)
        rows[(automation_id, segment, Period.DAY, day_floor(hour))].update(values)
    for (automation_id, segment, period, start), values in rows.items():
        lookup = {
            "automation_id": automation_id,
            "segment": segment,
            "period": period,
            "start": start,
        }
        _add(Rollup, lookup, dict(values))
    keys: Counter = Counter()
    for ((automation_id, segment, hour), kind, name), count in tally.keys.items():
        keys[(automation_id, segment, Period.HOUR, hour, kind, name)] += count
        keys[(automation_id, segment, Period.DAY, day_floor(hour), kind, name)] += count
    for (automation_id, segment, period, start, kind, name), count in keys.items():
        lookup = {
            "automation_id": automation_id,
            "segment": segment,
            "period": period,
            "start": start,
            "kind": kind,
            "key": name,
        }
        _add(RollupKey, lookup, {"count": count})


# -- the job -----------------------------------------------------------------------------


def cursor_locked(source: str) -> RollupCursor:
    RollupCursor.objects.get_or_create(source=source)
    return RollupCursor.objects.select_for_update().get(source=source)


def _pending_after(cursor: RollupCursor, rows: list, late: Iterable[int], now: float) -> list:
    """The ids still missing below the new cursor, with when each was first missed.

    `rows` are the batch's rows in id order, each a tuple led by its id.
    """
    pending = {int(pk): seen for pk, seen in cursor.pending}
    for pk in late:
        pending.pop(pk, None)
    # A cursor at 0 has read nothing yet: the ids below the first row are long gone (or
    # never were), not in flight, which only ever holds recent ids.
    expected = cursor.last_id + 1 if cursor.last_id else (rows[0][0] if rows else 1)
    for row in rows:
        if row[0] - expected <= MAX_GAP_IDS:
            pending.update(dict.fromkeys(range(expected, row[0]), now))
        expected = row[0] + 1
    kept = sorted((pk, seen) for pk, seen in pending.items() if now - seen < GAP_SECONDS)
    return [list(item) for item in kept[-MAX_PENDING:]]


def rollup_step(source: str, *, now: datetime | None = None) -> int:
    """Roll up one batch of `source` (and the pending ids that showed up); rows read."""
    reader = READERS[source]
    now = now or timezone.now()
    with transaction.atomic():
        cursor = cursor_locked(source)
        rows = reader.read(
            reader.model.objects.filter(id__gt=cursor.last_id).order_by("id")[:BATCH]
        )
        late = []
        if cursor.pending:
            waiting = [pk for pk, _ in cursor.pending]
            late = reader.read(reader.model.objects.filter(id__in=waiting))
        tally = Tally()
        reader.tally(rows + late, tally)
        tally_write(tally)
        cursor.pending = _pending_after(cursor, rows, [r[0] for r in late], now.timestamp())
        if rows:
            cursor.last_id = rows[-1][0]
        cursor.ran_at = now
        cursor.save(update_fields=["last_id", "pending", "ran_at"])
    return len(rows) + len(late)


def rollup_run(*, progress: Callable[[int], None] | None = None, max_batches: int = 200) -> int:
    """Roll up every source until it is caught up (or `max_batches` each); rows read."""
    total = 0
    for source in READERS:
        for _ in range(max_batches):
            read = rollup_step(source)
            total += read
            if progress is not None:
                progress(total)
            if read < BATCH:
                break
    return total


def rollup_as_of() -> datetime | None:
    """When the sources were last all rolled up (the oldest of their last runs)."""
    ran = list(
        RollupCursor.objects.filter(source__in=list(READERS)).values_list("ran_at", flat=True)
    )
    if len(ran) < len(READERS) or None in ran:
        return None
    return min(ran)


# -- rebuilding --------------------------------------------------------------------------


def _id_ranges() -> dict[str, tuple[int, int]]:
    """Each source's first and last id: the rows a rebuild reads (ids are handed out in order)."""
    ranges = {}
    for source, reader in READERS.items():
        ids = reader.model.objects.aggregate(first=Min("id"), last=Max("id"))
        ranges[source] = (ids["first"] or 0, ids["last"] or 0)
    return ranges


def rollup_reset() -> dict[str, tuple[int, int]]:
    """Empty every rollup and put the cursors back to the start, together; the ids to read."""
    with transaction.atomic():
        for source in READERS:  # always in this order: no two resets deadlock
            cursor_locked(source)
        Rollup.objects.all().delete()
        RollupKey.objects.all().delete()
        RollupCursor.objects.filter(source__in=list(READERS)).update(last_id=0, pending=[])
        return _id_ranges()


def _read_so_far(ranges: dict[str, tuple[int, int]]) -> int:
    cursors = dict(
        RollupCursor.objects.filter(source__in=list(ranges)).values_list("source", "last_id")
    )
    done = 0
    for source, (first, last) in ranges.items():
        if last:
            done += max(0, min(cursors.get(source, 0), last) - first + 1)
    return done


def rollup_rebuild(*, rebuild: RollupRebuild | None = None, progress=None) -> int:
    """Rebuild every rollup from the sources, its progress on `rebuild` and through `progress`.

    Progress counts source rows by their ids (exact where no id was skipped);
    the periodic job may run alongside and read some of them itself.
    """
    ranges = rollup_reset()
    total = sum(last - first + 1 for first, last in ranges.values() if last)
    if rebuild is not None:
        RollupRebuild.objects.filter(pk=rebuild.pk).update(total=total)

    def step(_read: int) -> None:
        done = _read_so_far(ranges)
        if rebuild is not None:
            RollupRebuild.objects.filter(pk=rebuild.pk).update(done=done)
        if progress is not None:
            progress(done, total)

    while rollup_run(progress=step) >= BATCH:
        pass
    if rebuild is not None:
        RollupRebuild.objects.filter(pk=rebuild.pk).update(done=total, finished_at=timezone.now())
    return total
