-- The issue's claim ceiling: the bare claim alone, no decision. Run it on the
-- database bench/claims.py loaded, its claimed tasks put back first:
--   psql handrail_bench_claims -c "UPDATE automations_reviewtask SET state = 'pending',
--       claimed_by_id = NULL, claimed_at = NULL, lease_expires_at = NULL WHERE state = 'claimed'"
--   pgbench -n -M prepared -c 32 -j 2 -T 15 -P 3 -f bench/pgbench/bare_claim.sql handrail_bench_claims
-- Claimed tasks stay claimed, so each claim walks past more of them: only the
-- first seconds show the ceiling of a fresh queue.
\set a random(1, 20)
\set u random(1, 32)
UPDATE automations_reviewtask SET state = 'claimed', claimed_by_id = :u, claimed_at = now(),
    lease_expires_at = now() + interval '600 seconds'
WHERE id = (SELECT id FROM automations_reviewtask
            WHERE automation_id = :a
              AND (state = 'pending' OR (state = 'claimed' AND lease_expires_at < now()))
            ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id;
