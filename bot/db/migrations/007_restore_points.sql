-- Restore points made explicit: what each backup holds, which one an approval restores, and
-- what a database restore discarded.

-- The incidents open while a backup ran (set by the database itself, below): such a backup
-- may hold the failed state and is never chosen as a restore point without a person choosing.
alter table runs add column open_incidents bigint[] not null default '{}';

create function runs_note_open_incidents() returns trigger language plpgsql as $$
begin
    if new.kind = 'backup' then
        new.open_incidents := array(
            select distinct i from unnest(
                coalesce(new.open_incidents, '{}') || array(
                    select id from incidents where state not in ('resolved', 'cancelled')
                )
            ) as i order by i
        );
    end if;
    return new;
end
$$;

-- On insert (the backup was asked for) and on every state change (it ran, it ended).
create trigger runs_open_incidents before insert or update of state on runs
    for each row execute function runs_note_open_incidents();

-- A file artifact's modification time when it was recorded: listings compare size + mtime
-- (cheap); the sha256 is checked in full before any restore.
alter table artifacts add column mtime double precision;

-- What the database held when a backup ended: per table its exact row count and columns,
-- and a fingerprint (sha256) of the catalog description. One manifest per backup run.
create table backup_manifests (
    run_id bigint primary key references runs (id),
    database text not null,          -- the database's name (never its DSN: no password here)
    fingerprint text not null,
    tables jsonb not null,           -- [{"name", "rows", "columns": [[name, type], …], "fingerprint"}]
    recorded_at timestamptz not null default now()
);

-- The restore point an approval restores: pinned when the request is made (the default:
-- the newest completed backup taken while no incident was open), changed only by an approver
-- while the request is pending; the rollback run copies it when the request is approved.
alter table approvals add column backup_run_id bigint references runs (id);
alter table approvals add column backup_chosen_by text;   -- null: the bot's default choice

-- A pinned restore point is a completed backup (checked on every pin and change).
create function approvals_check_restore_point() returns trigger language plpgsql as $$
begin
    if new.backup_run_id is not null and not exists (
        select 1 from runs where id = new.backup_run_id and kind = 'backup' and state = 'succeeded'
    ) then
        raise exception 'restore point % is not a completed backup', new.backup_run_id
            using errcode = 'check_violation';
    end if;
    return new;
end
$$;

create trigger approvals_restore_point before insert or update of backup_run_id on approvals
    for each row execute function approvals_check_restore_point();

-- What a database restore discarded: the kept failed database compared with the restored
-- one, stored once per rollback run so the thread, the notice, the checklist and the
-- post-mortem say the same thing (also after a restart).
create table data_comparisons (
    run_id bigint primary key references runs (id),
    failed_database text not null,
    restored_database text not null,
    error text,                      -- set when the comparison could not be made
    discarded_rows bigint not null default 0,  -- rows only in the failed state, all tables
    result jsonb not null default '{}',
    compared_at timestamptz not null default now(),
    check (error is not null or result ? 'tables')
);
