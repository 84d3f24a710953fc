-- Incidents, their audit log, approvals, deadlines, runs, and the Slack messages the bot owes.

create table incidents (
    id bigserial primary key,
    channel text not null,
    severity text not null check (severity in ('critical', 'high', 'medium', 'low')),
    scenario text,
    summary text not null default '',
    state text not null,
    declared_by text not null,
    declared_at timestamptz not null default now(),
    detected_at timestamptz,
    resolved_at timestamptz,
    resolution_note text
);
create index incidents_open_by_channel on incidents (channel)
    where state not in ('resolved', 'cancelled');

-- The audit log: every transition, who made it, when, from which state to which.
create table events (
    id bigserial primary key,
    incident_id bigint references incidents (id),
    run_id bigint,
    at timestamptz not null default now(),
    actor text not null,
    kind text not null,
    from_state text,
    to_state text,
    detail jsonb not null default '{}'
);
create index events_by_incident on events (incident_id, id);

create table approvals (
    id bigserial primary key,
    incident_id bigint not null references incidents (id),
    scenario text not null,
    state text not null default 'pending',
    reason text not null,
    requested_at timestamptz not null default now(),
    expires_at timestamptz not null,
    decided_by text,
    decided_at timestamptz
);
create unique index approvals_one_pending on approvals (incident_id) where state = 'pending';

-- Anything that must happen at a time: fired by whichever process claims it first.
create table deadlines (
    id bigserial primary key,
    incident_id bigint references incidents (id),
    kind text not null,
    ref_id bigint,
    due_at timestamptz not null,
    fired_at timestamptz,
    fired_by text,
    cancelled_at timestamptz
);
create index deadlines_pending on deadlines (due_at) where fired_at is null and cancelled_at is null;

-- A backup or a rollback, executed by exactly one process at a time (the lease holder).
create table runs (
    id bigserial primary key,
    kind text not null check (kind in ('backup', 'rollback')),
    incident_id bigint references incidents (id),
    approval_id bigint unique references approvals (id),
    channel text not null,
    scenario text,
    state text not null default 'queued',
    requested_by text not null,
    ts text not null,
    next_step int not null default 0,
    total_steps int not null default 0,
    owner text,
    lease_until timestamptz,
    stop_requested_by text,
    controls_key text,
    created_at timestamptz not null default now(),
    started_at timestamptz,
    ended_at timestamptz,
    verification_passed boolean
);

create table step_results (
    id bigserial primary key,
    run_id bigint not null references runs (id),
    step_index int not null,
    name text not null,
    attempt int not null default 1,
    status text not null,
    started_at timestamptz not null,
    ended_at timestamptz,
    exit_code int,
    output_tail text not null default '',
    message text not null default ''
);
create index step_results_by_run on step_results (run_id, id);

create table check_results (
    id bigserial primary key,
    run_id bigint not null references runs (id),
    name text not null,
    kind text not null,
    passed boolean not null,
    detail text not null default '',
    started_at timestamptz not null,
    ended_at timestamptz not null
);

create table artifacts (
    id bigserial primary key,
    run_id bigint not null references runs (id),
    name text not null,
    kind text not null check (kind in ('file', 'value')),
    path text,
    value text,
    size bigint,
    sha256 text,
    workdir text not null,
    recorded_at timestamptz not null default now()
);

-- Slack messages by logical key ('RB-12/root'); ts is known once the post was delivered.
create table messages (
    key text primary key,
    channel text not null,
    thread_key text references messages (key),
    ts text,
    posted_at timestamptz
);

-- What the bot owes Slack: written in the transaction that causes it, delivered in order.
create table outbox (
    id bigserial primary key,
    message_key text not null references messages (key),
    op text not null check (op in ('post', 'update')),
    payload jsonb not null,
    created_at timestamptz not null default now(),
    not_before timestamptz not null default now(),
    attempts int not null default 0,
    last_error text,
    done_at timestamptz,
    outcome text
);
create index outbox_pending on outbox (id) where done_at is null;
