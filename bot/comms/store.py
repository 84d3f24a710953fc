"""Every SQL statement about notices, post-mortems, reminders and checklist ticks."""

from __future__ import annotations

from datetime import date

import asyncpg

Record = asyncpg.Record
STALE_CLAIM = "10 minutes"  # a post-mortem claim older than this was lost with its process


async def latest_rollback(
    conn: asyncpg.Connection, *, incident_id: int, ended: bool = False
) -> Record | None:
    """The incident's latest rollback run (only an ended one when `ended`)."""
    return await conn.fetchrow(
        "select * from runs where incident_id = $1 and kind = 'rollback'"
        " and (not $2 or ended_at is not null) order by id desc limit 1",
        incident_id,
        ended,
    )


async def claim_notice(
    conn: asyncpg.Connection, *, run_id: int, channel: str, message_key: str, user: str
) -> bool:
    """Claim posting the notice of `run_id` in `channel`: False when it was already posted."""
    row = await conn.fetchrow(
        "insert into notices (run_id, channel, message_key, posted_by) values ($1, $2, $3, $4)"
        " on conflict (run_id, channel) do nothing returning id",
        run_id,
        channel,
        message_key,
        user,
    )
    return row is not None


async def notices(conn: asyncpg.Connection, *, run_id: int) -> list[Record]:
    """The notices posted for a run, in order."""
    return await conn.fetch("select * from notices where run_id = $1 order by id", run_id)


async def incident_notices(conn: asyncpg.Connection, *, incident_id: int) -> list[Record]:
    """Every notice posted for an incident's runs."""
    return await conn.fetch(
        "select n.* from notices n join runs r on r.id = n.run_id where r.incident_id = $1"
        " order by n.id",
        incident_id,
    )


async def delivered_notices(conn: asyncpg.Connection, *, incident_id: int) -> list[Record]:
    """The incident's notices that Slack accepted (their message has a ts)."""
    return await conn.fetch(
        "select n.* from notices n join runs r on r.id = n.run_id"
        " join messages m on m.key = n.message_key where r.incident_id = $1"
        " and m.ts is not null order by n.id",
        incident_id,
    )


async def set_next_attempt(conn: asyncpg.Connection, *, incident_id: int, when: date) -> None:
    """Remember the next attempt's date for the incident's notice."""
    await conn.execute("update incidents set next_attempt = $2 where id = $1", incident_id, when)


async def claim_postmortem(
    conn: asyncpg.Connection, *, incident_id: int, run_id: int | None, owner: str
) -> Record | None:
    """Claim creating the incident's post-mortem: None when it exists or is being made."""
    return await conn.fetchrow(
        "insert into postmortems (incident_id, run_id, claimed_by) values ($1, $2, $3)"
        " on conflict (incident_id) do update set state = 'creating', error = null,"
        " claimed_by = excluded.claimed_by, claimed_at = now(),"
        " run_id = coalesce(excluded.run_id, postmortems.run_id)"
        " where postmortems.state = 'failed' or (postmortems.state = 'creating'"
        f" and postmortems.claimed_at < now() - interval '{STALE_CLAIM}') returning *",
        incident_id,
        run_id,
        owner,
    )


async def get_postmortem(conn: asyncpg.Connection, *, incident_id: int) -> Record | None:
    """The incident's post-mortem row, or None."""
    return await conn.fetchrow("select * from postmortems where incident_id = $1", incident_id)


async def finish_postmortem(
    conn: asyncpg.Connection,
    *,
    incident_id: int,
    path: str,
    kind: str | None = None,
    slack_id: str | None = None,
    url: str | None = None,
    error: str | None = None,
) -> Record:
    """Record where the post-mortem went (or why Slack refused it)."""
    return await conn.fetchrow(
        "update postmortems set state = $2, kind = $3, slack_id = $4, url = $5, path = $6,"
        " error = $7, created_at = case when $2 = 'created' then now() end"
        " where incident_id = $1 returning *",
        incident_id,
        "failed" if error else "created",
        kind,
        slack_id,
        url,
        path,
        error,
    )


