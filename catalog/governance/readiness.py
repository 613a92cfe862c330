"""The readiness checklist an automation completes before it may act on its own."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from automations.providers import provider_for
from catalog.models import Automation, GovernanceChange

SWITCH_DRILL_DAYS = 30


@dataclass(frozen=True)
class ReadinessItem:
    name: str
    done: bool
    missing: str  # what to do when it is not done


def readiness_checklist(
    automation: Automation, *, now: datetime | None = None
) -> list[ReadinessItem]:
    """Each item of the playbook, done or with what is missing."""
    now = now or timezone.now()
    drilled = GovernanceChange.objects.filter(
        automation=automation,
        kind=GovernanceChange.Kind.SWITCH,
        to_value="off",
        created_at__gte=now - timedelta(days=SWITCH_DRILL_DAYS),
    ).exists()
    return [
        ReadinessItem(
            "success metrics written",
            bool(automation.success_metrics.strip()),
            "write the success metrics (what figures, what targets)",
        ),
        ReadinessItem(
            "rollback criteria written",
            bool(automation.rollback_plan.strip()),
            "write the rollback plan (when to roll back, and how)",
        ),
        ReadinessItem(
            "containment in place",
            _contained(automation),
            "set a confidence threshold above 0 and, for a model that bills, a daily budget",
        ),
        ReadinessItem(
            f"kill switch exercised in the last {SWITCH_DRILL_DAYS} days",
            drilled,
            "switch the automation or a segment off (and on again) to check the switch works",
        ),
        ReadinessItem(
            "monitoring and labeling budget named",
            bool(automation.monitoring_plan.strip() and automation.labeling_budget.strip()),
            "name the monitoring (who watches what) and the labeling budget",
        ),
        ReadinessItem(
            "an owner on call", bool(automation.on_call.strip()), "name who is on call for it"
        ),
    ]


def _contained(automation: Automation) -> bool:
    # The guardrails always run and high-risk intents always wait for a person; what an owner
    # can leave open is a threshold of 0 and, for a model that costs money, no budget.
    budget_ok = not provider_for(automation).bills or automation.daily_budget_usd > 0
    return automation.min_confidence > 0 and budget_ok


def readiness_missing(automation: Automation, *, now: datetime | None = None) -> list[str]:
    """One line per unfinished item; empty when the checklist is complete."""
    return [
        f"readiness: {item.name}: {item.missing}"
        for item in readiness_checklist(automation, now=now)
        if not item.done
    ]
