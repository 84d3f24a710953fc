import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

from actions.events import RunEnded, RunStarted, StepEnded, StepOutput, StepStarted
from actions.masking import MASK, Masker
from actions.runner import PreparedStep, execute_step, run_steps
from actions.step_output import LineCollector

NO_SECRETS = Masker()


def make_step(workdir: Path, script: str, index: int = 0, **options) -> PreparedStep:
    options.setdefault("timeout", 60.0)
    return PreparedStep(
        index=index, name=f"step {index}", script=script, workdir=workdir, **options
    )


class Sink:
    """Collects events; optional `on_step_ended` runs (awaited) for each StepEnded."""

    def __init__(self, on_step_ended=None):
        self.events = []
        self.on_step_ended = on_step_ended

    async def __call__(self, event):
        self.events.append(event)
        if isinstance(event, StepEnded) and self.on_step_ended:
            await self.on_step_ended(event)

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]


def is_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


async def wait_until(condition, within: float = 15.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.05)
    return condition()


@pytest.fixture
def leftover_pids():
    """PIDs a test leaves running on purpose; killed afterwards."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def test_successful_steps_emit_events_in_order(tmp_path):
    sink = Sink()
    steps = [make_step(tmp_path, "echo one", 0), make_step(tmp_path, "echo two; pwd", 1)]
    ended = await run_steps(steps, on_event=sink, masker=NO_SECRETS)

    assert ended == RunEnded("succeeded", next_index=2)
    assert [type(e) for e in sink.events] == [
        RunStarted,
        StepStarted,
        StepEnded,
        StepStarted,
        StepEnded,
        RunEnded,
    ]
    assert sink.events[0] == RunStarted(total_steps=2, start_index=0)
    first, second = sink.of(StepEnded)
    assert (first.status, first.exit_code, first.output_tail) == ("succeeded", 0, "one")
    assert second.output_tail == f"two\n{tmp_path}"
    assert first.started_at.tzinfo is not None and first.ended_at >= first.started_at


async def test_failing_step_stops_the_run_where_a_retry_would_resume(tmp_path):
    sink = Sink()
    steps = [
        make_step(tmp_path, "echo ok", 0),
        make_step(tmp_path, "echo broken >&2; exit 3", 1),
        make_step(tmp_path, "touch never", 2),
    ]
    ended = await run_steps(steps, on_event=sink, masker=NO_SECRETS)

    assert ended == RunEnded("failed", next_index=1, failed_steps=(1,))
    assert sink.events[-1] == ended
    failed = sink.of(StepEnded)[-1]
    assert (failed.status, failed.exit_code, failed.output_tail) == ("failed", 3, "broken")
    assert failed.message == "exited with status 3"
    assert not (tmp_path / "never").exists()


async def test_resumed_run_starts_at_the_given_step(tmp_path):
    sink = Sink()
    steps = [make_step(tmp_path, "touch zero", 0), make_step(tmp_path, "touch one", 1)]
    ended = await run_steps(steps, start=1, on_event=sink, masker=NO_SECRETS)

    assert ended.status == "succeeded"
    assert sink.events[0] == RunStarted(total_steps=2, start_index=1)
    assert [e.index for e in sink.of(StepStarted)] == [1]
    assert (tmp_path / "one").exists() and not (tmp_path / "zero").exists()


@pytest.mark.parametrize(
    "script",
    ["false; echo after", "false | cat; echo after", 'echo "$SURELY_UNSET_VARIABLE"; echo after'],
    ids=["errexit", "pipefail", "nounset"],
)
async def test_first_failing_line_fails_the_step(tmp_path, script):
    result = await execute_step(make_step(tmp_path, script), masker=NO_SECRETS)
    assert result.status == "failed"
    assert "after" not in result.output_tail


async def test_missing_command_says_so(tmp_path):
    result = await execute_step(make_step(tmp_path, "no-such-program-xyz"), masker=NO_SECRETS)
    assert result.exit_code == 127
    assert "command not found" in result.message


async def test_continue_on_error_step_does_not_stop_the_run(tmp_path):
    sink = Sink()
    steps = [
        make_step(tmp_path, "exit 1", 0, continue_on_error=True),
        make_step(tmp_path, "touch reached", 1),
    ]
    ended = await run_steps(steps, on_event=sink, masker=NO_SECRETS)

    assert ended == RunEnded("succeeded", next_index=2, failed_steps=(0,))
    assert [e.status for e in sink.of(StepEnded)] == ["failed", "succeeded"]
    assert "continue_on_error" in sink.of(StepEnded)[0].message
    assert (tmp_path / "reached").exists()


async def test_timeout_kills_the_whole_process_group(tmp_path):
    script = "sleep 300 & echo $! > child.pid\nsleep 300"
    started = time.monotonic()
    result = await execute_step(make_step(tmp_path, script, timeout=1.0), masker=NO_SECRETS)

    assert result.status == "timed_out"
    assert "timed out after 1s" in result.message
    assert time.monotonic() - started < 30
    child = int((tmp_path / "child.pid").read_text())
    assert await wait_until(lambda: not is_alive(child))


async def test_timeout_kills_children_that_ignore_sigterm(tmp_path):
    script = "(trap '' TERM; sleep 300; true) & echo $! > child.pid\nsleep 300"
    result = await execute_step(make_step(tmp_path, script, timeout=1.0), masker=NO_SECRETS)

    assert result.status == "timed_out"
    child = int((tmp_path / "child.pid").read_text())
    assert await wait_until(lambda: not is_alive(child))


async def test_cancelling_the_task_kills_the_process_group(tmp_path):
    script = "sleep 300 & echo $! > child.tmp && mv child.tmp child.pid\nsleep 300"
    task = asyncio.create_task(execute_step(make_step(tmp_path, script), masker=NO_SECRETS))
    assert await wait_until((tmp_path / "child.pid").is_file)
    child = int((tmp_path / "child.pid").read_text())

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_until(lambda: not is_alive(child))


async def test_background_child_holding_output_does_not_hang_a_finished_step(
    tmp_path, leftover_pids
):
    script = "sleep 300 & echo $! > child.pid\necho done"
    started = time.monotonic()
    result = await execute_step(make_step(tmp_path, script, timeout=120.0), masker=NO_SECRETS)
    leftover_pids.append(int((tmp_path / "child.pid").read_text()))

    assert (result.status, result.output_tail) == ("succeeded", "done")
    assert time.monotonic() - started < 60


async def test_output_tail_keeps_the_last_lines_and_counts_all(tmp_path):
    result = await execute_step(make_step(tmp_path, "seq 1 100"), masker=NO_SECRETS, tail_lines=5)
    assert result.output_tail == "96\n97\n98\n99\n100"
    assert result.line_count == 100


async def test_huge_output_does_not_hang(tmp_path):
    script = "seq 1 1000000\nhead -c 3000000 /dev/zero | tr '\\0' x\necho\necho end"
    result = await execute_step(make_step(tmp_path, script, timeout=300.0), masker=NO_SECRETS)

    assert result.status == "succeeded"
    assert result.line_count == 1_000_002
    *_, cut, last = result.output_tail.splitlines()
    assert last == "end"
    assert cut.startswith("xxx") and cut.endswith("(line cut)") and len(cut) < 3000


async def test_secret_from_env_file_never_reaches_any_event(tmp_path):
    secret = "tok-very-secret-42"
    (tmp_path / ".env").write_text(f"API_TOKEN={secret}\nPORT=3000\n")
    masker = Masker.from_env_file(tmp_path / ".env")
    script = (
        "source ./.env\n"
        'echo "value: $API_TOKEN"\n'
        "sleep 3\n"
        'echo "again $API_TOKEN on port $PORT"\n'
        'echo "$API_TOKEN" >&2\n'
        "exit 1"
    )
    sink = Sink()
    await run_steps([make_step(tmp_path, script)], on_event=sink, masker=masker)

    assert sink.of(StepOutput), "a step printing for 3 seconds reports output while it runs"
    assert secret not in repr(sink.events)
    # Every value of a `.env` file is a secret, the port too.
    tail = sink.of(StepEnded)[0].output_tail
    assert tail == f"value: {MASK}\nagain {MASK} on port {MASK}\n{MASK}"


async def test_stop_is_honoured_between_steps(tmp_path):
    sink = Sink()

    async def stop_requested():
        return len(sink.of(StepEnded)) >= 1

    steps = [make_step(tmp_path, "touch zero", 0), make_step(tmp_path, "touch one", 1)]
    ended = await run_steps(steps, on_event=sink, masker=NO_SECRETS, stop_requested=stop_requested)

    assert ended == RunEnded("cancelled", next_index=1)
    assert sink.events[-1] == ended
    assert (tmp_path / "zero").exists() and not (tmp_path / "one").exists()


async def test_each_step_result_is_stored_before_the_next_step_starts(tmp_path):
    stored_at: dict[int, float] = {}

    async def slow_store(event: StepEnded):
        await asyncio.sleep(1.0)
        (tmp_path / f"stored-{event.index}").touch()
        stored_at[event.index] = time.time()

    steps = [
        make_step(tmp_path, "echo first", 0),
        make_step(tmp_path, "date +%s.%N > started-1\ntest -f stored-0", 1),
    ]
    ended = await run_steps(steps, on_event=Sink(slow_store), masker=NO_SECRETS)

    assert ended.status == "succeeded", "step 1 found step 0's result already stored"
    assert float((tmp_path / "started-1").read_text()) >= stored_at[0]


async def test_missing_workdir_is_a_failed_step_not_an_exception(tmp_path):
    sink = Sink()
    missing = tmp_path / "gone"
    ended = await run_steps([make_step(missing, "true")], on_event=sink, masker=NO_SECRETS)

    assert ended == RunEnded("failed", next_index=0, failed_steps=(0,))
    step_ended = sink.of(StepEnded)[0]
    assert step_ended.exit_code is None
    assert step_ended.message == f"working directory {missing} does not exist"


async def test_env_is_the_whole_environment_and_stdin_is_empty(tmp_path, monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-must-not-leak")
    script = 'echo "$GREETING${SLACK_BOT_TOKEN:-}"; cat; command -v bash >/dev/null'
    env = {"PATH": os.environ["PATH"], "GREETING": "hi"}
    result = await execute_step(
        make_step(tmp_path, script, timeout=30.0), masker=NO_SECRETS, env=env
    )
    assert (result.status, result.output_tail) == ("succeeded", "hi")


def test_line_collector_handles_progress_bars_colours_and_a_last_unterminated_line():
    lines = LineCollector(tail_lines=3)
    lines.feed(b"10%\r50%\r100%\n\x1b[32mgreen\x1b[0m\nno new")
    lines.feed(b"line at end")
    lines.finish()
    assert list(lines.tail) == ["100%", "green", "no newline at end"]
    assert lines.count == 3
    assert lines.take_unreported() == ["100%", "green", "no newline at end"]
    assert lines.take_unreported() == []


async def test_step_killed_by_a_signal_says_which(tmp_path):
    result = await execute_step(make_step(tmp_path, "kill -KILL $$"), masker=NO_SECRETS)
    assert (result.status, result.exit_code) == ("failed", -9)
    assert result.message == "killed by signal SIGKILL"
