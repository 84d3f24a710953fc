"""A prepared step on its hosts over SSH: strict bash under `setsid`, stopped remotely.

On each host the script runs as `bash -e -u -o pipefail -c SCRIPT` (as locally), in the
step's workdir there, in a session of its own whose id the wrapper prints first on stderr.
A timeout or a cancellation kills that whole process group on the host (SIGTERM, then
SIGKILL after the grace) over the same connection, not just the SSH channel. Output
(stdout and stderr merged on the host) goes through the same line collector and masking as
a local step's. Nothing of the bot's environment is sent: the host's sshd gives the login
environment, plus only what `env` names.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import signal
from collections.abc import Mapping
from contextlib import suppress

import asyncssh

from actions.events import HostOutcome, StepStatus, utc_now
from actions.masking import Masker
from actions.remote import HostPool, RemoteError
from actions.runner import KILL_GRACE, OUTPUT_INTERVAL, PreparedStep, StepResult, _outcome
from actions.step_output import LineCollector, OutputCallback, pump_lines, report_lines

_MARK = "rollback-bot:"
_WRAPPER = (
    f'cd -- "$1" 2>/dev/null || {{ echo "{_MARK}nodir" >&2; exit 1; }}; '
    f'echo "{_MARK}pgid:$$" >&2; '
    'exec bash --norc -e -u -o pipefail -c "$2" 2>&1'
)
_SIGNALLED = re.compile(r"^setsid: child \d+ did not exit normally")
STOP_TIMEOUT = 15.0  # seconds for the remote kill command itself


def remote_command(script: str, workdir: str, env: Mapping[str, str] | None = None) -> str:
    """What the host's login shell runs: exports, then the script in its own session."""
    exports = "".join(f"export {k}={shlex.quote(v)}; " for k, v in (env or {}).items())
    # --norc: bash started under sshd would source bashrc files even without a terminal
    wrapper = f"setsid -f -w bash --norc -c {shlex.quote(_WRAPPER)} rollback-bot"
    return f"{exports}exec {wrapper} {shlex.quote(workdir)} {shlex.quote(script)} </dev/null"


async def execute_on_hosts(
    step: PreparedStep,
    pool: HostPool,
    *,
    masker: Masker,
    env: Mapping[str, str] | None = None,
    tail_lines: int = 20,
    on_output: OutputCallback | None = None,
) -> StepResult:
    """Run the step on each of its hosts at once; it succeeds only when every host did."""
    started = utc_now()
    many = len(step.hosts) > 1

    def output_for(name: str) -> OutputCallback | None:
        if on_output is None or not many:
            return on_output

        async def labelled(lines: tuple[str, ...]) -> None:
            await on_output(tuple(f"[{name}] {line}" for line in lines))

        return labelled

    tasks = [
        asyncio.create_task(_on_host(step, name, pool, masker, env, tail_lines, output_for(name)))
        for name in step.hosts
    ]
    try:
        outcomes = await asyncio.gather(*tasks)
    except BaseException:  # cancelled: every host stops its processes before this returns
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
        raise
    return _combine(list(outcomes), started)


def _combine(outcomes: list[HostOutcome], started) -> StepResult:
    bad = [o for o in outcomes if o.status != "succeeded"]
    status: StepStatus = (
        "succeeded" if not bad else "timed_out" if any(o.status == "timed_out" for o in bad)
        else "failed"
    )  # fmt: skip
    if len(outcomes) == 1:
        only = outcomes[0]
        message = f"on {only.host}: {only.message}" if only.message else ""
        tail = only.output_tail
    else:
        message = "; ".join(f"{o.status.replace('_', ' ')} on {o.host}: {o.message}" for o in bad)
        if bad:
            good = [o.host for o in outcomes if o.status == "succeeded"]
            message += f"; succeeded on {', '.join(good)}" if good else ""
        tail = "\n".join(f"── {o.host} ──\n{o.output_tail}".rstrip() for o in outcomes)
    return StepResult(
        status,
        bad[0].exit_code if bad else 0,
        started,
        utc_now(),
        tail,
        sum(o.line_count for o in outcomes),
        message,
        hosts=tuple(outcomes),
    )


