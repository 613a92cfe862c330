"""The standing audit queue: each automation's autonomous runs, sampled as they finish.

Every automation with an `audit_sample_rate` above 0 gets one standing sample
(kind "standing"). A periodic task considers the automation's autonomous runs
(catalog/audit/outcomes.py) in id order and takes a run into the sample when
its draw hash (SHA-256 of "{seed}:{run_id}", as drawn samples use) read as a
number in [0, 1) falls below the rate: the same run is always in or out for
the same seed, and about `rate` of them are in. Strata are by segment; every
run considered counts in its stratum's population, so the report estimates
the issue rate of all autonomous runs.

The sample remembers the highest run id it has considered. It stops short of
the first run still on its way (received, deciding, approved or executing),
which may yet become autonomous; runs waiting for a person never do.
"""

from fractions import Fraction

from django.db import IntegrityError, transaction
from django.db.models import F, Max, Min, Q

from automations.models import Run
from automations.states import RunState
from catalog.audit.outcomes import finished_runs
from catalog.audit.sampling import draw_hash, seed_new
from catalog.models import (
    AuditOutcome,
    AuditSample,
    AuditSampleItem,
    AuditSampleKind,
    AuditStratum,
    Automation,
)

ON_THEIR_WAY = (RunState.RECEIVED, RunState.DECIDING, RunState.APPROVED, RunState.EXECUTING)
BATCH = 10_000
HASH_SPACE = 2**256


def standing_sample(*, automation: Automation) -> AuditSample:
    """The automation's standing sample, made on first use with a random seed."""
    sample = AuditSample.objects.filter(
        kind=AuditSampleKind.STANDING, automation=automation
    ).first()
    if sample is not None:
        return sample
    try:
        with transaction.atomic():
            return AuditSample.objects.create(
                name=f"Standing audit queue: {automation.slug}",
                kind=AuditSampleKind.STANDING,
                automation=automation,
                seed=seed_new(),
                since=automation.created_at,
                arguments={"automation": automation.slug, "outcome": AuditOutcome.AUTONOMOUS},
            )
    except IntegrityError:  # made meanwhile by another worker
        return AuditSample.objects.get(kind=AuditSampleKind.STANDING, automation=automation)


def taken(*, seed: str, run_id: int, rate: Fraction) -> bool:
    """Whether a run is in the standing sample at `rate`: its hash, as a fraction, below it."""
    value = int.from_bytes(draw_hash(seed, run_id), "big")
    return value * rate.denominator < rate.numerator * HASH_SPACE


def _upper_bound(automation_id: int, cursor: int) -> int | None:
    """The last run id that may be considered now: before the first run still on its way."""
    runs = Run.objects.filter(automation_id=automation_id, pk__gt=cursor)
    first_open = runs.filter(state__in=ON_THEIR_WAY).aggregate(first=Min("pk"))["first"]
    if first_open is not None:
        return first_open - 1
    return runs.aggregate(last=Max("pk"))["last"]


def standing_queue_extend(*, automation: Automation, batch: int = BATCH) -> int:
    """Consider the automation's runs finished since the last call; how many were taken."""
    sample = standing_sample(automation=automation)
    rate = Fraction(str(automation.audit_sample_rate))
    with transaction.atomic():
        sample = AuditSample.objects.select_for_update().get(pk=sample.pk)
        upper = _upper_bound(automation.pk, sample.cursor_run_id)
        if upper is None or upper <= sample.cursor_run_id:
            return 0
        rows = list(
            finished_runs()
            .filter(automation_id=automation.pk, pk__gt=sample.cursor_run_id, pk__lte=upper)
            .filter(outcome=AuditOutcome.AUTONOMOUS)
            .order_by("pk")
            .values_list("pk", "segment")[:batch]
        )
        if len(rows) == batch:
            upper = rows[-1][0]
        added = _take(sample, rows, rate)
        sample.cursor_run_id = upper
        sample.save(update_fields=["cursor_run_id"])
    return added


def _take(sample: AuditSample, rows: list[tuple[int, str]], rate: Fraction) -> int:
    """Count `rows` into their strata and add the ones the hash takes as items."""
    strata = {s.key["segment"]: s for s in sample.strata.all()}
    counts: dict[str, int] = {}
    for _, segment in rows:
        counts[segment] = counts.get(segment, 0) + 1
    position = sample.items.aggregate(last=Max("position"))["last"]
    position = -1 if position is None else position
    for segment in sorted(counts):
        if segment not in strata:
            strata[segment] = AuditStratum.objects.create(
                sample=sample,
                position=len(strata),
                key={"outcome": AuditOutcome.AUTONOMOUS, "segment": segment},
            )
        AuditStratum.objects.filter(pk=strata[segment].pk).update(
            population=F("population") + counts[segment]
        )
    items = []
    for run_id, segment in rows:
        if taken(seed=sample.seed, run_id=run_id, rate=rate):
            position += 1
            items.append(
                AuditSampleItem(
                    sample=sample,
                    stratum=strata[segment],
                    run_id=run_id,
                    outcome=AuditOutcome.AUTONOMOUS,
                    position=position,
                )
            )
    AuditSampleItem.objects.bulk_create(items, batch_size=1000)
    return len(items)


def standing_queue_run() -> int:
    """Extend every automation's standing sample (those sampled at a rate above 0, or begun)."""
    begun = AuditSample.objects.filter(kind=AuditSampleKind.STANDING).values("automation")
    automations = Automation.objects.filter(Q(audit_sample_rate__gt=0) | Q(pk__in=begun))
    return sum(standing_queue_extend(automation=a) for a in automations.order_by("pk"))
