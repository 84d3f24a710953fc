-- Indexes for a bot with a year of history (benchmarks/year.py, 10,000 resolved incidents):
-- without them `/rollback history` and the Home tab scan every run and approval ever made
-- (EXPLAIN before and after in benchmarks/README.md). (006 was never used: migrations were
-- numbered per branch while 005 and 007 were written in parallel.)

-- A channel's incidents, newest first (`/rollback history` in a channel among several).
create index incidents_by_channel on incidents (channel, id);

-- An incident's runs, newest last: history's last rollback, the notice, the post-mortem.
create index runs_by_incident on runs (incident_id, id);

-- An incident's approval requests: history's first decision, the post-mortem's approvers.
create index approvals_by_incident on approvals (incident_id);

-- Runs not ended (the Home tab, one operation at a time): a handful among thousands.
create index runs_not_ended on runs (id)
    where state in ('held', 'queued', 'running', 'waiting', 'interrupted');

-- The newest completed backup (the Home tab, every approval request's restore point).
create index runs_completed_backups on runs (ended_at desc, id desc)
    where kind = 'backup' and state = 'succeeded';

-- A backup's artifacts and a run's checks, by run.
create index artifacts_by_run on artifacts (run_id, id);
create index check_results_by_run on check_results (run_id, id);
