"""Installed as pipx or a Procfile host installs it: a wheel built from an sdist, in a fresh
venv outside the checkout, run from an empty directory. Nothing may come from the checkout.

Building the sdist and wheel and installing the dependencies takes ~30 s (pip's cache and
index are used as usual); the demo ~10 s more.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import REPO

# Not copied: not source, and other pytest-xdist workers write some of these (.pyc files,
# Hypothesis's example database) while this test copies the checkout.
NOT_SOURCE = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
              ".hypothesis")  # fmt: skip


def clean_env(**settings: str) -> dict[str, str]:
    """Our environment without the bot's settings, any virtualenv or PYTHONPATH."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "ROLLBACK_"))
        and k not in ("DATABASE_URL", "PORT", "PYTHONPATH", "VIRTUAL_ENV")
    }
    return {**env, **settings}


def run(*command: str | Path, cwd: Path, timeout: float, **settings: str):
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=clean_env(**settings),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def checked(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"{result.args}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The venv's bin/ directory, with the package installed from its wheel."""
    base = tmp_path_factory.mktemp("install")
    source = base / "source"  # a copy: the build writes build/ and *.egg-info where it runs
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    checked(run(sys.executable, "-m", "build", "--outdir", base / "dist", source,
                cwd=base, timeout=600))  # fmt: skip
    (wheel,) = (base / "dist").glob("rollback_bot-*.whl")
    shutil.rmtree(source)  # the checkout's copy is gone: only the wheel remains
    checked(run(sys.executable, "-m", "venv", base / "venv", cwd=base, timeout=120))
    bin_dir = base / "venv" / "bin"
    checked(run(bin_dir / "pip", "install", "-q", wheel, cwd=base, timeout=900))
    return bin_dir


@pytest.fixture
def empty(tmp_path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


def test_the_installed_package_is_the_wheel_not_the_checkout(installed, empty):
    where = checked(run(installed / "python", "-c", "import bot; print(bot.__file__)",
                        cwd=empty, timeout=60))  # fmt: skip
    assert Path(where.stdout.strip()).is_relative_to(installed.parent)


def test_the_installed_demo_plays_from_an_empty_directory(installed, empty, tmp_path):
    data = tmp_path / "data"
    result = checked(run(installed / "rollback-bot", "demo", "--plain", cwd=empty, timeout=600,
                         ROLLBACK_DATA_DIR=str(data)))  # fmt: skip
    assert "Traceback" not in result.stdout + result.stderr
    assert "System Maintenance Notice" in result.stdout  # the notice template was found
    postmortem = (data / "demo" / "postmortems" / "RB-1.md").read_text()
    assert postmortem.startswith("# ")  # the post-mortem template was found
    assert list(empty.iterdir()) == []  # the demo needs nothing in, and leaves nothing in, cwd


def test_the_installed_bot_asks_for_a_runbook_then_init_writes_one_that_checks(installed, empty):
    missing = run(installed / "rollback-bot", "runbook", "check", cwd=empty, timeout=60)
    assert missing.returncode == 1
    assert len(missing.stderr.strip().splitlines()) == 1
    assert "rollback-bot init" in missing.stderr and "Traceback" not in missing.stderr

    checked(run(installed / "rollback-bot", "init", cwd=empty, timeout=60))
    assert sorted(p.name for p in empty.iterdir()) == [".env.example", "runbook.toml"]
    assert (empty / "runbook.toml").read_text() == (REPO / "runbook.toml").read_text()
    assert (empty / ".env.example").read_text() == (REPO / ".env.example").read_text()

    check = checked(run(installed / "rollback-bot", "runbook", "check", cwd=empty, timeout=60))
    assert check.stdout.strip() == "runbook.toml: ok"
