"""Rendering: values are always shell-quoted, missing values always fail loudly."""

import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from actions.model import Runbook, Scenario, Step
from actions.render import (
    RenderContext,
    RenderError,
    placeholders_in,
    render,
    scenario_artifacts,
    template_problems,
)

HOSTILE = [
    "x; rm -rf victim",
    "$(touch pwned)",
    "`touch pwned`",
    "'; touch pwned; echo '",
    '"; touch pwned; echo "',
    "a\ntouch pwned",
    "a'b\"c\\d",
    "$HOME ~ * ?",
    "--help",
    "",
    "  spaces  ",
    "> pwned",
    "| touch pwned",
    "& touch pwned &",
]


def make_runbook(**vars: str) -> Runbook:
    return Runbook(
        path=Path("runbook.toml"),
        project_name="Shop",
        workdir=Path("/srv/shop"),
        vars=vars,
        project={"name": "Shop", "workdir": "/srv/shop"},
    )


def context(**kwargs) -> RenderContext:
    runbook = kwargs.pop("runbook", make_runbook(db_name="shop"))
    return RenderContext.at(runbook, datetime(2024, 5, 6, 7, 8, 9), **kwargs)


def run_bash(script: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + script], cwd=cwd, capture_output=True, check=False
    )


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_vars_reach_the_command_as_one_literal_argument(tmp_path, value):
    (tmp_path / "victim").mkdir()
    ctx = context(runbook=make_runbook(v=value))
    script = render("printf '%s' {{ vars.v }} > out.txt", ctx)
    result = run_bash(script, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.txt").read_text() == value
    assert not (tmp_path / "pwned").exists()
    assert (tmp_path / "victim").is_dir()


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_backup_and_artifact_values_are_quoted_too(tmp_path, value):
    ctx = context(backup={"db_dump": value}, artifact=value, incident_id=value)
    script = render(
        "printf '%s|' {{ backup.db_dump }} {{ artifact }} {{ incident.id }} > out.txt", ctx
    )
    result = run_bash(script, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.txt").read_text() == f"{value}|{value}|{value}|"
    assert not (tmp_path / "pwned").exists()


def test_bash_length_syntax_is_not_taken_for_a_template_comment(tmp_path):
    script = render("a=(1 2 3); echo ${#a[@]} {{ vars.db_name }}", context())
    assert run_bash(script, tmp_path).stdout == b"3 shop\n"


def test_empty_value_renders_as_an_empty_argument_not_as_nothing():
    assert render("f {{ vars.e }} x", context(runbook=make_runbook(e=""))) == "f '' x"


def test_ts_and_date_come_from_the_given_time():
    ctx = context()
    assert (ctx.ts, ctx.date) == ("20240506_070809", "20240506")
    assert render("db_{{ ts }}.sql {{ date }}", ctx) == "db_20240506_070809.sql 20240506"


def test_plain_rendering_does_not_quote_for_paths_and_values():
    ctx = context(runbook=make_runbook(env="my env"))
    assert (
        render("backup/{{ vars.env }}_{{ ts }}", ctx, shell=False)
        == "backup/my env_20240506_070809"
    )


def test_project_values_are_available():
    assert render("cd {{ project.workdir }}", context()) == "cd /srv/shop"


def test_var_named_like_a_dict_method_is_its_value():
    assert (
        render("echo {{ vars.items }}", context(runbook=make_runbook(items="a b"))) == "echo 'a b'"
    )


@pytest.mark.parametrize(
    ("template", "kwargs", "expected"),
    [
        ("{{ vars.missing }}", {}, "add 'missing' to [vars]"),
        ("{{ backup.db_dump }}", {}, "no completed backup holds artifact 'db_dump'"),
        ("{{ artifact }}", {}, "only set in a backup step"),
        ("{{ incident.id }}", {}, "belongs to no incident"),
        ("{{ nothing }}", {}, "'nothing' is undefined"),
        ("{{ vars.__class__ }}", {}, "no value"),
        ("{{ vars.db_name ", {}, "template syntax error"),
    ],
)
def test_missing_values_raise_instead_of_rendering_empty(template, kwargs, expected):
    with pytest.raises(RenderError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        render("echo " + template, context(**kwargs))


def test_placeholders_in_lists_dotted_names():
    template = (
        "pg_dump -d {{ vars.db_name }} > {{ artifact }} && cp {{ backup['db_dump'] }} {{ ts }}"
    )
    assert placeholders_in(template) == {"vars.db_name", "artifact", "backup.db_dump", "ts"}


def test_placeholders_in_sees_names_inside_filters_and_statements():
    template = "{{ vars.a|upper }}{% if incident.id %}{{ backup.x }}{% endif %}"
    assert placeholders_in(template) == {"vars.a", "incident.id", "backup.x"}


def test_placeholders_in_reports_syntax_errors():
    with pytest.raises(RenderError, match="syntax error"):
        placeholders_in("{{ oops")


def test_scenario_artifacts_are_the_backup_names_its_steps_use():
    steps = (
        Step("Restore", "psql < {{ backup.db_dump }} {{ vars.db_name }}"),
        Step("Env", "cp {{ backup.env_file }} .env"),
        Step("Broken", "{{ backup.x"),
    )
    assert scenario_artifacts(Scenario("full", "Full", "", steps)) == {"db_dump", "env_file"}


def test_template_problems_allow_plain_placeholders_only():
    scope = {"vars": ["db_name"], "project": ["name"], "artifacts": ["db_dump"]}
    assert template_problems("x {{ vars.db_name }} {{ backup.db_dump }}", **scope) == []
    [problem] = template_problems("{{ vars.db_name|safe }}", **scope)
    assert problem.startswith("filter '|safe' is not allowed")
    [problem] = template_problems("{% set x = 1 %}", **scope)
    assert problem.startswith("statement {% set %} is not allowed")


def test_with_artifact_keeps_the_rest_of_the_context():
    ctx = context(incident_id="RB-1").with_artifact("backup/a.sql")
    assert (ctx.artifact, ctx.incident_id) == ("backup/a.sql", "RB-1")
