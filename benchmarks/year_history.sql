-- A year of history for `benchmarks/year.py`: ${incidents} resolved incidents over the past
-- 365 days in the channels ${channels}, with what a real one leaves behind (seen after an e2e
-- rollback): 6 in 10 are CRITICAL and were rolled back (approval, vote, requester, deadlines,
-- run, 4 steps, 2 checks, data comparison, notice, post-mortem, 13 messages, 23 outbox rows,
-- 9 audit rows); the others are LOW, declared and resolved (2 audit rows, 2 messages). One
-- backup a day (2 steps, 2 artifacts, a manifest). Nothing is left pending: every deadline is
-- cancelled, every outbox row delivered, every post-mortem done, every after-run work done.
-- Run once on a freshly migrated database, before the bot starts.

create temp table plan on commit drop as
select g,
       (array[${channels}])[1 + g % ${channel_count}] as channel,
       g % 10 < 6 as rolled,
       now() - interval '365 days' + (g - 1) * (interval '365 days' / ${incidents}) as t,
       least(365, 1 + ((g - 1) * 365) / ${incidents}) as day,
       'UDEV0' || (g % 8) as declarer,
       'UOPS0' || (g % 5) as approver
from generate_series(1, ${incidents}) g;

insert into incidents (id, channel, severity, scenario, summary, state, declared_by,
                       declared_at, detected_at, resolved_at, resolution_note,
                       postmortem_done_at, postmortem_done_by)
select g, channel, case when rolled then 'critical' else 'low' end,
       case when rolled then 'database' end,
       'checkout errors after deploy ' || g, 'resolved', declarer, t,
       t - interval '5 minutes', t + interval '20 minutes', 'fixed forward',
       case when rolled then t + interval '2 days' end,
       case when rolled then declarer end
from plan order by g;

insert into incident_requesters (incident_id, user_id, part, at)
select g, declarer, 'declared', t from plan;

-- One backup a day, at midnight of that day (before the incidents of the day).
insert into runs (id, kind, channel, state, requested_by, ts, next_step, total_steps,
                  created_at, started_at, ended_at, lease_until, aftercare_claimed_at,
                  aftercare_done_at)
select ${incidents} + d, 'backup', 'CBBACKUPS', 'succeeded', 'UOPS00',
       to_char(s, 'YYYYMMDD_HH24MISS'), 2, 2, s, s, s + interval '40 seconds',
       s + interval '70 seconds', s + interval '40 seconds', s + interval '41 seconds'
from generate_series(1, 365) d,
     lateral (select date_trunc('day', now() - interval '365 days') + (d - 1) * interval '1 day'
              as s) b
order by d;

insert into step_results (run_id, step_index, name, attempt, status, started_at, ended_at,
                          exit_code, output_tail)
select r.id, i, (array['Dump database', 'Copy uploads'])[i + 1], 1, 'succeeded',
       r.started_at + i * interval '20 seconds', r.started_at + (i + 1) * interval '20 seconds',
       0, 'pg_dump: dumping contents of table "public.orders"' || repeat(E'\nok', 8)
from runs r, generate_series(0, 1) i where r.kind = 'backup' order by r.id, i;

insert into artifacts (run_id, name, kind, path, size, sha256, workdir, recorded_at, mtime)
select r.id, a.name, 'file', '/var/backups/shop/' || r.ts || '/' || a.file,
       a.size, md5(r.ts || a.name) || md5(a.name || r.ts), '/var/backups/shop',
       r.ended_at, extract(epoch from r.ended_at)
from runs r,
     (values ('db_dump', 'shop.sql', 1073741824), ('uploads', 'uploads.tar', 52428800))
         a (name, file, size)
where r.kind = 'backup' order by r.id, a.name;

insert into backup_manifests (run_id, database, fingerprint, tables, recorded_at)
select id, 'shop', md5(ts),
       '[{"name": "orders", "rows": 2400000, "columns": [["id", "bigint"]],
          "fingerprint": "f"}, {"name": "customers", "rows": 300000,
          "columns": [["id", "bigint"]], "fingerprint": "c"}]'::jsonb,
       ended_at
from runs where kind = 'backup';

insert into approvals (id, incident_id, scenario, state, reason, requested_at, expires_at,
                       decided_by, decided_at, approvals_required, backup_run_id)
select g, g, 'database', 'approved', 'critical', t + interval '10 seconds',
       t + interval '30 minutes 10 seconds', approver, t + interval '3 minutes', 1,
       ${incidents} + day
