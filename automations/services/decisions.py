"""Turn a received run into a decision: guardrails, provider, guardrails again, routing.

The model call happens outside any transaction; everything it produced (the
model call, every verdict, the review task and the run's next state) is then
written in one transaction guarded by the run's state, so a task delivered
twice writes nothing the second time. A twin that arrives while the first is
still deciding does not call the model again: the run in `deciding` is leased
to the worker that moved it there, and only taken over once the lease is over
(that worker was lost).

The decide task calls run_advance: a decision that approves the run also
reserves its first delivery attempt in the same transaction, under the row
lock its own update took (services/actions.py re-reads the kill switch
there), and the same task sends it once that commits: no queue hop and no
second transaction. On PostgreSQL that transaction is one statement
(_record_approved_postgresql). Retries and reviewer approvals go through
execute_run.
"""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from functools import cache

from django.db import connection, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from automations.adapters import UnknownAdapter, adapter_for
from automations.guardrails import guardrails_run, strictest
from automations.guardrails.base import CheckResult, GuardrailContext
from automations.matching import event_document
from automations.models import (
    ActionAttempt,
    DailySpend,
    Event,
    GuardrailVerdict,
    ReviewTask,
    Run,
    RunTransition,
)
from automations.providers import provider_for
from automations.providers.base import ProviderResult
from automations.providers.openai import ATTEMPTS
from automations.routing import Route, effective_mode, route_decide
from automations.services.actions import (
    DELIVERING,
    EXECUTION_POLICY_SQL,
    IN_FLIGHT,
    AttemptOutcome,
    Reserved,
    action_attempt,
    action_new,
    attempt_reserve_locked,
    attempt_send,
    execution_policy_params,
    first_attempt_clauses,
    first_attempt_inserted,
    first_attempt_params,
    policy_block,
    skip,
)
from automations.services.runs import (
    move_clauses,
    move_params,
    run_moved,
    run_transition,
    transition_refused,
)
from automations.services.spend import model_call_record, model_call_statements, spend_day
from automations.states import IllegalTransition, RunState
from catalog.models import Automation, Intent
from catalog.snapshots import automation_config_attach
from reviewapp.rows import from_row, insert_rows, named, select_list

# Before-stage checks whose objection means the model must not be called at all.
SKIP_PROVIDER_CHECKS = frozenset({"budget"})
# Added to the longest a decision may take (every model attempt at its latency budget).
DECIDING_LEASE_MARGIN_SECONDS = 30.0


class DecisionInProgress(Exception):
    """Another worker moved the run to `deciding` moments ago; look again in `countdown` s."""

    def __init__(self, countdown: float):
        super().__init__(f"another worker is deciding this run; look again in {countdown:.0f} s")
        self.countdown = countdown


@dataclass(frozen=True)
class _Decided:
    run: Run
    # The first attempt of an approved run, when asked for: reserved, or why not.
    first_attempt: Reserved | AttemptOutcome | None = None


def run_decide(*, run_id: int, actor: str) -> Run | None:
    """Decide a run in `received` exactly once; None when there is nothing (left) to decide.

    A run left in `deciding` is taken over only once its lease is over (the
    worker deciding it was lost); before that DecisionInProgress says when to
    look again, so a twin delivery never calls the model a second time.
    """
    decided = _decide(run_id=run_id, actor=actor, reserve=False)
    return None if decided is None else decided.run


def _decide(*, run_id: int, actor: str, reserve: bool) -> _Decided | None:
    loaded = _run_load(run_id, actor)
    if loaded is None or loaded.run.state not in (RunState.RECEIVED, RunState.DECIDING):
        return None
    run = loaded.run
    automation = run.automation
    if run.state == RunState.DECIDING and not loaded.moved:
        wait = deciding_lease_left(run=run, automation=automation)
        if wait > 0:
            raise DecisionInProgress(wait)
    automation_config_attach(automation)  # intents, rules, policies: cached per version
    if run.state == RunState.RECEIVED:
        try:
            run_transition(run=run, to_state=RunState.DECIDING, actor=actor)
        except IllegalTransition:
            return None  # another worker picked it up

    ctx = GuardrailContext(
        automation=automation,
        run=run,
        document=event_document(run.event),
        spent_today=loaded.spent_today,
    )
    checks = guardrails_run(stage="before", ctx=ctx)
    result = None
    if _may_call_provider(checks):
        result = provider_for(automation).decide(automation=automation, document=ctx.document)
        if result.decision is not None:
            ctx.decision = result.decision
            checks += guardrails_run(stage="after", ctx=ctx)

    policy = ctx.segment_policy()
    mode = effective_mode(
        automation_mode=automation.mode, policy_mode=policy.mode if policy else None
    )
    route = route_decide(
        mode=mode,
        verdict=strictest(checks),
        has_decision=ctx.decision is not None,
        error=_provider_error(result, checks),
        reasons=[c.reason for c in checks if c.verdict != "pass"],
    )
    outcome = _Outcome(run, automation, mode, route, checks, result, ctx.decision, actor)
    try:
        return _record(outcome, reserve=reserve)
    except IllegalTransition:
        return None  # a twin delivery recorded it first; ours rolled back


