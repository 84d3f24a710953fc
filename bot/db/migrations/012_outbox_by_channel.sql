-- The sender's queries, by channel and by message, without reading every owed row.
-- Before, each delivery's "oldest owed row of this channel" joined every owed row of every
-- channel to `messages` and checked each against every older one: with 2,000 owed rows (a
-- channel Slack is rate-limiting) that was 13 ms of database CPU per message delivered, and
-- the look for channels with due messages another 0.8 ms, after every commit that owed one.

-- A message's channel never changes; the outbox keeps a copy so its indexes can lead with it.
alter table outbox add column channel text;
update outbox o set channel = m.channel from messages m where m.key = o.message_key;
alter table outbox alter column channel set not null;

-- A channel's owed rows, oldest first: its head, and (skipping from channel to channel) which
-- channels owe anything at all.
create index outbox_pending_by_channel on outbox (channel, id) where done_at is null;

-- A message's owed rows: the newest content to send, and the rows that sending it closes.
-- Its predicate says `op is not null` (always true; repeated by those two queries) so that
-- the by-channel queries can't use it: with statistics taken while nothing was owed, the
-- planner thinks every index on owed rows equally cheap, and this one would have them read
-- every owed row of every channel, the very cost this migration removes.
create index outbox_pending_by_message on outbox (message_key, id)
    where done_at is null and op is not null;

-- No longer used by the sender, and harmful for the same reason (the planner picked it, and
-- sorted every owed row, for `_DUE_CHANNELS`). `owed_count` reads outbox_pending_by_channel.
drop index outbox_pending;

-- A deploy without downtime runs the previous release beside this one for a while: its
-- processes owe messages without `channel`. Fill it in from the message for them (only
-- then: `when` keeps the trigger from running at all for this release's inserts), rather
-- than fail every state change they make until they are stopped.
create function outbox_fill_channel() returns trigger language plpgsql as $$
begin
    select channel into new.channel from messages where key = new.message_key;
    return new;
end
$$;

create trigger outbox_fill_channel before insert on outbox
    for each row when (new.channel is null) execute function outbox_fill_channel();
