-- Communications after a rollback: the maintenance notice, the post-mortem, its reminders.

-- Set by `/rollback notice ID next YYYY-MM-DD`; shown in the notice when it is posted.
alter table incidents add column next_attempt date;
-- Set by "Mark post-mortem done" / `/rollback postmortem ID done`: reminders stop.
alter table incidents add column postmortem_done_at timestamptz;
alter table incidents add column postmortem_done_by text;

-- One maintenance notice per run and channel: the insert is the claim, so it never posts twice.
create table notices (
    id bigserial primary key,
    run_id bigint not null references runs (id),
    channel text not null,
    message_key text not null,  -- the outbox key of the posted notice (edited on re-post)
    posted_by text not null,
    posted_at timestamptz not null default now(),
    unique (run_id, channel)
);

-- One post-mortem document per incident; state 'creating' is the claim of the process making it.
create table postmortems (
    incident_id bigint primary key references incidents (id),
    run_id bigint references runs (id),
    state text not null default 'creating' check (state in ('creating', 'created', 'failed')),
    claimed_by text not null,
    claimed_at timestamptz not null default now(),
    kind text check (kind in ('canvas', 'file')),
    slack_id text,
    url text,
    path text,
    error text,
    created_at timestamptz
);
