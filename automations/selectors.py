"""Reads shared by the browser pages: review queues, one task's and one run's full picture.

Every read is scoped to what the user may see (catalog.selectors).
"""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import Count, OuterRef, Q, Subquery, prefetch_related_objects
from django.http import Http404
from django.utils import timezone

from automations.models import ReviewOutcome, ReviewState, ReviewTask, Run
from automations.run_detail import run_for_detail
from automations.services.recovery import runs_overdue
from catalog.models import Automation
from catalog.selectors import automations_visible_to, count_per_automation, reviewable_automations


@dataclass(frozen=True)
class ReviewQueue:
    automation: Automation
    pending_count: int  # claimable now: pending, or claimed with a lapsed lease
    in_review_count: int  # held under a live lease
    oldest_age_seconds: int | None  # age of the oldest open task, None when empty
    late: bool  # the oldest open task is past automation.review_sla_minutes
    decided_today: int  # tasks this user decided since local midnight


def review_queues_for(user: AbstractBaseUser, now: datetime | None = None) -> list[ReviewQueue]:
    """One row per automation the user reviews, in one query (plus the user's roles).

    Each figure is a correlated subquery over an index range: the counts are
    index-only scans of the (automation, state, lease) index of open tasks, so
    a queue of 50,000 costs a few milliseconds and the done backlog nothing.
    """
    now = now or timezone.now()
    midnight = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    open_tasks = ReviewTask.objects.filter(
        automation=OuterRef("pk"), state__in=[ReviewState.PENDING, ReviewState.CLAIMED]
    )
    claimed = open_tasks.filter(state=ReviewState.CLAIMED)
    oldest = open_tasks.order_by("created_at", "id").values("created_at")[:1]
    automations = reviewable_automations(user).annotate(
        # Claimable: pending, or claimed with a lapsed lease (two ranges, not one OR filter).
        pending_count=count_per_automation(open_tasks.filter(state=ReviewState.PENDING))
        + count_per_automation(claimed.filter(lease_expires_at__lt=now)),
        in_review_count=count_per_automation(claimed.filter(lease_expires_at__gte=now)),
        oldest_open_at=Subquery(oldest),
        decided_today=count_per_automation(
            ReviewTask.objects.filter(
                automation=OuterRef("pk"), decided_by=user, decided_at__gte=midnight
            )
        ),
    )
    queues = []
    for automation in automations.order_by("slug"):
        age = None
        if automation.oldest_open_at is not None:
            age = max(0, int((now - automation.oldest_open_at).total_seconds()))
        queues.append(
            ReviewQueue(
                automation=automation,
                pending_count=automation.pending_count,
                in_review_count=automation.in_review_count,
                oldest_age_seconds=age,
                late=age is not None and age > automation.review_sla_minutes * 60,
                decided_today=automation.decided_today,
            )
        )
    return queues


def review_task_detail(task_id: int, user: AbstractBaseUser) -> ReviewTask:
    """The task with its run, event, automation, intents, verdicts, model calls and transitions.

    A bounded number of queries whatever the sizes; Http404 when there is no
    such task, PermissionDenied when it is outside the user's queues.
    """
    task = (
        ReviewTask.objects.select_related(
            "run", "run__event", "automation", "claimed_by", "decided_by", "label"
        )
        .filter(pk=task_id)
        .first()
    )
    if task is None:
        raise Http404("no such review task")
    if not reviewable_automations(user).filter(pk=task.automation_id).exists():
        raise PermissionDenied("you do not review this automation")
    prefetch_related_objects([task], "automation__intents", "run__model_calls", "run__transitions")
    return task


# A person changed what the model proposed: edited it, or refused it (in suggest mode,
# used an edited draft or discarded it).
OVERRIDDEN_OUTCOMES = frozenset(
    {
        ReviewOutcome.EDITED,
        ReviewOutcome.REJECTED,
        ReviewOutcome.USED_EDITED,
        ReviewOutcome.DISCARDED,
    }
)


@dataclass(frozen=True)
class ReviewedCounts:
    reviewed: int
    overridden: int


def reviewed_counts(
    *, automation_id: int, since: datetime, segment: str | None = None
) -> ReviewedCounts:
    """How many of an automation's cases people decided since `since`, and overrode."""
    tasks = ReviewTask.objects.filter(
        automation_id=automation_id, state=ReviewState.DONE, decided_at__gte=since
    )
    if segment is not None:
        tasks = tasks.filter(run__segment=segment)
    counts = tasks.aggregate(
        reviewed=Count("id"), overridden=Count("id", filter=Q(outcome__in=OVERRIDDEN_OUTCOMES))
    )
    return ReviewedCounts(counts["reviewed"], counts["overridden"])


def latest_reviewed_counts(*, automation_id: int, segment: str, last: int) -> ReviewedCounts:
    """The same over a segment's `last` most recently decided cases."""
    outcomes = list(
        ReviewTask.objects.filter(
            automation_id=automation_id, state=ReviewState.DONE, run__segment=segment
        )
        .order_by("-decided_at", "-id")
        .values_list("outcome", flat=True)[:last]
    )
    return ReviewedCounts(len(outcomes), sum(o in OVERRIDDEN_OUTCOMES for o in outcomes))


def reviewed_segments(*, automation_id: int, since: datetime) -> list[str]:
    """The segments with cases people decided since `since` ("" for runs without one)."""
    return sorted(
        set(
            ReviewTask.objects.filter(
                automation_id=automation_id, state=ReviewState.DONE, decided_at__gte=since
            ).values_list("run__segment", flat=True)
        )
    )


RUN_LIST_LIMIT = 50


def run_for_page(run_id: int, user: AbstractBaseUser) -> Run:
    """The run with all its page shows, in a fixed number of queries whatever its size.

    Http404 when there is no such run or the user may not see its automation:
    the page does not tell the two apart.
    """
    run = run_for_detail(str(run_id))
    if run is None or not automations_visible_to(user).filter(pk=run.automation_id).exists():
        raise Http404("no such run")
    return run


def runs_visible_to(
    user: AbstractBaseUser,
    *,
    automation_slug: str = "",
    trace_id: str = "",
    overdue: bool = False,
    now: datetime | None = None,
) -> list[Run]:
    """The newest RUN_LIST_LIMIT runs of the automations the user may see, in one query.

    Narrowed to one automation (by slug), to one trace id, and to the runs
    waiting for recovery (runs_overdue, longest waiting first) when asked.
    """
    runs = runs_overdue(now=now) if overdue else Run.objects.all()
    runs = runs.filter(automation__in=automations_visible_to(user).values("pk"))
    # Along an index: the sweep's partial one on due_at, (automation, created_at) for one
    # automation, else the primary key's (created_at has no index of its own).
    order = ("due_at", "pk") if overdue else ("-pk",)
    if automation_slug:
        runs = runs.filter(automation__slug=automation_slug)
        order = order if overdue else ("-created_at", "-pk")
    if trace_id:
        runs = runs.filter(trace_id=trace_id)
    return list(runs.select_related("automation").order_by(*order)[:RUN_LIST_LIMIT])
