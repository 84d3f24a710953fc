"""Command-line runs that need no Slack: `rollback-bot rehearse` and `rollback-bot backup`."""

from __future__ import annotations

import asyncio
import getpass
import os
import re
from datetime import UTC, datetime

import asyncpg

from actions.model import Runbook
from bot.db.postgres import create_pool, migrate
from bot.incidents import store
from bot.runs import queue as run_queue
from bot.runs import store as run_store
from bot.runs.executor import RunExecutor
from bot.runs.handlers import rehearsal_text
from bot.services import Services
from bot.settings import Settings


def rehearse(settings: Settings, runbook: Runbook, dsn: str, scenario: str) -> int:
    """Print the dry run of a scenario; exit 0 when it passed, 1 otherwise."""
    if runbook.scenario(scenario) is None:
        from bot.startup import Stop

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
            me = f"cli:{getpass.getuser()}:{os.getpid()}"
            services = Services(pool=pool, runbook=runbook, process_id=me)
            async with pool.acquire() as conn:
                try:  # one operation at a time (index runs_one_operation): the CLI doesn't wait
                    run = await store.insert_run(
                        conn,
                        kind="backup",
                        channel="",
                        requested_by=f"cli:{getpass.getuser()}",
                        ts=datetime.now(UTC).strftime("%Y%m%d_%H%M%S"),
                        total_steps=len(runbook.backup_steps),
                    )
                except asyncpg.UniqueViolationError:
                    active = await run_store.active_run(conn)
                    raise _stop(active) from None
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
            if completed:
                print("backup completed")
            elif final["state"] == "failed":
                print(
                    "backup NOT completed (failed): fix what failed above, then run "
                    "`rollback-bot backup` again. Rollbacks keep using the last complete backup."
                )
            else:
                print(
                    f"backup NOT completed ({final['state']}): `rollback-bot runs` shows it; "
                    f"`rollback-bot abort {final['id']}` ends it."
                )
            return completed
        finally:
            await pool.close()

    return 0 if asyncio.run(main()) else 1


def _stop(active):
    """The one line a refused command-line backup prints: what is active, what to do."""
    from bot.startup import Stop

    if active is None:  # it ended between the refusal and this look: just try again
        return Stop("another operation was active a moment ago; run `rollback-bot backup` again.")
    if active["channel"]:
        what = "decide in its thread, or " if active["state"] in ("waiting", "interrupted") else ""
        todo = f"let it finish ({what}`rollback-bot abort {active['id']}` if it is stopped)"
    else:
        todo = f"`rollback-bot abort {active['id']}` ends it if stopped or if its process is gone"
    return Stop(
        f"no backup started: one operation at a time, and {run_queue.describe(active)} is "
        f"active. `rollback-bot runs` lists runs; {todo}."
    )


def runs(settings: Settings, dsn: str, args) -> int:
    """`rollback-bot runs` (a table) and `rollback-bot abort RUN` (recorded as the OS user)."""
    from bot.runs.admin import AbortRefused, abort, run_lines
    from bot.runs.executor import RESUME_GRACE
    from bot.startup import Stop, load_or_stop

    run_id = None
    if args.command == "abort":
        if not re.fullmatch(r"[0-9]{1,12}", args.run.strip()):
            raise Stop(f"{args.run!r} is not a run id; `rollback-bot runs` lists them (like 12).")
        run_id = int(args.run)
    runbook = load_or_stop(settings.runbook_path) if run_id is not None else None

    async def main() -> str:
        await migrate(dsn)
        pool = await create_pool(dsn, max_size=2)
        try:
            if run_id is None:
                async with pool.acquire() as conn:
                    return "\n".join(await run_lines(conn))
            services = Services(pool=pool, runbook=runbook, process_id="cli")
            try:
                return await abort(
                    services, run_id=run_id, actor=f"cli:{getpass.getuser()}", grace=RESUME_GRACE
                )
            except AbortRefused as refused:
                raise Stop(str(refused)) from None
        finally:
            await pool.close()

    try:
        print(asyncio.run(main()))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        raise Stop(f"the database is unavailable ({type(error).__name__}: {error}).") from None
    return 0
