"""SQL of the two-person rule: requesters, approval votes, and the approving claim."""

from __future__ import annotations

import asyncpg

Record = asyncpg.Record


async def add_requester(
    conn: asyncpg.Connection, *, incident_id: int, user: str, part: str
) -> None:
    """Record that `user` took part in asking for this incident's rollback (not the bot)."""
    if user == "bot":
        return
    await conn.execute(
        "insert into incident_requesters (incident_id, user_id, part) values ($1, $2, $3)"
        " on conflict do nothing",
        incident_id,
        user,
        part,
    )


async def requester_parts(conn: asyncpg.Connection, *, incident_id: int, user: str) -> list[str]:
    """How `user` took part in asking (declared, escalated, asked_again); empty: not at all."""
    rows = await conn.fetch(
        "select part from incident_requesters where incident_id = $1 and user_id = $2"
        " order by at, part",
        incident_id,
        user,
    )
    return [r["part"] for r in rows]


async def add_vote(conn: asyncpg.Connection, *, approval_id: int, user: str) -> Record | None:
    """One approval by `user`, atomically: None unless the request is pending and unexpired,
    `user` is no requester and has not approved it yet (the trigger refuses requesters too)."""
    return await conn.fetchrow(
        "insert into approval_votes (approval_id, user_id)"
        " select a.id, $2 from approvals a where a.id = $1 and a.state = 'pending'"
        " and a.expires_at > now() and not exists (select 1 from incident_requesters r"
        " where r.incident_id = a.incident_id and r.user_id = $2)"
        " on conflict do nothing returning *",
        approval_id,
        user,
    )


async def votes(conn: asyncpg.Connection, *, approval_id: int) -> list[str]:
    """Who approved this request so far, in order."""
    rows = await conn.fetch(
        "select user_id from approval_votes where approval_id = $1 order by at, user_id",
        approval_id,
    )
    return [r["user_id"] for r in rows]


async def counted_votes(conn: asyncpg.Connection, *, approval_id: int) -> list[str]:
    """The approvals that count towards the request: by people who are no requesters now."""
    rows = await conn.fetch(
        "select v.user_id from approval_votes v join approvals a on a.id = v.approval_id"
        " where v.approval_id = $1 and not exists (select 1 from incident_requesters r"
        " where r.incident_id = a.incident_id and r.user_id = v.user_id)"
        " order by v.at, v.user_id",
        approval_id,
    )
    return [r["user_id"] for r in rows]


async def claim_if_enough(
    conn: asyncpg.Connection, *, approval_id: int, user: str
) -> Record | None:
    """Mark the request approved by `user` once it has enough votes by non-requesters (as
    the trigger of migration 009 demands); None when it hasn't."""
    return await conn.fetchrow(
        "update approvals a set state = 'approved', decided_by = $2, decided_at = now()"
        " where a.id = $1 and a.state = 'pending' and a.expires_at > now()"
        " and (select count(*) from approval_votes v where v.approval_id = a.id"
        " and not exists (select 1 from incident_requesters r"
        " where r.incident_id = a.incident_id and r.user_id = v.user_id))"
        " >= a.approvals_required returning *",
        approval_id,
        user,
    )


async def clear_votes(conn: asyncpg.Connection, *, approval_id: int) -> list[str]:
    """Withdraw every vote on a pending request (its restore point changed); who had voted."""
    rows = await conn.fetch(
        "delete from approval_votes v using approvals a"
        " where v.approval_id = $1 and a.id = v.approval_id and a.state = 'pending'"
        " returning v.user_id",
        approval_id,
    )
    return sorted(r["user_id"] for r in rows)
