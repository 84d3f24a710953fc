"""Run rendered bash steps one by one: strict bash, timeouts, process groups, masked events."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from actions.events import (
    EventSink,
    HostOutcome,
    RunEnded,
    RunStarted,
    StepEnded,
    StepOutput,
    StepStarted,
    StepStatus,
    utc_now,
)
from actions.masking import Masker
from actions.remote import HostPool
from actions.step_output import (
    LineCollector,
    OutputCallback,
    open_pipe_reader,
    pump_lines,
    report_lines,
)

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL of a step's process group
DRAIN_GRACE = 1.0  # seconds to keep reading after bash exits: a background child may hold the pipe
OUTPUT_INTERVAL = 1.0  # at most one StepOutput per this many seconds per step
# Options rather than a prepended `set -euo pipefail` line, so bash reports true line numbers.
_BASH = ("bash", "-e", "-u", "-o", "pipefail", "-c")
_EXIT_HINTS = {126: " (a program is not executable)", 127: " (command not found)"}


@dataclass(frozen=True)
class PreparedStep:
    """A step ready to run: its command text is already rendered and its workdir resolved."""

    index: int
    name: str
    script: str  # rendered bash
    workdir: Path
    timeout: float  # seconds
    continue_on_error: bool = False
    hosts: tuple[str, ...] = ()  # run there over SSH, in parallel (a path on each); empty: here


@dataclass(frozen=True)
class StepResult:
    """How one step ended; `output_tail` and `message` are masked."""

    status: StepStatus
    exit_code: int | None  # None when bash never ran; negative: killed by that signal
    started_at: datetime
    ended_at: datetime
    output_tail: str
    line_count: int
    message: str = ""
    hosts: tuple[HostOutcome, ...] = ()  # a step on hosts: each host's result


async def execute_step(
    step: PreparedStep,
    *,
    masker: Masker,
    env: Mapping[str, str] | None = None,
    tail_lines: int = 20,
    on_output: OutputCallback | None = None,
) -> StepResult:
    """Run one step with `bash -euo pipefail` in its own process group and report how it ended.

    `env`, when given, is the step's whole environment (the bot passes its own without its
    Slack secrets); None inherits the bot's. Output (stdout and stderr merged) is
    kept as its last `tail_lines` lines; `on_output` gets new masked lines at most once per
    second. A step that outlives its timeout, or whose task is cancelled, has its whole
    process group stopped (SIGTERM, then SIGKILL); cancellation is then re-raised.
    Background processes left by a step that exits on its own are not killed.
    """
    started = utc_now()
    lines = LineCollector(tail_lines)

    def result(status: StepStatus, exit_code: int | None, message: str) -> StepResult:
        tail = "\n".join(masker.mask_lines(lines.tail))
        return StepResult(
            status, exit_code, started, utc_now(), tail, lines.count, masker.mask(message)
        )

    if not step.workdir.is_dir():
        return result("failed", None, f"working directory {step.workdir} does not exist")
    read_fd, write_fd = os.pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
            *_BASH,
            step.script,
            cwd=step.workdir,
            env=dict(env) if env is not None else None,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=write_fd,
            stderr=write_fd,
            start_new_session=True,
        )
    except OSError as exc:
        os.close(read_fd)
        return result("failed", None, f"could not start bash in {step.workdir}: {exc}")
    finally:
        os.close(write_fd)  # only the child writes now, so EOF comes when its processes close it

    try:
        timed_out = await _supervise(proc, read_fd, step.timeout, lines, masker, on_output)
    finally:
        if proc.returncode is None:  # cancelled, or an error, while the step was running
            await _stop_group(proc)
    lines.finish()
    status, message = _outcome(proc.returncode, timed_out, step.timeout)
    return result(status, proc.returncode, message)


async def _supervise(
    proc: asyncio.subprocess.Process,
    read_fd: int,
    timeout: float,
    lines: LineCollector,
    masker: Masker,
    on_output: OutputCallback | None,
) -> bool:
    """Collect the output until bash exits or times out; True when it had to be stopped."""
    transport, reader = await open_pipe_reader(read_fd)
    pump = asyncio.create_task(pump_lines(reader, lines))
    done = asyncio.Event()
    reporter = (
        asyncio.create_task(report_lines(lines, masker, on_output, done, OUTPUT_INTERVAL))
        if on_output
        else None
    )
    timed_out = False
    try:
        try:
            async with asyncio.timeout(timeout):
                await proc.wait()
        except TimeoutError:
            timed_out = True
            await _stop_group(proc)
        await asyncio.wait([pump], timeout=DRAIN_GRACE)
        done.set()
        if reporter is not None:
            await reporter
    finally:
        pump.cancel()
        if reporter is not None:
            reporter.cancel()
        transport.close()
    return timed_out


async def run_steps(
    steps: Sequence[PreparedStep],
    *,
    start: int = 0,
    on_event: EventSink,
    masker: Masker,
    env: Mapping[str, str] | None = None,
    stop_requested: Callable[[], Awaitable[bool]] | None = None,
    tail_lines: int = 20,
    pool: HostPool | None = None,
) -> RunEnded:
    """Run `steps[start:]` in order, emitting events, and return (and emit) the RunEnded.

    RunStarted is emitted on every call, resumed runs included (`start_index`). Before each
    step `stop_requested()` is asked; True ends the run as "cancelled". Every `on_event` call
    is awaited, so a StepEnded is stored by the sink before the next step starts; an error
    raised by the sink stops the run and propagates. `RunEnded.next_index` is a position in
    `steps`, to pass back as `start`. If this task is cancelled, the running step's
    processes are stopped and no RunEnded is emitted.

    A step with `hosts` runs there over SSH through `pool` (the run's connections, which the
    caller closes), with none of `env`: a remote step gets its host's login environment only.
    """
    if pool is None and any(step.hosts for step in steps[start:]):
        raise ValueError("steps on hosts need the run's HostPool (pool=)")
    if not 0 <= start <= len(steps):
        raise ValueError(f"start {start} is outside the {len(steps)} steps")
    await on_event(RunStarted(total_steps=len(steps), start_index=start))
    failed: list[int] = []
    for position in range(start, len(steps)):
        if stop_requested is not None and await stop_requested():
            return await _end(on_event, RunEnded("cancelled", position, tuple(failed)))
        step = steps[position]
        await on_event(StepStarted(step.index, step.name, utc_now()))

        async def forward(new: tuple[str, ...], index: int = step.index) -> None:
            await on_event(StepOutput(index, new))

        if step.hosts and pool is not None:
            from actions.remote_step import execute_on_hosts  # it builds on this module

            outcome = await execute_on_hosts(
                step, pool, masker=masker, tail_lines=tail_lines, on_output=forward
            )
        else:
            outcome = await execute_step(
                step, masker=masker, env=env, tail_lines=tail_lines, on_output=forward
            )
        message = outcome.message
        if outcome.status != "succeeded":
            failed.append(step.index)
            if step.continue_on_error:
                message += "; continuing: this step may fail (continue_on_error)"
        await on_event(
            StepEnded(
                index=step.index,
                name=step.name,
                status=outcome.status,
                exit_code=outcome.exit_code,
                started_at=outcome.started_at,
                ended_at=outcome.ended_at,
                output_tail=outcome.output_tail,
                message=message,
                line_count=outcome.line_count,
                continue_on_error=step.continue_on_error,
                hosts=outcome.hosts,
            )
        )
        if outcome.status != "succeeded" and not step.continue_on_error:
            return await _end(on_event, RunEnded("failed", position, tuple(failed)))
    return await _end(on_event, RunEnded("succeeded", len(steps), tuple(failed)))


async def _end(on_event: EventSink, ended: RunEnded) -> RunEnded:
    await on_event(ended)
    return ended


def _outcome(exit_code: int | None, timed_out: bool, timeout: float) -> tuple[StepStatus, str]:
    if timed_out:
        return "timed_out", f"timed out after {_seconds(timeout)}; its processes were stopped"
    if exit_code == 0:
        return "succeeded", ""
    if exit_code is None:
        return "failed", "did not stop even after SIGKILL"
    if exit_code < 0:
        with suppress(ValueError):
            return "failed", f"killed by signal {signal.Signals(-exit_code).name}"
        return "failed", f"killed by signal {-exit_code}"
    return "failed", f"exited with status {exit_code}{_EXIT_HINTS.get(exit_code, '')}"


def _seconds(value: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if value >= size and value % size == 0:
            return f"{value / size:g}{unit}"
    return f"{value:g}s"


async def _stop_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the step's whole process group, then SIGKILL whatever is left after a grace."""
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        deadline = time.monotonic() + KILL_GRACE
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        _signal_group(proc.pid, signal.SIGKILL)
        with suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 5.0)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True
