"""Placeholders in runbook templates: which are known where, and the errors for the rest."""

import pytest

from actions.runbook import check_runbook
from tests.unit.actions.test_runbook import only_problem, variant, write


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (
            "echo {{ vars.missing }}",
            "unknown placeholder {{ vars.missing }}: no key 'missing' in [vars]",
        ),
        ("echo {{ foo }}", "unknown placeholder {{ foo }} (expected vars.NAME"),
        ("echo {{ vars.db_name|safe }}", "filter '|safe' is not allowed"),
        ("{% if 1 %}x{% endif %}", "statement {% if %} is not allowed"),
        ("echo {{ artifact }}", "{{ artifact }} is only available in a backup step"),
        ("echo {{ backup.nope }}", "no backup step makes artifact 'nope'"),
        ("echo {{ project.nope }}", "no key 'nope' in [project]"),
        ("echo {{ vars.db_name ", "template syntax error"),
    ],
)
def test_bad_placeholders_in_scenario_steps(tmp_path, template, expected):
    old = '  run = "psql -d {{ vars.db_name }} < {{ backup.db_dump }}"'
    problem = only_problem(tmp_path, variant(old, f"  run = '{template}'"))
    assert problem.line == 19
    assert 'step 1 ("Restore database"): run: ' in problem.message
    assert expected in problem.message


def test_known_placeholders_are_accepted_in_scenario_steps(tmp_path):
    old = '  run = "psql -d {{ vars.db_name }} < {{ backup.db_dump }}"'
    run = "echo {{ project.name }} {{ ts }} {{ date }} {{ incident.id }} {{ backup.db_dump }}"
    assert check_runbook(write(tmp_path, variant(old, f"  run = '{run}'"))) == []


def test_template_syntax_error_in_multiline_run_is_reported_at_the_run_key(tmp_path):
    old = '  run = "psql -d {{ vars.db_name }} < {{ backup.db_dump }}"'
    problem = only_problem(tmp_path, variant(old, "  run = '''\necho ok\necho {% for\n'''"))
    assert problem.line == 19
    assert "template syntax error on its line 2" in problem.message


def test_backup_steps_cannot_use_backup_placeholders(tmp_path):
    text = variant("> {{ artifact }}", "> {{ backup.db_dump }}")
    problem = only_problem(tmp_path, text)
    assert (
        problem.line,
        "only available in scenario steps and verify checks" in problem.message,
    ) == (11, True)


def test_artifact_paths_are_checked_for_placeholders(tmp_path):
    problem = only_problem(tmp_path, variant("db_{{ ts }}.sql", "db_{{ stamp }}.sql"))
    assert problem.line == 12
    assert "artifact: path: unknown placeholder {{ stamp }}" in problem.message


def test_verify_checks_are_checked_for_placeholders(tmp_path):
    problem = only_problem(
        tmp_path, variant('run = "npm run build"', 'run = "ls {{ backup.nope }}"')
    )
    assert (problem.line, "run: unknown placeholder {{ backup.nope }}" in problem.message) == (
        25,
        True,
    )
