"""Turn a received run into a decision: guardrails, provider, guardrails again, routing.

The worker first moves the run to `deciding` and holds it for as long as the
decision may take (every model attempt at its latency budget); the model call
happens outside any transaction. Everything the decision produced (the model
call, the verdicts, the review task or the first delivery attempt, and the
run's next state) is then written in one transaction guarded by the run's
state, so a task delivered twice writes nothing the second time. The kill
switches and modes are read again in that transaction: a switch flipped while
the model answered holds.
"""

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from automations.adapters import UnknownAdapter, adapter_for
from automations.guardrails import guardrails_run, strictest
from automations.guardrails.base import CheckResult, GuardrailContext
from automations.matching import event_document
from automations.metrics.tracecontext import trace_bind
from automations.models import ReviewTask, Run
from automations.providers import provider_for
from automations.providers.base import ProviderResult
from automations.routing import Route, route_decide
from automations.services.actions import (
    AttemptOutcome,
    Reserved,
    action_attempt,
    attempt_first,
    attempt_send,
    skip,
)
from automations.services.runs import held_elsewhere, hold, run_take_over, run_transition
from automations.services.spend import model_call_record
from automations.states import IllegalTransition, RunState
from catalog.audit.trail import trail_append
from catalog.config_cache import automation_config
from catalog.models import Automation, Intent
from catalog.policy import Policy, policy_lock, policy_now
from reviewapp.rows import row_get

# Before-stage checks whose objection means the model must not be called at all.
SKIP_PROVIDER_CHECKS = frozenset({"budget"})
# Added to the longest a decision may take, for the work around the model call.
DECIDING_LEASE_MARGIN_SECONDS = 10.0


@dataclass(frozen=True)
class Decided:
    """A run just decided, and its first delivery attempt when the decision acts at once."""

    run: Run
    reserved: Reserved | None = None


def decision_lease_seconds(automation: Automation) -> float:
    """How long a worker holds a run in `deciding`: every model attempt at its budget, and more."""
    attempts = provider_for(automation).attempts
    return attempts * automation.latency_budget_ms / 1000 + DECIDING_LEASE_MARGIN_SECONDS


def run_decide(*, run_id: int, actor: str) -> Decided | None:
    """Decide a run in `received` exactly once; None when there is nothing (left) to decide.

    A run left in `deciding` is taken over once its holder's lease is over
    (that worker was lost); before that another worker is deciding it, and
    this call leaves it alone, so a twin delivery never calls the model twice.
    """
    run = row_get(Run, where={"id": run_id}, related="event")
    if run is None:
        return None
    trace_bind(trace_id=run.trace_id, run_id=run.pk)
    # With its intents, rules and segment policies; its switches are read again to record.
    run.automation = automation = automation_config(run.automation_id)
    if not _take(run, actor):
        return None
    ctx = GuardrailContext(automation=automation, run=run, document=event_document(run.event))
    checks = guardrails_run(stage="before", ctx=ctx)
    result = None
    if _may_call_provider(checks):
        result = provider_for(automation).decide(automation=automation, document=ctx.document)
        if result.decision is not None:
            ctx.decision = result.decision
            checks += guardrails_run(stage="after", ctx=ctx)
    try:
        return _record(_Outcome(run, checks, result, ctx.decision, actor))
    except IllegalTransition:
        return None  # a twin delivery recorded it first; ours rolled back


def _take(run: Run, actor: str) -> bool:
    """Hold the run for this decision: move it to deciding, or take it over from a lost worker."""
    seconds = decision_lease_seconds(run.automation)
    if run.state == RunState.RECEIVED:
        try:
            run_transition(run=run, to_state=RunState.DECIDING, actor=actor, fields=hold(seconds))
        except IllegalTransition:
            return False  # another worker picked it up
        return True
    if run.state == RunState.DECIDING and not held_elsewhere(run):
        return run_take_over(run=run, seconds=seconds)
    return False


def _may_call_provider(checks: list[CheckResult]) -> bool:
    if strictest(checks) == "block":
        return False
    return not any(c.verdict != "pass" and c.check_name in SKIP_PROVIDER_CHECKS for c in checks)


@dataclass(frozen=True)
class _Outcome:
    """What a decision came to, before it is written."""

    run: Run
    checks: list[CheckResult]
    result: ProviderResult | None  # None: the model was not called
    decision: dict | None
    actor: str


