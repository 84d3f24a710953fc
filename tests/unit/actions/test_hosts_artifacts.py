"""Artifacts and rehearsal on hosts, against two real OpenSSH servers (tests/sshd.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from actions.artifacts import ArtifactError, file_digest
from actions.events import HostOutcome
from actions.remote import HostPool
from actions.remote_artifacts import (
    artifact_refusal_on_hosts,
    record_remote_artifact,
    remote_artifact_problem,
)
from actions.remote_plan import rehearse_on_hosts
from actions.render import RenderContext
from actions.runbook import load_runbook
from bot.runs.render import step_message
from tests import sshd
from tests.sshd import SshPair

ssh_pair = sshd.ssh_pair  # the fixture: two real sshd servers


def runbook_for(pair: SshPair, folder: Path, known_hosts: Path | None = None):
    app1, app2 = pair.servers
    tables = pair.host_table("app1", app1) + pair.host_table("app2", app2)
    if known_hosts is not None:
        tables = tables.replace(str(pair.known_hosts), str(known_hosts))
    text = f"""\
[project]
name = "Shop"
workdir = "{folder}"

{tables}
[backup]
  [[backup.step]]
  name = "Database backup"
  host = "app1"
  run = "echo dump > {{{{ artifact }}}}"
  artifact = {{ name = "db_dump", path = "db.sql" }}

[[scenario]]
key = "app"
title = "App rollback"
  [[scenario.step]]
  name = "Restore and restart"
  hosts = ["app1", "app2"]
  run = "ls {{{{ backup.db_dump }}}} && no-such-program-xyz restart all"