async def _on_host(
    step: PreparedStep,
    name: str,
    pool: HostPool,
    masker: Masker,
    env: Mapping[str, str] | None,
    tail_lines: int,
    on_output: OutputCallback | None,
) -> HostOutcome:
    lines = LineCollector(tail_lines)

    def outcome(status: StepStatus, code: int | None, message: str) -> HostOutcome:
        tail = "\n".join(masker.mask(line) for line in lines.tail)
        return HostOutcome(name, status, code, masker.mask(message), tail, lines.count)

    try:
        conn = await pool.connection(name)
    except RemoteError as error:
        return outcome("failed", None, str(error))
    command = remote_command(step.script, str(step.workdir), env)
    try:
        process = await conn.create_process(command, encoding=None, stdin=asyncssh.DEVNULL)
    except (asyncssh.Error, OSError) as exc:
        pool.forget(name)
        return outcome("failed", None, f"could not start the step on host {name}: {exc}")
    remote = _RemoteProcess(process, lines)
    done = asyncio.Event()
    reporter = (
        asyncio.create_task(report_lines(lines, masker, on_output, done, OUTPUT_INTERVAL))
        if on_output
        else None
    )
    timed_out = lost = False
    try:
        try:
            async with asyncio.timeout(step.timeout):
                await remote.wait()
        except TimeoutError:
            timed_out = True
        except (asyncssh.Error, OSError):
            lost = True
        done.set()
        if reporter is not None:
            await reporter
    finally:
        if not remote.finished:  # timed out, cancelled, or an error while running
            await asyncio.shield(remote.stop(conn))
        if reporter is not None:
            reporter.cancel()
    lines.finish()
    if remote.no_workdir:
        return outcome("failed", None, f"working directory {step.workdir} does not exist")
    code = remote.exit_code
    if not timed_out and (lost or code is None):
        pool.forget(name)
        return outcome(
            "failed", None, f"the connection to host {name} was lost before the step ended"
        )
    status, message = _outcome(code, timed_out, step.timeout)
    return outcome(status, code, message)


class _RemoteProcess:
    """One remote step's channel: output into `lines`, the remote session id from stderr."""

    def __init__(self, process: asyncssh.SSHClientProcess, lines: LineCollector) -> None:
        self.process, self.lines = process, lines
        self.pgid: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.no_workdir = self.signalled = False
        self.finished = False
        # Read on its own: a stop must still see the session id if it was not read yet.
        self._stderr_reader = asyncio.create_task(self._stderr())

    async def wait(self) -> None:
        await pump_lines(self.process.stdout, self.lines)  # type: ignore[arg-type]
        await asyncio.shield(self._stderr_reader)
        await self.process.wait_closed()
        self.finished = True

    @property
    def exit_code(self) -> int | None:
        status = self.process.exit_status
        if self.process.exit_signal is not None:
            return -_signal_number(self.process.exit_signal[0])
        if status is None or status < 0:
            return None
        if self.signalled:  # setsid -w exits with the signal number after "did not exit…"
            return -(status & 0x7F)
        return status

    async def _stderr(self) -> None:
        partial = b""
        while chunk := await self.process.stderr.read(65536):
            *complete, partial = (partial + chunk).split(b"\n")
            for raw in complete:
                self._stderr_line(raw.decode("utf-8", "replace"))
        if partial:
            self._stderr_line(partial.decode("utf-8", "replace"))

    def _stderr_line(self, line: str) -> None:
        if line.startswith(f"{_MARK}pgid:") and not self.pgid.done():
            with suppress(ValueError):
                self.pgid.set_result(int(line.rsplit(":", 1)[1]))
        elif line == f"{_MARK}nodir":
            self.no_workdir = True
        elif _SIGNALLED.match(line):
            self.signalled = True
        else:  # the login shell's own messages ("setsid: command not found") belong in the tail
            self.lines.feed(line.encode() + b"\n")

    async def stop(self, conn: asyncssh.SSHClientConnection) -> None:
        """Kill the step's whole session on the host, then close the channel."""
        try:
            pgid = await asyncio.wait_for(asyncio.shield(self.pgid), 5.0)
        except TimeoutError:
            pgid = None
        if pgid is not None and pgid > 1:
            polls = max(int(KILL_GRACE / 0.1), 1)
            kill = (
                f"kill -TERM -- -{pgid} 2>/dev/null; for _ in $(seq {polls}); do "
                f"kill -0 -- -{pgid} 2>/dev/null || exit 0; sleep 0.1; done; "
                f"kill -KILL -- -{pgid} 2>/dev/null; true"
            )
            with suppress(TimeoutError, asyncssh.Error, OSError):
                await asyncio.wait_for(conn.run(kill, check=False), STOP_TIMEOUT)
        self.process.close()
        with suppress(TimeoutError, asyncssh.Error, OSError):
            await asyncio.wait_for(self.process.wait_closed(), 5.0)
        self._stderr_reader.cancel()


def _signal_number(name: str) -> int:
    with suppress(KeyError):
        return int(signal.Signals[f"SIG{name}"])
    return 0
