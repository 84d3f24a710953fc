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
create index outbox_pending_by_message on outbox (message_key, id) where done_at is null;

-- Owed rows in id order across all channels: nothing asks for that any more.
drop index outbox_pending;
