"""Backup artifacts on hosts: size and sha256 computed on the host itself, over SSH.

A recorded artifact does not store its host (the artifacts table has no column for it): the
host is the one its backup step names in the runbook, which names exactly one for a file.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Mapping
from pathlib import Path

import asyncssh

from actions.artifacts import ArtifactError, RecordedArtifact, artifact_problem
from actions.model import Runbook, Scenario
from actions.plan import artifact_refusal
from actions.remote import HostPool, RemoteError
from actions.render import scenario_artifacts

DIGEST_TIMEOUT = 600.0  # seconds: hashing a large dump takes a while


async def remote_digest(pool: HostPool, host: str, path: str, workdir: Path) -> tuple[int, str]:
    """The size and sha256 of `path` (relative to `workdir`) on `host`; raises ArtifactError."""
    script = (
        f"cd -- {shlex.quote(str(workdir))} || exit 3; f={shlex.quote(path)}; "
        'if [ ! -e "$f" ]; then echo missing; elif [ ! -f "$f" ]; then echo notfile; '
        'else stat -c %s -- "$f" && sha256sum -- "$f"; fi'
    )
    try:
        conn = await pool.connection(host)
        done = await asyncio.wait_for(conn.run(script, check=False), DIGEST_TIMEOUT)
    except RemoteError as error:
        raise ArtifactError(
            f"backup file {path} on host {host} cannot be checked: {error}"
        ) from None
    except (TimeoutError, asyncssh.Error, OSError) as exc:
        raise ArtifactError(
            f"backup file {path} on host {host} cannot be checked: {exc or type(exc).__name__}"
        ) from None
    words = str(done.stdout or "").split()
    if done.exit_status == 3:
        raise ArtifactError(
            f"backup file {path}: working directory {workdir} is missing on host {host}"
        )
    if words[:1] == ["missing"]:
        raise ArtifactError(f"backup file {path} is missing on host {host}")
    if words[:1] == ["notfile"]:
        raise ArtifactError(
            f"backup file {path} on host {host} is not a regular file (archive a folder with tar)"
        )
    if done.exit_status != 0 or len(words) < 2 or not words[0].isdigit():
        reason = str(done.stderr or "").strip().splitlines()[-1:] or ["no size or checksum"]
        raise ArtifactError(f"backup file {path} on host {host} cannot be read: {reason[0]}")
    return int(words[0]), words[1]


async def record_remote_artifact(
    pool: HostPool, name: str, *, host: str, path: str, workdir: Path
) -> RecordedArtifact:
    """Record a file artifact its step left on `host`; raises ArtifactError when unusable."""
    try:
        size, sha256 = await remote_digest(pool, host, path, workdir)
    except ArtifactError as error:
        raise ArtifactError(f"{error} after its step finished") from None
    if size == 0:
        raise ArtifactError(
            f"backup file {path} on host {host} is empty: the step produced nothing to restore from"
        )
    return RecordedArtifact(name, "file", path=path, size=size, sha256=sha256)


async def remote_artifact_problem(
    pool: HostPool, host: str, recorded: RecordedArtifact, workdir: Path
) -> str | None:
    """None when the artifact on `host` is still as recorded, else a sentence saying why not."""
    if recorded.kind != "file" or recorded.path is None:
        return None
    path, untrusted = recorded.path, "it cannot be trusted for a restore"
    try:
        size, sha256 = await remote_digest(pool, host, path, workdir)
    except ArtifactError as error:
        return str(error)
    if size != recorded.size:
        return (
            f"backup file {path} on host {host} has changed since the backup "
            f"(size {size} bytes, was {recorded.size}): {untrusted}"
        )
    if sha256 != recorded.sha256:
        return (
            f"backup file {path} on host {host} has changed since the backup (sha256 differs): "
            f"{untrusted}"
        )
    return None


def artifact_hosts(runbook: Runbook) -> dict[str, str]:
    """Artifact name -> the host its backup step runs on (local artifacts are left out)."""
    return {
        step.artifact.name: step.hosts[0]
        for step in runbook.backup_steps
        if step.artifact is not None and step.hosts
    }


async def artifact_refusal_on_hosts(
    runbook: Runbook,
    scenario: Scenario,
    latest: Mapping[str, tuple[RecordedArtifact, Path]] | None,
    pool: HostPool,
    *,
    full: bool = True,
) -> str | None:
    """As `plan.artifact_refusal`, with artifacts on hosts checked there (always in full).

    `full`: compare the sha256 of local files too (see `artifacts.artifact_problem`)."""
    needed = sorted(scenario_artifacts(scenario))
    if not needed:
        return None
    if latest is None:
        return "No completed backup exists. Run `/rollback backup` first, then ask again."
    hosts, problems = artifact_hosts(runbook), []
    for name in needed:
        if name not in latest:
            problems.append(f"the latest completed backup has no `{name}`")
            continue
        recorded, workdir = latest[name]
        if name in hosts:
            problem = await remote_artifact_problem(pool, hosts[name], recorded, workdir)
        else:
            problem = await asyncio.to_thread(artifact_problem, recorded, workdir, full=full)
        if problem is not None:
            problems.append(problem)
    if not problems:
        return None
    return (
        "; ".join(problems) + ". Restore or re-take the backup (`/rollback backup`) "
        "before rolling back."
    )


async def artifact_refusal_soon(
    runbook: Runbook,
    scenario: Scenario,
    latest: Mapping[str, tuple[RecordedArtifact, Path]] | None,
    *,
    timeout: float,
) -> str | None:
    """The refusal, checking artifacts on hosts for at most `timeout` s (None if not in time).

    For answers people wait on (an approval request, a click); the run's start checks again
    without this limit, so a host too slow to answer here still cannot start a bad restore.
    Local files are checked by size and modification time only (no sha256: a 1 GB dump
    would take a second to read on every click); the run's start compares their sha256.
    """
    if not artifact_hosts(runbook):
        return await asyncio.to_thread(artifact_refusal, scenario, latest, full=False)
    try:
        async with asyncio.timeout(timeout), HostPool(runbook.hosts) as pool:
            return await artifact_refusal_on_hosts(runbook, scenario, latest, pool, full=False)
    except TimeoutError:
        return None
