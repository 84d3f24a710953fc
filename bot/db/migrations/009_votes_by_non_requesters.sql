-- A request is approved only with `approvals_required` votes by people who are not
-- requesters of its incident at the moment it is approved. Votes are refused from requesters
-- when they are cast (004); this also discounts a vote whose author became a requester
-- afterwards. The bot refuses to escalate while a request waits, so that only happens when
-- something else writes `incident_requesters`; the database holds the rule either way.
create or replace function approval_approved_with_votes() returns trigger language plpgsql as $$
begin
    if new.state = 'approved' and old.state is distinct from 'approved' and (
        (select count(*) from approval_votes v where v.approval_id = new.id
            and not exists (select 1 from incident_requesters r
                where r.incident_id = new.incident_id and r.user_id = v.user_id))
            < new.approvals_required
        or not exists (
            select 1 from approval_votes v where v.approval_id = new.id and v.user_id = new.decided_by
        )
    ) then
        raise exception 'approval % lacks the % distinct approvals by non-requesters it needs',
            new.id, new.approvals_required using errcode = 'check_violation';
    end if;
    return new;
end $$;