async def mark_postmortem_done(
    conn: asyncpg.Connection, *, incident_id: int, user: str
) -> Record | None:
    """Mark the post-mortem done once; None when it already was."""
    return await conn.fetchrow(
        "update incidents set postmortem_done_at = now(), postmortem_done_by = $2"
        " where id = $1 and postmortem_done_at is null returning *",
        incident_id,
        user,
    )


async def approvers(conn: asyncpg.Connection, *, incident_id: int) -> list[str]:
    """Who approved the incident's rollbacks, first first."""
    rows = await conn.fetch(
        "select distinct on (decided_by) decided_by, decided_at from approvals"
        " where incident_id = $1 and state = 'approved' order by decided_by, decided_at",
        incident_id,
    )
    return [r["decided_by"] for r in sorted(rows, key=lambda r: r["decided_at"])]


async def events(conn: asyncpg.Connection, *, incident_id: int) -> list[Record]:
    """The incident's whole audit log, oldest first."""
    return await conn.fetch("select * from events where incident_id = $1 order by id", incident_id)


async def incident_runs(conn: asyncpg.Connection, *, incident_id: int) -> list[Record]:
    """The incident's rollback runs, oldest first."""
    return await conn.fetch(
        "select * from runs where incident_id = $1 and kind = 'rollback' order by id", incident_id
    )


async def run_checks(conn: asyncpg.Connection, *, run_ids: list[int]) -> list[Record]:
    """Verification results of these runs, in order."""
    return await conn.fetch(
        "select * from check_results where run_id = any($1::bigint[]) order by id", run_ids
    )


async def run_steps(conn: asyncpg.Connection, *, run_ids: list[int]) -> list[Record]:
    """Step results of these runs, in order."""
    return await conn.fetch(
        "select * from step_results where run_id = any($1::bigint[]) order by id", run_ids
    )


async def root_ts(conn: asyncpg.Connection, *, key: str) -> str | None:
    """The Slack ts of a posted message, by its outbox key (None until delivered)."""
    return await conn.fetchval("select ts from messages where key = $1", key)


async def message_keys(conn: asyncpg.Connection, *, prefix: str) -> list[str]:
    """Outbox keys starting with `prefix` (e.g. an incident's reminder messages)."""
    rows = await conn.fetch(
        "select key from messages where starts_with(key, $1) order by key", prefix
    )
    return [r["key"] for r in rows]


async def checklist_ticks(
    conn: asyncpg.Connection, *, incident_id: int | None
) -> dict[tuple[str, str], str]:
    """Items ticked by hand: the incident's, plus the global pre-integration ones."""
    rows = await conn.fetch(
        "select actor, detail from events where kind = 'checklist_tick'"
        " and (incident_id = $1 or (incident_id is null and detail->>'phase' = 'pre'))"
        " order by id",
        incident_id,
    )
    return {(r["detail"]["phase"], r["detail"]["item"]): r["actor"] for r in rows}


async def rehearsal_passed(conn: asyncpg.Connection) -> bool:
    """True once any `/rollback rehearse` passed."""
    return await conn.fetchval(
        "select exists (select 1 from events where kind = 'rehearsal_passed')"
    )


async def history_rows(
    conn: asyncpg.Connection, *, limit: int, channel: str | None = None
) -> list[Record]:
    """Recent incidents (of one channel, when given) with their first decision and last run."""
    return await conn.fetch(
        "select i.*, (select min(a.decided_at) from approvals a where a.incident_id = i.id"
        "   and a.state in ('approved', 'rejected')) as decided_at,"
        " r.ended_at as run_ended_at, r.state as run_state, r.verification_passed"
        " from incidents i left join lateral (select ended_at, state, verification_passed"
        "   from runs where incident_id = i.id and kind = 'rollback' order by id desc limit 1)"
        " r on true where ($2::text is null or i.channel = $2) order by i.id desc limit $1",
        limit,
        channel,
    )


async def active_runs(conn: asyncpg.Connection) -> list[Record]:
    """Runs not ended: held, queued, running, or stopped waiting for a decision."""
    return await conn.fetch(
        "select * from runs where state in ('held', 'queued', 'running', 'waiting',"
        " 'interrupted')"
        " order by id"
    )
