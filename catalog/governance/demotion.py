"""Automatic demotion: a segment whose people override too much goes back to approve.

Run by Celery beat (catalog.demote_segments). For each automation that asks
for it (Automation.auto_demote), every segment that acts on its own
(autonomous) and has at least `auto_demote_after` reviewed cases is judged on
its latest that many: an override rate above `auto_demote_over` demotes it to
approve through mode_set (reason, history, trail), and the automation's
notify_url hears of it.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from automations.selectors import latest_reviewed_counts, reviewed_segments
from catalog.governance.changes import mode_set
from catalog.governance.notify import notify
from catalog.models import Automation, GovernanceChange, Mode
from catalog.policy import policy_of

# Only segments with recent reviews are judged: older ones say little about today.
LOOKBACK_DAYS = 30


@dataclass(frozen=True)
class Demotion:
    change: GovernanceChange
    rate: float
    notified: bool


def demote_segments(*, now=None) -> list[Demotion]:
    """Demote every segment over its threshold, now; what was demoted."""
    now = now or timezone.now()
    demoted = []
    for automation in Automation.objects.filter(auto_demote=True).prefetch_related("segments"):
        since = now - timedelta(days=LOOKBACK_DAYS)
        for segment in reviewed_segments(automation_id=automation.pk, since=since):
            if policy_of(automation, segment).mode != Mode.AUTONOMOUS:
                continue
            demotion = _judge(automation, segment)
            if demotion is not None:
                demoted.append(demotion)
    return demoted


def _judge(automation: Automation, segment: str) -> Demotion | None:
    last = automation.auto_demote_after
    counts = latest_reviewed_counts(automation_id=automation.pk, segment=segment, last=last)
    if counts.reviewed < last:
        return None
    rate = counts.overridden / counts.reviewed
    if rate <= automation.auto_demote_over:
        return None
    where = f"segment {segment}" if segment else "runs without a segment"
    reason = (
        f"automatic demotion of {where}: {counts.overridden} of the last {counts.reviewed}"
        f" reviewed cases overridden ({rate:.0%}, over {automation.auto_demote_over:.0%})"
    )
    change = mode_set(
        automation=automation, mode=Mode.APPROVE, reason=reason, by=None, segment=segment
    )
    notified = notify(
        automation=automation,
        event_id=f"demotion_{change.pk}",
        body={
            "event": "segment_demoted",
            "segment": segment,
            "from": change.from_value,
            "to": change.to_value,
            "override_rate": rate,
            "reviewed": counts.reviewed,
            "threshold": automation.auto_demote_over,
            "reason": reason,
        },
    )
    return Demotion(change, rate, notified)
