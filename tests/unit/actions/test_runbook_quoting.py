"""No placeholder can be unquoted by the runbook's own text; psql scripts must stop at errors.

The accepted forms run in real bash with values built to break out of their quoting; the
rejected forms are reported at their own line of the file, with the fix.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from actions.events import StepEnded
from actions.masking import Masker
from actions.plan import prepare_steps
from actions.render import RenderContext
from actions.runbook import check_runbook, inspect_runbook, load_runbook
from actions.runner import run_steps

REPO = Path(__file__).resolve().parents[3]
PAYLOADS = ("$(touch PWNED)", "`touch PWNED`", "'; touch PWNED; '", '"; touch PWNED; "',
            "x\ntouch PWNED", "$'\\x27'; touch PWNED")  # fmt: skip

# Each accepted form prints the value back; the step must print exactly the value.
ACCEPTED = {
    "a plain argument": "printf '%s' {{ vars.x }}",
    "glued to an option": "printf '%s' --value={{ vars.x }} | sed '1s/^--value=//'",
    "a variable, then double-quoted": 'name={{ vars.x }}\nprintf "%s" "$name"',
    "inside $(…) in double quotes": 'out="$(printf %s {{ vars.x }})"\nprintf %s "$out"',
    "a variable in an unquoted here-document": (
        "name={{ vars.x }}\ncat <<EOF | head -c -1\n$name\nEOF"
    ),
    "an argument next to a quoted here-document": (
        "bash -s -- {{ vars.x }} <<'EOF'\nprintf %s \"$1\"\nEOF"
    ),
    "a here-string": "cat <<< {{ vars.x }} | head -c -1",
    "after a comment": "# prints vars.x\nprintf %s {{ vars.x }}  # as given",
}


def runbook_text(run: str, value: str = "v") -> str:
    return f"""\
[project]
name = "Shop"
workdir = "app"

[vars]
x = {toml_string(value)}
db_name = "shop"

[[scenario]]
key = "demo"
title = "Demo"
  [[scenario.step]]
  name = "Step"
  run = '''
{run}
'''
"""


def toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "app").mkdir(exist_ok=True)
    path = tmp_path / "runbook.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def run_scenario(path: Path) -> StepEnded:
    runbook = load_runbook(path)
    prepared = prepare_steps(runbook, runbook.scenarios[0].steps, RenderContext.at(runbook))
    events = []

    async def sink(event):
        events.append(event)

    await run_steps(prepared, on_event=sink, masker=Masker())
    return next(e for e in events if isinstance(e, StepEnded))


@pytest.mark.parametrize("form", sorted(ACCEPTED))
@pytest.mark.parametrize("payload", PAYLOADS)
async def test_accepted_forms_pass_the_value_through_and_run_nothing(tmp_path, form, payload):
    path = write(tmp_path, runbook_text(ACCEPTED[form], payload))
    assert inspect_runbook(path) == ([], [])
    ended = await run_scenario(path)
    assert ended.succeeded, ended.output_tail
    assert not (tmp_path / "app" / "PWNED").exists()
    assert ended.output_tail == payload.rstrip("\n")


# (run script, line of the placeholder in the file, what the message must say)
REJECTED = [
    ('echo ok\necho "{{ vars.x }}"', 16, "inside double quotes"),
    ("echo '{{ vars.x }}'", 15, "inside single quotes"),
    ("cat <<EOF\nhello\n{{ vars.x }}\nEOF", 17, "unquoted here-document"),
    ("cat <<-EOF\n\t{{ vars.x }}\n\tEOF", 16, "unquoted here-document"),
    ("psql -v ON_ERROR_STOP=1 <<'SQL'\nselect {{ vars.x }};\nSQL", 16, "quoted here-document"),
    ('echo "${y:-{{ vars.x }}}"', 15, "inside ${…}"),
    ("echo $(( {{ vars.x }} + 1 ))", 15, "inside $((…))"),
    ("eval {{ vars.x }}", 15, "an argument of eval"),
    ("echo $'{{ vars.x }}'", 15, "inside $'…'"),
    ("echo ok\n# restores {{ vars.x }}", 16, "inside a comment"),
]


@pytest.mark.parametrize(("run", "line", "says"), REJECTED)
def test_forms_that_undo_the_quoting_are_rejected_at_their_line_with_the_fix(
    tmp_path, run, line, says
):
    [problem] = check_runbook(write(tmp_path, runbook_text(run)))
    assert problem.line == line, problem
    assert not problem.warning
    assert 'step 1 ("Step"): run: {{ vars.x }} ' in problem.message
    assert says in problem.message
    assert any(fix in problem.message for fix in ("remove the", "variable", "argument", "call"))


def test_a_rejected_form_in_a_one_line_run_is_reported_at_the_run_key(tmp_path):
    one_line = 'run = "echo \\"{{ vars.x }}\\""'
    text = runbook_text("echo ok").replace("run = '''\necho ok\n'''", one_line)
    [problem] = check_runbook(write(tmp_path, text))
    assert problem.line == 14
    assert "inside double quotes" in problem.message


@pytest.mark.parametrize(
    "run",
    [
        "psql -d {{ vars.db_name }} < dump.sql",
        "gunzip -c dump.sql.gz | psql -d {{ vars.db_name }}",
        "psql -d {{ vars.db_name }} -f dump.sql",
        "psql -d {{ vars.db_name }} <<'SQL'\nselect 1;\nSQL",
    ],
)
def test_a_psql_script_without_on_error_stop_is_a_warning_not_an_error(tmp_path, run):
    path = write(tmp_path, runbook_text("echo ok\n" + run))
    problems, warnings = inspect_runbook(path)
    assert problems == []
    [warning] = warnings
    assert (warning.line, warning.warning) == (16, True)
    assert "without -v ON_ERROR_STOP=1" in warning.message
    assert str(warning).startswith(f"{path}:16: warning: ")
    load_runbook(path)  # a warning does not stop the bot


def test_psql_with_on_error_stop_or_a_single_command_is_not_warned(tmp_path):
    run = ("psql -v ON_ERROR_STOP=1 -1 -d {{ vars.db_name }} < dump.sql\n"
           "psql -d {{ vars.db_name }} -c 'select 1'")  # fmt: skip
    assert inspect_runbook(write(tmp_path, runbook_text(run))) == ([], [])


def test_runbook_check_prints_warnings_and_still_exits_0(tmp_path):
    path = write(tmp_path, runbook_text("psql -d {{ vars.db_name }} < dump.sql"))
    done = subprocess.run(
        [sys.executable, "-m", "bot", "runbook", "check", str(path)],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"{path}:15: warning: " in done.stdout
    assert done.stdout.rstrip().endswith(f"{path}: ok, 1 warning(s)")


async def test_an_artifact_path_with_quotes_cannot_break_or_inject_the_artifact_check(tmp_path):
    text = """\
[project]
name = "Shop"
workdir = "app"

[backup]
  [[backup.step]]
  name = "Dump"
  run = "true"
  artifact = { name = "db_dump", path = "backup/o'neil $(touch PWNED).sql" }
"""
    runbook = load_runbook(write(tmp_path, text))
    prepared = prepare_steps(runbook, runbook.backup_steps, RenderContext.at(runbook))
    events = []

    async def sink(event):
        events.append(event)

    await run_steps(prepared, on_event=sink, masker=Masker())
    ended = next(e for e in events if isinstance(e, StepEnded))
    assert ended.status == "failed"
    assert ended.output_tail == "backup file backup/o'neil $(touch PWNED).sql is missing or empty"
    assert not (tmp_path / "app" / "PWNED").exists()