"""
    path = folder / "runbook.toml"
    path.write_text(text)
    return load_runbook(path)


async def test_a_remote_artifact_is_recorded_on_its_host_then_a_change_is_refused(
    ssh_pair, tmp_path
):
    dump = tmp_path / "db.sql"
    dump.write_text("-- dump\n")
    runbook = runbook_for(ssh_pair, tmp_path)
    scenario = runbook.scenario("app")
    async with HostPool(runbook.hosts) as pool:
        recorded = await record_remote_artifact(
            pool, "db_dump", host="app1", path="db.sql", workdir=tmp_path
        )
        assert (recorded.size, recorded.sha256) == file_digest(dump)
        latest = {"db_dump": (recorded, tmp_path)}
        assert await remote_artifact_problem(pool, "app1", recorded, tmp_path) is None
        assert await artifact_refusal_on_hosts(runbook, scenario, latest, pool) is None
        dump.write_text("-- dump, edited\n")
        refusal = await artifact_refusal_on_hosts(runbook, scenario, latest, pool)
        assert refusal == (
            "backup file db.sql on host app1 has changed since the backup (size 16 bytes, was 8):"
            " it cannot be trusted for a restore. Restore or re-take the backup "
            "(`/rollback backup`) before rolling back."
        )
        dump.write_text("-- dumq\n")  # same size, other bytes
        assert "on host app1 has changed since the backup (sha256 differs)" in (
            await remote_artifact_problem(pool, "app1", recorded, tmp_path)
        )
        dump.unlink()
        assert await remote_artifact_problem(pool, "app1", recorded, tmp_path) == (
            "backup file db.sql is missing on host app1"
        )


async def test_an_empty_or_missing_remote_artifact_is_not_recorded(ssh_pair, tmp_path):
    (tmp_path / "empty.sql").write_text("")
    runbook = runbook_for(ssh_pair, tmp_path)
    async with HostPool(runbook.hosts) as pool:
        with pytest.raises(ArtifactError, match=r"empty\.sql on host app2 is empty"):
            await record_remote_artifact(
                pool, "db_dump", host="app2", path="empty.sql", workdir=tmp_path
            )
        with pytest.raises(ArtifactError, match=r"gone\.sql is missing on host app2 after its"):
            await record_remote_artifact(
                pool, "db_dump", host="app2", path="gone.sql", workdir=tmp_path
            )


async def test_rehearsal_checks_programs_on_both_hosts(ssh_pair, tmp_path):
    (tmp_path / "db.sql").write_text("-- dump\n")
    runbook = runbook_for(ssh_pair, tmp_path)
    scenario = runbook.scenario("app")
    ctx = RenderContext.at(runbook, backup={"db_dump": "db.sql"})
    async with HostPool(runbook.hosts) as pool:
        recorded = await record_remote_artifact(
            pool, "db_dump", host="app1", path="db.sql", workdir=tmp_path
        )
        report = await rehearse_on_hosts(
            runbook, scenario, ctx, {"db_dump": (recorded, tmp_path)}, pool
        )
    (step,) = report.steps
    assert step.missing_programs == (
        "no-such-program-xyz (on app1)",
        "no-such-program-xyz (on app2)",
    )
    assert step.problem is None and report.backup_problem is None and not report.passed


async def test_rehearsal_reports_a_host_whose_key_is_unknown(ssh_pair, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text(ssh_pair.servers[0].known_hosts_line + "\n")
    (tmp_path / "db.sql").write_text("-- dump\n")
    runbook = runbook_for(ssh_pair, tmp_path, known_hosts=known)
    ctx = RenderContext.at(runbook, backup={"db_dump": "db.sql"})
    async with HostPool(runbook.hosts) as pool:
        report = await rehearse_on_hosts(runbook, runbook.scenario("app"), ctx, None, pool)
    (step,) = report.steps
    assert step.missing_programs == ("no-such-program-xyz (on app1)",)
    port = ssh_pair.servers[1].port
    assert step.problem.startswith(f"host app2 ({ssh_pair.user}@127.0.0.1:{port}) presented")
    assert f"ssh-keyscan -p {port} 127.0.0.1 >> {known}" in step.problem


def test_the_step_message_shows_each_hosts_result_and_last_lines():
    text, blocks = step_message(
        index=1,
        total=3,
        name="Restart",
        status="failed",
        duration=3.0,
        tail="── app1 ──\nok\n── app2 ──\nboom",
        message="failed on app2: exited with status 2; succeeded on app1",
        hosts=(
            HostOutcome("app1", "succeeded", 0, "", "ok"),
            HostOutcome("app2", "failed", 2, "exited with status 2", "boom"),
        ),
    )
    assert text == "Step 2/3 failed: Restart"
    shown = [b["elements"][0]["text"] if b["type"] == "context" else b["text"]["text"]
             for b in blocks]  # fmt: skip
    assert shown[1:] == [
        "failed on app2: exited with status 2; succeeded on app1",
        ":white_check_mark: *app1* — succeeded",
        "```ok```",
        ":x: *app2* — failed: exited with status 2",
        "```boom```",
    ]


def test_no_remote_process_is_left_by_these_tests(ssh_pair):
    # Only through this test process's sshd servers: tests on other pytest-xdist workers (or
    # in other checkouts on the machine) may be running remote steps right now.
    assert sshd.remote_processes("rollback-bot:pgid") == []


async def test_the_quick_refusal_checks_hosts_and_gives_up_on_a_silent_one(ssh_pair, tmp_path):
    import socket

    from actions.remote_artifacts import artifact_refusal_soon

    dump = tmp_path / "db.sql"
    dump.write_text("-- dump\n")
    runbook = runbook_for(ssh_pair, tmp_path)
    async with HostPool(runbook.hosts) as pool:
        recorded = await record_remote_artifact(
            pool, "db_dump", host="app1", path="db.sql", workdir=tmp_path
        )
    latest = {"db_dump": (recorded, tmp_path)}
    scenario = runbook.scenario("app")
    assert await artifact_refusal_soon(runbook, scenario, latest, timeout=30) is None
    dump.write_text("-- other\n")
    refusal = await artifact_refusal_soon(runbook, scenario, latest, timeout=30)
    assert refusal.startswith("backup file db.sql on host app1 has changed since the backup")
    with socket.socket() as silent:  # accepts connections, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        text = (tmp_path / "runbook.toml").read_text()
        port = silent.getsockname()[1]
        (tmp_path / "runbook.toml").write_text(
            text.replace(f"port = {ssh_pair.servers[0].port}", f"port = {port}")
        )
        silent_runbook = load_runbook(tmp_path / "runbook.toml")
        assert await artifact_refusal_soon(silent_runbook, scenario, latest, timeout=0.5) is None
