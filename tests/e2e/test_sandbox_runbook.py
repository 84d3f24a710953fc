"""The shipped runbook, pointed at a sandbox, really backs up and rolls back (no Slack here)."""

from __future__ import annotations

import os
import urllib.request
import uuid
from pathlib import Path

import pytest

from actions.artifacts import RecordedArtifact, record_artifact
from actions.db_catalog import read_manifest
from actions.events import StepEnded
from actions.masking import Masker
from actions.model import Runbook, Step
from actions.plan import artifact_reference, prepare_checks, prepare_steps
from actions.render import RenderContext
from actions.runbook import load_runbook
from actions.runner import run_steps
from actions.verify import run_checks
from bot.demo.sandbox.build import WMS_BRANCH, Sandbox, build_sandbox


@pytest.fixture
def sandbox(pg_server_dsn: str, tmp_path: Path):
    box = build_sandbox(
        tmp_path / "sandbox", server_dsn=pg_server_dsn, db_name=f"sbx_{uuid.uuid4().hex[:10]}",
        rows=2000,
    )  # fmt: skip
    yield box
    box.destroy()


async def run(box: Sandbox, runbook: Runbook, steps: tuple[Step, ...], ctx: RenderContext):
    """Run steps as the bot does; (StepEnded events, rendered artifact per step index)."""
    prepared = prepare_steps(runbook, steps, ctx)  # what the bot's executor runs
    references = {
        index: artifact_reference(step, ctx) for index, step in enumerate(steps) if step.artifact
    }
    events = []

    async def sink(event: object) -> None:
        events.append(event)

    masker = Masker(box.secrets)
    env = {**os.environ, **box.env}  # the bot's environment, which the sandbox completes
    ended = await run_steps(prepared, on_event=sink, masker=masker, env=env)
    results = [event for event in events if isinstance(event, StepEnded)]
    failures = [(r.name, r.message, r.output_tail) for r in results if not r.succeeded]
    assert (ended.status, failures) == ("succeeded", []), failures
    assert [r.name for r in results] == [step.name for step in steps]
    return results, references


async def backup(box: Sandbox, runbook: Runbook, run_id: int | None = None) -> dict[str, str]:
    """Run the backup; {artifact name: path or value} as `{{ backup.NAME }}` uses it."""
    ctx = RenderContext.at(runbook, run_id=run_id)
    _, references = await run(box, runbook, runbook.backup_steps, ctx)
    recorded: list[RecordedArtifact] = []
    for index, reference in references.items():
        artifact = runbook.backup_steps[index].artifact
        kind = "file" if artifact.is_file else "value"
        recorded.append(
            record_artifact(artifact.name, kind=kind, rendered_path_or_value=reference,
                            workdir=runbook.workdir)
        )  # fmt: skip
    return {item.name: item.reference for item in recorded}


async def restore(
    box: Sandbox, runbook: Runbook, key: str, artifacts: dict[str, str], **context
) -> RenderContext:
    """Run a scenario; its context (`run_dir`, `failed_db`: where it kept the failed state)."""
    ctx = RenderContext.at(runbook, incident_id="RB-1", backup=artifacts, **context)
    await run(box, runbook, runbook.scenario(key).steps, ctx)
    return ctx


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}


async def test_full_rollback_restores_database_code_and_environment(sandbox, monkeypatch):
    runbook = load_runbook(sandbox.runbook_path)
    sandbox.start_app()
    artifacts = await backup(sandbox, runbook)
    assert set(artifacts) == set(runbook.artifact_names)
    before = sandbox.snapshot()
    manifest = await read_manifest(sandbox.db_url)  # what the bot records with the backup
    main_commit = sandbox.run("git", "rev-parse", "main").strip()

    sandbox.break_like_failed_integration()
    broken = sandbox.snapshot()
    (sandbox.root / "broken.env").write_bytes((sandbox.project / ".env").read_bytes())
    assert broken.database != before.database
    assert {"app/wms/page.tsx", "app/api/v1/wms/route.ts", "package.json", ".env"} <= changed(
        before.files, broken.files
    )

    ctx = await restore(sandbox, runbook, "full", artifacts)
    after = sandbox.snapshot()
    assert after.database == before.database
    assert after.files == before.files
    assert sandbox.run("git", "rev-parse", "HEAD").strip() == main_commit
    assert sandbox.run("git", "branch", "--show-current").strip() == "main-rollback"
    assert sandbox.run("git", "rev-parse", WMS_BRANCH).strip() != main_commit  # kept for analysis
    # The failed state, for analysis: the database renamed, the files in the run's folder.
    assert sandbox.kept_databases() == [ctx.failed_db]
    kept_tables = sandbox.psql("select tablename from pg_tables where schemaname = 'public'",
                               database=ctx.failed_db).split()  # fmt: skip
    assert "wms_stock_movement" in kept_tables and "wms_inventory_transaction" not in kept_tables
    kept = sandbox.project / ctx.run_dir
    assert (kept / ".env").read_bytes() == (sandbox.root / "broken.env").read_bytes()
    assert "WMS_API_KEY" in (kept / ".env").read_text()
    listed = sandbox.run("tar", "-tzf", str(kept / "changed_and_untracked.tar.gz")).split()
    assert {"app/api/v1/wms/route.ts", "lib/wms/sync.ts", "lib/format.ts"} <= set(listed)
    assert "failed integration state" in sandbox.run("git", "stash", "list")

    checks = prepare_checks(runbook, ctx)
    for name, value in sandbox.env.items():  # `run` checks use the bot's own environment
        monkeypatch.setenv(name, value)

    async def ignore(event: object) -> None:
        pass

    results = await run_checks(checks, workdir=runbook.workdir, masker=Masker(sandbox.secrets),
                               on_event=ignore, default_dsn=runbook.vars["db_url"],
                               manifest=manifest)  # fmt: skip
    assert [(r.name, r.passed, r.detail) for r in results if not r.passed] == []
    assert len(results) == len(runbook.checks)
    assert_app_is_back(sandbox)