from plan where rolled order by g;

insert into approval_votes (approval_id, user_id, at)
select g, approver, t + interval '3 minutes' from plan where rolled;

insert into deadlines (incident_id, kind, ref_id, due_at, cancelled_at)
select g, k.kind, case when k.kind = 'approval_expiry' then g end, t + k.due, t + k.cancelled
from plan,
     (values ('approval_expiry', interval '30 minutes', interval '3 minutes'),
             ('postmortem_reminder', interval '1 day 20 minutes', interval '2 days')) k
         (kind, due, cancelled)
where rolled order by g, k.kind;

insert into runs (id, kind, incident_id, approval_id, channel, scenario, state, requested_by,
                  ts, next_step, total_steps, lease_until, created_at, started_at, ended_at,
                  verification_passed, backup_run_id, aftercare_claimed_at, aftercare_done_at)
select g, 'rollback', g, g, channel, 'database', 'succeeded', approver,
       to_char(t, 'YYYYMMDD_HH24MISS'), 4, 4, t + interval '5 minutes 30 seconds',
       t + interval '3 minutes', t + interval '3 minutes 1 second', t + interval '5 minutes 1 second',
       true, ${incidents} + day, t + interval '5 minutes 2 seconds', t + interval '5 minutes 3 seconds'
from plan where rolled order by g;

insert into step_results (run_id, step_index, name, attempt, status, started_at, ended_at,
                          exit_code, output_tail)
select g, i,
       (array['Stop the shop', 'Restore database', 'Restore uploads', 'Start the shop'])[i + 1],
       1, 'succeeded', t + interval '3 minutes 1 second' + i * interval '30 seconds',
       t + interval '3 minutes 1 second' + (i + 1) * interval '30 seconds', 0,
       'SET' || repeat(E'\nCOPY 2400', 12) || E'\nALTER TABLE'
from plan, generate_series(0, 3) i where rolled order by g, i;

insert into check_results (run_id, name, kind, passed, detail, started_at, ended_at)
select g, c.name, c.kind, true, c.detail, t + interval '5 minutes', t + interval '5 minutes 1 second'
from plan,
     (values ('shop answers', 'http', 'HTTP 200 from /health'),
             ('tables match the backup', 'manifest', 'every table matches')) c (name, kind, detail)
where rolled order by g, c.name;

insert into data_comparisons (run_id, failed_database, restored_database, discarded_rows,
                              result, compared_at)
select g, 'shop_failed_' || g, 'shop', g % 7, '{"tables": []}'::jsonb,
       t + interval '5 minutes 1 second'
from plan where rolled;

-- The thread: root, approval request, progress, a message per step, five notes; a notice.
create temp table plan_messages on commit drop as
select p.g, p.t, p.channel, k.key, k.thread, k.ord, k.posts, k.updates
from plan p,
     lateral (values
         ('RB-' || p.g || '/root', null, 0, 1, case when p.rolled then 5 else 1 end),
         ('RB-' || p.g || '/approval/' || p.g, 'RB-' || p.g || '/root', 1, 1, 1),
         ('run/' || p.g || '/progress', 'RB-' || p.g || '/root', 2, 1, 2),
         ('run/' || p.g || '/step/0/1', 'RB-' || p.g || '/root', 3, 1, 1),
         ('run/' || p.g || '/step/1/1', 'RB-' || p.g || '/root', 4, 1, 1),
         ('run/' || p.g || '/step/2/1', 'RB-' || p.g || '/root', 5, 1, 1),
         ('run/' || p.g || '/step/3/1', 'RB-' || p.g || '/root', 6, 1, 1),
         ('m/' || md5(p.g || 'approved'), 'RB-' || p.g || '/root', 7, 1, 0),
         ('m/' || md5(p.g || 'finished'), 'RB-' || p.g || '/root', 8, 1, 0),
         ('m/' || md5(p.g || 'notice'), 'RB-' || p.g || '/root', 9, 1, 0),
         ('m/' || md5(p.g || 'resolved'), 'RB-' || p.g || '/root', 10, 1, 0),
         ('m/' || md5(p.g || 'postmortem'), 'RB-' || p.g || '/root', 11, 1, 0),
         ('RB-' || p.g || '/notice/' || p.g || '/CNOTICE01', null, 12, 1, 0)
     ) k (key, thread, ord, posts, updates)
where p.rolled or k.ord in (0, 10);

