-- 0004: lists that only grow at the end are kept as logs beside the state.

-- A step rewrote an instance's whole state, so a loop that appends to a list paid at
-- every step for everything appended before. Such lists (see compiler/_appends.py) are
-- now left out of the state, which records their length; the items appended by each
-- step are one row here, written in the same statement as the state. Rows past a
-- state's recorded length cannot exist (chunks are only added, under the state's seq
-- check); rows of lists no longer in the state are deleted when the instance finishes.
CREATE TABLE rappelx_state_logs (
    instance_id uuid    NOT NULL,
    log_id      integer NOT NULL,
    start       integer NOT NULL,
    items       bytea   NOT NULL,
    PRIMARY KEY (instance_id, log_id, start),
    CONSTRAINT rappelx_state_logs_instance_fkey FOREIGN KEY (instance_id)
        REFERENCES rappelx_instances (id) ON DELETE CASCADE
);
