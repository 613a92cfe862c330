"""Promotion evidence: enough reviewed cases, and an override rate surely low enough."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from automations.selectors import reviewed_counts
from catalog.models import Automation
from catalog.stats import wilson_interval


@dataclass(frozen=True)
class Evidence:
    """The reviewed cases in the window and what they say about the override rate."""

    reviewed: int
    overridden: int
    low: float  # the Wilson 95 % interval of the override rate
    high: float
    window_days: int
    min_reviews: int
    max_override: float

    @property
    def rate(self) -> float | None:
        return self.overridden / self.reviewed if self.reviewed else None

    def missing(self) -> list[str]:
        """One line per thing the evidence lacks; empty when it suffices."""
        lines = []
        if self.reviewed < self.min_reviews:
            lines.append(
                f"evidence: {self.reviewed} reviewed cases in the last {self.window_days} days,"
                f" {self.min_reviews} needed"
            )
        if self.high > self.max_override:
            lines.append(
                f"evidence: the override rate's upper bound is {self.high:.1%}"
                f" ({self.overridden} of {self.reviewed}), at most {self.max_override:.1%} needed"
            )
        return lines


def promotion_evidence(
    automation: Automation, *, segment: str = "", now: datetime | None = None
) -> Evidence:
    """The evidence for promoting `automation` (or one segment) to autonomous, as of `now`."""
    days = settings.HANDRAIL_PROMOTION_WINDOW_DAYS
    since = (now or timezone.now()) - timedelta(days=days)
    counts = reviewed_counts(automation_id=automation.pk, since=since, segment=segment or None)
    low, high = wilson_interval(counts.overridden, counts.reviewed)
    return Evidence(
        reviewed=counts.reviewed,
        overridden=counts.overridden,
        low=low,
        high=high,
        window_days=days,
        min_reviews=settings.HANDRAIL_PROMOTION_MIN_REVIEWS,
        max_override=settings.HANDRAIL_PROMOTION_MAX_OVERRIDE,
    )