def run_advance(*, run_id: int, actor: str) -> AttemptOutcome:
    """Take a run as far as it goes on its own: decide it if received, then attempt if approved.

    The first delivery attempt of an autonomous decision is reserved in the
    decision's transaction and sent right after it commits, in the same task,
    instead of one queue hop later; the reservation is the same as every other
    attempt's (one action, kill switch re-read, nothing else in flight). Safe
    to run twice: a run decided before (the worker was lost after the commit)
    is not decided again but carried on from where it stands, and a run in any
    other state is left as it is.
    """
    decided = _decide(run_id=run_id, actor=actor, reserve=True)
    if decided is None:
        return action_attempt(run_id=run_id, actor=actor)
    first = decided.first_attempt
    if first is None:
        return skip(f"run is {decided.run.state}")
    if isinstance(first, AttemptOutcome):
        return first
    return attempt_send(run=decided.run, reserved=first, actor=actor)


@dataclass(frozen=True)
class _Loaded:
    run: Run  # with its event and automation
    moved: bool  # the load itself moved it from received to deciding (PostgreSQL)
    spent_today: Decimal | None  # the automation's model spend today, read with it (PostgreSQL)


def _run_load(run_id: int, actor: str) -> _Loaded | None:
    """The run with its event and automation, from one prepared statement.

    On PostgreSQL the same statement moves a received run to deciding (the
    transition recorded) and reads the automation's spend of the day for the
    budget check: one round trip instead of three. A run it did not move is
    returned as it was; the caller moves it, or finds another worker did.
    """
    postgresql = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgresql:
            now = timezone.now()
            params = move_params(
                run_id=run_id,
                from_state=RunState.RECEIVED,
                to_state=RunState.DECIDING,
                actor=actor,
                at=now,
                connection=connection,
            )
            cursor.execute(_run_load_and_move_sql(), params | {"day": spend_day(now)})
        else:
            cursor.execute(_run_load_sql(), [run_id])
        row = cursor.fetchone()
    if row is None:
        return None
    run_end = len(Run._meta.concrete_fields)
    event_end = run_end + len(Event._meta.concrete_fields)
    automation_end = event_end + len(Automation._meta.concrete_fields)
    run = from_row(Run, row[:run_end])
    run.event = from_row(Event, row[run_end:event_end])
    run.automation = from_row(Automation, row[event_end:automation_end])
    if not postgresql:
        return _Loaded(run=run, moved=False, spent_today=None)
    moved, spent = row[automation_end:]
    if moved:
        run.state = RunState.DECIDING
    return _Loaded(run=run, moved=moved, spent_today=Decimal(spent or 0))


def _run_select(extra_columns: str = "") -> str:
    return (
        f"SELECT {select_list(Run, 'r')}, {select_list(Event, 'e')},"  # noqa: S608 (model names)
        f" {select_list(Automation, 'a')}{extra_columns} FROM {Run._meta.db_table} r"
        f" JOIN {Event._meta.db_table} e ON e.id = r.event_id"
        f" JOIN {Automation._meta.db_table} a ON a.id = r.automation_id"
    )


@cache
def _run_load_sql() -> str:
    return f"{_run_select()} WHERE r.id = %s"


@cache
def _run_load_and_move_sql() -> str:
    return (
        f"WITH {move_clauses(('state',))}"  # noqa: S608 (model names)
        f" {_run_select(', EXISTS (SELECT 1 FROM moved), d.cost_usd')}"
        f" LEFT JOIN {DailySpend._meta.db_table} d"
        "   ON d.automation_id = r.automation_id AND d.day = %(day)s"
        " WHERE r.id = %(run)s"
    )


