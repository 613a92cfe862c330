"""What became of a finished run, named as contracts section 7 names it, computed in SQL.

- `blocked`: a guardrail (or a kill switch) stopped it, whatever the mode;
- `approved`, `edited`, `rejected`: a reviewer decided it (its review task's outcome),
  whatever happened to the action afterwards (executed, failed, halted, compensated);
- `autonomous`: the model's decision acted with no person in between.

Shadow-mode runs and suggest-mode drafts end `recorded`: nothing acted on
Handrail's side, so there is nothing to audit and they are not finished runs
here. Runs still on their way (received, deciding, awaiting review, approved,
executing) are not finished either.
"""

from django.db.models import Case, CharField, QuerySet, Value, When

from automations.models import ReviewOutcome, Run
from automations.states import RunState
from catalog.models import AuditOutcome

FINISHED_STATES = (
    RunState.EXECUTED,
    RunState.FAILED,
    RunState.COMPENSATED,
    RunState.HALTED,
    RunState.REJECTED,
    RunState.BLOCKED,
)
# Acted without a person: the run went on from `approved` by the model's own decision.
AUTONOMOUS_STATES = (RunState.EXECUTED, RunState.FAILED, RunState.COMPENSATED, RunState.HALTED)
OUTCOMES = tuple(AuditOutcome.values)


def outcome_expression() -> Case:
    """The run's outcome as an SQL expression (NULL for runs no outcome describes)."""
    return Case(
        When(state=RunState.BLOCKED, then=Value(AuditOutcome.BLOCKED)),
        When(review_task__outcome=ReviewOutcome.ACCEPTED, then=Value(AuditOutcome.APPROVED)),
        When(review_task__outcome=ReviewOutcome.EDITED, then=Value(AuditOutcome.EDITED)),
        When(review_task__outcome=ReviewOutcome.REJECTED, then=Value(AuditOutcome.REJECTED)),
        When(
            decided_by="model",
            state__in=AUTONOMOUS_STATES,
            then=Value(AuditOutcome.AUTONOMOUS),
        ),
        default=None,
        output_field=CharField(),
    )


def finished_runs() -> QuerySet[Run]:
    """Finished runs annotated with `outcome`; those no outcome describes are left out."""
    return (
        Run.objects.filter(state__in=FINISHED_STATES)
        .annotate(outcome=outcome_expression())
        .exclude(outcome=None)
    )
