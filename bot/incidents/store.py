"""Every SQL statement about incidents, approvals, deadlines and the audit log."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg

from bot.lifecycle import CLOSED_STATES, Event, InvalidTransition, State, next_state
from bot.slack import blocks
from bot.slack.blocks import Unwritten
from bot.slack.owed import OwedPost

Record = asyncpg.Record
_OPEN = tuple(s.value for s in CLOSED_STATES)


# Where a new incident's first message shows the id and time the database gives it in the
# statement that declares it (`insert_incident` replaces them).
UNWRITTEN_ID = Unwritten("<rb:incident-id>")
UNWRITTEN_AT = Unwritten("<rb:declared-at>")


def unwritten_incident(
    *,
    channel: str,
    severity: str,
    scenario: str | None,
    summary: str,
    declared_by: str,
    detected_at: datetime | None,
) -> dict[str, Any]:
    """The row `insert_incident` will write, for rendering its first message before it exists:
    `id` and `declared_at` are marks, which the insert fills in with the database's."""
    return {
        "id": UNWRITTEN_ID,
        "channel": channel,
        "severity": severity,
        "scenario": scenario,
        "summary": summary,
        "state": next_state(None, Event.DECLARE).value,
        "declared_by": declared_by,
        "declared_at": UNWRITTEN_AT,
        "detected_at": detected_at,
    }


async def insert_incident(
    conn: asyncpg.Connection, incident: dict[str, Any], *, root: OwedPost
) -> Record:
    """Create the incident (from `unwritten_incident`) in its first state, with its `declare`
    audit row, its declarer recorded as the first of its requesters (the approval rule's "took
    part in asking"), and its thread's first message owed: `root`, rendered with the marks,
    gets the id (`nextval`) and time (`now()`, the transaction's) the row is given here.

    One statement, so atomic without a transaction, and one round trip: a declare is
    acknowledged only once committed, so each is waited for by the person who typed it.
    """
    return await conn.fetchrow(
        "with incident as ("
        " insert into incidents (channel, severity, scenario, summary, state, declared_by,"
        " detected_at) values ($1, $2, $3, $4, $5, $6, $7) returning *),"
        " audit as (insert into events (incident_id, actor, kind, to_state, detail, at)"
        " select id, $6, $8, $5, $9::jsonb, declared_at from incident),"
        " requester as (insert into incident_requesters (incident_id, user_id, part, at)"
        " select id, $6, 'declared', declared_at from incident where $6 <> 'bot'),"
        # The message's key and content, with the marks replaced by the row's id and time.
        " root as (select replace($10, $12, id::text) as key,"
        " replace(replace($11::text, $12, id::text), $13, "
        f"{blocks.slack_time_sql('declared_at')})::jsonb as payload from incident),"
        " owed_message as (insert into messages (key, channel, thread_key)"
        " select key, $1, null from root returning key),"
        " owed_post as (insert into outbox (message_key, channel, op, payload)"
        " select owed_message.key, $1, 'post', root.payload from owed_message, root)"
        " select * from incident",
        incident["channel"],
        incident["severity"],
        incident["scenario"],
        incident["summary"],
        incident["state"],
        incident["declared_by"],
        incident["detected_at"],
        str(Event.DECLARE),
        {"severity": incident["severity"], "scenario": incident["scenario"]},
        root.key,
        json.dumps(root.payload()),
        UNWRITTEN_ID,
        UNWRITTEN_AT,
    )