def deciding_lease_left(*, run: Run, automation: Automation) -> float:
    """Seconds before a run in `deciding` may be taken over by another worker; 0 when it may."""
    started = (
        RunTransition.objects.filter(run_id=run.pk, to_state=RunState.DECIDING)
        .order_by("-at")
        .values_list("at", flat=True)
        .first()
    )
    if started is None:
        return 0.0
    lease = ATTEMPTS * automation.latency_budget_ms / 1000 + DECIDING_LEASE_MARGIN_SECONDS
    return max(0.0, (started + timedelta(seconds=lease) - timezone.now()).total_seconds())


def _may_call_provider(checks: list[CheckResult]) -> bool:
    if strictest(checks) == "block":
        return False
    return not any(c.verdict != "pass" and c.check_name in SKIP_PROVIDER_CHECKS for c in checks)


def _provider_error(result: ProviderResult | None, checks: list[CheckResult]) -> str:
    if result is not None:
        return result.error
    stopped = [c.reason for c in checks if c.verdict != "pass"]
    return stopped[0] if stopped else "no decision"


@dataclass(frozen=True)
class _Outcome:
    """What a decision came to, before it is written."""

    run: Run
    automation: Automation
    mode: str
    route: Route
    checks: list[CheckResult]
    result: ProviderResult | None  # None: the model was not called
    decision: dict | None
    actor: str


def _record(outcome: _Outcome, *, reserve: bool) -> _Decided:
    """Write the decision; with `reserve`, an approved run's first attempt too (same commit).

    On PostgreSQL an approved run whose intent has an action takes one
    statement for all of it (see _record_approved_postgresql); any other
    decision, and one whose segment was switched off meanwhile, the steps.
    """
    if (
        reserve
        and outcome.result is not None
        and outcome.route.to_state == RunState.APPROVED
        and not outcome.route.review_kind
        and connection.vendor == "postgresql"
    ):
        fast = _record_approved_postgresql(outcome)
        if fast is not None:
            return fast
    return _record_steps(outcome, reserve=reserve)


@transaction.atomic
def _record_steps(outcome: _Outcome, *, reserve: bool) -> _Decided:
    """The decision written statement by statement, in one transaction (every database)."""
    run, automation, route = outcome.run, outcome.automation, outcome.route
    approved = route.to_state == RunState.APPROVED
    run_transition(
        run=run,
        to_state=route.to_state,
        actor=outcome.actor,
        reason=route.reason,
        fields=_decision_fields(outcome.mode, outcome.decision, approved),
    )
    verdicts = _verdicts(run, outcome.checks)
    if outcome.result is None:
        insert_rows(verdicts)
    else:
        # One statement with the call on PostgreSQL.
        model_call_record(rows=verdicts, **_call_fields(outcome))
    if route.review_kind:
        ReviewTask.objects.create(
            run=run, automation=automation, kind=route.review_kind, reason=route.reason
        )
    if not (approved and reserve):
        return _Decided(run)
    # The run's row is locked by the update above; the intents were loaded for the guardrails.
    intent = _intent(automation, outcome.decision)
    return _Decided(run, attempt_reserve_locked(run=run, intent=intent, actor=outcome.actor))


