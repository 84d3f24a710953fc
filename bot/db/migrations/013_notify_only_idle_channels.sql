-- NOTIFY takes a lock on the whole database cluster from the notifying transaction's commit
-- until that commit is flushed, so every transaction that owed a message committed one at a
-- time: 20 declares at once queued behind each other's WAL flush (9 writers: 2,800 declares/s
-- with the notification, 4,100 without). Notify only when it can matter: when the message
-- is the oldest its channel owes. Behind an older one a sender is already on its way: the
-- task delivering the channel goes on until the channel owes nothing, and a row Slack said to
-- wait for (not_before) is picked up by every process's poll (1 s), as is a message whose
-- commit lands between that task's last delivery and its last look. The check runs at commit.
create or replace function outbox_owed_notify() returns trigger language plpgsql as $$
begin
    -- Run at commit (deferred), not at the insert: a transaction still open when the older
    -- row's delivery ended, and the channel's delivery with it, must notify.
    if not exists (
        select 1 from outbox o
        where o.channel = new.channel and o.done_at is null and o.id < new.id
    ) then
        perform pg_notify('rollback_outbox', '');
    end if;
    return null;
end
$$;

drop trigger outbox_owed on outbox;
create constraint trigger outbox_owed after insert on outbox
    deferrable initially deferred for each row execute function outbox_owed_notify();
