"""What the runner and the checks report, as plain frozen data; the bot turns it into messages.

All times are timezone-aware UTC datetimes; every text field is already masked.

Step statuses (`StepEnded.status`):
- "succeeded": the script exited with status 0 (and, for backups, the caller accepted it);
- "failed": non-zero exit, a missing working directory, or a program that could not start;
- "timed_out": the step outlived its timeout and its whole process group was killed.

Run statuses (`RunEnded.status`):
- "succeeded": every step from the start index ran; failures of `continue_on_error` steps
  are listed in `failed_steps` but do not fail the run;
- "failed": a step that is not `continue_on_error` failed or timed out; the run stopped and
  `next_index` is that step (a Retry resumes there, a Skip at `next_index + 1`);
- "cancelled": a stop was requested; `next_index` is the first step that did not run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

StepStatus = Literal["succeeded", "failed", "timed_out"]
RunStatus = Literal["succeeded", "failed", "cancelled"]
STEP_STATUSES: tuple[StepStatus, ...] = ("succeeded", "failed", "timed_out")
RUN_STATUSES: tuple[RunStatus, ...] = ("succeeded", "failed", "cancelled")


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class RunStarted:
    """A run (or a resumed run, when `start_index` > 0) begins."""

    total_steps: int
    start_index: int = 0


@dataclass(frozen=True)
class StepStarted:
    """Step `index` is about to run."""

    index: int
    name: str
    started_at: datetime


@dataclass(frozen=True)
class StepOutput:
    """New output lines of a running step; at most one per second per step, best effort."""

    index: int
    lines: tuple[str, ...]


@dataclass(frozen=True)
class HostOutcome:
    """How a step ended on one of its `[hosts.NAME]` machines (text masked)."""

    host: str
    status: StepStatus
    exit_code: int | None
    message: str
    output_tail: str
    line_count: int = 0


@dataclass(frozen=True)
class StepEnded:
    """Step `index` finished; `output_tail` holds its last lines, `message` says why it failed."""

    index: int
    name: str
    status: StepStatus
    exit_code: int | None
    started_at: datetime
    ended_at: datetime
    output_tail: str
    message: str = ""
    line_count: int = 0  # lines the step printed in all; the tail may hold fewer
    continue_on_error: bool = False
    hosts: tuple[HostOutcome, ...] = ()  # a step on hosts: each host's own result

    @property
    def succeeded(self) -> bool:
        """True when the step exited with status 0."""
        return self.status == "succeeded"

    @property
    def duration(self) -> float:
        """How long the step ran, in seconds."""
        return (self.ended_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class RunEnded:
    """The run stopped; `next_index` is where a Retry would resume (see the module notes)."""

    status: RunStatus
    next_index: int
    failed_steps: tuple[int, ...] = ()  # indexes of failed steps, continue_on_error ones included


@dataclass(frozen=True)
class CheckEnded:
    """One verification check ran; `detail` says briefly what was seen."""

    name: str
    kind: str  # "run", "http" or "sql"
    passed: bool
    detail: str
    started_at: datetime
    ended_at: datetime

    @property
    def duration(self) -> float:
        """How long the check took, in seconds."""
        return (self.ended_at - self.started_at).total_seconds()


Event = RunStarted | StepStarted | StepOutput | StepEnded | RunEnded | CheckEnded
EventSink = Callable[[Event], Awaitable[None]]
