-- Every query rappelx runs at run time, each a named block loaded by `_sql.queries()`.
-- A block starts with `-- name: NAME`; the comment lines under it say what it does and
-- list each `$n` parameter. Lock discipline, which keeps dispatchers deadlock-free: an
-- instance row is locked before any of its action or timer rows, and statements that
-- lock action rows without their instance use SKIP LOCKED.
--
-- Key probes: an instance row wanted by id is read by id alone, in a subquery with
-- LIMIT 1 (which keeps the planner from pushing other conditions into it), and its
-- status is checked outside. Given `id = x AND status = 'running'` together, a planner
-- whose statistics predate the table's growth (autovacuum analyzes it tens of seconds
-- later) may walk the status index to every running instance for each probe: 100,000
-- sleepers once cost eight seconds a tick that way.

-- name: migration_lock
-- Serialize migration runners until the end of the transaction.
-- $1: lock key bigint
SELECT pg_advisory_xact_lock($1);

-- name: create_migrations_table
-- The migration runner's own bookkeeping; not part of schema.sql.
-- (No parameters.)
CREATE TABLE IF NOT EXISTS rappelx_migrations (
    id         integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: applied_migrations
-- Ids of the migrations already applied.
-- (No parameters.)
SELECT id FROM rappelx_migrations;

-- name: record_migration
-- Remember that a migration was applied.
-- $1: id, $2: name
INSERT INTO rappelx_migrations (id, name) VALUES ($1, $2);

-- name: insert_instances
-- Queue new instances (status 'pending') and record their workflow versions; wakes the
-- dispatchers that know those versions.
-- $1: ids uuid[], $2: workflow names text[], $3: versions text[], $4: encoded inputs
-- bytea[], $5: the distinct versions' workflow names text[], $6: those versions text[],
-- $7: their IR as JSON text[]
WITH versions AS (
    INSERT INTO rappelx_workflow_versions (name, version, ir)
    SELECT v.name, v.version, v.ir::jsonb
    FROM unnest($5::text[], $6::text[], $7::text[]) AS v(name, version, ir)
    ON CONFLICT DO NOTHING
), instances AS (
    INSERT INTO rappelx_instances (id, workflow, version, input)
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[])
)
SELECT count(pg_notify('rappelx_instances', v)) FROM unnest($6::text[]) AS v;

-- name: instance_outcome
-- Status and, once finished, the encoded result or error of one instance.
-- $1: id uuid
SELECT status, result, error FROM rappelx_instances WHERE id = $1;

-- name: instance_outcomes
-- Status and, once finished, the encoded result or error of the given instances.
-- $1: ids uuid[]
SELECT id, status, result, error FROM rappelx_instances WHERE id = ANY($1::uuid[]);

-- name: finished_outcomes
-- The finished instances among the given ones, with their encoded result or error.
-- $1: ids uuid[]
SELECT i.id, i.status, i.result, i.error
FROM unnest($1::uuid[]) AS u(id)
CROSS JOIN LATERAL (
    SELECT id, status, result, error FROM rappelx_instances WHERE id = u.id LIMIT 1
) AS i
WHERE i.status IN ('completed', 'failed', 'cancelled');

-- name: request_cancel
-- Ask for an unfinished instance to stop; a dispatcher delivers the cancellation.
-- Returns no row when the instance is unknown or already finished.
-- $1: id uuid
WITH target AS (
    SELECT ctid AS tid FROM rappelx_instances WHERE id = $1 LIMIT 1 FOR UPDATE
), marked AS (
    -- By ctid: the row is locked by this transaction, so the ctid read is current.
    UPDATE rappelx_instances AS i
    SET cancel_requested = true, updated_at = now()
    FROM target AS t
    WHERE i.ctid = t.tid AND i.status IN ('pending', 'running')
    RETURNING i.version
)
SELECT version, pg_notify('rappelx_instances', version) FROM marked;

-- name: register_dispatcher
-- Announce (or re-announce) a live dispatcher and what it can run; returns how many
-- other live dispatchers can advance some of the same versions.
-- $1: id uuid, $2: hostname, $3: pid, $4: queues text[], $5: versions text[],
-- $6: lease seconds (how long the announcement lasts without a heartbeat)
INSERT INTO rappelx_dispatchers (id, hostname, pid, queues, versions, expires_at)
VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))
ON CONFLICT (id) DO UPDATE
SET queues = EXCLUDED.queues, versions = EXCLUDED.versions,
    heartbeat_at = now(), expires_at = EXCLUDED.expires_at
RETURNING (SELECT count(*) FROM rappelx_dispatchers AS d
           WHERE d.id <> $1 AND d.expires_at > now() AND d.versions && $5::text[]) AS peers;

