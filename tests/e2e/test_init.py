"""Where the runbook comes from: `rollback-bot init`, ROLLBACK_RUNBOOK, then ./runbook.toml,
and one line saying how to get one when there is none."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.harness import REPO, write_runbook
from tests.e2e.test_cli import BROKEN, TOKEN, UNREACHABLE_DB, run_bot

SHIPPED = {"runbook.toml": REPO / "runbook.toml", ".env.example": REPO / ".env.example"}


def assert_one_line(result, *parts: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for part in parts:
        assert part in lines[0]
    assert "Traceback" not in result.stderr


# --- init ------------------------------------------------------------------------------------


def test_init_writes_the_shipped_runbook_and_env_example_and_says_what_to_edit(tmp_path):
    result = run_bot("init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(SHIPPED)
    for name, shipped in SHIPPED.items():
        assert (tmp_path / name).read_text() == shipped.read_text()

    lines = (tmp_path / "runbook.toml").read_text().splitlines()
    named = [int(n) for n in re.findall(r"^ +runbook\.toml:(\d+): ", result.stdout, re.M)]
    marked = [n for n, line in enumerate(lines, 1) if "REPLACE" in line]
    workdir = next(n for n, line in enumerate(lines, 1) if line.startswith("workdir ="))
    variables = lines.index("[vars]") + 1
    assert marked and named == sorted({workdir, *marked, variables})  # each line once
    assert "rollback-bot runbook check" in result.stdout

    check = run_bot("runbook", "check", cwd=tmp_path)
    assert check.returncode == 0 and check.stdout.strip() == "runbook.toml: ok"


def test_init_into_a_new_directory_creates_it(tmp_path):
    target = tmp_path / "ops" / "rollback"
    result = run_bot("init", str(target), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in target.iterdir()) == sorted(SHIPPED)
    assert f"cd {target} && rollback-bot runbook check" in result.stdout


@pytest.mark.parametrize("existing", ["runbook.toml", ".env.example"])
def test_init_refuses_to_overwrite_in_one_line_and_writes_nothing(tmp_path, existing):
    (tmp_path / existing).write_text("mine\n")
    result = run_bot("init", cwd=tmp_path)
    assert_one_line(result, existing, "already exists", "nothing was written", "--force")
    assert [p.name for p in tmp_path.iterdir()] == [existing]
    assert (tmp_path / existing).read_text() == "mine\n"


def test_init_force_overwrites(tmp_path):
    (tmp_path / "runbook.toml").write_text("mine\n")
    result = run_bot("init", "--force", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "runbook.toml").read_text() == SHIPPED["runbook.toml"].read_text()


def test_init_into_a_file_says_so(tmp_path):
    (tmp_path / "afile").write_text("x")
    assert_one_line(run_bot("init", "afile", cwd=tmp_path), "afile is not a directory")


# --- a missing runbook -----------------------------------------------------------------------

SERVING = {"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": "s", "DATABASE_URL": UNREACHABLE_DB}
NEEDS_A_RUNBOOK = {
    "serve": ("serve", "--http"),
    "rehearse": ("rehearse", "full"),
    "backup": ("backup",),
    "runbook check": ("runbook", "check"),
}


@pytest.mark.parametrize("command", NEEDS_A_RUNBOOK)
def test_a_missing_runbook_is_one_line_saying_how_to_get_one(tmp_path, command):
    result = run_bot(*NEEDS_A_RUNBOOK[command], cwd=tmp_path, **SERVING)
    assert_one_line(
        result, f"no runbook.toml in {tmp_path}", "ROLLBACK_RUNBOOK", "rollback-bot init"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", NEEDS_A_RUNBOOK)
def test_a_missing_rollback_runbook_is_named_not_replaced_by_the_local_one(tmp_path, command):
    write_runbook(tmp_path / "runbook.toml")
    missing = tmp_path / "elsewhere" / "runbook.toml"
    result = run_bot(
        *NEEDS_A_RUNBOOK[command], cwd=tmp_path, ROLLBACK_RUNBOOK=str(missing), **SERVING
    )
    assert_one_line(result, f"no runbook at {missing} (ROLLBACK_RUNBOOK)", "rollback-bot init")


def test_rollback_runbook_wins_over_the_working_directory(tmp_path):
    (tmp_path / "runbook.toml").write_text(BROKEN)
    good = write_runbook(tmp_path / "chosen.toml")
    result = run_bot("runbook", "check", cwd=tmp_path, ROLLBACK_RUNBOOK=str(good))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"{good}: ok"


def test_an_explicit_file_wins_over_rollback_runbook(tmp_path):
    chosen = write_runbook(tmp_path / "chosen.toml")
    result = run_bot(
        "runbook", "check", str(chosen), cwd=tmp_path, ROLLBACK_RUNBOOK=str(tmp_path / "nope")
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"{chosen}: ok"


def test_the_demo_needs_no_runbook_in_the_working_directory(tmp_path):
    result = run_bot(  # fails fast, after reading the shipped runbook's scenarios
        "demo", "--scenario", "nope", cwd=tmp_path, ROLLBACK_DATA_DIR=str(tmp_path / "data")
    )
    assert "no scenario 'nope'; the runbook has: " in result.stderr
    assert "full" in result.stderr and "Traceback" not in result.stderr
    assert not Path(tmp_path / "runbook.toml").exists()
