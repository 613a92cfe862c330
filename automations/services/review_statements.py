"""The PostgreSQL statements of the review hot path (claim and decide), kept apart from the logic.

automations/services/reviews.py runs them on PostgreSQL and falls back to the
ORM elsewhere; both paths pass the same tests. Parameters are named
(%(name)s), so psycopg binds and, once repeated, prepares them.
"""

# The PostgreSQL claim in one round trip: the reviewer's own live claim if they
# hold one, else the oldest claimable task, skipping rows other claimers have
# locked, leased in the same statement. Nothing is returned to a user who is
# not on the automation's reviewers list.
CLAIM_SQL = """
WITH allowed AS (
    SELECT 1 FROM catalog_automation_reviewers
    WHERE automation_id = %(automation)s AND user_id = %(user)s
), held AS (
    SELECT t.* FROM automations_reviewtask t
    WHERE EXISTS (SELECT 1 FROM allowed)
      AND t.automation_id = %(automation)s AND t.state = 'claimed'
      AND t.claimed_by_id = %(user)s AND t.lease_expires_at > %(now)s
    ORDER BY t.created_at, t.id LIMIT 1
), picked AS (
    SELECT t.id FROM automations_reviewtask t
    WHERE EXISTS (SELECT 1 FROM allowed) AND NOT EXISTS (SELECT 1 FROM held)
      AND t.automation_id = %(automation)s
      AND (t.state = 'pending' OR (t.state = 'claimed' AND t.lease_expires_at < %(now)s))
    ORDER BY t.created_at, t.id LIMIT 1
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE automations_reviewtask t
    SET state = 'claimed', claimed_by_id = %(user)s, claimed_at = %(now)s,
        lease_expires_at = %(until)s
    FROM picked WHERE t.id = picked.id
    RETURNING t.*
)
SELECT * FROM held UNION ALL SELECT * FROM claimed
"""


# The PostgreSQL decision in two statements, the hot path of the console: one
# read (the task, its run's proposal, the proposed intent's schema, access),
# then, once Python has validated the decision, one write that closes the
# task, stores the Label, and moves the run and records its transition. The
# write is one statement, so it is atomic on its own; it re-checks the lease
# and locks the run in `awaiting_review`, so a lease lapsed or a run moved on
# since the read writes nothing at all. It is the set-based twin of
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
DECIDE_WRITE_SQL = """
WITH run_ok AS (
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
    RETURNING t.*
), label AS (
    INSERT INTO automations_label (review_task_id, run_id, automation_id, outcome,
        model_intent, final_intent, diff, reviewer_id, created_at)
    SELECT id, run_id, automation_id, %(outcome)s, %(model_intent)s::jsonb, %(final)s::jsonb,
        %(diff)s::jsonb, %(user)s, %(now)s
    FROM task
), moved AS (
    UPDATE automations_run
    SET state = %(to_state)s, final_intent = %(final)s::jsonb, decided_by = 'reviewer',
        reason = %(reason)s
    WHERE id IN (SELECT id FROM run_ok) AND EXISTS (SELECT 1 FROM task)
    RETURNING id
), transition AS (
    INSERT INTO automations_runtransition (run_id, from_state, to_state, actor, reason, at)
    SELECT id, %(from_state)s, %(to_state)s, %(actor)s, %(reason)s, %(now)s FROM moved
)
SELECT task.* FROM task
"""
