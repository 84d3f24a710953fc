"""The fence is early: a process that can't renew its lease stops its step before another
process may offer Resume (issue 12, path 9)."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

from tests.e2e.db_proxy import DatabaseProxy
from tests.e2e.harness import fetch
from tests.e2e.test_one_operation import answer
from tests.e2e.test_runs import APPROVER, buttons, click

SCENARIOS = textwrap.dedent("""
    [[scenario]]
    key = "long"
    title = "A long step with a child"
    trigger = "test"
      [[scenario.step]]
      name = "Long"
      run = "echo $$ > step.pid; sleep 120 & echo $! > child.pid; wait"
""")
LEASE = "4"


def alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie (already dead, not yet reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_a_bot_whose_database_stalls_kills_its_step_before_another_offers_resume(
    start_bot, fake, tmp_path
):
    proxy = DatabaseProxy(start_bot.dsn)
    await proxy.start()
    env = {"DATABASE_URL": proxy.dsn, "ROLLBACK_RUN_LEASE": LEASE}
    first = await start_bot(scenarios=SCENARIOS, workdir=tmp_path, env=env)
    try:
        await answer(first, fake, "declare critical long broke")
        await click(first, fake, APPROVER, "rollback_approve")
        pids = []
        for _ in range(600):
            files = [tmp_path / "step.pid", tmp_path / "child.pid"]
            if all(f.exists() and f.read_text().strip() for f in files):
                pids = [int(f.read_text()) for f in files]
                break
            await asyncio.sleep(0.1)
        assert pids and all(alive(p) for p in pids)
        proxy.freeze()  # the first bot's queries now hang: it can't renew its lease
        await start_bot(rewrite=False, env={"ROLLBACK_RUN_LEASE": LEASE})
        for _ in range(900):
            step_alive = any(alive(p) for p in pids)  # looked at before the database
            state = (await fetch(start_bot.dsn, "select state from runs"))[0]["state"]
            if state != "running":
                assert state == "interrupted"
                assert not step_alive, "another process took the run while its step still ran"
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the run was never taken as interrupted")
        await fake.wait_for(lambda f: buttons(f, "run_resume"), timeout=30)
        assert not any(alive(p) for p in pids)
        assert "lease not renewed in time" in first.logs()
        steps = await fetch(start_bot.dsn, "select status from step_results")
        assert [s["status"] for s in steps] == ["interrupted"]
    finally:
        proxy.thaw()
        await proxy.cut()
