"""Runs -> Block Kit: the progress message, step messages, controls, verification. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from actions.durations import format_duration
from bot.runs.clock import Estimate
from bot.slack.blocks import (
    Block,
    button,
    confirm_dialog,
    context,
    escape,
    mention,
    section,
    slack_time,
)
from bot.slack.ids import Action

_STEP_ICON = {
    "running": ":hourglass_flowing_sand:",
    "succeeded": ":white_check_mark:",
    "failed": ":x:",
    "timed_out": ":alarm_clock:",
    "interrupted": ":warning:",
}
_RUN_TITLE = {"backup": "Backup", "rollback": "Rollback"}


def output_block(tail: str) -> Block | None:
    """The last lines of a step's output (already masked), inert and bounded."""
    if not tail.strip():
        return None
    text = escape(tail.replace("```", "'''"), limit=2500)
    return section(f"```{text}```", verbatim=True)


def clock(moment: datetime) -> str:
    """A time of day every reader sees in their own time zone (`14:05 UTC` in the fallback)."""
    fallback = moment.astimezone(UTC).strftime("%H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{time}}|{fallback}>"


def left_text(seconds: float) -> str:
    """`about 4m left`, to the nearest minute; `under a minute left` below one."""
    if seconds < 60:
        return "under a minute left"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"about {f'{hours}h {minutes:02d}m' if hours else f'{minutes}m'} left"


def running_for(elapsed: float | None, last_time: float | None) -> str:
    """` — running 3m 10s (last time 4m 50s)`: empty before the step's clock shows."""
    if elapsed is None:
        return ""
    last = f" (last time {format_duration(last_time)})" if last_time is not None else ""
    return f" — running {format_duration(elapsed)}{last}"


def progress(
    run: dict[str, Any],
    *,
    done: int,
    current: str | None,
    now: datetime,
    state: str,
    elapsed: float | None = None,
    last_time: float | None = None,
    estimate: Estimate | None = None,
) -> tuple[str, list[Block]]:
    """The one message at the top of the thread, kept current while the run goes.

    While a step runs: `elapsed` (as shown, None before it shows) and its `last_time`; the
    run's `estimate` when every step still to run has a last duration.
    """
    total = run["total_steps"]
    title = _RUN_TITLE[run["kind"]]
    scenario = f" `{run['scenario']}`" if run["scenario"] else ""
    took = format_duration((now - run["started_at"]).total_seconds()) if run["started_at"] else "-"
    bar = "▰" * done + "▱" * (total - done) if total <= 30 else f"{done}/{total}"
    status = {
        "running": f"step {min(done + 1, total)} of {total}: *{escape(current or '')}*"
        + running_for(elapsed, last_time)
        if current
        else "starting",
        "waiting": "stopped at a failed step, waiting for a decision",
        "interrupted": "interrupted, waiting for a decision",
        "succeeded": "finished",
        "failed": "did not complete",
        "aborted": "aborted",
        "cancelled": "cancelled",
        "queued": "queued",
    }.get(state, state)
    text = f"*{title}{scenario}* · {done}/{total} steps done · {status} · elapsed {took}"
    if state == "running" and estimate is not None:
        text += f" · estimated finish {clock(estimate.finish)} ({left_text(estimate.left)})"
    blocks: list[Block] = [section(f"{text}\n{bar}")]
    if state == "running" and run.get("kind") == "rollback":
        stop = run.get("stop_requested_by")
        if stop:
            blocks.append(
                context(
                    f"Cancel requested by {mention(stop)}: the run stops after the current step."
                )
            )
        else:
            blocks.append(
                {
                    "type": "actions",
                    "block_id": f"run-{run['id']}-cancel",
                    "elements": [
                        button(
                            "Cancel run",
                            Action.CANCEL_RUN,
                            str(run["id"]),
                            style="danger",
                            confirm=confirm_dialog(
                                "Cancel the rollback?",
                                "The current step finishes first; no further step starts.",
                                "Cancel run",
                                danger=True,
                            ),
                        ),
                    ],
                }
            )
    return f"{title}: {done}/{total} steps done", blocks


def step_message(
    *,
    index: int,
    total: int,
    name: str,
    status: str,
    attempt: int = 1,
    started_at: datetime | None = None,
    duration: float | None = None,
    tail: str = "",
    message: str = "",
    hosts: Sequence[Any] = (),
    elapsed: float | None = None,
    last_time: float | None = None,
) -> tuple[str, list[Block]]:
    """A step's message: posted when it starts, edited while it runs long and when it ends.

    Running: since when, and how long it took `last_time`; once its clock shows, how long it
    has run (`elapsed`, as shown) instead of since when.
    A step on hosts (`hosts`: its HostOutcome per host) shows each host's result and last lines.
    """
    again = f" (attempt {attempt})" if attempt > 1 else ""
    head = f"{_STEP_ICON.get(status, '')} *Step {index + 1}/{total}: {escape(name)}*{again}"
    if status == "running":
        said = running_for(elapsed, last_time)
        if not said:
            when = f" since {slack_time(started_at)}" if started_at else ""
            last = f" (last time {format_duration(last_time)})" if last_time is not None else ""
            said = f" — running{when}{last}"
        return f"Step {index + 1}/{total} running: {name}", [section(f"{head}{said}")]
    took = f" in {format_duration(duration)}" if duration is not None else ""
    said = {
        "succeeded": "succeeded",
        "failed": "failed",
        "timed_out": "timed out",
        "interrupted": "interrupted",
    }.get(status, status)
    blocks = [section(f"{head} — {said}{took}")]
    if message and status != "succeeded":
        blocks.append(context(escape(message, limit=500)))
    if hosts:
        blocks += host_results(hosts)
    elif (output := output_block(tail)) is not None:
        blocks.append(output)
    return f"Step {index + 1}/{total} {said}: {name}", blocks


def host_results(hosts: Sequence[Any]) -> list[Block]:
    """One line per host (icon, name, how it ended), then its last output lines."""
    blocks: list[Block] = []
    for outcome in hosts[:10]:  # a message holds at most 50 blocks
        said = {"succeeded": "succeeded", "timed_out": "timed out"}.get(outcome.status, "failed")
        why = f": {escape(outcome.message, limit=300)}" if outcome.message else ""
        icon = _STEP_ICON.get(outcome.status, "")
        blocks.append(context(f"{icon} *{escape(outcome.host)}* — {said}{why}"))
        if (output := output_block("\n".join(outcome.output_tail.splitlines()[-8:]))) is not None:
            blocks.append(output)
    if len(hosts) > 10:
        blocks.append(context(f"… and {len(hosts) - 10} more hosts"))
    return blocks


def controls(
    run_id: int,
    index: int,
    name: str,
    *,
    reason: str,
    interrupted: bool = False,
    skippable: bool = True,
) -> tuple[str, list[Block]]:
    """Retry / Skip / Abort after a failure (no Skip when `skippable` is False, for a backup
    step that makes an artifact); Resume / Abort after an interruption."""
    value = f"{run_id}:{index}"
    abort = button(
        "Abort",
        Action.ABORT,
        value,
        style="danger",
        confirm=confirm_dialog(
            "Abort the rollback?",
            "No further step runs. The system may be half-restored.",
            "Abort",
            danger=True,
        ),
    )
    if interrupted:
        elements = [
            button(
                "Resume",
                Action.RESUME,
                value,
                style="primary",
                confirm=confirm_dialog(
                    "Resume from here?",
                    f"{name[:80]} run again from the start.",
                    "Resume",
                ),
            ),
            abort,
        ]
    else:
        skip = button(
            "Skip",
            Action.SKIP,
            value,
            confirm=confirm_dialog(
                "Skip this step?",
                f"Step {index + 1} ({name[:80]}) will be recorded as skipped.",
                "Skip",
            ),
        )
        elements = [button("Retry", Action.RETRY, value, style="primary"), abort]
        if skippable:
            elements.insert(1, skip)
    text = f":raised_hand: {reason} Approvers decide:"
    return reason, [
        section(text),
        {"type": "actions", "block_id": f"ctl-{value}", "elements": elements},
    ]


def control_decided(text: str) -> tuple[str, list[Block]]:
    """The controls once someone chose: who chose what, and when (no buttons)."""
    return text, [section(text)]


def verification(checks: Sequence[Any]) -> tuple[str, list[Block]]:
    """The verification results, one line each."""
    if not checks:
        return "No verification checks are defined.", [
            section(
                ":grey_question: No verification checks are defined in the runbook, so nothing "
                "was verified."
            )
        ]
    passed = sum(1 for c in checks if c.passed)
    lines = [f"*Verification: {passed}/{len(checks)} checks passed*"]
    for check in checks:
        icon = ":white_check_mark:" if check.passed else ":x:"
        lines.append(f"{icon} {escape(check.name)} — {escape(check.detail, limit=300)}")
    return lines[0].strip("*"), [section("\n".join(lines))]


def finished(
    run: dict[str, Any], *, state: str, verified: bool | None, ended_at: datetime
) -> tuple[str, list[Block]]:
    """The last line of a run."""
    title = _RUN_TITLE[run["kind"]]
    took = format_duration((ended_at - run["started_at"]).total_seconds())
    if state == "succeeded" and run["kind"] == "backup":
        text = f":floppy_disk: Backup completed in {took}; every artifact is recorded."
    elif state == "succeeded":
        check = {
            True: "verification passed",
            False: "verification FAILED — see above",
            None: "nothing verified",
        }[verified]
        text = f":checkered_flag: {title} finished in {took}; {check}."
    else:
        text = f":octagonal_sign: {title} {state} after {took}."
    return text, [section(text)]


def backup_root(user: str, total: int) -> tuple[str, list[Block]]:
    """The channel message that opens a backup's thread."""
    text = f":floppy_disk: {mention(user)} started the pre-integration backup ({total} steps)."
    return "Backup started", [section(text), context("Progress is in this thread.")]