def assert_app_is_back(box: Sandbox) -> None:
    """The app runs under pm2 and answers, directly and through nginx (when installed)."""
    assert box.pm2_status() == {"ecom-os": "online"}
    urls = [box.app_url, *([box.nginx_url] if box.nginx_url else [])]
    for url in urls:
        with urllib.request.urlopen(url, timeout=10) as response:
            assert b"<h1>Ecom OS</h1>" in response.read(), url


async def test_database_rollback_restores_the_database_and_restarts_the_app(sandbox):
    runbook = load_runbook(sandbox.runbook_path)
    sandbox.start_app()
    artifacts = await backup(sandbox, runbook)
    before = sandbox.snapshot()
    sandbox.break_like_failed_integration()
    (sandbox.project / "prisma/schema.prisma").write_text("// broken by a migration\n")

    await restore(sandbox, runbook, "database", artifacts)
    after = sandbox.snapshot()
    assert after.database == before.database
    assert after.files["prisma/schema.prisma"] == before.files["prisma/schema.prisma"]
    assert_app_is_back(sandbox)


async def test_files_rollback_restores_the_project_files(sandbox):
    runbook = load_runbook(sandbox.runbook_path)
    sandbox.start_app()  # the backup saves pm2's process list
    artifacts = await backup(sandbox, runbook)
    before = sandbox.snapshot()
    sandbox.break_like_failed_integration()

    await restore(sandbox, runbook, "files", artifacts)
    after = sandbox.snapshot()
    for directory in ("app/wms", "components/wms", "lib/wms", "app/api/v1/wms"):
        assert not (sandbox.project / directory).exists()
    restored = ("app/", "components/", "lib/", "prisma/", "package.json")
    differ = changed(before.files, after.files)
    assert not [path for path in differ if path.startswith(restored)]
    # Not this scenario's job: the lockfile, `.env` and the database stay as the failure left them.
    assert differ == {"package-lock.json", ".env"}
    assert after.database != before.database


async def test_packages_rollback_repairs_a_broken_package_json(sandbox):
    runbook = load_runbook(sandbox.runbook_path)
    sandbox.start_app()
    artifacts = await backup(sandbox, runbook)
    before = sandbox.snapshot()
    (sandbox.project / "package.json").write_text('{"name": "ecom-os", ')
    with pytest.raises(RuntimeError, match="EJSONPARSE"):
        sandbox.run("npm", "run", "build")

    await restore(sandbox, runbook, "packages", artifacts)
    assert sandbox.snapshot().files == before.files
    assert (sandbox.project / "node_modules/.package-lock.json").is_file()


async def test_data_recovery_reloads_the_table_from_csv(sandbox):
    runbook = load_runbook(sandbox.runbook_path)
    sandbox.start_app()  # the backup saves pm2's process list
    artifacts = await backup(sandbox, runbook)  # keeps the table's definition
    before = sandbox.snapshot()
    sandbox.psql("DELETE FROM wms_inventory_transaction WHERE id % 3 = 0;"
                 "UPDATE wms_inventory_transaction SET quantity_delta = 0;")  # fmt: skip
    damaged = sandbox.psql("COPY wms_inventory_transaction TO STDOUT")

    ctx = await restore(sandbox, runbook, "data", artifacts)
    assert sandbox.snapshot().database == before.database
    kept = (sandbox.project / ctx.run_dir / "table_failed.sql").read_text()
    assert damaged.splitlines()[0] in kept  # the damaged rows, kept before the reload


def test_sandbox_runbook_changes_only_where_it_points(sandbox, tmp_path):
    path = sandbox.write_runbook(
        path=tmp_path / "custom.toml", notice_channels=["C0SANDBOX01"],
        contacts={"on_call": "U0SANDBOX01"}, approvers=["U0SANDBOX02"], high_rollback_after="5s",
    )  # fmt: skip
    runbook = load_runbook(path)
    assert runbook.workdir == sandbox.project
    assert runbook.vars["db_name"] == sandbox.db_name
    assert runbook.notice_channels == ("C0SANDBOX01",)
    assert runbook.contacts == {"on_call": "U0SANDBOX01"}
    assert (runbook.policy.approvers, runbook.policy.high_rollback_after) == (("U0SANDBOX02",), 5)
    assert [c.http for c in runbook.checks if c.http] == ["{{ vars.app_url }}"]
    assert runbook.vars["app_url"] == sandbox.app_url
    assert os.access(sandbox.root / "bin" / "systemctl", os.X_OK)


async def test_without_node_the_stand_ins_roll_back_and_say_so(pg_server_dsn, tmp_path):
    box = build_sandbox(
        tmp_path / "standins", server_dsn=pg_server_dsn, db_name=f"sbx_{uuid.uuid4().hex[:10]}",
        rows=200, real_tools=False,
    )  # fmt: skip
    try:
        assert "node/npm are not installed, so npm, npx, pm2 and node are stand-ins" in " ".join(
            box.tools.notes()
        )
        runbook = load_runbook(box.runbook_path)
        box.start_app()
        artifacts = await backup(box, runbook)
        before = box.snapshot()
        box.break_like_failed_integration()
        await restore(box, runbook, "full", artifacts)
        assert box.snapshot() == before
        assert_app_is_back(box)
        assert "pm2 resurrect" in (box.root / "tool.log").read_text()
    finally:
        box.destroy()