insert into messages (key, channel, thread_key, ts, posted_at)
select key, case when ord = 12 then 'CNOTICE01' else channel end, thread,
       extract(epoch from t)::bigint || '.' || lpad((g % 1000000)::text, 6, '0') || ord,
       t + ord * interval '2 seconds'
from plan_messages order by thread nulls first, g, ord;

insert into outbox (message_key, channel, op, payload, created_at, not_before, attempts, done_at,
                    outcome)
select key, case when ord = 12 then 'CNOTICE01' else channel end, case when n = 0 then 'post' else 'update' end,
       jsonb_build_object(
           'text', 'RB-' || g || ' message ' || ord || ' version ' || n,
           'blocks', jsonb_build_array(jsonb_build_object(
               'type', 'section',
               'text', jsonb_build_object('type', 'mrkdwn',
                   'text', '*RB-' || g || '* · CRITICAL · ' || repeat('checkout errors ', 8))))),
       t + ord * interval '2 seconds' + n * interval '1 minute',
       t + ord * interval '2 seconds' + n * interval '1 minute', 1,
       t + ord * interval '2 seconds' + n * interval '1 minute' + interval '1 second', 'sent'
from plan_messages, lateral generate_series(0, posts + updates - 1) n
order by g, ord, n;

insert into notices (run_id, channel, message_key, posted_by, posted_at)
select g, 'CNOTICE01', 'RB-' || g || '/notice/' || g || '/CNOTICE01', 'bot',
       t + interval '5 minutes 2 seconds'
from plan where rolled order by g;

insert into postmortems (incident_id, run_id, state, claimed_by, claimed_at, kind, slack_id,
                         url, path, created_at)
select g, g, 'created', 'bot-a', t + interval '20 minutes', 'canvas', 'F' || lpad(g::text, 8, '0'),
       'https://example.slack.com/docs/T0001/F' || lpad(g::text, 8, '0'),
       '/var/lib/rollback-bot/postmortems/RB-' || g || '.md', t + interval '20 minutes'
from plan where rolled order by g;

-- The audit log, in the order things happened.
insert into events (incident_id, run_id, at, actor, kind, from_state, to_state, detail)
select g, e.run_id, t + e.after, e.actor, e.kind, e.from_state, e.to_state, e.detail
from plan p,
     lateral (values
         (0, null::bigint, interval '0', p.declarer, 'declare', null, 'open',
          jsonb_build_object('severity', case when p.rolled then 'critical' else 'low' end,
                             'scenario', case when p.rolled then 'database' end)),
         (1, null, interval '10 seconds', p.declarer, 'request_approval', 'open',
          'awaiting_approval', jsonb_build_object('reason', 'critical', 'scenario', 'database',
                                                  'approval_id', p.g)),
         (2, null, interval '3 minutes', p.approver, 'approve', 'awaiting_approval',
          'rollback_queued', jsonb_build_object('approval_id', p.g)),
         (3, null, interval '3 minutes 1 second', 'bot', 'start_run', 'rollback_queued',
          'rolling_back', jsonb_build_object('run_id', p.g)),
         (4, null, interval '5 minutes 1 second', 'bot', 'run_succeeded', 'rolling_back',
          'rolled_back', jsonb_build_object('state', 'succeeded', 'run_id', p.g,
                                            'verified', true)),
         (5, p.g, interval '5 minutes 2 seconds', 'bot', 'notice_posted', null, null,
          '{"posted": ["CNOTICE01"], "updated": []}'::jsonb),
         (6, null, interval '20 minutes', p.declarer, 'resolve',
          case when p.rolled then 'rolled_back' else 'open' end, 'resolved',
          '{"note": "fixed forward"}'::jsonb),
         (7, p.g, interval '20 minutes 1 second', 'bot', 'postmortem_created', null, null,
          jsonb_build_object('kind', 'canvas', 'slack_id', 'F' || lpad(p.g::text, 8, '0'))),
         (8, null, interval '2 days', p.declarer, 'postmortem_done', null, null, '{}'::jsonb)
     ) e (ord, run_id, after, actor, kind, from_state, to_state, detail)
where p.rolled or e.ord in (0, 6)
order by g, e.ord;

select setval(pg_get_serial_sequence('incidents', 'id'), ${incidents});
select setval(pg_get_serial_sequence('approvals', 'id'), ${incidents});
select setval(pg_get_serial_sequence('runs', 'id'), ${incidents} + 365);