-- name: heartbeat
-- Extend a dispatcher's lease; returns no row when the dispatcher row is gone, else how
-- many other live dispatchers can advance some of the same versions.
-- $1: id uuid, $2: lease seconds
UPDATE rappelx_dispatchers AS me
SET heartbeat_at = now(), expires_at = now() + make_interval(secs => $2)
WHERE me.id = $1
RETURNING (SELECT count(*) FROM rappelx_dispatchers AS d
           WHERE d.id <> me.id AND d.expires_at > now()
             AND d.versions && me.versions) AS peers;

-- name: unregister_dispatcher
-- Remove a dispatcher that is shutting down.
-- $1: id uuid
DELETE FROM rappelx_dispatchers WHERE id = $1;

-- name: claim_actions
-- Lease up to $3 ready actions of the given queues and versions to dispatcher $4,
-- oldest first. Each queue is read in ready_at order from its own index range, so a
-- claim reads about as many rows as it takes, however long the queue.
-- The deadline is when a lost lease is presumed: the timeout plus a grace period.
-- $1: queues text[], $2: versions text[], $3: limit, $4: owner uuid, $5: grace seconds
WITH candidates AS (
    SELECT c.tid
    FROM unnest($1::text[]) AS q(name)
    CROSS JOIN LATERAL (
        SELECT ctid AS tid, ready_at
        FROM rappelx_actions
        WHERE status = 'ready' AND queue = q.name AND version = ANY($2::text[])
          AND ready_at <= now()
        ORDER BY ready_at
        LIMIT $3
        FOR UPDATE SKIP LOCKED
    ) AS c
    ORDER BY c.ready_at
    LIMIT $3
)
-- By ctid: the rows are locked by this statement, and a ctid probe needs no estimate.
UPDATE rappelx_actions AS a
SET status = 'running', lease_id = nextval('rappelx_lease_ids'), lease_owner = $4,
    started_at = now(),
    deadline = now() + make_interval(secs => a.timeout + $5)
FROM candidates AS c
WHERE a.ctid = c.tid
RETURNING a.lease_id, a.instance_id, a.action_id, a.attempt, a.name, a.payload, a.timeout,
    a.version;

-- name: hand_back_claims
-- Put attempts a dispatcher claimed but found no worker slot for back in the queue,
-- in the turn they had (ready_at unchanged) and without counting anything.
-- $1: owner uuid, $2: lease ids bigint[]
UPDATE rappelx_actions
SET status = 'ready', lease_id = NULL, lease_owner = NULL, started_at = NULL,
    deadline = NULL
WHERE lease_id = ANY($2::bigint[]) AND status = 'running' AND lease_owner = $1;

-- name: reclaim_lost
-- Take back running actions whose lease is lost. If their dispatcher's heartbeat
-- expired, that is not the action's fault: the attempt is put back ('ready') and
-- infra_retries counts it, up to the cap $2 ('lost'). If it ran past its deadline (its
-- timeout plus grace) under a live dispatcher, the attempt timed out ('overdue').
-- Returns the queues that got ready work, with the new statuses.
-- $1: versions text[], $2: infra retry cap
WITH lost AS (
    SELECT a.instance_id, a.action_id, a.attempt, EXISTS (
        SELECT 1 FROM rappelx_dispatchers AS d
        WHERE d.id = a.lease_owner AND d.expires_at > now()) AS owner_alive
    FROM rappelx_actions AS a
    WHERE a.status = 'running' AND a.version = ANY($1::text[])
      AND (a.deadline < now() OR NOT EXISTS (
          SELECT 1 FROM rappelx_dispatchers AS d
          WHERE d.id = a.lease_owner AND d.expires_at > now()))
    FOR UPDATE OF a SKIP LOCKED
)
UPDATE rappelx_actions AS a
SET status = CASE WHEN l.owner_alive THEN 'overdue'
                  WHEN a.infra_retries + 1 >= $2 THEN 'lost'
                  ELSE 'ready' END,
    infra_retries = a.infra_retries + (CASE WHEN l.owner_alive THEN 0 ELSE 1 END),
    ready_at = now(), lease_id = NULL,
    lease_owner = CASE WHEN l.owner_alive THEN a.lease_owner END, deadline = NULL
FROM lost AS l
WHERE a.instance_id = l.instance_id AND a.action_id = l.action_id AND a.attempt = l.attempt
RETURNING a.queue, a.status;

-- name: release_leases
-- Hand back the actions still leased to a dispatcher that is stopping. Rows another
-- transaction holds are skipped: once the dispatcher is unregistered, they are
-- reclaimed like any lost lease.
-- $1: owner uuid
WITH held AS (
    SELECT instance_id, action_id, attempt
    FROM rappelx_actions
    WHERE lease_owner = $1 AND status = 'running'
    FOR UPDATE SKIP LOCKED
)
UPDATE rappelx_actions AS a
SET status = 'ready', ready_at = now(), lease_id = NULL, lease_owner = NULL,
    deadline = NULL
FROM held AS h
WHERE a.instance_id = h.instance_id AND a.action_id = h.action_id AND a.attempt = h.attempt
RETURNING a.queue;

