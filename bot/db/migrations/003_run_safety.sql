-- A rollback restores from the backup that was current when it was approved, even on Retry.
alter table runs add column backup_run_id bigint references runs (id);

-- At most one backup in progress: two at once would write the same files.
create unique index runs_one_active_backup on runs (kind)
    where kind = 'backup' and state in ('queued', 'running', 'waiting', 'interrupted');

-- The notice and post-mortem after a run are owed work too: claimed, then marked done.
alter table runs add column aftercare_claimed_at timestamptz;
alter table runs add column aftercare_done_at timestamptz;
