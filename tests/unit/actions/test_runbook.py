"""The runbook loader: every kind of mistake is reported once, at its exact line."""

from pathlib import Path

import pytest

from actions.model import Artifact, Check, Policy, Scenario, Step
from actions.runbook import Problem, RunbookError, check_runbook, load_runbook

# Line numbers below refer to this text: keep it as it is.
MINIMAL = """\
[project]
name = "Shop"
workdir = "app"

[vars]
db_name = "shop"

[backup]
  [[backup.step]]
  name = "Database backup"
  run = "pg_dump -d {{ vars.db_name }} > {{ artifact }}"
  artifact = { name = "db_dump", path = "backup/db_{{ ts }}.sql" }

[[scenario]]
key = "database"
title = "Database migration failure"
  [[scenario.step]]
  name = "Restore database"
  run = "psql -d {{ vars.db_name }} < {{ backup.db_dump }}"
  timeout = "30m"
  checklist = "Database restored"

[[verify.check]]
name = "Build"
run = "npm run build"

[checklists]
during = ["Database restored"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "runbook.toml"
    path.write_text(text, encoding="utf-8")
    return path


def variant(old: str, new: str, extra: str = "") -> str:
    assert MINIMAL.count(old) == 1, old
    return MINIMAL.replace(old, new) + extra


def only_problem(tmp_path: Path, text: str) -> Problem:
    problems = check_runbook(write(tmp_path, text))
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


def test_minimal_runbook_loads_into_the_model(tmp_path):
    runbook = load_runbook(write(tmp_path, MINIMAL))
    assert runbook.project_name == "Shop"
    assert runbook.vars == {"db_name": "shop"}
    assert runbook.policy == Policy()
    assert runbook.backup_steps == (
        Step(
            name="Database backup",
            run="pg_dump -d {{ vars.db_name }} > {{ artifact }}",
            artifact=Artifact(name="db_dump", path="backup/db_{{ ts }}.sql"),
            line=9,
        ),
    )
    restore = Step(
        name="Restore database",
        run="psql -d {{ vars.db_name }} < {{ backup.db_dump }}",
        timeout=1800.0,
        checklist="Database restored",
        line=17,
    )
    assert runbook.scenarios == (
        Scenario("database", "Database migration failure", "", (restore,), line=14),
    )
    assert runbook.checks == (Check(name="Build", run="npm run build", line=23),)
    assert runbook.checklists == {"during": ("Database restored",)}
    assert runbook.artifact_names == ("db_dump",)


def test_relative_workdir_is_resolved_against_the_runbook_directory(tmp_path):
    runbook = load_runbook(write(tmp_path, MINIMAL))
    assert runbook.workdir == tmp_path / "app"
    assert runbook.project["workdir"] == str(tmp_path / "app")


def test_absolute_workdir_is_kept(tmp_path):
    runbook = load_runbook(write(tmp_path, variant('workdir = "app"', 'workdir = "/srv/shop"')))
    assert runbook.workdir == Path("/srv/shop")


def test_policy_notify_and_contacts_are_read(tmp_path):
    extra = """
[policy]
high_rollback_after = "1h30m"
approval_expires_after = "10m"
approvers = ["U012ABC", "S0ADMINS"]
declarers = ["W0ENTER"]

[notify]
notice_channels = ["C0123456", "G0PRIVATE"]