-- name: release_orphans
-- Hand back actions leased to a live dispatcher that no longer tracks them (a commit
-- whose outcome it never learned). Leases younger than $3 seconds are left alone: the
-- dispatcher may not have recorded them yet.
-- $1: owner uuid, $2: lease ids it tracks bigint[], $3: minimum age in seconds
WITH orphans AS (
    SELECT instance_id, action_id, attempt
    FROM rappelx_actions
    WHERE lease_owner = $1 AND status = 'running'
      AND NOT (lease_id = ANY($2::bigint[]))
      AND started_at < now() - make_interval(secs => $3)
    FOR UPDATE SKIP LOCKED
)
UPDATE rappelx_actions AS a
SET status = 'ready', ready_at = now(), lease_id = NULL, lease_owner = NULL,
    deadline = NULL
FROM orphans AS o
WHERE a.instance_id = o.instance_id AND a.action_id = o.action_id AND a.attempt = o.attempt
RETURNING a.queue;

-- name: find_due_work
-- What the tick can advance without locking first, read without locks: queued starts
-- not being cancelled (kind 'start') and running instances with due timers (kind
-- 'timer', one row per due timer), each with its instance row; a row of kind 'other'
-- when cancellations or stranded actions wait (those take lock_due_work); and in how
-- many seconds the next timer not yet due comes due (kind 'next'; NULL: none).
-- $1: versions text[], $2: limit per kind
WITH starts AS (
    SELECT id, workflow, version, seq, state, input
    FROM rappelx_instances
    WHERE status = 'pending' AND NOT cancel_requested AND version = ANY($1::text[])
    ORDER BY created_at
    LIMIT $2
), due AS (
    SELECT instance_id, timer_id, due_at
    FROM rappelx_timers
    WHERE due_at <= now() AND version = ANY($1::text[])
    ORDER BY due_at
    LIMIT $2
)
SELECT 'start' AS kind, id, workflow, version, seq, state, input,
       NULL::integer AS timer_id, NULL::timestamptz AS due_at, NULL::float8 AS next_due
FROM starts
UNION ALL
SELECT 'timer', i.id, i.workflow, i.version, i.seq, i.state, NULL, d.timer_id, d.due_at,
       NULL
FROM due AS d
CROSS JOIN LATERAL (
    SELECT id, workflow, version, seq, state, status FROM rappelx_instances
    WHERE id = d.instance_id
    LIMIT 1
) AS i
WHERE i.status = 'running'
UNION ALL
SELECT 'other', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
WHERE EXISTS (
    SELECT 1 FROM rappelx_instances
    WHERE cancel_requested AND status IN ('pending', 'running')
      AND version = ANY($1::text[])
) OR EXISTS (
    SELECT 1 FROM rappelx_actions
    WHERE status IN ('lost', 'overdue') AND version = ANY($1::text[])
)
UNION ALL
SELECT 'next', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       EXTRACT(EPOCH FROM min(due_at) - now())::float8
FROM rappelx_timers
WHERE due_at > now() AND version = ANY($1::text[]);

-- name: lock_due_work
-- Lock up to $2 instances of each kind that have work found in the database: queued
-- starts, cancellation requests, due timers, actions lost past the retry cap (kind
-- 'instance'). Rows another dispatcher holds are skipped. An instance may be listed
-- more than once. A last row (kind 'next') says in how many seconds the next timer
-- not yet due is due (NULL: none).
-- $1: versions text[], $2: limit per kind
WITH pending AS (
    SELECT id, workflow, version, status, state, input, cancel_requested, seq
    FROM rappelx_instances
    WHERE status = 'pending' AND version = ANY($1::text[])
    ORDER BY created_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), cancelling AS (
    SELECT id, workflow, version, status, state, input, cancel_requested, seq
    FROM rappelx_instances
    WHERE cancel_requested AND status IN ('pending', 'running')
      AND version = ANY($1::text[])
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), timed AS (
    SELECT i.id, i.workflow, i.version, i.status, i.state, i.input, i.cancel_requested,
           i.seq
    FROM (SELECT DISTINCT id FROM unnest(ARRAY(
        SELECT instance_id FROM rappelx_timers
        WHERE due_at <= now() AND version = ANY($1::text[])
        ORDER BY due_at
        LIMIT $2
    )) AS t(id)) AS w
    CROSS JOIN LATERAL (
        SELECT * FROM rappelx_instances WHERE id = w.id LIMIT 1 FOR UPDATE SKIP LOCKED
    ) AS i
    WHERE i.status = 'running'
), stranded AS (
    SELECT i.id, i.workflow, i.version, i.status, i.state, i.input, i.cancel_requested,
           i.seq
    FROM (SELECT DISTINCT id FROM unnest(ARRAY(
        SELECT instance_id FROM rappelx_actions
        WHERE status IN ('lost', 'overdue') AND version = ANY($1::text[])
        LIMIT $2
    )) AS t(id)) AS w
    CROSS JOIN LATERAL (
        SELECT * FROM rappelx_instances WHERE id = w.id LIMIT 1 FOR UPDATE SKIP LOCKED
    ) AS i
    WHERE i.status = 'running'
)
SELECT 'instance' AS kind, *, NULL::float8 AS next_due FROM pending
UNION ALL SELECT 'instance', *, NULL FROM cancelling
UNION ALL SELECT 'instance', *, NULL FROM timed
UNION ALL SELECT 'instance', *, NULL FROM stranded
UNION ALL
SELECT 'next', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       EXTRACT(EPOCH FROM min(due_at) - now())::float8
FROM rappelx_timers
WHERE due_at > now() AND version = ANY($1::text[]);

