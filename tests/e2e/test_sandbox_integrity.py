"""Nothing destroyed without a copy, restores that stop at the first error, immutable backups:
the shipped runbook on the sandbox, with real psql, PostgreSQL, git and tar (no Slack here)."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from actions.artifacts import artifact_problem, record_artifact
from actions.events import StepEnded
from actions.masking import Masker
from actions.plan import artifact_reference, prepare_steps
from actions.render import RenderContext
from actions.runbook import load_runbook
from actions.runner import run_steps
from bot.demo.sandbox.build import WMS_BRANCH, Sandbox
from tests.e2e.test_sandbox_runbook import restore

NOW = datetime.now(UTC).replace(microsecond=0)


async def attempt(box: Sandbox, steps, ctx: RenderContext) -> dict[str, StepEnded]:
    """Run steps as the bot does, failures allowed; {step name: how it ended}."""
    events: list[object] = []

    async def sink(event: object) -> None:
        events.append(event)

    runbook = ctx.runbook
    env = {**os.environ, **box.env}
    await run_steps(prepare_steps(runbook, steps, ctx), on_event=sink, masker=Masker(), env=env)
    return {e.name: e for e in events if isinstance(e, StepEnded)}


async def take_backup(box: Sandbox, runbook, run_id: int, when: datetime):
    """One backup as run `run_id`: {name: RecordedArtifact}, recorded as the executor does."""
    ctx = RenderContext.at(runbook, when, run_id=run_id)
    ended = await attempt(box, runbook.backup_steps, ctx)
    assert all(e.succeeded for e in ended.values()), [e.output_tail for e in ended.values()]
    recorded = {}
    for step in runbook.backup_steps:
        if step.artifact:
            kind = "file" if step.artifact.is_file else "value"
            recorded[step.artifact.name] = record_artifact(
                step.artifact.name, kind=kind, rendered_path_or_value=artifact_reference(step, ctx),
                workdir=runbook.workdir,
            )  # fmt: skip
    return recorded


def references(recorded) -> dict[str, str]:
    return {name: artifact.reference for name, artifact in recorded.items()}


def digests(folder: Path) -> dict[str, str]:
    return {
        str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(folder.rglob("*"))
        if f.is_file()
    }


async def test_two_backups_keep_both_sets_of_artifacts_and_both_still_verify(sandbox):
    runbook = load_runbook(sandbox.runbook_path)
    first = await take_backup(sandbox, runbook, 1, NOW)
    sandbox.break_like_failed_integration()  # the second backup sees other manifests
    second = await take_backup(sandbox, runbook, 2, NOW + timedelta(seconds=1))

    for name in ("package_json", "package_lock", "db_dump", "env_file", "code_commit"):
        assert first[name].path != second[name].path, name
        assert first[name].path.startswith(f"backup/{NOW:%Y%m%d_%H%M%S}-1/")
        assert first[name].sha256 != second[name].sha256 or name == "code_commit", name
    for artifact in [*first.values(), *second.values()]:
        assert artifact_problem(artifact, runbook.workdir) is None, artifact


async def test_a_dump_with_an_error_in_the_middle_fails_the_restore_and_keeps_the_failed_db(
    sandbox,
):
    runbook = load_runbook(sandbox.runbook_path)
    artifacts = references(await take_backup(sandbox, runbook, 1, NOW))
    dump = sandbox.project / artifacts["db_dump"]
    lines = dump.read_text().splitlines(keepends=True)
    middle = next(
        i for i, line in enumerate(lines) if line.startswith("CREATE TABLE public.orders")
    )
    lines.insert(middle, "CREATE TABLE public.broken (id integer REFERENCES nowhere (id));\n")
    bad = sandbox.project / "backup" / "bad_dump.sql"
    bad.write_text("".join(lines))
    sandbox.break_like_failed_integration()

    ctx = RenderContext.at(
        runbook, NOW, incident_id="RB-7", backup={**artifacts, "db_dump": str(bad)}, run_id=9
    )
    ended = await attempt(sandbox, runbook.scenario("database").steps, ctx)
    restore_step = ended["Restore database"]
    assert restore_step.status == "failed" and restore_step.exit_code != 0
    assert 'relation "nowhere" does not exist' in restore_step.output_tail
    assert "Restart services" not in ended  # the run stopped there
    # One transaction: nothing of the dump landed, not even the tables before the error.
    tables = sandbox.psql("select count(*) from pg_tables where schemaname = 'public'")
    assert tables.strip() == "0"
    # The failed database was kept, whole, under its documented name.
    assert ctx.failed_db == f"{sandbox.db_name}_failed_{NOW:%Y%m%d_%H%M%S}"
    assert sandbox.kept_databases() == [ctx.failed_db]
    kept = sandbox.psql("select count(*) from wms_stock_movement", database=ctx.failed_db)
    assert int(kept) > 0
    assert (
        f"Kept the failed database as {ctx.failed_db}"
        in ended["Backup current failed state"].output_tail
    )


def _break_for(box: Sandbox, key: str) -> None:
    if key == "packages":
        (box.project / "package.json").write_text('{"name": "ecom-os", ')
    elif key == "data":
        box.break_like_failed_integration()  # drops the recovery table
    else:
        box.break_like_failed_integration()
        (box.project / "app" / "wms" / "notes.txt").write_text("new and untracked\n")


_KEPT = {
    "packages": {"package.json", "package-lock.json", "npm_packages.txt"},
    "database": {"schema.prisma"},
    "files": {"changed_and_untracked.tar.gz", "files_before.tar.gz", "changes.patch"},
    "full": {"changed_and_untracked.tar.gz", "code_failed.tar.gz", ".env", "package.json"},
    "data": set(),  # the first run finds the table dropped: nothing to keep but the folder
}


@pytest.mark.parametrize("key", ["packages", "database", "files", "full", "data"])
async def test_every_scenario_keeps_the_failed_state_and_a_second_rollback_keeps_its_own(
    sandbox,
    key,
):
    runbook = load_runbook(sandbox.runbook_path)
    artifacts = references(await take_backup(sandbox, runbook, 1, NOW))
    _break_for(sandbox, key)

    first = await restore(sandbox, runbook, key, artifacts, when=NOW, run_id=10)
    folder = sandbox.project / first.run_dir
    assert folder.is_dir() and _KEPT[key] <= set(digests(folder))
    kept_first = digests(folder)
    if key == "files":
        listed = sandbox.run("tar", "-tzf", str(folder / "changed_and_untracked.tar.gz"))
        assert "app/wms/notes.txt" in listed.split()  # untracked files too
    if key == "data":
        sandbox.psql("UPDATE wms_inventory_transaction SET quantity_delta = 0")

    second = await restore(
        sandbox, runbook, key, artifacts, when=NOW + timedelta(seconds=5), run_id=11
    )
    assert second.run_dir != first.run_dir
    assert digests(folder) == kept_first  # the first copy is untouched
    assert (sandbox.project / second.run_dir).is_dir()
    if key in ("database", "full"):
        assert sandbox.kept_databases() == sorted([first.failed_db, second.failed_db])
        tables = sandbox.psql("select tablename from pg_tables where schemaname = 'public'",
                              database=first.failed_db).split()  # fmt: skip
        assert "wms_stock_movement" in tables  # the failed state, not the restored one
    if key == "data":
        assert "table_failed.sql" in digests(sandbox.project / second.run_dir)


async def test_a_backup_branch_that_moved_since_the_backup_is_refused(sandbox):
    runbook = load_runbook(sandbox.runbook_path)
    recorded = await take_backup(sandbox, runbook, 1, NOW)
    artifacts = references(recorded)
    sandbox.break_like_failed_integration()
    branch = artifacts["code_branch"]
    sandbox.run("git", "branch", "-f", branch, WMS_BRANCH)  # someone moved the backup branch
    head = sandbox.run("git", "rev-parse", "HEAD").strip()

    ctx = RenderContext.at(runbook, NOW, incident_id="RB-2", backup=artifacts, run_id=3)
    ended = await attempt(sandbox, runbook.scenario("full").steps, ctx)
    code = ended["Restore code"]
    assert code.status == "failed"
    commit = (sandbox.project / artifacts["code_commit"]).read_text().strip()
    assert f"the backup branch {branch} has moved since the backup" in code.output_tail
    assert f"it was at {commit}" in code.output_tail
    assert "Restore dependencies" not in ended
    assert sandbox.run("git", "rev-parse", "HEAD").strip() == head  # nothing checked out


async def test_the_data_scenario_recreates_the_table_the_failure_dropped(sandbox):
    runbook = load_runbook(sandbox.runbook_path)
    artifacts = references(await take_backup(sandbox, runbook, 1, NOW))
    table = runbook.vars["recovery_table"]
    schema = ("pg_dump", "--schema-only", "-d", sandbox.db_name, "-t", table)
    before = (sandbox.run(*schema), sandbox.psql(f"COPY {table} TO STDOUT"),
              sandbox.psql(f"select last_value from {table}_id_seq"))  # fmt: skip
    sandbox.break_like_failed_integration()
    assert sandbox.psql(f"select to_regclass('{table}') is null").strip() == "t"

    ctx = await restore(sandbox, runbook, "data", artifacts, when=NOW, run_id=4)
    after = (sandbox.run(*schema), sandbox.psql(f"COPY {table} TO STDOUT"),
             sandbox.psql(f"select last_value from {table}_id_seq"))  # fmt: skip
    assert after == before
    assert (sandbox.project / ctx.run_dir).is_dir()