[contacts]
database_admin = "U0000001"
"""
    runbook = load_runbook(write(tmp_path, MINIMAL + extra))
    assert runbook.policy == Policy(5400.0, 600.0, ("U012ABC", "S0ADMINS"), ("W0ENTER",))
    assert runbook.notice_channels == ("C0123456", "G0PRIVATE")
    assert runbook.contacts == {"database_admin": "U0000001"}


def test_numbers_and_booleans_in_vars_become_text(tmp_path):
    runbook = load_runbook(
        write(tmp_path, variant('db_name = "shop"', 'db_name = "shop"\nport = 5432\nx = true'))
    )
    assert runbook.vars == {"db_name": "shop", "port": "5432", "x": "true"}


def test_unknown_step_key_names_the_step_and_the_expected_keys(tmp_path):
    problem = only_problem(tmp_path, variant('  timeout = "30m"', '  rn = "x"'))
    assert problem.line == 20
    assert str(problem) == (
        f"{tmp_path / 'runbook.toml'}:20: "
        'scenario "database", step 1 ("Restore database"): unknown key \'rn\' '
        "(expected one of: name, run, timeout, workdir, continue_on_error, checklist, host, hosts)"
    )


def test_unknown_top_level_table(tmp_path):
    problem = only_problem(tmp_path, MINIMAL + '\n[notfy]\nchannel = "C1"\n')
    assert problem.line == 30
    assert "unknown key 'notfy'" in problem.message and "checklists" in problem.message


def test_unknown_key_inside_an_inline_artifact_table(tmp_path):
    text = variant('path = "backup/db_{{ ts }}.sql"', 'path = "b.sql", size = 3')
    problem = only_problem(tmp_path, text)
    assert problem.line == 12
    assert "artifact: unknown key 'size' (expected one of: name, path, value)" in problem.message


def test_artifact_needs_exactly_one_of_path_or_value(tmp_path):
    text = variant('path = "backup/db_{{ ts }}.sql"', 'path = "b.sql", value = "v"')
    problem = only_problem(tmp_path, text)
    assert (problem.line, "needs exactly one of path" in problem.message) == (12, True)


def test_missing_project_name(tmp_path):
    problem = only_problem(tmp_path, variant('name = "Shop"\n', ""))
    assert problem.line == 1
    assert problem.message == "[project]: missing required key 'name'"


def test_missing_project_table(tmp_path):
    problem = only_problem(
        tmp_path, variant('[project]\nname = "Shop"\nworkdir = "app"\n', "\n\n\n")
    )
    assert (problem.line, "missing the [project] table" in problem.message) == (1, True)


def test_missing_scenario_title(tmp_path):
    problem = only_problem(tmp_path, variant('title = "Database migration failure"', ""))
    assert problem.line == 14
    assert problem.message == "scenario \"database\": missing required key 'title'"


def test_scenario_without_steps(tmp_path):
    text = MINIMAL + '\n[[scenario]]\nkey = "empty"\ntitle = "Nothing to do"\n'
    problem = only_problem(tmp_path, text)
    assert problem.line == 30
    assert "missing steps" in problem.message


def test_step_without_run(tmp_path):
    problem = only_problem(
        tmp_path, variant('  run = "psql -d {{ vars.db_name }} < {{ backup.db_dump }}"', "")
    )
    assert problem.line == 17
    assert "step 1 (\"Restore database\"): missing required key 'run'" in problem.message


@pytest.mark.parametrize(
    ("new", "found"), [('run = "true"\nhttp = "http://x"', "run, http"), ("", "none")]
)
def test_check_needs_exactly_one_of_run_http_sql(tmp_path, new, found):
    text = variant('run = "npm run build"', new)
    problem = only_problem(tmp_path, text)
    assert problem.line == 23
    assert f"needs exactly one of run, http, sql or manifest (found: {found})" in problem.message


def test_wrong_types_are_each_reported(tmp_path):
    text = variant('  timeout = "30m"', '  timeout = 30\n  continue_on_error = "yes"')
    problems = check_runbook(write(tmp_path, text))
    assert [(p.line, p.message.split(": ", 1)[1]) for p in problems] == [
        (20, "timeout must be a string, not a number"),
        (21, "continue_on_error must be true or false, not a string"),
    ]


@pytest.mark.parametrize(
    ("old", "new", "line", "key"),
    [
        ('  timeout = "30m"', '  timeout = "30 min"', 20, "timeout"),
        ("", '\n[policy]\nhigh_rollback_after = "2 hours"\n', 31, "high_rollback_after"),
        ("", '\n[policy]\napproval_expires_after = "1d"\n', 31, "approval_expires_after"),
    ],
)
def test_bad_durations(tmp_path, old, new, line, key):
    text = variant(old, new) if old else MINIMAL + new
    problem = only_problem(tmp_path, text)
    assert problem.line == line
    assert f"{key}: " in problem.message and "expected a duration such as 30s" in problem.message


def test_duplicate_scenario_keys(tmp_path):
    second = (
        '\n[[scenario]]\nkey = "database"\ntitle = "Again"\n'
        '  [[scenario.step]]\n  name = "x"\n  run = "true"\n'
    )
    problem = only_problem(tmp_path, MINIMAL + second)
    assert problem.line == 31
    assert 'duplicate scenario key "database" (first on line 15)' in problem.message


def test_duplicate_step_names_in_one_scenario(tmp_path):
    again = (
        '  checklist = "Database restored"\n'
        '  [[scenario.step]]\n  name = "Restore database"\n  run = "true"'
    )
    problem = only_problem(tmp_path, variant('  checklist = "Database restored"', again))
    assert problem.line == 23
    assert (
        'scenario "database": duplicate step name "Restore database" (first on line 18)'
        in problem.message
    )


def test_duplicate_artifact_names(tmp_path):
    again = (
        '.sql" }\n  [[backup.step]]\n  name = "Again"\n  run = "true"\n'
        '  artifact = { name = "db_dump", value = "v" }'
    )
    problem = only_problem(tmp_path, variant('.sql" }', again))
    assert problem.line == 16
    assert 'duplicate artifact name "db_dump" (first on line 12)' in problem.message


@pytest.mark.parametrize(
    ("key", "expected"), [("Database!", "must be simple"), ("critical", "is a severity word")]
)
def test_scenario_keys_must_be_simple_and_not_a_severity(tmp_path, key, expected):
    problem = only_problem(tmp_path, variant('key = "database"', f'key = "{key}"'))
    assert (problem.line, expected in problem.message) == (15, True)


@pytest.mark.parametrize(
    ("table", "value", "line", "expected"),
    [
        ("contacts", 'dba = "alice"', 31, "dba: 'alice' is not a Slack user ID (U… or W…)"),
        ("contacts", 'dba = "S0GROUP"', 31, "is not a Slack user ID"),
        ("policy", 'approvers = ["U0OK", "#ops"]', 31, "approvers: '#ops' is not a Slack user ID"),
        ("policy", 'declarers = [\n  "u0lower",\n]', 32, "declarers: 'u0lower' is not"),
        ("notify", 'notice_channels = ["general"]', 31, "'general' is not a Slack channel ID"),
    ],
)
def test_bad_slack_ids(tmp_path, table, value, line, expected):
    problem = only_problem(tmp_path, MINIMAL + f"\n[{table}]\n{value}\n")
    assert problem.line == line
    assert expected in problem.message


def test_checklists_accept_only_pre_during_post_lists_of_strings(tmp_path):
    text = MINIMAL + 'mid = ["x"]\npost = ["ok", 3]\n'
    problems = check_runbook(write(tmp_path, text))
    assert [(p.line, p.message) for p in problems] == [
        (29, "[checklists]: unknown key 'mid' (expected one of: pre, during, post)"),
        (30, "[checklists]: post must be a list of strings"),
    ]


def test_step_checklist_must_name_a_during_item(tmp_path):
    problem = only_problem(
        tmp_path, variant('checklist = "Database restored"', 'checklist = "DB restored"')
    )
    assert problem.line == 21
    assert (
        'checklist "DB restored" is not an item of checklists.during ("Database restored")'
        in problem.message
    )


def test_vars_must_be_scalars(tmp_path):
    problem = only_problem(tmp_path, variant('db_name = "shop"', 'db_name = "shop"\nhosts = ["a"]'))
    assert (
        problem.line,
        "hosts must be a string, number or true/false, not a list" in problem.message,
    ) == (7, True)


def test_toml_syntax_error_is_one_problem_at_its_line(tmp_path):
    problem = only_problem(tmp_path, variant('title = "Database migration failure"', "title = "))
    assert problem.line == 16
    assert problem.message.startswith("TOML syntax error: Invalid value")


def test_duplicate_toml_key_is_one_problem_at_its_line(tmp_path):
    problem = only_problem(tmp_path, variant('key = "database"', 'key = "database"\nkey = "db"'))
    assert problem.line == 16
    assert "defined twice" in problem.message


def test_missing_file_is_one_problem_without_a_line(tmp_path):
    path = tmp_path / "nope.toml"
    [problem] = check_runbook(path)
    assert problem.line == 0
    assert str(problem).startswith(f"{path}: cannot read the runbook: No such file or directory")


def test_all_problems_are_collected_at_once_in_line_order(tmp_path):
    text = variant('  timeout = "30m"', '  timeout = "soon"').replace(
        'key = "database"', 'key = "high"'
    )
    text += '\n[contacts]\ndba = "bob"\n'
    problems = check_runbook(write(tmp_path, text))
    assert [p.line for p in problems] == [15, 20, 31]
    with pytest.raises(RunbookError) as raised:
        load_runbook(write(tmp_path, text))
    assert raised.value.problems == problems
    assert str(raised.value).splitlines() == [str(p) for p in problems]


def test_multiline_strings_do_not_confuse_line_numbers(tmp_path):
    old = '  run = "psql -d {{ vars.db_name }} < {{ backup.db_dump }}"'
    tricky = "  run = '''\n[fake]\ntimeout = 1\n'''"
    problem = only_problem(
        tmp_path, variant(old, tricky).replace('  timeout = "30m"', '  timeout = "x"')
    )
    assert problem.line == 23


def test_artifact_that_is_not_a_table_is_reported_once(tmp_path):
    old = 'artifact = { name = "db_dump", path = "backup/db_{{ ts }}.sql" }'
    problems = check_runbook(write(tmp_path, variant(old, 'artifact = "backup/db.sql"')))
    assert (problems[0].line, problems[0].message) == (
        12,
        'backup step 1 ("Database backup"): artifact must be a table, not a string',
    )
    # the scenario's {{ backup.db_dump }} now names no artifact: reported, but nothing else
    assert [p.line for p in problems] == [12, 19]


def test_scenario_steps_have_no_artifacts(tmp_path):
    text = variant('  timeout = "30m"', '  artifact = { name = "x", path = "y" }')
    problem = only_problem(tmp_path, text)
    assert (problem.line, "unknown key 'artifact'" in problem.message) == (20, True)


def test_postmortem_reminder_interval_is_read_and_defaults_to_a_day(tmp_path):
    assert load_runbook(write(tmp_path, MINIMAL)).policy.postmortem_reminder_after == 86400.0
    extra = '\n[policy]\npostmortem_reminder_after = "4h"\n'
    runbook = load_runbook(write(tmp_path, MINIMAL + extra))
    assert runbook.policy.postmortem_reminder_after == 4 * 3600.0
    problem = only_problem(tmp_path, MINIMAL + '\n[policy]\npostmortem_reminder_after = "daily"\n')
    assert problem.line == 31 and "postmortem_reminder_after: " in problem.message


def test_approvals_required_is_read_and_defaults_to_one(tmp_path):
    assert load_runbook(write(tmp_path, MINIMAL)).policy.approvals_required == 1
    runbook = load_runbook(write(tmp_path, MINIMAL + "\n[policy]\napprovals_required = 2\n"))
    assert runbook.policy.approvals_required == 2


@pytest.mark.parametrize(
    ("value", "shown"),
    [("0", "0"), ("-1", "-1"), ("1.5", "1.5"), ('"2"', "a string"), ("true", "true/false")],
)
def test_approvals_required_must_be_a_whole_number_of_at_least_one(tmp_path, value, shown):
    problem = only_problem(tmp_path, MINIMAL + f"\n[policy]\napprovals_required = {value}\n")
    assert problem.line == 31
    assert problem.message == (
        f"[policy]: approvals_required must be a whole number of at least 1, not {shown}"
    )
