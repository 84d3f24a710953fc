"""Every SQL statement about runs: claims, leases, step and check results, backup artifacts."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import asyncpg

from actions.artifacts import RecordedArtifact
from actions.runner import KILL_GRACE
from bot.incidents import store

Record = asyncpg.Record


async def get_run(conn: asyncpg.Connection, *, run_id: int) -> Record | None:
    """The run row, or None."""
    return await conn.fetchrow("select * from runs where id = $1", run_id)


async def claim_run(
    conn: asyncpg.Connection, *, run_id: int, owner: str, lease: float
) -> Record | None:
    """Take a queued run for this process: the UPDATE is the claim, so only one process wins."""
    return await conn.fetchrow(
        "update runs set state = 'running', owner = $2,"
        " lease_until = now() + make_interval(secs => $3), started_at = coalesce(started_at, now())"
        " where id = $1 and state = 'queued' returning *",
        run_id,
        owner,
        lease,
    )


async def renew_lease(conn: asyncpg.Connection, *, run_id: int, owner: str, lease: float) -> bool:
    """Extend our lease; False when the run is no longer ours."""
    result = await conn.execute(
        "update runs set lease_until = now() + make_interval(secs => $3)"
        " where id = $1 and owner = $2 and state = 'running'",
        run_id,
        owner,
        lease,
    )
    return result.endswith("1")


async def queued_runs(conn: asyncpg.Connection) -> list[Record]:
    """Runs waiting for a process to take them."""
    return await conn.fetch("select id from runs where state = 'queued' order by id")


ACTIVE = ("queued", "running", "waiting", "interrupted")  # hold the project (005 index)


async def stale_runs(conn: asyncpg.Connection, *, grace: float) -> list[int]:
    """Running runs whose lease lapsed more than `grace` seconds ago: their owner is gone."""
    rows = await conn.fetch(
        "select id from runs where state = 'running'"
        " and lease_until < now() - make_interval(secs => $1) order by id",
        grace,
    )
    return [r["id"] for r in rows]


async def take_orphan(conn: asyncpg.Connection, *, run_id: int, grace: float) -> Record | None:
    """Mark one stale running run interrupted (the UPDATE is the claim); None if it moved on."""
    return await conn.fetchrow(
        "update runs set state = 'interrupted', owner = null where id = $1 and state = 'running'"
        " and lease_until < now() - make_interval(secs => $2) returning *",
        run_id,
        grace,
    )


async def active_run(conn: asyncpg.Connection) -> Record | None:
    """The run holding the project (queued, running, or stopped waiting for a person)."""
    return await conn.fetchrow(
        "select * from runs where state = any($1::text[]) order by id limit 1", list(ACTIVE)
    )


async def enqueue_run(conn: asyncpg.Connection, **fields) -> Record:
    """Insert a run queued, or 'held' behind the active run: the unique index decides.

    While any run is held, a new one is held too: it never starts ahead of a run that was
    already waiting (the oldest held run is promoted first). A held backup refused by
    `runs_one_held_backup` raises UniqueViolationError.
    """
    if not await conn.fetchval("select exists (select 1 from runs where state = 'held')"):
        try:
            async with conn.transaction():  # a savepoint: only the index knows who was first
                return await store.insert_run(conn, **fields)
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name != "runs_one_operation":
                raise
    active = await active_run(conn)
    return await store.insert_run(
        conn, **fields, state="held", waits_for=active["id"] if active else None
    )


async def promote_held(conn: asyncpg.Connection) -> Record | None:
    """Queue the oldest held run if the project is free; None if it isn't (or none is held)."""
    try:
        async with conn.transaction():
            return await conn.fetchrow(
                "update runs set state = 'queued' where id = (select id from runs"
                " where state = 'held' order by id limit 1)"
                " and state = 'held'"
                " and not exists (select 1 from runs where state = any($1::text[]))"
                " returning *",
                list(ACTIVE),
            )
    except asyncpg.UniqueViolationError:  # another process promoted one at the same moment
        return None


async def current_step(conn: asyncpg.Connection, *, run_id: int) -> Record | None:
    """The step a run is on: the one running, else the last one recorded."""
    return await conn.fetchrow(
        "select * from step_results where run_id = $1"
        " order by (status = 'running') desc, id desc limit 1",
        run_id,
    )


