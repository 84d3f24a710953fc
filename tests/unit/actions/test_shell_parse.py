"""The program finder reads steps with a bash grammar: only programs a step really runs."""

import os
from pathlib import Path

import pytest

from actions.plan import rehearse
from actions.render import RenderContext
from actions.runbook import load_runbook
from actions.shell_parse import BUILTINS, programs_in, syntax_error_line

RUNBOOK = Path(__file__).resolve().parents[3] / "runbook.toml"


def test_a_command_substitution_nested_in_quotes_is_one_program():
    script = 'if [ -n "$(git ls-files -- "$dir")" ]; then\n  git checkout -- "$dir"\nfi\n'
    assert programs_in(script) == {"git"}


def test_a_redirection_of_one_stream_to_another_is_no_program():
    assert programs_in("npm list --depth=0 > out.txt 2>&1 || test -s out.txt") == {"npm"}


def test_heredoc_bodies_are_not_commands():
    script = (
        "psql -v ON_ERROR_STOP=1 -d shop <<'SQL'\nSELECT * FROM audit_log\n"
        "WHERE created_at > :'since'\nORDER BY created_at DESC;\nSQL\n"
    )
    assert programs_in(script) == {"psql"}


def test_sql_in_psql_arguments_is_not_a_command():
    script = (
        "table=orders\npsql --single-transaction -d shop \\\n"
        '  -c "TRUNCATE TABLE \\"$table\\"" \\\n'
        '  -c "\\copy \\"$table\\" FROM \'/tmp/x.csv\' WITH (FORMAT csv)"\n'
    )
    assert programs_in(script) == {"psql"}


def test_builtins_keywords_and_assignments_are_not_programs():
    script = (
        "set -x\nexport A=1\nB=2\nlocal_var=$B\ncd /tmp\nwhile true; do break; done\n"
        'case "$A" in 1) echo one ;; esac\n[[ -n $A ]] && printf "%s" "$A"\nread -r line\n'
    )
    assert programs_in(script) == set()
    assert {"cd", "echo", "test", "[", "printf", "source", "."} <= BUILTINS


def test_programs_in_pipelines_lists_and_substitutions_are_programs():
    script = (
        "pm2 jlist | node -e 'process.exit(0)' && grep -c x f || wc -l f\n"
        "stamp=$(date +%s)\nold=`hostname`\nsort <(ls) > /dev/null\n"
    )
    assert programs_in(script) == {"pm2", "node", "grep", "wc", "date", "hostname", "sort", "ls"}


def test_wrappers_run_the_program_in_their_arguments():
    script = (
        "env -u HOME LANG=C sudo -u deploy systemctl start nginx\ntime tar -czf a.tgz app/\n"
        "command -v jq > /dev/null\ncommand curl -s x\nexec nohup sleep 1\n"
    )
    assert programs_in(script) == {"env", "sudo", "systemctl", "tar", "curl", "nohup", "sleep"}


def test_names_known_only_at_run_time_functions_and_escapes():
    script = '\\cp a b\ncmd=ls\n"$cmd" -l\n$TOOL x\nrestart() { pm2 restart all; }\nrestart\n'
    assert programs_in(script) == {"pm2", "cp"}


def test_a_script_bash_cannot_parse_is_located():
    assert syntax_error_line("echo ok\nif true; then\n  echo\n") is not None
    assert syntax_error_line("echo ok\n") is None


@pytest.fixture
def tool_path(tmp_path):
    """PATH plus stand-ins for the tools CI hosts lack (pm2, systemctl, nginx, npm…)."""
    for name in ("pm2", "systemctl", "nginx", "npm", "npx", "node", "pg_dump", "psql",
                 "dropdb", "createdb", "git", "tar"):  # fmt: skip
        stub = tmp_path / name
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    return os.pathsep.join([os.environ.get("PATH", ""), str(tmp_path)])


def test_rehearsing_every_shipped_scenario_reports_no_false_missing_programs(tool_path):
    runbook = load_runbook(RUNBOOK)
    backup = {name: f"backup/{name}" for name in runbook.artifact_names}
    ctx = RenderContext.at(runbook, incident_id="RB-1", backup=backup)
    for scenario in runbook.scenarios:
        rehearsal = rehearse(runbook, scenario, ctx, None, path=tool_path)
        missing = {step.name: step.missing_programs for step in rehearsal.steps}
        assert {name: found for name, found in missing.items() if found} == {}, scenario.key
        assert all(step.problem is None for step in rehearsal.steps)


def test_rehearsal_names_a_program_that_is_really_missing(tmp_path):
    runbook = load_runbook(RUNBOOK)
    ctx = RenderContext.at(runbook, incident_id="RB-1")
    rehearsal = rehearse(runbook, runbook.scenario("full"), ctx, None, path=str(tmp_path))
    restart = next(step for step in rehearsal.steps if step.name == "Restart services")
    assert "pm2" in restart.missing_programs
    assert all(p.isascii() and p[0].isalpha() for s in rehearsal.steps for p in s.missing_programs)
