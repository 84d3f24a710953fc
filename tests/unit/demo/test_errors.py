import subprocess

import asyncpg

from bot.demo.play import _one_line
from bot.demo.stage import DemoError


def test_a_failed_command_is_named_with_its_exit_status():
    error = subprocess.CalledProcessError(128, ["git", "push", "origin", "main"])
    assert _one_line(error) == "`git push origin main` exited 128; the demo's log has its output."


def test_a_database_refusal_names_its_kind_on_one_line():
    error = asyncpg.InvalidAuthorizationSpecificationError('role "nobody" does not exist\nmore')
    expected = 'InvalidAuthorizationSpecificationError: role "nobody" does not exist'
    assert _one_line(error) == expected


def test_the_demos_own_errors_are_shown_as_written():
    assert _one_line(DemoError("/x exists and was not made by the demo")) == (
        "/x exists and was not made by the demo"
    )