async def record_event(
    conn: asyncpg.Connection,
    *,
    incident_id: int | None,
    actor: str,
    kind: str,
    from_state: str | None = None,
    to_state: str | None = None,
    run_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> Record:
    """Append one row to the audit log."""
    return await conn.fetchrow(
        "insert into events (incident_id, run_id, actor, kind, from_state, to_state, detail)"
        " values ($1, $2, $3, $4, $5, $6, $7) returning *",
        incident_id,
        run_id,
        actor,
        str(kind),
        from_state and str(from_state),
        to_state and str(to_state),
        detail or {},
    )


async def lock_incident(conn: asyncpg.Connection, *, incident_id: int) -> Record | None:
    """The incident row, locked for this transaction (serialises changes across processes)."""
    return await conn.fetchrow("select * from incidents where id = $1 for update", incident_id)


async def get_incident(conn: asyncpg.Connection, *, incident_id: int) -> Record | None:
    """The incident row, or None."""
    return await conn.fetchrow("select * from incidents where id = $1", incident_id)


async def apply_transition(
    conn: asyncpg.Connection,
    *,
    incident: Record,
    event: Event,
    actor: str,
    detail: dict[str, Any] | None = None,
    **changes: Any,
) -> Record:
    """Move a locked incident by `event` (raises InvalidTransition), with its audit row."""
    old = State(incident["state"])
    new = next_state(old, event)
    columns = {"state": new.value, **changes}
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(columns, 2))
    updated = await conn.fetchrow(
        f"update incidents set {assignments} where id = $1 returning *",
        incident["id"],
        *columns.values(),
    )
    await record_event(
        conn,
        incident_id=incident["id"],
        actor=actor,
        kind=event,
        from_state=old,
        to_state=new,
        detail=detail,
    )
    return updated


async def open_incidents(conn: asyncpg.Connection, *, channel: str | None = None) -> list[Record]:
    """Incidents not resolved or cancelled, newest first; in one channel when given."""
    return await conn.fetch(
        "select * from incidents where state <> all($1::text[])"
        " and ($2::text is null or channel = $2) order by id desc",
        list(_OPEN),
        channel,
    )


async def with_latest_events(
    conn: asyncpg.Connection, *, incident_id: int | None, channel: str, limit: int = 8
) -> list[tuple[Record, list[Record]]]:
    """The incident `incident_id` (any channel), else `channel`'s open incidents newest first;
    each with its latest `limit` audit rows, oldest first. One query: `/rollback status`."""
    # Two texts rather than one with a CASE: each is a plain index lookup (by id; by channel).
    which, args = (
        ("i.id = $2", (incident_id,))
        if incident_id is not None
        else ("i.channel = $2 and i.state <> all($3::text[])", (channel, list(_OPEN)))
    )
    rows = await conn.fetch(
        "select i.*, e.at as event_at, e.actor as event_actor, e.kind as event_kind"
        " from incidents i left join lateral (select id, at, actor, kind from events"
        "  where incident_id = i.id order by id desc limit $1) e on true"
        f" where {which} order by i.id desc, e.id",
        limit,
        *args,
    )
    found: dict[int, tuple[Record, list[Record]]] = {}
    for row in rows:
        _, events = found.setdefault(row["id"], (row, []))
        if row["event_at"] is not None:
            events.append(row)
    return list(found.values())


async def recent_incidents(conn: asyncpg.Connection, *, limit: int = 10) -> list[Record]:
    """The latest incidents, newest first."""
    return await conn.fetch("select * from incidents order by id desc limit $1", limit)


async def insert_approval(
    conn: asyncpg.Connection,
    *,
    incident_id: int,
    scenario: str,
    reason: str,
    expires_after: float,
    approvals_required: int = 1,
) -> Record:
    """A pending approval request that expires `expires_after` seconds from now."""
    return await conn.fetchrow(
        "insert into approvals (incident_id, scenario, reason, expires_at, approvals_required)"
        " values ($1, $2, $3, now() + make_interval(secs => $4), $5) returning *",
        incident_id,
        scenario,
        reason,
        expires_after,
        approvals_required,
    )


async def get_approval(conn: asyncpg.Connection, *, approval_id: int) -> Record | None:
    """The approval row, or None."""
    return await conn.fetchrow("select * from approvals where id = $1", approval_id)