def _record_approved_postgresql(outcome: _Outcome) -> _Decided | None:
    """The approval, its model call, spend and verdicts, and the first attempt: one statement.

    The statement first re-reads the kill switch and mode (after the model's
    answer), and moves the run from deciding through approved to executing
    (both transitions recorded) only if they still act and it is still
    deciding. Everything else it writes comes from that move, so it is safe
    on its own, without a transaction: when the run did not move, nothing was
    written, and the steps halt it (it stopped acting meanwhile) or the caller
    learns of the twin that moved it. None also when there is no action to
    write (the steps settle that). It has 44 parameters (the verdicts are one
    JSON array): keep it within 50, or psycopg parses it on every call.
    """
    run = outcome.run
    intent = _intent(outcome.automation, outcome.decision)
    if intent is None or not intent.action_adapter:
        return None
    try:
        adapter = adapter_for(intent.action_adapter)
    except UnknownAdapter:
        return None
    db = transaction.get_connection()
    now = timezone.now()
    values = {"state": RunState.EXECUTING, "reason": DELIVERING}
    values |= _decision_fields(outcome.mode, outcome.decision, approved=True)
    params = move_params(
        run_id=run.pk,
        from_state=run.state,
        to_state=RunState.EXECUTING,
        via=RunState.APPROVED,
        via_reason=outcome.route.reason,
        actor=outcome.actor,
        reason=DELIVERING,
        values=values,
        connection=db,
        at=now,
    )
    # The call's key is not read back: nothing refers to it.
    _, *statements = model_call_statements(db, after="moved", **_call_fields(outcome))
    clauses = [
        f"policy AS ({EXECUTION_POLICY_SQL})",
        move_clauses(tuple(values), via=True, when="(SELECT acting FROM policy)"),
    ]
    for number, statement in enumerate(statements):
        text, named_params = named(statement, f"w{number}_")
        clauses.append(f"w{number} AS ({text})")
        params |= named_params
    if outcome.checks:
        clauses.append(f"verdicts AS ({_VERDICTS_AFTER_MOVE_SQL})")
        params |= _verdicts_params(outcome.checks, now)
    action = action_new(run=run, adapter=intent.action_adapter)  # a run deciding has none
    attempt = ActionAttempt(action=action, number=1, started_at=now, error=IN_FLIGHT)
    columns, rows_params = first_attempt_params(action, attempt, db)
    clauses.append(first_attempt_clauses(*columns))
    sql = (
        f"WITH {', '.join(clauses)}"  # noqa: S608 (model names, values bound)
        " SELECT (SELECT id FROM action), (SELECT id FROM attempt), policy.* FROM policy"
    )
    with db.cursor() as cursor:
        cursor.execute(sql, params | rows_params | execution_policy_params(run))
        row = cursor.fetchone()
    if row is None or row[0] is None:
        if row is not None and policy_block(run, *row[2:]):
            return None  # it stopped acting while the model answered: the steps halt it
        raise transition_refused(run.pk, RunState.EXECUTING)
    first_attempt_inserted(action, attempt, row[:2])
    run_moved(run, values, now)
    config = intent.action_config or {}
    return _Decided(run, Reserved(action=action, attempt=attempt, adapter=adapter, config=config))


def _decision_fields(mode: str, decision: dict | None, approved: bool) -> dict:
    return {
        "effective_mode": mode,
        "proposed_intent": decision,
        "final_intent": decision if approved else None,
        "decided_by": "model" if approved else "",
    }


# The moved run's verdicts from one JSON array: binding them as one array per
# column cost psycopg more to dump (lists of JSON, datetimes and strings) than
# the rest of the decision's 40-odd parameters together.
_VERDICTS_AFTER_MOVE_SQL = (
    f'INSERT INTO "{GuardrailVerdict._meta.db_table}"'  # noqa: S608 (model names, values bound)
    ' ("run_id", "position", "check_name", "verdict", "reason", "details", "created_at")'
    " SELECT moved.id, v.position, v.check_name, v.verdict, v.reason, v.details,"
    " %(verdicts_at)s FROM moved, jsonb_to_recordset(%(verdicts)s) AS v("
    "position integer, check_name varchar, verdict varchar, reason text, details jsonb)"
)


def _verdicts_params(checks: list[CheckResult], at) -> dict:
    return {"verdicts": Jsonb(_verdict_rows(checks)), "verdicts_at": at}


def _verdicts(run: Run, checks: list[CheckResult]) -> list[GuardrailVerdict]:
    return [GuardrailVerdict(run=run, **row) for row in _verdict_rows(checks)]


def _verdict_rows(checks: list[CheckResult]) -> list[dict]:
    """The verdicts' own fields, in the order the checks ran."""
    return [
        {
            "position": position,
            "check_name": check.check_name,
            "verdict": check.verdict,
            "reason": check.reason,
            "details": check.details,
        }
        for position, check in enumerate(checks)
    ]


def _call_fields(outcome: _Outcome) -> dict:
    result, automation = outcome.result, outcome.automation
    call = result.call
    return {
        "run": outcome.run,
        "automation": automation,
        "provider": call.provider,
        "model": call.model,
        "base_url": call.base_url,
        "prompt_version": automation.prompt_version,
        "request_id": call.request_id,
        "input_tokens": call.input_tokens,
        "output_tokens": call.output_tokens,
        "cost_usd": call.cost_usd,
        "latency_ms": call.latency_ms,
        "raw_output": call.raw_output,
        "error": call.error or result.error,
        "redactions": _redactions(outcome.checks),
    }


def _intent(automation: Automation, decision: dict | None) -> Intent | None:
    """The catalog intent the decision names, from the intents loaded for the guardrails."""
    name = (decision or {}).get("intent")
    return next((i for i in automation.intents.all() if i.name == name), None)


def _redactions(checks: list[CheckResult]) -> list:
    return [{"check": c.check_name, **c.details} for c in checks if c.details.get("redactions")]
