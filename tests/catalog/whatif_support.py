"""A small fixed set of runs whose what-if figures are worked out by hand in test_whatif.py.

support-triage: autonomous, min_confidence 0.7; segment `enterprise` on
approve, segment `trial` with a policy that leaves the mode alone.

| run | segment    | conf | recorded                       | corrected | event body           |
|-----|------------|------|--------------------------------|-----------|----------------------|
| r1  |            | 0.95 | acted                          |           | Where is my invoice? |
| r2  |            | 0.80 | acted                          |           | Invoice overdue      |
| r3  |            | 0.65 | confidence review, accepted    |           | Refund please        |
| r4  |            | 0.60 | confidence review, rejected    | yes       | my lawyer will call  |
| r5  |            | 0.90 | intent_risk review, edited     | yes       | Cancel my plan       |
| r6  | enterprise | 0.92 | approve mode, accepted         |           | Upgrade seats        |
| r7  | enterprise | 0.75 | approve mode, edited           | yes       | lawsuit incoming     |
| r8  | trial      | 0.72 | acted                          |           | LAWYER here          |
| r9  |            | 0.85 | blocked (switched off)         |           | Where is my invoice? |
| r12 |            | 0.75 | confidence review at 0.8, used | yes       | lawyers everywhere   |

Not judged: r10 (40 days old), r11 (no proposed intent: the model failed),
and a run of another automation.

Under the current settings: person r3 r4 r5 r6 r7 (5), acts r1 r2 r8 r12
(4), blocked r9 (1); corrected r4 r5 r7 r12: caught r4 r5 r7 (3), let
through r12 (1).
"""

from datetime import timedelta

from django.utils import timezone

from automations.models import ReviewTask, Run
from tests.factories import (
    AutomationFactory,
    EventFactory,
    IntentFactory,
    RunFactory,
    SegmentPolicyFactory,
)

CHECKS = ("segment_policy", "do_not_automate", "budget", "pii_policy", "intent_risk", "confidence")


def verdicts(*, review: tuple[str, ...] = ()) -> list[dict]:
    """The six verdicts a decision records, `review` naming the checks that asked for review."""
    return [
        {
            "check": check,
            "verdict": "review" if check in review else "pass",
            "reason": f"{check} said so",
            "details": {},
        }
        for check in CHECKS
    ]


def decided_run(
    automation,
    *,
    confidence,
    body: str,
    state: str,
    segment: str = "",
    review: tuple[str, ...] = (),
    outcome: str = "",
    days_ago: float = 1,
    payload_extra: dict | None = None,
    proposed: bool = True,
) -> Run:
    """A decided run as the pipeline leaves it, with its review task when a person decided."""
    event = EventFactory(
        automation=automation,
        segment=segment,
        payload={"subject": "ticket", "body": body, **(payload_extra or {})},
    )
    intent = {
        "intent": "route_ticket",
        "arguments": {"team": "billing", "priority": "p2"},
        "confidence": confidence,
        "rationale": "test",
    }
    run = RunFactory(
        event=event,
        state=state,
        effective_mode=automation.mode,
        proposed_intent=intent if proposed else None,
        verdicts=verdicts(review=review) if proposed else [],
    )
    if outcome:
        ReviewTask.objects.create(
            run=run,
            automation=automation,
            state="done",
            outcome=outcome,
            decided_at=timezone.now() - timedelta(days=days_ago),
        )
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(days=days_ago))
    return run


def whatif_world(owner=None, *, slug: str = "support-triage") -> dict:
    """The automation and its runs (by name) described in the module docstring."""
    extra = {"owner": owner} if owner is not None else {}
    automation = AutomationFactory(slug=slug, mode="autonomous", min_confidence=0.7, **extra)
    IntentFactory(automation=automation)
    SegmentPolicyFactory(automation=automation, key="enterprise", mode="approve", position=0)
    SegmentPolicyFactory(automation=automation, key="trial", mode="", position=1)
    acted, reviewed = "executed", "executed"
    runs = {
        "r1": decided_run(
            automation,
            confidence=0.95,
            body="Where is my invoice?",
            state=acted,
            payload_extra={"tags": ["vip", "billing"], "priority": 1},
        ),
        "r2": decided_run(
            automation,
            confidence=0.80,
            body="Invoice overdue",
            state=acted,
            payload_extra={"tags": [["vip"]], "meta": {"vip": "vip"}},
        ),
        "r3": decided_run(
            automation,
            confidence=0.65,
            body="Refund please",
            state=reviewed,
            review=("confidence",),
            outcome="accepted",
        ),
        "r4": decided_run(
            automation,
            confidence=0.60,
            body="my lawyer will call",
            state="rejected",
            review=("confidence",),
            outcome="rejected",
        ),
        "r5": decided_run(
            automation,
            confidence=0.90,
            body="Cancel my plan",
            state=reviewed,
            review=("intent_risk",),
            outcome="edited",
            payload_extra={"tags": "vip"},
        ),
        "r6": decided_run(
            automation,
            confidence=0.92,
            body="Upgrade seats",
            state=reviewed,
            segment="enterprise",
            outcome="accepted",
        ),
        "r7": decided_run(
            automation,
            confidence=0.75,
            body="lawsuit incoming",
            state=reviewed,
            segment="enterprise",
            outcome="edited",
        ),
        "r8": decided_run(
            automation, confidence=0.72, body="LAWYER here", state=acted, segment="trial"
        ),
        "r9": decided_run(
            automation, confidence=0.85, body="Where is my invoice?", state="blocked"
        ),
        "r12": decided_run(
            automation,
            confidence=0.75,
            body="lawyers everywhere",
            state="recorded",
            review=("confidence",),
            outcome="used_edited",
        ),
        # Not judged:
        "r10": decided_run(automation, confidence=0.50, body="old", state=acted, days_ago=40),
        "r11": decided_run(
            automation,
            confidence=None,
            body="model down",
            state="awaiting_review",
            proposed=False,
        ),
    }
    other = AutomationFactory(slug=f"{slug}-other", mode="autonomous", **extra)
    decided_run(other, confidence=0.1, body="my lawyer", state=acted)
    return {"automation": automation, "runs": runs}
