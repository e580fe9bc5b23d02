-- The current rappelx schema, in one piece. The database is built from the numbered
-- files in migrations/; a test checks that both give the same catalog. Change both.

-- Every workflow version an instance was ever started with: its name, the IR hash and
-- the IR itself, so an instance stays readable after its code has changed.
CREATE TABLE rappelx_workflow_versions (
    name       text        NOT NULL,
    version    text        NOT NULL,
    ir         jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);

-- One row per workflow run. `state` is the engine's encoded state between steps;
-- `seq` counts committed transitions.
CREATE TABLE rappelx_instances (
    id               uuid        PRIMARY KEY,
    workflow         text        NOT NULL,
    version          text        NOT NULL,
    status           text        NOT NULL DEFAULT 'pending',
    input            bytea       NOT NULL,
    state            bytea,
    result           bytea,
    error            bytea,
    cancel_requested boolean     NOT NULL DEFAULT false,
    seq              bigint      NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    CONSTRAINT rappelx_instances_status_check
        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    CONSTRAINT rappelx_instances_version_fkey FOREIGN KEY (workflow, version)
        REFERENCES rappelx_workflow_versions (name, version)
) WITH (fillfactor = 70);  -- room for in-place (HOT) updates of the state at each step
CREATE INDEX rappelx_instances_pending ON rappelx_instances (version, created_at)
    WHERE status = 'pending';
CREATE INDEX rappelx_instances_cancel ON rappelx_instances (version)
    WHERE cancel_requested AND status IN ('pending', 'running');
CREATE INDEX rappelx_instances_status ON rappelx_instances (status, created_at);

-- One row per attempt of an action call. `lease_id` names one claim of the row: a
-- result is applied only while its lease is current, so a reclaimed attempt's late
-- result is dropped. `version` is the instance's, copied so claiming needs no join.
-- 'lost': lost its worker or dispatcher too often; 'overdue': ran past its deadline
-- (timeout plus grace) under a live dispatcher. Both wait for their instance to be told.
CREATE SEQUENCE rappelx_lease_ids;
CREATE TABLE rappelx_actions (
    instance_id   uuid             NOT NULL,
    action_id     integer          NOT NULL,
    attempt       integer          NOT NULL,
    name          text             NOT NULL,
    queue         text             NOT NULL,
    version       text             NOT NULL,
    payload       bytea            NOT NULL,
    timeout       double precision,
    status        text             NOT NULL DEFAULT 'ready',
    ready_at      timestamptz      NOT NULL DEFAULT now(),
    lease_id      bigint,
    lease_owner   uuid,
    deadline      timestamptz,
    infra_retries integer          NOT NULL DEFAULT 0,
    created_at    timestamptz      NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    duration      double precision,
    result        bytea,
    PRIMARY KEY (instance_id, action_id, attempt),
    CONSTRAINT rappelx_actions_instance_fkey FOREIGN KEY (instance_id)
        REFERENCES rappelx_instances (id) ON DELETE CASCADE,
    CONSTRAINT rappelx_actions_status_check
        CHECK (status IN ('ready', 'running', 'completed', 'failed', 'lost', 'overdue',
                          'cancelled'))
);
CREATE INDEX rappelx_actions_ready ON rappelx_actions (queue, ready_at)
    WHERE status = 'ready';
CREATE UNIQUE INDEX rappelx_actions_lease ON rappelx_actions (lease_id)
    WHERE status = 'running';
CREATE INDEX rappelx_actions_lost ON rappelx_actions (instance_id)
    WHERE status IN ('lost', 'overdue');

-- Values over about 2 kB are compressed with lz4 where the server has it (a state is
-- rewritten at every step; lz4 costs a fraction of pglz's time).
DO $$
BEGIN
    ALTER TABLE rappelx_instances
        ALTER COLUMN input SET COMPRESSION lz4,
        ALTER COLUMN state SET COMPRESSION lz4,
        ALTER COLUMN result SET COMPRESSION lz4,
        ALTER COLUMN error SET COMPRESSION lz4;
    ALTER TABLE rappelx_actions
        ALTER COLUMN payload SET COMPRESSION lz4,
        ALTER COLUMN result SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    NULL;
END $$;

-- Durable sleeps: a sleeping instance is only this row.
CREATE TABLE rappelx_timers (
    instance_id uuid        NOT NULL,
    timer_id    integer     NOT NULL,
    version     text        NOT NULL,
    due_at      timestamptz NOT NULL,
    PRIMARY KEY (instance_id, timer_id),
    CONSTRAINT rappelx_timers_instance_fkey FOREIGN KEY (instance_id)
        REFERENCES rappelx_instances (id) ON DELETE CASCADE
);
CREATE INDEX rappelx_timers_due ON rappelx_timers (due_at);

-- Lists that only grow at the end, kept apart from the state (which records their
-- length): one row per step that appended to one, with the items it appended.
CREATE TABLE rappelx_state_logs (
    instance_id uuid    NOT NULL,
    log_id      integer NOT NULL,
    start       integer NOT NULL,
    items       bytea   NOT NULL,
    PRIMARY KEY (instance_id, log_id, start),
    CONSTRAINT rappelx_state_logs_instance_fkey FOREIGN KEY (instance_id)
        REFERENCES rappelx_instances (id) ON DELETE CASCADE
);

-- Live dispatchers. A running action whose owner's heartbeat has expired is reclaimed.
CREATE TABLE rappelx_dispatchers (
    id           uuid        PRIMARY KEY,
    hostname     text        NOT NULL,
    pid          integer     NOT NULL,
    queues       text[]      NOT NULL,
    versions     text[]      NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
