"""`rollback-bot …` as operators run it: one-line setting errors, runbook checks, migrations,
and a clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import dsn_for_database
from tests.e2e.harness import REPO, fetch, write_runbook

TOKEN = "xoxb-test-token"
UNREACHABLE_DB = "postgresql://nobody@127.0.0.1:1/none"  # fails fast if ever reached
MIGRATIONS = sorted(p.name for p in (REPO / "bot" / "db" / "migrations").glob("*.sql"))
BROKEN = """\
[project]
name = "x"
workdir = "/tmp"
colour = "blue"

[policy]
high_rollback_after = "2 hours"

[[scenario]]
key = "db"
title = "t"
trigger = "t"
  [[scenario.step]]
  name = "s"
  run = "echo {{ vars.nope }}"
"""
BROKEN_LINES = (4, 7, 15)  # unknown key, bad duration, unknown placeholder


def clean_env(**settings: str) -> dict[str, str]:
    """The caller's environment without any setting the bot reads, plus `settings`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "ROLLBACK_")) and k not in ("DATABASE_URL", "PORT")
    }
    env["PYTHONPATH"] = str(REPO)
    env.update(settings)
    return env


def run_bot(*args: str, cwd: Path, timeout: float = 60, **settings: str):
    """Run `python -m bot ARGS` to completion in `cwd`."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=clean_env(**settings),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


async def run_bot_async(*args: str, cwd: Path, **settings: str) -> tuple[int, str, str]:
    """The same, without blocking the event loop (fixtures may be serving on it)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env=clean_env(**settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out.decode(), err.decode()


def assert_one_line_naming(result, name: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert name in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


@pytest.fixture
def good_runbook(tmp_path) -> Path:
    return write_runbook(tmp_path / "good.toml")


@pytest.fixture
def broken_runbook(tmp_path) -> Path:
    path = tmp_path / "broken.toml"
    path.write_text(BROKEN)
    return path


# --- settings errors: one line, exit 2 -------------------------------------------------------


def test_serve_without_bot_token_names_it_in_one_line_and_exits_2(tmp_path, good_runbook):
    result = run_bot(
        "serve",
        cwd=tmp_path,
        ROLLBACK_RUNBOOK=str(good_runbook),
        DATABASE_URL=UNREACHABLE_DB,
        ROLLBACK_DATA_DIR=str(tmp_path / "data"),
    )
    assert result.returncode == 2
    assert_one_line_naming(result, "SLACK_BOT_TOKEN")


def test_serve_without_bot_token_names_it_even_without_a_runbook(tmp_path):
    result = run_bot(
        "serve", cwd=tmp_path, DATABASE_URL=UNREACHABLE_DB, ROLLBACK_DATA_DIR=str(tmp_path / "data")
    )
    assert result.returncode == 2
    assert_one_line_naming(result, "SLACK_BOT_TOKEN")


@pytest.mark.parametrize("port", ["abc", "70000"])
def test_malformed_port_names_port_in_one_line_and_exits_2(tmp_path, good_runbook, port):
    result = run_bot(
        "serve",
        cwd=tmp_path,
        PORT=port,
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_SIGNING_SECRET="s",
        ROLLBACK_RUNBOOK=str(good_runbook),
        DATABASE_URL=UNREACHABLE_DB,
    )
    assert result.returncode == 2
    assert_one_line_naming(result, "PORT")


def test_malformed_setting_in_dotenv_is_reported_the_same_way(tmp_path, good_runbook):
    (tmp_path / ".env").write_text(f"PORT=eighty\nROLLBACK_RUNBOOK={good_runbook}\n")
    result = run_bot("serve", cwd=tmp_path, DATABASE_URL=UNREACHABLE_DB)
    assert result.returncode == 2
    assert_one_line_naming(result, "PORT")


def test_a_token_of_the_wrong_kind_exits_1_like_a_token_slack_refused(tmp_path, good_runbook):
    (tmp_path / ".env").write_text(
        f"SLACK_BOT_TOKEN=xapp-1-not-a-bot-token\nROLLBACK_RUNBOOK={good_runbook}\n"
    )
    result = run_bot("serve", cwd=tmp_path, DATABASE_URL=UNREACHABLE_DB)
    assert result.returncode == 1
    assert_one_line_naming(result, "SLACK_BOT_TOKEN")


@pytest.mark.parametrize("app_token", [None, "xapp-1-abc"], ids=["plain", "with-app-token"])
def test_serve_http_without_signing_secret_names_it(tmp_path, good_runbook, app_token):
    settings = {
        "SLACK_BOT_TOKEN": TOKEN,
        "ROLLBACK_RUNBOOK": str(good_runbook),
        "DATABASE_URL": UNREACHABLE_DB,
    }
    if app_token:
        settings["SLACK_APP_TOKEN"] = app_token
    result = run_bot("serve", "--http", cwd=tmp_path, **settings)
    assert result.returncode == 2
    assert_one_line_naming(result, "SLACK_SIGNING_SECRET")


# --- the runbook -----------------------------------------------------------------------------


def test_serve_with_a_broken_runbook_lists_each_problem_and_exits_1(tmp_path, broken_runbook):
    result = run_bot(
        "serve",
        "--http",
        cwd=tmp_path,
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_SIGNING_SECRET="s",
        ROLLBACK_RUNBOOK=str(broken_runbook),
        DATABASE_URL=UNREACHABLE_DB,
    )
    assert result.returncode == 1
    assert "nothing was started" in result.stderr
    for line in BROKEN_LINES:
        assert f"{broken_runbook}:{line}: " in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_runbook_check_accepts_the_shipped_runbook(tmp_path):
    result = run_bot("runbook", "check", str(REPO / "runbook.toml"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"{REPO / 'runbook.toml'}: ok"


def test_runbook_check_lists_every_problem_with_its_line_and_exits_1(tmp_path, broken_runbook):
    result = run_bot("runbook", "check", str(broken_runbook), cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert [int(re.match(rf"{re.escape(str(broken_runbook))}:(\d+): ", ln)[1]) for ln in lines] == [
        *BROKEN_LINES
    ]
    assert "colour" in lines[0] and "2 hours" in lines[1] and "vars.nope" in lines[2]
    assert f"3 problem(s) in {broken_runbook}" in result.stderr
    assert "Traceback" not in result.stderr


def test_runbook_check_without_a_file_reads_the_working_directory_runbook(tmp_path):
    (tmp_path / "runbook.toml").write_text(BROKEN)
    result = run_bot("runbook", "check", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.startswith("runbook.toml:4: ")


def test_runbook_check_of_a_missing_file_says_so_without_a_traceback(tmp_path):
    result = run_bot("runbook", "check", "nowhere.toml", cwd=tmp_path)
    assert result.returncode == 1
    assert "nowhere.toml: cannot read the runbook" in result.stdout
    assert "Traceback" not in result.stderr + result.stdout


# --- migrations ------------------------------------------------------------------------------


def applied_count(stdout: str) -> int:
    return int(re.search(r"applied (\d+) migration\(s\)", stdout)[1])


async def test_migrate_applies_every_migration_once_then_none(fresh_database, tmp_path):
    code, out, err = await run_bot_async("migrate", cwd=tmp_path, DATABASE_URL=fresh_database)
    assert code == 0, err
    assert out.strip() == f"applied {len(MIGRATIONS)} migration(s): " + ", ".join(MIGRATIONS)
    rows = await fetch(fresh_database, "select name from schema_migrations order by number")
    assert [r["name"] for r in rows] == MIGRATIONS
    assert await fetch(fresh_database, "select * from incidents") == []

    code, out, err = await run_bot_async("migrate", cwd=tmp_path, DATABASE_URL=fresh_database)
    assert code == 0, err
    assert out.strip() == "applied 0 migration(s)"


async def test_two_migrations_at_once_apply_each_migration_exactly_once(fresh_database, tmp_path):
    results = await asyncio.gather(
        run_bot_async("migrate", cwd=tmp_path, DATABASE_URL=fresh_database),
        run_bot_async("migrate", cwd=tmp_path, DATABASE_URL=fresh_database),
    )
    for code, _, err in results:
        assert code == 0, err
        assert "Traceback" not in err
    assert sum(applied_count(out) for _, out, _ in results) == len(MIGRATIONS)
    rows = await fetch(
        fresh_database, "select name, count(*) as n from schema_migrations group by name"
    )
    assert {r["name"]: r["n"] for r in rows} == dict.fromkeys(MIGRATIONS, 1)


def database_urls(pg_server_dsn: str) -> dict[str, str]:
    return {
        "unreachable": UNREACHABLE_DB,
        "missing-database": dsn_for_database(pg_server_dsn, "no_such_database"),
    }


@pytest.mark.parametrize("problem", ["unreachable", "missing-database"])
async def test_migrate_with_a_bad_database_url_names_it_without_a_traceback(
    pg_server_dsn, tmp_path, problem
):
    url = database_urls(pg_server_dsn)[problem]
    code, out, err = await run_bot_async("migrate", cwd=tmp_path, DATABASE_URL=url)
    assert code == 1
    assert "DATABASE_URL" in err
    assert "Traceback" not in err + out


async def test_serve_with_an_unreachable_database_names_database_url(tmp_path, good_runbook):
    code, out, err = await run_bot_async(
        "serve",
        "--http",
        cwd=tmp_path,
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_SIGNING_SECRET="s",
        ROLLBACK_RUNBOOK=str(good_runbook),
        DATABASE_URL=UNREACHABLE_DB,
    )
    assert code == 1
    assert "database is unreachable" in err and "DATABASE_URL" in err
    assert "Traceback" not in err + out


async def test_serve_with_a_missing_database_names_database_url(
    pg_server_dsn, tmp_path, good_runbook
):
    code, out, err = await run_bot_async(
        "serve",
        "--http",
        cwd=tmp_path,
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_SIGNING_SECRET="s",
        ROLLBACK_RUNBOOK=str(good_runbook),
        DATABASE_URL=database_urls(pg_server_dsn)["missing-database"],
    )
    assert code == 1
    assert "DATABASE_URL" in err
    assert "Traceback" not in err + out


# --- serving ---------------------------------------------------------------------------------


async def test_serve_http_stops_cleanly_and_quickly_on_sigterm(start_bot):
    bot = await start_bot()
    started = time.monotonic()
    code = await bot.stop(signal.SIGTERM, timeout=10)
    assert code == 0, bot.logs()
    assert time.monotonic() - started < 10
    assert "Traceback" not in bot.logs()
