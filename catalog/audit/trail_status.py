"""What the compliance page says about the trail, and its "verify now" as a background job."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from catalog.audit.signing import key_id, signing_key
from catalog.audit.trail import trail_verification_run
from catalog.models import TrailCheckpoint, TrailHead, TrailVerification

# A verification that has not finished in this long lost its worker: a new one may start.
ABANDONED_AFTER = timedelta(hours=1)


@dataclass(frozen=True)
class TrailStatus:
    head_seq: int
    head_hash: str  # hex
    chained_at: datetime | None
    checkpoints: int
    last_checkpoint_seq: int | None
    key_id: str
    last_verification: TrailVerification | None  # the last one that finished
    running: TrailVerification | None  # one under way, if any


def trail_status(*, now: datetime | None = None) -> TrailStatus:
    """The chain's head, its checkpoints, the signing key's id and the verifications."""
    now = now or timezone.now()
    head = TrailHead.objects.filter(pk=1).first()
    last_checkpoint = TrailCheckpoint.objects.order_by("-seq").first()
    return TrailStatus(
        head_seq=head.seq if head else 0,
        head_hash=bytes(head.hash).hex() if head else "",
        chained_at=head.chained_at if head else None,
        checkpoints=TrailCheckpoint.objects.count(),
        last_checkpoint_seq=last_checkpoint.seq if last_checkpoint else None,
        key_id=key_id(signing_key().public_key()),
        last_verification=(
            TrailVerification.objects.exclude(finished_at=None)
            .select_related("by")
            .order_by("-finished_at")
            .first()
        ),
        running=verification_running(now=now),
    )


def verification_running(*, now: datetime) -> TrailVerification | None:
    return (
        TrailVerification.objects.filter(finished_at=None, started_at__gte=now - ABANDONED_AFTER)
        .select_related("by")
        .order_by("-started_at")
        .first()
    )


def trail_verification_start(*, by: AbstractBaseUser) -> TrailVerification:
    """Start a verification in the background, or return the one already under way."""
    from catalog.tasks import verify_trail  # the task module imports the services

    running = verification_running(now=timezone.now())
    if running is not None:
        return running
    with transaction.atomic():
        record = TrailVerification.objects.create(by=by)
        transaction.on_commit(lambda: verify_trail.apply_async(args=[record.pk]))
    return record


def trail_verification_perform(*, verification_id: int) -> TrailVerification | None:
    """Run a started verification, its progress kept on its row; None when it is gone or done."""
    record = TrailVerification.objects.filter(pk=verification_id, finished_at=None).first()
    if record is None:
        return None

    def progress(checked: int) -> None:
        TrailVerification.objects.filter(pk=verification_id).update(checked=checked)

    record, verdict = trail_verification_run(record=record, progress=progress)
    TrailVerification.objects.filter(pk=verification_id).update(checked=verdict.entries)
    record.checked = verdict.entries
    return record
