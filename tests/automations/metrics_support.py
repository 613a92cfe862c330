"""Runs with a history at chosen times, for the metrics tests: what the rollup job reads.

The pipeline's services stamp every row with the current time; these helpers
write the same rows (transitions, model calls, review tasks, labels) and then
move their timestamps to where the test wants them.
"""

from datetime import datetime, timedelta
from decimal import Decimal

from automations.models import Label, ModelCall, ReviewTask, Run, RunTransition
from tests.factories import EventFactory, RunFactory, UserFactory

PROPOSED = {
    "intent": "route_ticket",
    "arguments": {"team": "billing", "priority": "p2"},
    "confidence": 0.9,
}
# Where a run that acted without a person goes, step by step.
AUTONOMOUS = ("deciding", "executing", "executed")
REVIEWED = ("deciding", "awaiting_review")


def history(
    automation,
    *,
    at: datetime,
    steps=AUTONOMOUS,
    gaps_ms=None,
    segment: str = "",
    decided_by: str = "",
    verdicts=None,
    proposed=PROPOSED,
) -> Run:
    """A run received at `at` that went through `steps`, each `gaps_ms` after the one before."""
    gaps_ms = gaps_ms or [10] * len(steps)
    state = steps[-1] if steps else "received"
    run = RunFactory(
        event=EventFactory(automation=automation, segment=segment),
        state=state,
        decided_by=decided_by or ("model" if "executing" in steps else ""),
        verdicts=verdicts if verdicts is not None else [{"check": "confidence", "verdict": "pass"}],
        proposed_intent=proposed,
    )
    Run.objects.filter(pk=run.pk).update(created_at=at)
    run.created_at = at
    moment, previous = at, ""
    for to_state, gap in zip(("received", *steps), (0, *gaps_ms), strict=True):
        moment = moment + timedelta(milliseconds=gap)
        step = RunTransition.objects.create(
            run=run, from_state=previous, to_state=to_state, actor="test"
        )
        RunTransition.objects.filter(pk=step.pk).update(at=moment)
        previous = to_state
    return run


def model_call(run: Run, *, at: datetime, tokens=(100, 20), cost="0.001", error="") -> ModelCall:
    call = ModelCall.objects.create(
        run=run,
        automation_id=run.automation_id,
        provider="openai",
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        cost_usd=Decimal(cost),
        latency_ms=100,
        error=error,
    )
    ModelCall.objects.filter(pk=call.pk).update(created_at=at)
    return call


def review(run: Run, *, at: datetime, outcome: str, review_ms: int = 60_000, diff=()) -> Label:
    """The run's review, decided at `at`: its task and its label, as review_decide leaves them."""
    reviewer = UserFactory(username="metrics-reviewer", roles=["reviewer"])
    task = ReviewTask.objects.create(
        run=run,
        automation_id=run.automation_id,
        state="done",
        outcome=outcome,
        review_ms=review_ms,
        decided_by=reviewer,
        decided_at=at,
    )
    label = Label.objects.create(
        review_task=task,
        run=run,
        automation_id=run.automation_id,
        outcome=outcome,
        model_intent=run.proposed_intent,
        final_intent=run.proposed_intent,
        diff=[{"path": path, "from": None, "to": None} for path in diff],
        reviewer=reviewer,
    )
    Label.objects.filter(pk=label.pk).update(created_at=at)
    return label


def reviewed_run(
    automation, *, at: datetime, outcome: str, finish: str = "", segment: str = "", **kwargs
) -> Run:
    """A run a person decided (`outcome`), reviewed a minute after it arrived, then finished."""
    after = {"accepted": "approved", "edited": "approved", "rejected": "rejected"}[outcome]
    steps = (*REVIEWED, after, *(["executing", finish] if finish else []))
    gaps = [10, 20, 60_000, 5, 100][: len(steps)]
    run = history(
        automation, at=at, steps=steps, gaps_ms=gaps, decided_by="reviewer", segment=segment
    )
    review(run, at=at + timedelta(minutes=1), outcome=outcome, **kwargs)
    return run