-- name: take_due_timers
-- Remove and return the due timers of instances this transaction has locked.
-- $1: ids uuid[]
DELETE FROM rappelx_timers
WHERE instance_id = ANY($1::uuid[]) AND due_at <= now()
RETURNING instance_id, timer_id, due_at;

-- name: take_lost_actions
-- Mark as failed the lost and overdue actions of instances this transaction has locked;
-- `was` says which they were.
-- $1: ids uuid[]
WITH stranded AS (
    SELECT instance_id, action_id, attempt, status AS was
    FROM rappelx_actions
    WHERE instance_id = ANY($1::uuid[]) AND status IN ('lost', 'overdue')
)
UPDATE rappelx_actions AS a
SET status = 'failed', finished_at = now()
FROM stranded AS s
WHERE a.instance_id = s.instance_id AND a.action_id = s.action_id AND a.attempt = s.attempt
RETURNING a.instance_id, a.action_id, a.attempt, a.name, a.timeout, a.infra_retries, s.was;

-- name: lock_and_record
-- Lock unfinished instances by id and store what the workers reported for their leases
-- that are still current (a result of a reclaimed lease is dropped). An infrastructure
-- failure (the worker died) puts the attempt back without counting it, up to the cap
-- $7, then fails it. Returns the locked instances (kind 'instance'; `state` is NULL when
-- it is still at the seq the caller has cached, `input` unless pending) and the
-- recorded results (kind 'result', by lease id with the attempt's new status).
-- Every row is reached by an index probe per id, so the cost follows the batch, not
-- the tables. Instances are locked in the order of $1, which the caller sorts, so
-- concurrent batches cannot deadlock; all of them before any action row.
-- $1: instance ids uuid[] (sorted), $2: lease ids bigint[], $3: ok bool[],
-- $4: encoded value or error bytea[], $5: durations float8[], $6: infra failure bool[],
-- $7: infra retry cap, $8: the seq each instance's cached state is at bigint[] (-1: none)
WITH locked AS (
    SELECT i.id, i.workflow, i.version, i.status, i.cancel_requested, i.seq,
           CASE WHEN i.seq = u.cached_seq THEN NULL ELSE i.state END AS state,
           CASE WHEN i.status = 'pending' THEN i.input END AS input
    FROM unnest($1::uuid[], $8::bigint[]) AS u(id, cached_seq)
    CROSS JOIN LATERAL (
        SELECT id, workflow, version, status, cancel_requested, seq, state, input
        FROM rappelx_instances
        WHERE id = u.id
        LIMIT 1
        FOR UPDATE
    ) AS i
    WHERE i.status IN ('pending', 'running')
), current_leases AS (
    SELECT r.lease_id, r.ok, r.payload, r.duration, r.infra,
           a.tid, a.instance_id, a.action_id, a.attempt
    FROM unnest($2::bigint[], $3::bool[], $4::bytea[], $5::float8[], $6::bool[])
        AS r(lease_id, ok, payload, duration, infra)
    CROSS JOIN LATERAL (
        SELECT ctid AS tid, instance_id, action_id, attempt
        FROM rappelx_actions
        WHERE lease_id = r.lease_id AND status = 'running'
        FOR UPDATE
    ) AS a
    -- Evaluated once, first: the instance locks come before any action row lock. A
    -- running action always belongs to an unfinished instance, so its is among them.
    WHERE (SELECT count(*) FROM locked) >= 0
), recorded AS (
    UPDATE rappelx_actions AS a
    SET status = CASE
            WHEN NOT r.infra THEN CASE WHEN r.ok THEN 'completed' ELSE 'failed' END
            WHEN a.infra_retries + 1 >= $7 THEN 'failed'
            ELSE 'ready' END,
        result = CASE WHEN r.infra THEN NULL ELSE r.payload END,
        duration = r.duration,
        finished_at = CASE WHEN r.infra AND a.infra_retries + 1 < $7 THEN NULL
                           ELSE now() END,
        infra_retries = a.infra_retries + (CASE WHEN r.infra THEN 1 ELSE 0 END),
        ready_at = now(),
        lease_id = CASE WHEN r.infra THEN NULL ELSE a.lease_id END,
        lease_owner = CASE WHEN r.infra THEN NULL ELSE a.lease_owner END,
        deadline = NULL
    FROM current_leases AS r
    -- The row locked above, by ctid: no plan can join the batch with the table.
    WHERE a.ctid = r.tid
    RETURNING r.lease_id, a.instance_id, a.action_id, a.attempt, a.status, a.queue,
        a.infra_retries
)
SELECT 'instance' AS kind, id, workflow, version, status, state, input, cancel_requested,
       seq, NULL::bigint AS lease_id, NULL::integer AS action_id,
       NULL::integer AS attempt, NULL::text AS queue, NULL::integer AS infra_retries
FROM locked
UNION ALL
SELECT 'result', instance_id, NULL, NULL, status, NULL, NULL, NULL, NULL,
       lease_id, action_id, attempt, queue, infra_retries
FROM recorded;

-- name: instance_states
-- The stored states of instances this transaction has locked.
-- $1: ids uuid[]
SELECT id, state FROM rappelx_instances WHERE id = ANY($1::uuid[]);

-- name: state_chunks
-- Every chunk of the logs of the given instances' states (see 0004_state_logs.sql),
-- each instance's found by a probe of the key.
-- $1: ids uuid[]
SELECT l.instance_id, l.log_id, l.start, l.items
FROM unnest($1::uuid[]) AS u(id)
CROSS JOIN LATERAL (
    SELECT instance_id, log_id, start, items FROM rappelx_state_logs WHERE instance_id = u.id
) AS l;

-- name: apply_steps
-- Write one batch of engine steps for instances this transaction has locked: new
-- instance states, newly dispatched actions (those flagged in $15 are leased at once
-- to $20, saving a claim round trip), new timers; finished instances lose their
-- outstanding actions and timers. Notifies dispatchers of ready queues and waiters of
-- finished instances. Returns the leases taken, as parallel arrays.
-- $1: instance ids uuid[], $2: statuses text[], $3: states bytea[], $4: results bytea[],
-- $5: errors bytea[], $6: cancellation delivered bool[],
-- $7: action instance ids uuid[], $8: action ids int[], $9: attempts int[],
-- $10: action names text[], $11: queues text[], $12: versions text[],
-- $13: payloads bytea[], $14: timeouts float8[] (NULL: none), $15: lease now bool[],
-- $16: delays float8[],
-- $17: timer instance ids uuid[], $18: timer ids int[], $19: timer versions text[],
-- $20: owner uuid, $21: grace seconds, $22: timer delays float8[],
-- $23: finished instance ids uuid[], $24: queues to wake text[],
-- $25: finished notification payloads text[] (comma-separated ids),
-- $26: new log chunks' instance ids uuid[], $27: their log ids int[], $28: their
-- starts int[], $29: their items bytea[]
WITH instances AS (
    UPDATE rappelx_instances AS i
    SET status = u.status, state = u.state, result = u.result, error = u.error,
        cancel_requested = i.cancel_requested AND NOT u.cancel_seen,
        seq = i.seq + 1, updated_at = now(),
        finished_at = CASE WHEN u.status IN ('completed', 'failed', 'cancelled')
                           THEN now() END
    -- Each row found by a key probe and updated by ctid: a plan that joins the batch
    -- with the table any other way cannot be chosen (the rows are locked by this
    -- transaction, so the ctid read is current).
    FROM (
        SELECT u.*, p.tid
        FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::bytea[], $5::bytea[],
                    $6::bool[]) AS u(id, status, state, result, error, cancel_seen)
        CROSS JOIN LATERAL (SELECT ctid AS tid FROM rappelx_instances WHERE id = u.id) AS p
    ) AS u
    WHERE i.ctid = u.tid
), actions AS (
    INSERT INTO rappelx_actions (instance_id, action_id, attempt, name, queue, version,
                                 payload, timeout, ready_at, status, lease_id,
                                 lease_owner, started_at, deadline)
    SELECT n.instance_id, n.action_id, n.attempt, n.name, n.queue, n.version, n.payload,
           n.timeout, clock_timestamp() + make_interval(secs => n.delay),
           CASE WHEN n.lease THEN 'running' ELSE 'ready' END,
           CASE WHEN n.lease THEN nextval('rappelx_lease_ids') END,
           CASE WHEN n.lease THEN $20::uuid END,
           CASE WHEN n.lease THEN now() END,
           CASE WHEN n.lease THEN now() + make_interval(secs => n.timeout + $21) END
    FROM unnest($7::uuid[], $8::int[], $9::int[], $10::text[], $11::text[], $12::text[],
                $13::bytea[], $14::float8[], $15::bool[], $16::float8[])
        AS n(instance_id, action_id, attempt, name, queue, version, payload, timeout,
             lease, delay)
    RETURNING instance_id, action_id, attempt, lease_id
), timers AS (
    INSERT INTO rappelx_timers (instance_id, timer_id, version, due_at)
    -- From the clock, not the transaction's start: the engine computed the delay
    -- after this transaction began, and a durable sleep must not end early.
    SELECT t.instance_id, t.timer_id, t.version,
           clock_timestamp() + make_interval(secs => t.delay)
    FROM unnest($17::uuid[], $18::int[], $19::text[], $22::float8[])
        AS t(instance_id, timer_id, version, delay)
), dropped_actions AS (
    -- Guarded so that a batch that finishes nothing (the usual case) scans nothing.
    UPDATE rappelx_actions
    SET status = 'cancelled', finished_at = now(), lease_id = NULL, deadline = NULL
    WHERE cardinality($23::uuid[]) > 0 AND instance_id = ANY($23::uuid[])
      AND status IN ('ready', 'running', 'lost', 'overdue')
), dropped_timers AS (
    DELETE FROM rappelx_timers
    WHERE cardinality($23::uuid[]) > 0 AND instance_id = ANY($23::uuid[])
), chunks AS (
    INSERT INTO rappelx_state_logs (instance_id, log_id, start, items)
    SELECT * FROM unnest($26::uuid[], $27::int[], $28::int[], $29::bytea[])
), dropped_logs AS (
    DELETE FROM rappelx_state_logs
    WHERE cardinality($23::uuid[]) > 0 AND instance_id = ANY($23::uuid[])
)
SELECT
    (SELECT count(pg_notify('rappelx_actions', q)) FROM unnest($24::text[]) AS q) AS woken,
    (SELECT count(pg_notify('rappelx_done', p)) FROM unnest($25::text[]) AS p) AS told,
    (SELECT array_agg(lease_id) FROM actions WHERE lease_id IS NOT NULL) AS lease_ids,
    (SELECT array_agg(instance_id) FROM actions WHERE lease_id IS NOT NULL) AS lease_instances,
    (SELECT array_agg(action_id) FROM actions WHERE lease_id IS NOT NULL) AS lease_actions,
    (SELECT array_agg(attempt) FROM actions WHERE lease_id IS NOT NULL) AS lease_attempts;

