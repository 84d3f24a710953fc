"""Command-line runs that need no Slack: `rollback-bot rehearse` and `rollback-bot backup`."""

from __future__ import annotations

import asyncio
import getpass
from datetime import UTC, datetime

from actions.model import Runbook
from bot import run_store, store
from bot.database import create_pool, migrate
from bot.executor import RunExecutor
from bot.run_control import rehearsal_text
from bot.services import Services
from bot.settings import Settings


def rehearse(settings: Settings, runbook: Runbook, dsn: str, scenario: str) -> int:
    """Print the dry run of a scenario; exit 0 when it passed, 1 otherwise."""
    if runbook.scenario(scenario) is None:
        from bot.cli import Stop

        known = ", ".join(s.key for s in runbook.scenarios)
        raise Stop(f"there is no scenario {scenario!r} in {runbook.path} (known: {known}).")

    async def main() -> bool:
        await migrate(dsn)
        pool = await create_pool(dsn, max_size=2)
        try:
            services = Services(pool=pool, runbook=runbook, process_id="cli")
            text, passed = await rehearsal_text(services, scenario)
            if passed:
                async with pool.acquire() as conn:
                    await store.record_event(
                        conn,
                        incident_id=None,
                        actor=f"cli:{getpass.getuser()}",
                        kind="rehearsal_passed",
                        detail={"scenario": scenario},
                    )
            print(text)
            return passed
        finally:
            await pool.close()

    return 0 if asyncio.run(main()) else 1


def backup(settings: Settings, runbook: Runbook, dsn: str) -> int:
    """Run the backup steps here and now, record the artifacts, print each step's result."""

    async def main() -> bool:
        await migrate(dsn)
        pool = await create_pool(dsn, max_size=4)
        try:
            services = Services(pool=pool, runbook=runbook, process_id="cli")
            async with pool.acquire() as conn:
                run = await store.insert_run(
                    conn,
                    kind="backup",
                    channel="",
                    requested_by=f"cli:{getpass.getuser()}",
                    ts=datetime.now(UTC).strftime("%Y%m%d_%H%M%S"),
                    total_steps=len(runbook.backup_steps),
                )
            executor = RunExecutor(services, lease=settings.run_lease, poll_interval=5)
            await executor.execute(run["id"])
            async with pool.acquire() as conn:
                results = await run_store.step_results(conn, run_id=run["id"])
                final = await run_store.get_run(conn, run_id=run["id"])
            for result in results:
                print(f"{result['status']:>10}  {result['name']}  {result['message']}".rstrip())
                if result["status"] != "succeeded" and result["output_tail"]:
                    print("            " + result["output_tail"].replace("\n", "\n            "))
            completed = final["state"] == "succeeded"
            print("backup completed" if completed else f"backup NOT completed ({final['state']})")
            return completed
        finally:
            await pool.close()

    return 0 if asyncio.run(main()) else 1
