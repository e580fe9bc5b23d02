-- 0002: cheaper steps.

-- An instance row is rewritten at every step of its workflow; free room on its page
-- lets Postgres do that in place (a HOT update) without new index entries.
ALTER TABLE rappelx_instances SET (fillfactor = 70);

-- Running actions are looked up by lease id (rappelx_actions_lease); the few queries
-- that want one dispatcher's leases scan that index's running rows instead. One index
-- fewer to maintain per action, and no second index for the planner to pick wrongly.
DROP INDEX rappelx_actions_running;