-- name: apply_if_current
-- Write steps the caller took without holding locks (from states it had cached or
-- read), with the worker results and fired timers behind them, in one statement (one
-- round trip, one commit), for the instances that are still as the caller saw them:
-- at the seq it stepped from (the seq counts every transition) and with every
-- reported lease current. Those are locked (instances first, in the order of $1,
-- which the caller sorts; then their action rows) and written like apply_steps
-- writes; the others are left untouched, for the caller to apply under locks.
-- Actions, timers and reports name their instance by its position in $1 (from 1), so
-- that no step joins two of the batch's sets: each row is reached by an index or ctid
-- probe, or checked by an array subscript, and the cost follows the batch linearly
-- whatever plan is cached (a join of two sets estimated small was planned as a nested
-- loop over both, quadratic in the batch).
-- Returns the ids written and the leases taken, as parallel arrays.
-- $1: instance ids uuid[] (sorted), $2: statuses text[], $3: states bytea[],
-- $4: results bytea[], $5: errors bytea[], $6: the seqs they were cached at bigint[],
-- $7: results reported per instance int[],
-- $8: actions' instance positions int[], $9: action ids int[], $10: attempts int[],
-- $11: action names text[], $12: queues text[], $13: versions text[],
-- $14: payloads bytea[], $15: timeouts float8[] (NULL: none), $16: lease now bool[],
-- $17: delays float8[],
-- $18: timers' instance positions int[], $19: timer ids int[], $20: timer versions
-- text[], $21: timer delays float8[], $22: owner uuid, $23: grace seconds,
-- $24: queues to wake text[],
-- $25: reported lease ids bigint[], $26: their instance positions int[], $27: ok bool[],
-- $28: encoded value or error bytea[], $29: durations float8[],
-- $30: fired timers' instance positions int[], $31: their timer ids int[],
-- $32: new log chunks' instance positions int[], $33: their log ids int[],
-- $34: their starts int[], $35: their items bytea[]
WITH candidates AS (
    SELECT c.*,
           -- NULL unless the instance is still as the caller saw it.
           CASE WHEN p.seq = c.seq AND p.status IN ('pending', 'running') THEN p.tid END
               AS tid
    FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::bytea[], $5::bytea[],
                $6::bigint[], $7::int[]) WITH ORDINALITY
        AS c(id, status, state, result, error, seq, reports, k)
    LEFT JOIN LATERAL (
        SELECT ctid AS tid, seq, status FROM rappelx_instances
        WHERE id = c.id
        LIMIT 1
        FOR UPDATE
    ) AS p ON true
), locked AS (
    -- Whether each instance of $1, by position, is locked (still as the caller saw it).
    SELECT array_agg(tid IS NOT NULL ORDER BY k) AS at FROM candidates
), reported AS (
    SELECT r.*, a.tid, a.action_id, a.attempt
    FROM unnest($25::bigint[], $26::int[], $27::bool[], $28::bytea[], $29::float8[])
        AS r(lease_id, k, ok, payload, duration)
    -- Only the lease id inside (and LIMIT, so no condition is pushed in): the probe must
    -- be the lease index's, not a scan of the instance's whole history in the pkey.
    LEFT JOIN LATERAL (
        SELECT ctid AS tid, instance_id, action_id, attempt FROM rappelx_actions
        WHERE lease_id = r.lease_id AND status = 'running'
        LIMIT 1
        FOR UPDATE
    ) AS a ON a.instance_id = ($1::uuid[])[r.k]
    -- An initplan, evaluated before the first probe: every instance lock is taken
    -- before any action row lock. Reports of instances not locked probe nothing.
    WHERE ((SELECT at FROM locked))[r.k]
), stale AS (
    -- Positions of locked instances with a reported lease that is no longer current.
    SELECT coalesce(array_agg(DISTINCT k), '{}') AS at FROM reported WHERE tid IS NULL
), valid AS (
    SELECT c.*
    FROM candidates AS c
    WHERE c.tid IS NOT NULL AND NOT c.k = ANY((SELECT at FROM stale)::bigint[])
), written AS (
    -- Whether each instance of $1, by position, is written.
    SELECT array_agg(c.tid IS NOT NULL AND NOT c.k = ANY((SELECT at FROM stale)::bigint[])
                     ORDER BY c.k) AS at
    FROM candidates AS c
), instances AS (
    UPDATE rappelx_instances AS i
    SET status = v.status, state = v.state, result = v.result, error = v.error,
        seq = i.seq + 1, updated_at = now(),
        finished_at = CASE WHEN v.status IN ('completed', 'failed', 'cancelled')
                           THEN now() END
    FROM valid AS v
    WHERE i.ctid = v.tid
), recorded AS (
    UPDATE rappelx_actions AS a
    SET status = CASE WHEN r.ok THEN 'completed' ELSE 'failed' END,
        result = r.payload, duration = r.duration, finished_at = now(), ready_at = now(),
        deadline = NULL
    FROM reported AS r
    WHERE a.ctid = r.tid AND ((SELECT at FROM written))[r.k]
), actions AS (
    INSERT INTO rappelx_actions (instance_id, action_id, attempt, name, queue, version,
                                 payload, timeout, ready_at, status, lease_id,
                                 lease_owner, started_at, deadline)
    SELECT ($1::uuid[])[n.k], n.action_id, n.attempt, n.name, n.queue, n.version,
           n.payload, n.timeout, clock_timestamp() + make_interval(secs => n.delay),
           CASE WHEN n.lease THEN 'running' ELSE 'ready' END,
           CASE WHEN n.lease THEN nextval('rappelx_lease_ids') END,
           CASE WHEN n.lease THEN $22::uuid END,
           CASE WHEN n.lease THEN now() END,
           CASE WHEN n.lease THEN now() + make_interval(secs => n.timeout + $23) END
    FROM unnest($8::int[], $9::int[], $10::int[], $11::text[], $12::text[], $13::text[],
                $14::bytea[], $15::float8[], $16::bool[], $17::float8[])
        AS n(k, action_id, attempt, name, queue, version, payload, timeout, lease, delay)
    WHERE ((SELECT at FROM written))[n.k]
    RETURNING instance_id, action_id, attempt, lease_id
), timers AS (
    INSERT INTO rappelx_timers (instance_id, timer_id, version, due_at)
    SELECT ($1::uuid[])[t.k], t.timer_id, t.version,
           clock_timestamp() + make_interval(secs => t.delay)
    FROM unnest($18::int[], $19::int[], $20::text[], $21::float8[])
        AS t(k, timer_id, version, delay)
    WHERE ((SELECT at FROM written))[t.k]
), fired AS (
    -- Each fired timer found by a key probe, then deleted by ctid.
    DELETE FROM rappelx_timers
    WHERE ctid = ANY(ARRAY(
        SELECT p.tid
        FROM unnest($30::int[], $31::int[]) AS f(k, timer_id)
        CROSS JOIN LATERAL (
            SELECT ctid AS tid FROM rappelx_timers
            WHERE instance_id = ($1::uuid[])[f.k] AND timer_id = f.timer_id
        ) AS p
        WHERE ((SELECT at FROM written))[f.k]))
), finished AS (
    SELECT id, (row_number() OVER (ORDER BY id) - 1) / 200 AS chunk
    FROM valid WHERE status IN ('completed', 'failed', 'cancelled')
), done AS (
    SELECT coalesce(array_agg(id), '{}') AS ids FROM finished
), dropped_actions AS (
    -- Not the attempts recorded above: one statement must not update a row twice.
    -- Guarded and bounded by the finished ids: most batches finish nothing.
    UPDATE rappelx_actions
    SET status = 'cancelled', finished_at = now(), lease_id = NULL, deadline = NULL
    WHERE cardinality((SELECT ids FROM done)) > 0
      AND instance_id = ANY((SELECT ids FROM done)::uuid[])
      AND status IN ('ready', 'running', 'lost', 'overdue')
      AND (lease_id IS NULL OR lease_id NOT IN (SELECT lease_id FROM reported))
), dropped_timers AS (
    DELETE FROM rappelx_timers
    WHERE cardinality((SELECT ids FROM done)) > 0
      AND instance_id = ANY((SELECT ids FROM done)::uuid[])
), chunks AS (
    INSERT INTO rappelx_state_logs (instance_id, log_id, start, items)
    SELECT ($1::uuid[])[l.k], l.log_id, l.start, l.items
    FROM unnest($32::int[], $33::int[], $34::int[], $35::bytea[]) AS l(k, log_id, start, items)
    WHERE ((SELECT at FROM written))[l.k]
), dropped_logs AS (
    DELETE FROM rappelx_state_logs
    WHERE cardinality((SELECT ids FROM done)) > 0
      AND instance_id = ANY((SELECT ids FROM done)::uuid[])
)
SELECT
    (SELECT array_agg(id) FROM valid) AS applied,
    (SELECT count(pg_notify('rappelx_actions', q)) FROM unnest($24::text[]) AS q) AS woken,
    (SELECT count(pg_notify('rappelx_done', p))
     FROM (SELECT string_agg(id::text, ',') AS p FROM finished GROUP BY chunk) AS n) AS told,
    (SELECT array_agg(lease_id) FROM actions WHERE lease_id IS NOT NULL) AS lease_ids,
    (SELECT array_agg(instance_id) FROM actions WHERE lease_id IS NOT NULL) AS lease_instances,
    (SELECT array_agg(action_id) FROM actions WHERE lease_id IS NOT NULL) AS lease_actions,
    (SELECT array_agg(attempt) FROM actions WHERE lease_id IS NOT NULL) AS lease_attempts;