async def set_run_state(
    conn: asyncpg.Connection,
    *,
    run_id: int,
    state: str,
    from_states: tuple[str, ...],
    holder: str | None = None,
    **changes,
) -> Record | None:
    """Move a run from one of `from_states` to `state` atomically; None when it had moved on.

    With `holder`, only while that process still owns the run (the executor's own moves).
    """
    columns = {"state": state, **changes}
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(columns, 4))
    return await conn.fetchrow(
        f"update runs set {sets} where id = $1 and state = any($2::text[])"
        " and ($3::text is null or owner = $3) returning *",
        run_id,
        list(from_states),
        holder,
        *columns.values(),
    )


async def leave_running(conn, *, run_id: int, holder: str, state: str, **changes) -> Record | None:
    """Our running run moves to `state` and lets go of its owner (None if not ours running)."""
    return await set_run_state(
        conn,
        run_id=run_id,
        state=state,
        from_states=("running",),
        holder=holder,
        owner=None,
        **changes,
    )


async def request_stop(conn: asyncpg.Connection, *, run_id: int, user: str) -> Record | None:
    """Ask a running run to stop between steps; None when it isn't running."""
    return await conn.fetchrow(
        "update runs set stop_requested_by = $2 where id = $1 and state = 'running'"
        " and stop_requested_by is null returning *",
        run_id,
        user,
    )


async def abort_stopped_runs(conn: asyncpg.Connection, *, incident_id: int) -> list[Record]:
    """Abort the incident's runs that wait for a decision or for their turn (closing it).

    A run claimed by a live process ('running', lease not lapsed by more than the kill
    grace) is left alone: if it had not started its first step, the executor sees the closed
    incident and stops it before that step. One whose process is gone is aborted too.
    """
    aborted = await conn.fetch(
        "update runs set state = 'aborted', owner = null, ended_at = now() where incident_id = $1"
        " and (state in ('waiting', 'interrupted', 'queued', 'held') or (state = 'running'"
        " and lease_until < now() - make_interval(secs => $2))) returning *",
        incident_id,
        KILL_GRACE,
    )
    for run in aborted:
        await interrupt_running_steps(conn, run_id=run["id"])
    return aborted


async def stop_requested(conn: asyncpg.Connection, *, run_id: int) -> str | None:
    """Who asked this run to stop, if anyone."""
    return await conn.fetchval("select stop_requested_by from runs where id = $1", run_id)


class LostRun(Exception):
    """This process no longer owns the run (its lease lapsed); it must not go on."""


async def _fence(conn: asyncpg.Connection, *, run_id: int, owner: str, next_step: int) -> None:
    result = await conn.execute(
        "update runs set next_step = $3 where id = $1 and owner = $2 and state = 'running'"
        " and lease_until > now()",
        run_id,
        owner,
        next_step,
    )
    if result.endswith(" 0"):
        raise LostRun(f"run {run_id} is no longer owned by {owner}")


async def start_step(
    conn: asyncpg.Connection,
    *,
    run_id: int,
    owner: str,
    index: int,
    name: str,
    started_at: datetime,
    identity: str | None = None,
) -> Record:
    """Record that a step starts (so an interruption knows which step it cut); owner only.

    `identity` (bot.runs.clock.step_identity) ties it to the same step in other runs.
    """
    await _fence(conn, run_id=run_id, owner=owner, next_step=index)
    attempt = await conn.fetchval(
        "select count(*) + 1 from step_results where run_id = $1 and step_index = $2", run_id, index
    )
    return await conn.fetchrow(
        "insert into step_results (run_id, step_index, name, attempt, status, started_at,"
        " identity) values ($1, $2, $3, $4, 'running', $5, $6) returning *",
        run_id,
        index,
        name,
        attempt,
        started_at,
        identity,
    )


# One probe of the partial index step_results_last_success per identity.
LAST_DURATIONS = (
    "select k.identity, (select extract(epoch from s.ended_at - s.started_at)::float8"
    " from step_results s where s.identity = k.identity and s.status = 'succeeded'"
    " and s.ended_at is not null order by s.id desc limit 1) as seconds"
    " from unnest($1::text[]) as k(identity)"
)


async def last_durations(conn: asyncpg.Connection, *, identities: list[str]) -> dict[str, float]:
    """Seconds the most recent successful result of each step identity took (absent: none).

    One query for a whole run (LAST_DURATIONS).
    """
    rows = await conn.fetch(LAST_DURATIONS, list(dict.fromkeys(identities)))
    return {r["identity"]: r["seconds"] for r in rows if r["seconds"] is not None}


