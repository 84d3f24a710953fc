"""Rehearsal of a scenario's steps on hosts: connect (host key checked), find each program."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import asyncssh

from actions.artifacts import RecordedArtifact
from actions.model import Runbook, Scenario
from actions.plan import Rehearsal, programs_in, rehearse
from actions.remote import HostPool, RemoteError
from actions.remote_artifacts import artifact_refusal_on_hosts
from actions.render import RenderContext

LOOKUP_TIMEOUT = 30.0  # seconds for one host's `command -v` round trip


async def missing_on_host(pool: HostPool, host: str, programs: set[str]) -> tuple[str, ...]:
    """The programs that `command -v` does not find on `host` (its login PATH); RemoteError."""
    if not programs:
        await pool.connection(host)  # still connect: the host key is checked
        return ()
    names = " ".join(shlex.quote(p) for p in sorted(programs))
    script = f'for p in {names}; do command -v -- "$p" >/dev/null 2>&1 || echo "$p"; done'
    conn = await pool.connection(host)
    try:
        done = await asyncio.wait_for(conn.run(script, check=False), LOOKUP_TIMEOUT)
    except (TimeoutError, asyncssh.Error, OSError) as exc:
        reason = exc or "timed out"
        raise RemoteError(f"host {host}: looking up programs failed: {reason}") from None
    return tuple(sorted(set(str(done.stdout or "").split()) & programs))


async def rehearse_on_hosts(
    runbook: Runbook,
    scenario: Scenario,
    ctx: RenderContext,
    latest: Mapping[str, tuple[RecordedArtifact, Path]] | None,
    pool: HostPool,
    *,
    path: str | None = None,
) -> Rehearsal:
    """`plan.rehearse`, with each step on hosts checked on those hosts (and backups there)."""
    local = rehearse(runbook, scenario, ctx, latest, path=path)
    steps = list(local.steps)
    for index, step in enumerate(scenario.steps):
        rehearsed = steps[index]
        if not step.hosts or rehearsed.problem is not None:
            continue
        programs = programs_in(rehearsed.command)
        missing: list[str] = []
        problems: list[str] = []
        results = await asyncio.gather(
            *(missing_on_host(pool, host, programs) for host in step.hosts),
            return_exceptions=True,
        )
        for host, found in zip(step.hosts, results, strict=True):
            if isinstance(found, RemoteError):
                problems.append(str(found))
            elif isinstance(found, BaseException):
                raise found
            else:
                missing += [f"{program} (on {host})" for program in found]
        steps[index] = replace(
            rehearsed, missing_programs=tuple(missing), problem="; ".join(problems) or None
        )
    backup_problem = await artifact_refusal_on_hosts(runbook, scenario, latest, pool)
    return Rehearsal(scenario, tuple(steps), backup_problem)
