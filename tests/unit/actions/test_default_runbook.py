"""The shipped runbook.toml encodes the seed rollback plan and is valid as shipped."""

import subprocess
from pathlib import Path

import pytest

from actions.render import RenderContext, render, scenario_artifacts
from actions.runbook import check_runbook, inspect_runbook, load_runbook

RUNBOOK = Path(__file__).resolve().parents[3] / "runbook.toml"

SEED_CHECKLISTS = {
    "pre": (
        "Database backup completed",
        "Code backup in git",
        "File system backup created",
        "Environment backup saved",
        "Current state documented",
        "Rollback scripts tested",
    ),
    "during": (
        "Services stopped",
        "Failed state backed up",
        "Database restored",
        "Code restored",
        "Dependencies restored",
        "Environment restored",
        "Services restarted",
    ),
    "post": (
        "All services running",
        "Database accessible",
        "Build successful",
        "Application responsive",
        "Users notified",
        "Post-mortem scheduled",
    ),
}


@pytest.fixture(scope="module")
def runbook():
    return load_runbook(RUNBOOK)


def test_shipped_runbook_has_no_problems():
    assert [str(problem) for problem in check_runbook(RUNBOOK)] == []


def test_project_and_policy_follow_the_plan(runbook):
    assert (runbook.project_name, runbook.workdir) == ("WMS integration", Path("/srv/ecom_os"))
    assert (runbook.policy.high_rollback_after, runbook.policy.approval_expires_after) == (
        7200,
        1800,
    )
    assert runbook.vars["db_name"] == "ecom_os"
    assert set(runbook.contacts) == {"database_admin", "devops_lead", "project_manager", "on_call"}
    assert len(runbook.notice_channels) == 1


def test_scenarios_are_the_plans_four_plus_data_recovery_in_order(runbook):
    assert [s.key for s in runbook.scenarios] == ["packages", "database", "files", "full", "data"]


def test_full_rollback_follows_the_plans_steps_in_order(runbook):
    assert [step.name for step in runbook.scenario("full").steps] == [
        "Stop app",
        "Stop pm2 processes",
        "Stop nginx",
        "Backup current failed state",
        "Restore database",
        "Restore code",
        "Restore dependencies",
        "Restore environment",
        "Regenerate Prisma",
        "Restart services",
    ]
    failed_state = runbook.scenario("full").steps[3].run
    assert 'kept={{ run_dir }}\nmkdir -p "$kept"' in failed_state  # this run's own folder
    assert 'ALTER DATABASE :"db" RENAME TO :"kept"' in failed_state  # kept, not dumped & dropped
    assert "-v kept={{ failed_db }}" in failed_state
    assert 'tar -czf "$kept/code_failed.tar.gz" app/ components/ lib/' in failed_state


def test_every_scenario_first_keeps_what_it_overwrites_in_its_own_folder(runbook):
    for scenario in runbook.scenarios:
        names = [step.name for step in scenario.steps]
        keep = scenario.steps[names.index("Backup current failed state")]
        assert "kept={{ run_dir }}\n" in keep.run and "Kept " in keep.run  # says where
        assert keep.checklist == "Failed state backed up"
        changes = [i for i, step in enumerate(scenario.steps) if _overwrites(step.run)]
        assert changes and min(changes) > names.index(keep.name), scenario.key


def _overwrites(script: str) -> bool:
    words = ("dropdb", "TRUNCATE", "git checkout", "rm -rf", "tar -xzf", "cp {{ backup.")
    return any(word in script for word in words)


def test_every_backup_file_goes_to_the_backups_own_folder(runbook):
    paths = [s.artifact.path for s in runbook.backup_steps if s.artifact and s.artifact.path]
    assert paths and all(path.startswith("{{ backup_dir }}/") for path in paths)
    values = [s.artifact.value for s in runbook.backup_steps if s.artifact and s.artifact.value]
    assert values == ["backup/pre-wms-integration-{{ ts }}"]  # a branch name, with its commit:
    assert "code_commit" in runbook.artifact_names


def test_every_psql_script_stops_at_the_first_error(runbook):
    problems, warnings = inspect_runbook(RUNBOOK)
    assert (problems, warnings) == ([], [])
    steps = [step.run for scenario in runbook.scenarios for step in scenario.steps]
    restores = [run for run in steps if "< {{ backup.db_dump" in run]
    assert len(restores) == 2
    assert all("-v ON_ERROR_STOP=1 --single-transaction" in run for run in restores)


def test_full_rollback_uses_artifacts_the_backup_defines(runbook):
    used = scenario_artifacts(runbook.scenario("full"))
    assert {"db_dump", "code_branch", "package_json", "env_file", "pm2_dump"} <= used
    assert used <= set(runbook.artifact_names)


def test_every_scenario_uses_only_defined_artifacts(runbook):
    for scenario in runbook.scenarios:
        assert scenario_artifacts(scenario) <= set(runbook.artifact_names), scenario.key


def test_checklists_are_the_plans_items(runbook):
    assert runbook.checklists == SEED_CHECKLISTS


def test_every_during_item_is_ticked_by_some_step(runbook):
    ticked = {step.checklist for scenario in runbook.scenarios for step in scenario.steps}
    assert set(SEED_CHECKLISTS["during"]) <= ticked


def test_verification_matches_the_plans_script(runbook):
    assert [(check.name, check.kind) for check in runbook.checks] == [
        ("Services running", "run"),
        ("Database connected", "sql"),
        ("Database matches the backup", "manifest"),
        ("Build successful", "run"),
        ("Main app responsive", "http"),
    ]
    assert runbook.checks[4].expect == "Ecom OS"
    assert runbook.manifest_dsn == "{{ vars.db_url }}"


def test_every_step_renders_to_a_script_bash_can_parse(runbook):
    backup = {name: f"backup/{name}" for name in runbook.artifact_names}
    ctx = RenderContext.at(runbook, incident_id="RB-1", backup=backup)
    steps = [*runbook.backup_steps, *(s for scenario in runbook.scenarios for s in scenario.steps)]
    for step in steps:
        artifact = step.artifact and (step.artifact.path or step.artifact.value)
        script = render(
            step.run, ctx.with_artifact(artifact and render(artifact, ctx, shell=False))
        )
        parsed = subprocess.run(["bash", "-n", "-c", script], capture_output=True, check=False)
        assert parsed.returncode == 0, (step.name, parsed.stderr)
