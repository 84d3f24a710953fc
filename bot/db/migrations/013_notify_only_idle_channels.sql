-- NOTIFY takes a lock on the whole database cluster from the notifying transaction's commit
-- until that commit is flushed, so every transaction that owed a message committed one at a
-- time: 20 declares at once queued behind each other's WAL flush (9 writers: 2,800 declares/s
-- with the notification, 4,100 without). Notify only when it can matter: when the message
-- is the oldest its channel owes. Behind an older one a sender is already on its way: the
-- task delivering the channel goes on until the channel owes nothing, and a row Slack said to
-- wait for (not_before) is picked up by every process's poll (1 s), as is a message that
-- commits in the instant that task is finishing.
create or replace function outbox_owed_notify() returns trigger language plpgsql as $$
begin
    if exists (
        select 1 from owed n
        where not exists (
            select 1 from outbox o
            where o.channel = n.channel and o.done_at is null and o.id < n.id
        )
    ) then
        perform pg_notify('rollback_outbox', '');
    end if;
    return null;
end
$$;

drop trigger outbox_owed on outbox;
create trigger outbox_owed after insert on outbox referencing new table as owed
    for each statement execute function outbox_owed_notify();
