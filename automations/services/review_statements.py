"""The PostgreSQL statements of the review hot path (claim and decide), kept apart from the logic.

automations/services/reviews.py runs them on PostgreSQL and falls back to the
ORM elsewhere; both paths pass the same tests. Parameters are named
(%(name)s), so psycopg binds and, once repeated, prepares them. Every
statement that returns review tasks returns `decided` (true for the task just
decided, false for a claimed one) followed by the task's columns in the
model's field order, ready for ReviewTask.from_db.
"""

from automations.models import ReviewTask

TASK_COLUMNS = ", ".join(f"t.{field.column}" for field in ReviewTask._meta.concrete_fields)

# The claim: the reviewer's own live claim if they hold one, else the oldest
# claimable task, skipping rows other claimers have locked, leased in the same
# statement. Nothing is returned to a user who is not on the automation's
# reviewers list. {held_also} and {picked_also} let the decision below claim
# only once its own write went through.
_CLAIM_CTES = """
allowed AS (
    SELECT 1 FROM catalog_automation_reviewers
    WHERE automation_id = %(automation)s AND user_id = %(user)s
), held AS (
    SELECT {columns} FROM automations_reviewtask t
    WHERE EXISTS (SELECT 1 FROM allowed) {held_also}
      AND t.automation_id = %(automation)s AND t.state = 'claimed'
      AND t.claimed_by_id = %(user)s AND t.lease_expires_at > %(now)s
    ORDER BY t.created_at, t.id LIMIT 1
), picked AS (
    SELECT t.id FROM automations_reviewtask t
    WHERE EXISTS (SELECT 1 FROM allowed) AND NOT EXISTS (SELECT 1 FROM held) {picked_also}
      AND t.automation_id = %(automation)s
      AND (t.state = 'pending' OR (t.state = 'claimed' AND t.lease_expires_at < %(now)s))
    ORDER BY t.created_at, t.id LIMIT 1
    FOR UPDATE OF t SKIP LOCKED
), claimed AS (
    UPDATE automations_reviewtask t
    SET state = 'claimed', claimed_by_id = %(user)s, claimed_at = %(now)s,
        lease_expires_at = %(until)s
    FROM picked WHERE t.id = picked.id
    RETURNING {columns}
)
"""
_CLAIMED_ROWS = """
SELECT false AS decided, held.* FROM held UNION ALL SELECT false, claimed.* FROM claimed
"""
CLAIM_SQL = (
    "WITH "  # noqa: S608 (constant fragments, nothing from input)
    + _CLAIM_CTES.format(columns=TASK_COLUMNS, held_also="", picked_also="")
    + _CLAIMED_ROWS
)


# The decision in two statements, the hot path of the console: one read (the
# task, its run's proposal, the proposed intent's schema, access), then, once
# Python has validated the decision, one write that closes the task, stores
# the Label, and moves the run and records its transition. The write is one
# statement, so it is atomic on its own; it re-checks the lease and locks the
# run in `awaiting_review`, so a lease lapsed or a run moved on since the read
# writes nothing at all. It is the set-based twin of
# services.runs.run_transition (guarded from_state, transition row).
DECIDE_READ_SQL = """
SELECT t.state, t.outcome, t.claimed_by_id, t.lease_expires_at, t.kind, t.automation_id,
       t.run_id, r.proposed_intent,
       EXISTS (SELECT 1 FROM catalog_automation_reviewers ar
               WHERE ar.automation_id = t.automation_id AND ar.user_id = %(user)s),
       (SELECT i.arguments_schema FROM catalog_intent i
        WHERE i.automation_id = t.automation_id AND i.name = r.proposed_intent ->> 'intent')
FROM automations_reviewtask t JOIN automations_run r ON r.id = t.run_id
WHERE t.id = %(task)s
"""
_DECIDE_CTES = """
run_ok AS (
    SELECT id FROM automations_run
    WHERE id = %(run)s AND state = %(from_state)s
    FOR UPDATE
), task AS (
    UPDATE automations_reviewtask t
    SET state = 'done', claimed_by_id = NULL, decided_by_id = %(user)s, decided_at = %(now)s,
        review_ms = GREATEST(0, (EXTRACT(EPOCH FROM %(now)s - COALESCE(t.claimed_at, %(now)s))
                                 * 1000)::integer),
        outcome = %(outcome)s, reject_reason = %(reject_reason)s, note = %(note)s
    WHERE t.id = %(task)s AND t.state = 'claimed' AND t.claimed_by_id = %(user)s
      AND t.lease_expires_at > %(now)s AND EXISTS (SELECT 1 FROM run_ok)
    RETURNING {columns}
), label AS (
    INSERT INTO automations_label (review_task_id, run_id, automation_id, outcome,
        model_intent, final_intent, diff, reviewer_id, created_at)
    SELECT id, run_id, automation_id, %(outcome)s, %(model_intent)s::jsonb, %(final)s::jsonb,
        %(diff)s::jsonb, %(user)s, %(now)s
    FROM task
), moved AS (
    UPDATE automations_run
    SET state = %(to_state)s, final_intent = %(final)s::jsonb, decided_by = 'reviewer',
        reason = %(reason)s, updated_at = %(now)s
    WHERE id IN (SELECT id FROM run_ok) AND EXISTS (SELECT 1 FROM task)
    RETURNING id
), transition AS (
    INSERT INTO automations_runtransition (run_id, from_state, to_state, actor, reason, at)
    SELECT id, %(from_state)s, %(to_state)s, %(actor)s, %(reason)s, %(now)s FROM moved
)
"""
_DECIDED_ROW = "SELECT true AS decided, task.* FROM task"
DECIDE_WRITE_SQL = (
    "WITH "  # noqa: S608 (constant fragments, nothing from input)
    + _DECIDE_CTES.format(columns=TASK_COLUMNS)
    + _DECIDED_ROW
)

# The console's "decide, then next": the write above and the claim of the
# queue's next task in one statement, one commit. The claim happens only if
# the decision was written, and never hands back the task just decided.
DECIDE_AND_CLAIM_SQL = (
    "WITH "  # noqa: S608 (constant fragments, nothing from input)
    + _DECIDE_CTES.format(columns=TASK_COLUMNS)
    + ","
    + _CLAIM_CTES.format(
        columns=TASK_COLUMNS,
        held_also="AND t.id <> %(task)s AND EXISTS (SELECT 1 FROM task)",
        picked_also="AND EXISTS (SELECT 1 FROM task)",
    )
    + _DECIDED_ROW
    + " UNION ALL "
    + _CLAIMED_ROWS
)
