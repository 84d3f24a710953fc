"""`rollback-bot runbook check` runs shellcheck on every rendered step, at the runbook's lines."""

from __future__ import annotations

import re

from tests.e2e.test_cli import run_bot

RUNBOOK = """\
[project]
name = "x"
workdir = "/tmp"

[[scenario]]
key = "db"
title = "t"
trigger = "t"
  [[scenario.step]]
  name = "single"
  run = "cd /srv/app"

  [[scenario.step]]
  name = "multi"
  run = '''
echo ok
rm -rf "$target"/
'''

[[verify.check]]
name = "c"
run = "test -n {{ vars.host }}"

[vars]
host = "db.example.test"
"""


def findings(stdout: str, path) -> list[tuple[int, str, str]]:
    """(line, problem|warning, SC code) of every shellcheck line."""
    pattern = rf"{re.escape(str(path))}:(\d+): (problem|warning): .*\(shellcheck (SC\d+), \w+\)$"
    return [
        (int(m[1]), m[2], m[3]) for m in map(re.compile(pattern).match, stdout.splitlines()) if m
    ]


def test_warnings_name_the_runbook_line_and_the_check_still_passes(tmp_path):
    path = tmp_path / "runbook.toml"
    path.write_text(RUNBOOK)
    result = run_bot("runbook", "check", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(findings(result.stdout, path)) == [
        (11, "warning", "SC2164"),  # cd without || exit: the step's one line is line 11
        (17, "warning", "SC2115"),  # rm -rf "$target"/ may be rm -rf /: the script's 2nd line
        (17, "warning", "SC2154"),  # $target is never assigned
    ]
    assert result.stdout.strip().endswith(f"{path}: ok, 3 warning(s)")


def test_a_shellcheck_error_is_a_problem_at_its_line(tmp_path):
    path = tmp_path / "runbook.toml"
    path.write_text(RUNBOOK.replace("echo ok\n", "if true; then\n"))
    result = run_bot("runbook", "check", str(path), cwd=tmp_path)
    assert result.returncode == 1
    errors = {line for line, kind, _ in findings(result.stdout, path) if kind == "problem"}
    assert errors and errors <= {16, 17}
    assert "problem(s) in" in result.stderr and "Traceback" not in result.stderr


def test_the_shipped_runbook_is_shellcheck_clean(tmp_path):
    from tests.e2e.harness import REPO

    result = run_bot("runbook", "check", str(REPO / "runbook.toml"), cwd=tmp_path)
    assert result.returncode == 0
    assert findings(result.stdout, REPO / "runbook.toml") == []