async def clicked_approval(conn: asyncpg.Connection, *, approval_id: int) -> Record | None:
    """The approval row, with its incident's `channel` (as `incident_channel`) and the id of
    that incident's pending request (`pending_id`, None if none): all a stale click's answer
    needs, in one query."""
    return await conn.fetchrow(
        "select a.*, i.channel as incident_channel, (select p.id from approvals p"
        "  where p.incident_id = a.incident_id and p.state = 'pending') as pending_id"
        " from approvals a join incidents i on i.id = a.incident_id where a.id = $1",
        approval_id,
    )


async def pending_approval(conn: asyncpg.Connection, *, incident_id: int) -> Record | None:
    """The incident's pending approval request, if any."""
    return await conn.fetchrow(
        "select * from approvals where incident_id = $1 and state = 'pending'", incident_id
    )


async def claim_approval(
    conn: asyncpg.Connection, *, approval_id: int, to_state: str, actor: str | None
) -> Record | None:
    """Decide a pending, unexpired request atomically; None when someone/something was first."""
    unexpired = "and expires_at > now()" if to_state in ("approved", "rejected") else ""
    return await conn.fetchrow(
        "update approvals set state = $2, decided_by = $3, decided_at = now()"
        f" where id = $1 and state = 'pending' {unexpired} returning *",
        approval_id,
        to_state,
        actor,
    )


async def insert_deadline(
    conn: asyncpg.Connection,
    *,
    incident_id: int,
    kind: str,
    due_in: float,
    ref_id: int | None = None,
) -> Record:
    """A deadline `due_in` seconds from now."""
    return await conn.fetchrow(
        "insert into deadlines (incident_id, kind, ref_id, due_at)"
        " values ($1, $2, $3, now() + make_interval(secs => $4)) returning *",
        incident_id,
        kind,
        ref_id,
        due_in,
    )


async def cancel_deadlines(conn: asyncpg.Connection, *, incident_id: int, kind: str) -> int:
    """Cancel the incident's pending deadlines of this kind; return how many."""
    result = await conn.execute(
        "update deadlines set cancelled_at = now() where incident_id = $1 and kind = $2"
        " and fired_at is null and cancelled_at is null",
        incident_id,
        kind,
    )
    return int(result.split()[-1])


async def pending_deadlines(conn: asyncpg.Connection) -> list[Record]:
    """Deadlines neither fired nor cancelled."""
    return await conn.fetch(
        "select * from deadlines where fired_at is null and cancelled_at is null order by due_at"
    )


async def claim_deadline(
    conn: asyncpg.Connection, *, deadline_id: int, owner: str
) -> Record | None:
    """Fire a due deadline at most once across processes: the UPDATE is the claim."""
    return await conn.fetchrow(
        "update deadlines set fired_at = now(), fired_by = $2 where id = $1 and fired_at is null"
        " and cancelled_at is null and due_at <= now() returning *",
        deadline_id,
        owner,
    )


async def insert_run(
    conn: asyncpg.Connection,
    *,
    kind: str,
    channel: str,
    requested_by: str,
    ts: str,
    total_steps: int,
    incident_id: int | None = None,
    approval_id: int | None = None,
    scenario: str | None = None,
    backup_run_id: int | None = None,
    state: str = "queued",
    waits_for: int | None = None,
) -> Record:
    """A queued (or held) run; approval_id is unique, so one approval never queues two runs.

    A 'queued' run is refused by the `runs_one_operation` index while another run is active.
    """
    return await conn.fetchrow(
        "insert into runs (kind, channel, requested_by, ts, total_steps, incident_id,"
        " approval_id, scenario, backup_run_id, state, waits_for)"
        " values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) returning *",
        kind,
        channel,
        requested_by,
        ts,
        total_steps,
        incident_id,
        approval_id,
        scenario,
        backup_run_id,
        state,
        waits_for,
    )


__all__ = ["InvalidTransition"]