-- name: cancel_pending
-- Finish instances that were cancelled before they started.
-- $1: ids uuid[], $2: encoded error bytea
WITH target AS (
    SELECT i.tid
    FROM unnest($1::uuid[]) AS u(id)
    CROSS JOIN LATERAL (
        SELECT ctid AS tid FROM rappelx_instances WHERE id = u.id LIMIT 1 FOR UPDATE
    ) AS i
)
-- By ctid: the rows are locked by this transaction, so the ctids read are current.
UPDATE rappelx_instances AS i
SET status = 'cancelled', error = $2, cancel_requested = false, seq = i.seq + 1,
    updated_at = now(), finished_at = now()
FROM target AS t
WHERE i.ctid = t.tid AND i.status = 'pending';

-- name: unknown_versions
-- Unfinished instances pinned to a version that no live dispatcher has loaded.
-- (No parameters.)
SELECT i.workflow, i.version, count(*) AS instances, min(i.created_at) AS oldest
FROM rappelx_instances AS i
WHERE i.status IN ('pending', 'running')
  AND NOT EXISTS (
      SELECT 1 FROM rappelx_dispatchers AS d
      WHERE d.expires_at > now() AND i.version = ANY(d.versions))
GROUP BY i.workflow, i.version
ORDER BY i.workflow, i.version;

