-- The two-person rule, in the database: who asked for a rollback may not approve it, and a
-- request is approved only once `approvals_required` distinct other people approved it.

-- Everyone who took part in asking for a rollback of an incident: its declarer, whoever
-- escalated it, whoever asked again after a rejection or expiry. None of them may approve.
create table incident_requesters (
    incident_id bigint not null references incidents (id),
    user_id text not null,
    part text not null check (part in ('declared', 'escalated', 'asked_again')),
    at timestamptz not null default now(),
    primary key (incident_id, user_id, part)
);
-- Incidents from before this migration: their declarers and escalators, from the audit log.
insert into incident_requesters (incident_id, user_id, part, at)
    select id, declared_by, 'declared', declared_at from incidents;
insert into incident_requesters (incident_id, user_id, part, at)
    select distinct on (incident_id, actor) incident_id, actor, 'escalated', at from events
    where kind = 'escalate' and incident_id is not null and actor <> 'bot'
    order by incident_id, actor, at;

-- How many distinct approvers this request needs (the policy when it was asked).
alter table approvals add column approvals_required int not null default 1
    check (approvals_required >= 1);

-- One row per person who approved a request: the primary key makes a second click a no-op.
create table approval_votes (
    approval_id bigint not null references approvals (id),
    user_id text not null,
    at timestamptz not null default now(),
    primary key (approval_id, user_id)
);

-- A requester's approval is refused by the database, whatever the code above it does.
create function approval_vote_not_by_requester() returns trigger language plpgsql as $$
begin
    if exists (
        select 1 from approvals a join incident_requesters r on r.incident_id = a.incident_id
        where a.id = new.approval_id and r.user_id = new.user_id
    ) then
        raise exception 'user % took part in requesting this rollback and may not approve it',
            new.user_id using errcode = 'check_violation';
    end if;
    return new;
end $$;
create trigger approval_votes_not_by_requester before insert or update on approval_votes
    for each row execute function approval_vote_not_by_requester();

-- A request becomes 'approved' only with enough distinct votes, the deciding one among them.
create function approval_approved_with_votes() returns trigger language plpgsql as $$
begin
    if new.state = 'approved' and old.state is distinct from 'approved' and (
        (select count(*) from approval_votes v where v.approval_id = new.id)
            < new.approvals_required
        or not exists (
            select 1 from approval_votes v where v.approval_id = new.id and v.user_id = new.decided_by
        )
    ) then
        raise exception 'approval % lacks the % distinct approvals it needs',
            new.id, new.approvals_required using errcode = 'check_violation';
    end if;
    return new;
end $$;
create trigger approvals_approved_with_votes before update on approvals
    for each row execute function approval_approved_with_votes();
