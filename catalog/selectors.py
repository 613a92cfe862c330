"""Reads shared by views and the API, including who may see and do what (contracts §2)."""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, IntegerField, Max, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from automations.models import Run
from automations.states import RunState
from reviewapp.rows import row_get

from .models import Automation, GovernanceChange, Intent, Mode, Role, SegmentPolicy
from .secret_env import SecretEnvRefused, secret_env_value


def user_roles(user: AbstractBaseUser) -> set[str]:
    """The role names a user holds; superusers hold every role."""
    if not user.is_authenticated:
        return set()
    if user.is_superuser:
        return {r.value for r in Role}
    cached = getattr(user, "_handrail_roles", None)
    if cached is None:
        cached = set(user.groups.filter(name__in=Role.values).values_list("name", flat=True))
        user._handrail_roles = cached
    return cached


def has_role(user: AbstractBaseUser, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))


def automations_visible_to(user: AbstractBaseUser) -> QuerySet[Automation]:
    """Admins and compliance see every automation; owners theirs; reviewers their queues'."""
    roles = user_roles(user)
    if roles & {Role.ADMIN, Role.COMPLIANCE}:
        return Automation.objects.all()
    qs = Automation.objects.none()
    if Role.OWNER in roles:
        qs = qs | Automation.objects.filter(owner=user)
    if Role.REVIEWER in roles:
        qs = qs | Automation.objects.filter(reviewers=user)
    return qs.distinct()


def works_from_the_queues(user: AbstractBaseUser) -> bool:
    """Reviewers who hold no governing role (owner, compliance, admin) start at the queues.

    Deciding cases is all such a reviewer does; anyone who also governs
    automations starts at the catalog, which shows each queue's backlog too.
    """
    roles = user_roles(user)
    return Role.REVIEWER in roles and not roles & {Role.OWNER, Role.COMPLIANCE, Role.ADMIN}


def can_manage(user: AbstractBaseUser, automation: Automation) -> bool:
    """Admins manage everything; owners the automations they own."""
    roles = user_roles(user)
    if Role.ADMIN in roles:
        return True
    return Role.OWNER in roles and automation.owner_id == user.pk


def reviewable_automations(user: AbstractBaseUser) -> QuerySet[Automation]:
    """The automations whose queues a user may work: only those they are assigned to."""
    if not _may_review_any(user):
        return Automation.objects.none()
    return Automation.objects.filter(reviewers=user)


def may_review(user: AbstractBaseUser, automation_id: int) -> bool:
    """Whether `user` may work the automation's queue: reviewable_automations for one id.

    One read of the assignment (unique per automation and user), for every decision.
    """
    if not _may_review_any(user):
        return False
    assigned = {"automation_id": automation_id, "user_id": user.pk}
    return row_get(Automation.reviewers.through, where=assigned) is not None


def _may_review_any(user: AbstractBaseUser) -> bool:
    return bool(user_roles(user) & {Role.REVIEWER, Role.ADMIN})


def count_per_automation(queryset: QuerySet) -> Coalesce:
    """A correlated COUNT(*) of `queryset` (filtered on OuterRef) as one annotation, 0 if none.

    A subquery per figure rather than a join: counts of several tables never
    multiply each other, and each walks its own index.
    """
    counted = queryset.order_by().values("automation").annotate(n=Count("*")).values("n")[:1]
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def can_export_labels(user: AbstractBaseUser, automation: Automation) -> bool:
    """Owners of the automation and admins, and compliance (who read everything)."""
    return can_manage(user, automation) or has_role(user, Role.COMPLIANCE)


def catalog_rows_for(
    user: AbstractBaseUser, *, now: datetime | None = None
) -> QuerySet[Automation]:
    """The automations a user may see, annotated with segment and run counts, in one query."""
    start_of_day = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    here = OuterRef("pk")
    live_modes = [Mode.SUGGEST, Mode.APPROVE, Mode.AUTONOMOUS]
    return (
        Automation.objects.filter(pk__in=automations_visible_to(user).values("pk"))
        .select_related("owner")
        .defer("purpose", "rollback_plan", "instructions", "rules")
        .annotate(
            segments_total=count_per_automation(SegmentPolicy.objects.filter(automation=here)),
            segments_off=count_per_automation(
                SegmentPolicy.objects.filter(automation=here, enabled=False)
            ),
            segments_live=count_per_automation(
                SegmentPolicy.objects.filter(automation=here, enabled=True, mode__in=live_modes)
            ),
            awaiting_review=count_per_automation(
                Run.objects.filter(automation=here, state=RunState.AWAITING_REVIEW)
            ),
            runs_today=count_per_automation(
                Run.objects.filter(automation=here, created_at__gte=start_of_day)
            ),
        )
        .order_by("name", "slug")
    )