@transaction.atomic
def _record(outcome: _Outcome) -> Decided:
    """Write the decision, and an acting one's action and first attempt, in one transaction."""
    run = outcome.run
    if outcome.result is not None:
        model_call_record(**_call_fields(outcome))
    policy_lock(automation_id=run.automation_id, exclusive=False)
    policy = policy_now(automation_id=run.automation_id, segment=run.segment)
    route = _route(outcome, policy)
    acts = route.to_state == RunState.APPROVED
    fields = {
        "effective_mode": policy.mode,
        "proposed_intent": outcome.decision,
        "final_intent": outcome.decision if acts else None,
        "decided_by": "model" if acts else "",
        "verdicts": [_verdict_row(check) for check in outcome.checks],
    }
    _trail(outcome, fields, route)
    if acts:
        intent = _intent(run.automation, outcome.decision)
        if intent is not None and intent.action_adapter:
            try:
                adapter = adapter_for(intent.action_adapter)
            except UnknownAdapter:
                pass  # the approved run fails with the reason when its attempt is made
            else:
                reserved = attempt_first(
                    run=run, intent=intent, adapter=adapter, actor=outcome.actor, fields=fields
                )
                return Decided(run, reserved)
    run_transition(
        run=run, to_state=route.to_state, actor=outcome.actor, reason=route.reason, fields=fields
    )
    if route.review_kind:
        ReviewTask.objects.create(
            run=run, automation_id=run.automation_id, kind=route.review_kind, reason=route.reason
        )
    return Decided(run)


def _route(outcome: _Outcome, policy: Policy) -> Route:
    """Where the decision sends the run under the switches and mode read at recording."""
    if policy.switched_off:
        return Route(RunState.BLOCKED, None, f"{policy.switched_off} (while deciding)")
    return route_decide(
        mode=policy.mode,
        verdict=strictest(outcome.checks),
        has_decision=outcome.decision is not None,
        error=_provider_error(outcome),
        reasons=[c.reason for c in outcome.checks if c.verdict != "pass"],
    )


def _trail(outcome: _Outcome, fields: dict, route: Route) -> None:
    """The decision and its verdicts on the trail, in the decision's transaction."""
    run, call = outcome.run, outcome.result.call if outcome.result else None
    trail_append(
        kind="decision",
        automation_id=run.automation_id,
        run_id=run.pk,
        data={
            "run": run.pk,
            "automation": run.automation.slug,
            "segment": run.segment,
            "trace_id": run.trace_id,
            "event_sha256": run.event.body_sha256,
            "mode": fields["effective_mode"],
            "intent": fields["proposed_intent"],
            "verdicts": fields["verdicts"],
            "route": route.to_state,
            "reason": route.reason,
            "model_call": None
            if call is None
            else {
                "provider": call.provider,
                "model": call.model,
                "prompt_version": run.automation.prompt_version,
                "input_tokens": call.input_tokens,
                "output_tokens": call.output_tokens,
                "cost_usd": call.cost_usd,
                "latency_ms": call.latency_ms,
                "error": call.error or outcome.result.error,
            },
            "by": outcome.actor,
            "at": timezone.now(),
        },
    )


def _provider_error(outcome: _Outcome) -> str:
    if outcome.result is not None:
        return outcome.result.error
    stopped = [c.reason for c in outcome.checks if c.verdict != "pass"]
    return stopped[0] if stopped else "no decision"


def _verdict_row(check: CheckResult) -> dict:
    return {
        "check": check.check_name,
        "verdict": check.verdict,
        "reason": check.reason,
        "details": check.details,
    }


def _call_fields(outcome: _Outcome) -> dict:
    result, run = outcome.result, outcome.run
    call = result.call
    return {
        "run": run,
        "automation_id": run.automation_id,
        "provider": call.provider,
        "model": call.model,
        "base_url": call.base_url,
        "prompt_version": run.automation.prompt_version,
        "request_id": call.request_id,
        "input_tokens": call.input_tokens,
        "output_tokens": call.output_tokens,
        "cost_usd": call.cost_usd,
        "latency_ms": call.latency_ms,
        "raw_output": call.raw_output,
        "error": call.error or result.error,
        "redactions": [
            {"check": c.check_name, **c.details}
            for c in outcome.checks
            if c.details.get("redactions")
        ],
    }


def _intent(automation: Automation, decision: dict | None) -> Intent | None:
    """The catalog intent the decision names, from the intents loaded for the guardrails."""
    name = (decision or {}).get("intent")
    return next((i for i in automation.intents.all() if i.name == name), None)


def run_advance(*, run_id: int, actor: str) -> AttemptOutcome:
    """Take a run as far as it goes on its own: decide it if received, then make its attempt.

    The first delivery attempt of a decision that acts is reserved in the
    decision's transaction and sent right after it commits, in the same task,
    instead of one queue hop later. Safe to run twice: a run decided before
    (the worker was lost after the commit) is carried on from where it stands.
    """
    decided = run_decide(run_id=run_id, actor=actor)
    if decided is None:
        return action_attempt(run_id=run_id, actor=actor)
    if decided.reserved is None:
        if decided.run.state == RunState.APPROVED:
            return action_attempt(run_id=run_id, actor=actor)  # nothing to send, or cannot
        return skip(f"run is {decided.run.state}")
    return attempt_send(run=decided.run, reserved=decided.reserved, actor=actor)
