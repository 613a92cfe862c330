-- The floor of a reviewer's cycle: the bare claim and a one-statement decision
-- (no Label, run untouched), from a client that costs next to nothing. Offered
-- at 2,000 cycles/s, with per-transaction latencies logged (pgbench_log.*, the
-- third column in microseconds; claimed tasks put back first, as in bare_claim.sql):
--   pgbench -n -M prepared -c 32 -j 2 -T 15 -R 2000 -l -f bench/pgbench/bare_pair.sql handrail_bench_claims
\set a random(1, 20)
\set u random(1, 32)
BEGIN;
UPDATE automations_reviewtask SET state = 'claimed', claimed_by_id = :u, claimed_at = now(),
    lease_expires_at = now() + interval '600 seconds'
WHERE id = (SELECT id FROM automations_reviewtask
            WHERE automation_id = :a
              AND (state = 'pending' OR (state = 'claimed' AND lease_expires_at < now()))
            ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id AS task \gset
UPDATE automations_reviewtask SET state = 'done', claimed_by_id = NULL, decided_by_id = :u,
    decided_at = now(), outcome = 'accepted',
    review_ms = (extract(epoch FROM now() - claimed_at) * 1000)::int
WHERE id = :task AND state = 'claimed' AND claimed_by_id = :u AND lease_expires_at > now();
COMMIT;