async def end_step(
    conn: asyncpg.Connection,
    *,
    run_id: int,
    owner: str,
    index: int,
    status: str,
    ended_at: datetime,
    exit_code: int | None,
    output_tail: str,
    message: str,
    next_step: int,
) -> Record:
    """Store a step's result and where the run goes next; owner only."""
    await _fence(conn, run_id=run_id, owner=owner, next_step=next_step)
    return await conn.fetchrow(
        "update step_results set status = $3, ended_at = $4, exit_code = $5, output_tail = $6,"
        " message = $7 where id = (select max(id) from step_results where run_id = $1"
        " and step_index = $2) returning *",
        run_id,
        index,
        status,
        ended_at,
        exit_code,
        output_tail,
        message,
    )


async def lock_running_step(
    conn: asyncpg.Connection, *, run_id: int, index: int, owner: str
) -> bool:
    """Lock step `index`'s latest result while it is still running in `owner`'s leased run:
    an edit owed in this transaction then comes before any result another writer stores."""
    return bool(
        await conn.fetchval(
            "select true from step_results s join runs r on r.id = s.run_id"
            " where s.id = (select max(id) from step_results where run_id = $1"
            " and step_index = $2) and s.status = 'running' and r.owner = $3"
            " and r.state = 'running' and r.lease_until > now() for update of s",
            run_id,
            index,
            owner,
        )
    )


async def interrupt_running_steps(conn: asyncpg.Connection, *, run_id: int) -> list[Record]:
    """Mark steps left 'running' by a dead process as interrupted; return them."""
    return await conn.fetch(
        "update step_results set status = 'interrupted', ended_at = now(),"
        " message = 'the bot process stopped while this step ran'"
        " where run_id = $1 and status = 'running' returning *",
        run_id,
    )


async def step_results(conn: asyncpg.Connection, *, run_id: int) -> list[Record]:
    """Every step result of a run, in order."""
    return await conn.fetch("select * from step_results where run_id = $1 order by id", run_id)


async def insert_check(conn: asyncpg.Connection, *, run_id: int, check) -> None:
    """Store one verification result."""
    await conn.execute(
        "insert into check_results (run_id, name, kind, passed, detail, started_at, ended_at)"
        " values ($1, $2, $3, $4, $5, $6, $7)",
        run_id,
        check.name,
        check.kind,
        check.passed,
        check.detail,
        check.started_at,
        check.ended_at,
    )


async def insert_artifact(
    conn: asyncpg.Connection, *, run_id: int, artifact: RecordedArtifact, workdir: Path
) -> None:
    """Record an artifact of a backup step that succeeded (a file with its mtime, for listings)."""
    mtime = None
    if artifact.kind == "file" and artifact.path:
        try:
            mtime = (Path(workdir) / artifact.path).stat().st_mtime
        except OSError:
            mtime = None  # recorded as unknown; the listing then compares the size only
    await conn.execute(
        "insert into artifacts (run_id, name, kind, path, value, size, sha256, workdir, mtime)"
        " values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        run_id,
        artifact.name,
        artifact.kind,
        artifact.path,
        artifact.value,
        artifact.size,
        artifact.sha256,
        str(workdir),
        mtime,
    )


async def backup_artifacts(
    conn: asyncpg.Connection, *, backup_run_id: int
) -> dict[str, tuple[RecordedArtifact, Path]]:
    """A backup run's recorded artifacts by name, with the workdir they are relative to."""
    rows = await conn.fetch("select * from artifacts where run_id = $1 order by id", backup_run_id)
    return {
        r["name"]: (
            RecordedArtifact(
                r["name"], r["kind"], path=r["path"], value=r["value"], size=r["size"],
                sha256=r["sha256"], mtime=r["mtime"],
            ),
            Path(r["workdir"]),
        )
        for r in rows
    }  # fmt: skip


async def latest_backup(
    conn: asyncpg.Connection,
) -> tuple[Record, dict[str, tuple[RecordedArtifact, Path]]] | None:
    """The latest completed backup run and its artifacts by name, or None."""
    run = await conn.fetchrow(
        "select * from runs where kind = 'backup' and state = 'succeeded'"
        " order by ended_at desc, id desc limit 1"
    )
    if run is None:
        return None
    return run, await backup_artifacts(conn, backup_run_id=run["id"])


async def pinned_backup(conn: asyncpg.Connection, *, run) -> dict | None:
    """The artifacts a rollback restores from: those of the backup chosen at approval."""
    if run["kind"] != "rollback" or run["backup_run_id"] is None:
        return None
    return await backup_artifacts(conn, backup_run_id=run["backup_run_id"])
