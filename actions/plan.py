"""From runbook steps to runnable steps: render, add the artifact check, rehearse. No Slack."""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from actions.artifacts import RecordedArtifact, artifact_problem
from actions.model import Check, Runbook, Scenario, Step
from actions.quoting import commands_only
from actions.render import RenderContext, RenderError, render, scenario_artifacts
from actions.runner import PreparedStep
from actions.shell_parse import programs_in


def step_workdir(runbook: Runbook, step: Step | Check) -> Path:
    """Where a step runs: its own workdir (relative to the project's) or the project's."""
    return runbook.workdir / step.workdir if step.workdir else runbook.workdir


def artifact_reference(step: Step, ctx: RenderContext) -> str | None:
    """The rendered path or value of a backup step's artifact (unquoted), or None."""
    if step.artifact is None:
        return None
    return render(step.artifact.path or step.artifact.value or "", ctx, shell=False)


def prepare_steps(
    runbook: Runbook, steps: Sequence[Step], ctx: RenderContext
) -> list[PreparedStep]:
    """Render every step (raises RenderError before anything runs)."""
    prepared = []
    for index, step in enumerate(steps):
        reference = artifact_reference(step, ctx)
        script = render(step.run, ctx.with_artifact(reference))
        if step.artifact is not None and step.artifact.is_file:
            # A backup step that "succeeds" without leaving its file is a failed backup.
            missing = shlex.quote(f"backup file {reference} is missing or empty")
            script += f"\ntest -s {shlex.quote(reference)} || {{ echo {missing} >&2; exit 1; }}"
        prepared.append(
            PreparedStep(
                index=index,
                name=step.name,
                script=script,
                workdir=step_workdir(runbook, step),
                timeout=step.timeout,
                continue_on_error=step.continue_on_error,
                hosts=step.hosts,
            )
        )
    return prepared


def prepare_checks(runbook: Runbook, ctx: RenderContext) -> list[tuple[Check, str]]:
    """Each verify check with its rendered script (quoted) or URL / query (as written)."""
    rendered = []
    for check in runbook.checks:
        text = check.run if check.run is not None else check.http or check.sql or ""
        rendered.append((check, render(text, ctx, shell=check.kind == "run")))
    return rendered


def artifact_refusal(
    scenario: Scenario,
    latest: Mapping[str, tuple[RecordedArtifact, Path]] | None,
    *,
    full: bool = True,
) -> str | None:
    """Why a scenario must not start with these backup artifacts, or None when it may.

    `full`: compare each file's sha256 (see `artifacts.artifact_problem`)."""
    needed = sorted(scenario_artifacts(scenario))
    if not needed:
        return None
    if latest is None:
        return "No completed backup exists. Run `/rollback backup` first, then ask again."
    problems = []
    for name in needed:
        if name not in latest:
            problems.append(f"the latest completed backup has no `{name}`")
            continue
        recorded, workdir = latest[name]
        if (problem := artifact_problem(recorded, workdir, full=full)) is not None:
            problems.append(problem)
    if not problems:
        return None
    return (
        "; ".join(problems) + ". Restore or re-take the backup (`/rollback backup`) "
        "before rolling back."
    )


@dataclass(frozen=True)
class RehearsedStep:
    """One step as it would run: its command, and the programs it needs that are missing."""

    name: str
    command: str
    missing_programs: tuple[str, ...]
    problem: str | None = None  # a placeholder that cannot be rendered


@dataclass(frozen=True)
class Rehearsal:
    """A dry run of a scenario: nothing executed."""

    scenario: Scenario
    steps: tuple[RehearsedStep, ...]
    backup_problem: str | None

    @property
    def passed(self) -> bool:
        """True when every step renders, every program exists and the backup is intact."""
        return self.backup_problem is None and all(
            not s.missing_programs and s.problem is None for s in self.steps
        )


def rehearse(
    runbook: Runbook,
    scenario: Scenario,
    ctx: RenderContext,
    latest: Mapping[str, tuple[RecordedArtifact, Path]] | None,
    *,
    path: str | None = None,
) -> Rehearsal:
    """Render every step and check its programs and backups; run nothing."""
    # Artifacts with no backup yet are shown as a marker, so every command is still readable.
    absent = {n: f"<no backup of {n}>" for n in scenario_artifacts(scenario) if n not in ctx.backup}
    shown = replace(ctx, backup={**absent, **ctx.backup})
    steps = []
    for step in scenario.steps:
        try:
            command = render(step.run, shown)
        except RenderError as error:
            steps.append(RehearsedStep(step.name, step.run.strip(), (), str(error)))
            continue
        missing = tuple(
            sorted(
                p
                for p in programs_in(commands_only(command))  # here-documents are not commands
                if shutil.which(p, path=path) is None
            )
        )
        steps.append(RehearsedStep(step.name, command.strip(), missing))
    return Rehearsal(scenario, tuple(steps), artifact_refusal(scenario, latest))