def automation_status(automation: Automation) -> list[tuple[str, str]]:
    """Badges (label, css class) that say whether the automation acts; needs catalog_rows_for."""
    badges = []
    if automation.mode == Mode.SHADOW and not automation.segments_live:
        badges.append(("shadow only", "shadow"))
    elif automation.mode == Mode.SHADOW:
        badges.append((f"shadow; live in {automation.segments_live} segment(s)", "shadow"))
    else:
        badges.append(("live", "live"))
    if automation.segments_off:
        label = f"{automation.segments_off} of {automation.segments_total} segments off"
        badges.append((label, "off"))
    return badges


def automations_in_full_visible_to(user: AbstractBaseUser) -> QuerySet[Automation]:
    """The automations a user may see, each with its owner, reviewers and children loaded."""
    return (
        automations_visible_to(user)
        .select_related("owner")
        .prefetch_related("reviewers", "intents", "segments", "do_not_automate")
    )


def intents_shown(automation: Automation) -> list[Intent]:
    """The intents (prefetched), each with its action's url and secret variable set apart."""
    intents = list(automation.intents.all())
    for intent in intents:
        config = dict(intent.action_config or {})
        intent.action_url = config.pop("url", "")
        intent.secret_env = config.pop("secret_env", "")
        intent.other_config = config
    return intents


def api_key_state(user: AbstractBaseUser, automation: Automation) -> str:
    """For admins, whether the API key variable is "set", "not set" or "refused"; else "".

    Only admins learn it: the page must not tell others which variables exist,
    and the value itself never reaches a page.
    """
    if not has_role(user, Role.ADMIN):
        return ""
    try:
        value = secret_env_value(automation.api_key_env or "OPENAI_API_KEY")
    except SecretEnvRefused:
        return "refused"
    return "set" if value else "not set"


# Runs whose action is not sent yet, by what a kill switch would do to them.
NOT_DECIDED = (RunState.RECEIVED, RunState.DECIDING)
NOT_SENT = (RunState.APPROVED, RunState.EXECUTING)


@dataclass
class InFlight:
    """Runs not yet done, as a kill switch meets them (contracts section 6)."""

    undecided: int = 0  # would end blocked
    awaiting_review: int = 0  # stay in review
    approved: int = 0  # approved or executing: an unsent attempt would end halted

    @property
    def total(self) -> int:
        return self.undecided + self.awaiting_review + self.approved


def runs_in_flight(automation: Automation) -> tuple[InFlight, dict[str, InFlight]]:
    """The automation's runs in flight now, in all and per segment ("" without one); 1 query."""
    rows = (
        Run.objects.filter(
            automation=automation,
            state__in=[*NOT_DECIDED, RunState.AWAITING_REVIEW, *NOT_SENT],
        )
        .order_by()
        .values_list("segment", "state")
        .annotate(n=Count("*"))
    )
    overall, per_segment = InFlight(), {}
    for segment, state, n in rows:
        for counts in (overall, per_segment.setdefault(segment, InFlight())):
            if state in NOT_DECIDED:
                counts.undecided += n
            elif state == RunState.AWAITING_REVIEW:
                counts.awaiting_review += n
            else:
                counts.approved += n
    return overall, per_segment


def last_governance_changes(automation: Automation, *, kind: str) -> dict[str, GovernanceChange]:
    """The latest mode or switch change of the automation ("") and of each segment; 1 query."""
    latest = (
        GovernanceChange.objects.filter(automation=automation, kind=kind)
        .order_by()
        .values("segment")
        .annotate(last=Max("pk"))
        .values("last")
    )
    changes = GovernanceChange.objects.filter(pk__in=Subquery(latest)).select_related("by")
    return {change.segment: change for change in changes}
