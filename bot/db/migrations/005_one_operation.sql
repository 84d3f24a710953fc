-- One operation at a time per project: a rollback or a backup is active from the moment it is
-- queued until it ends, including while it is stopped waiting for a person (a failed step
-- awaiting Retry / Skip / Abort, an interrupted run awaiting Resume / Abort). A run asked for
-- while another is active is 'held' behind it, and becomes 'queued' (in SQL, by whichever
-- process gets there first) once the project is free. One bot serves one project (one
-- runbook and one database), so the index covers every run of the table.
drop index if exists runs_one_active_backup;
create unique index runs_one_operation on runs ((true))
    where state in ('queued', 'running', 'waiting', 'interrupted');

-- The run a held run waits for (when it was held), so its thread can say which.
alter table runs add column waits_for bigint references runs (id);

-- Backups: at most one held at a time (asking twice while one waits adds nothing).
create unique index runs_one_held_backup on runs (kind) where kind = 'backup' and state = 'held';