-- name: foreign_versions
-- Unfinished instances of the named workflows pinned to versions other than those given:
-- what a dispatcher leaves untouched because it has different code.
-- $1: workflow names text[], $2: versions text[]
SELECT workflow, version, count(*) AS instances
FROM rappelx_instances
WHERE status IN ('pending', 'running') AND workflow = ANY($1::text[])
  AND NOT version = ANY($2::text[])
GROUP BY workflow, version
ORDER BY workflow, version;

-- name: notify_ready
-- Wake the dispatchers of these queues (after putting actions back).
-- $1: queues text[]
SELECT count(pg_notify('rappelx_actions', q)) FROM unnest($1::text[]) AS q;

-- name: list_instances
-- The newest instances, optionally of one status, for `rappelx runs list`.
-- $1: status text (NULL: any), $2: limit
SELECT id, workflow, version, status, created_at, updated_at, finished_at
FROM rappelx_instances
WHERE $1::text IS NULL OR status = $1::text
ORDER BY created_at DESC, id
LIMIT $2;

-- name: instance_detail
-- One instance with its encoded input, result and error, for `rappelx runs show`.
-- $1: id uuid
SELECT id, workflow, version, status, input, result, error, cancel_requested, seq,
       created_at, updated_at, finished_at
FROM rappelx_instances
WHERE id = $1;

-- name: instance_actions
-- Every attempt of every action of one instance, in the order they were queued.
-- $1: id uuid
SELECT action_id, attempt, name, queue, status, infra_retries, created_at, started_at,
       finished_at, duration, result
FROM rappelx_actions
WHERE instance_id = $1
ORDER BY created_at, action_id, attempt;
