"""`--size real`: a rollback of a 1 GB shop through the bot, against the same commands in bash.

The bot runs the shipped runbook's `Database backup` step and the `database` scenario's
database steps (keep the failed database, restore), with its manifest check and its
comparison of the failed database with the restored one; bash runs the same rendered
commands as one script. Timed from the run's claim to its end (the database's clock).
Approval → first step is timed from the Approve click, beside one read (`cat`) and one
sha256 of the dump measured in the same run.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from actions.artifacts import file_digest
from actions.plan import artifact_reference, prepare_steps
from actions.render import RenderContext
from actions.runbook import load_runbook
from benchmarks import drive, real_rows, restore_formats, shop_db
from benchmarks.database import fresh_database
from benchmarks.load import Slack, session
from benchmarks.procs import bot_server
from benchmarks.report import Row
from bot.demo.sandbox.build import database_url, libpq_env, pg_bin_dir
from tests.e2e.harness import REPO
from tests.fake_slack.server import FakeSlack

REPS = real_rows.REPS  # bot/bash pairs of each, alternating which goes first
SCALE = float(os.environ.get("ROLLBACK_BENCH_SCALE", "1.0"))  # 1.0: about 1 GB
DB, TEMPLATE = "shop_bench", "shop_bench_template"
CHANNEL = "CBSHOP001"
SHIPPED = REPO / "runbook.toml"
STEPS = ("Backup current failed state", "Restore database")  # the database steps of `database`


def shipped_steps():
    """The shipped runbook's database backup step and the `database` scenario's DB steps."""
    runbook = load_runbook(SHIPPED)
    backup = [s for s in runbook.backup_steps if s.artifact and s.artifact.name == "db_dump"]
    scenario = runbook.scenario("database")
    assert scenario is not None, "the shipped runbook has no `database` scenario"
    return backup, [s for s in scenario.steps if s.name in STEPS]


def _toml_step(table: str, step, extra: str = "") -> str:
    assert "'''" not in step.run
    return (
        f"\n  [[{table}]]\n  name = \"{step.name}\"\n  run = '''\n{step.run.strip()}\n'''\n"
        f'  timeout = "30m"\n{extra}'
    )


def write_runbook(path: Path, *, workdir: Path, db_url: str) -> Path:
    """A runbook with the shipped steps, its manifest check and its data comparison."""
    backup, steps = shipped_steps()
    artifact = backup[0].artifact
    text = f"""
[project]
name = "Shop at real size"
workdir = "{workdir}"

[policy]
high_rollback_after = "1h"
approval_expires_after = "30m"
approvers = []
declarers = []
approvals_required = 1

[notify]
notice_channels = ["CNOTICE01"]

[contacts]
on_call = "UONCALL01"

[vars]
db_name = "{DB}"
db_url = "{db_url}"

[backup]
manifest_dsn = "{{{{ vars.db_url }}}}"
"""
    text += _toml_step(
        "backup.step",
        backup[0],
        f'  artifact = {{ name = "{artifact.name}", path = "{artifact.path}" }}\n',
    )
    text += """
[[scenario]]
key = "database"
title = "Database migration failure"
trigger = "benchmark"
compare_data = { failed = "{{ failed_db }}", restored = "{{ vars.db_url }}" }
"""
    for step in steps:
        text += _toml_step("scenario.step", step)
    text += '\n[[verify.check]]\nname = "Database matches the backup"\nmanifest = true\n'
    path.write_text(text)
    return path


def bash_script(
    runbook_path: Path, *, kind: str, ts: str, dump: str | None = None
) -> tuple[str, str | None]:
    """The same commands as one bash script, rendered as the bot renders them; the artifact."""
    runbook = load_runbook(runbook_path)
    steps = runbook.backup_steps if kind == "backup" else runbook.scenario("database").steps
    ctx = RenderContext(
        runbook=runbook,
        ts=ts,
        date=ts[:8],
        incident_id="RB-0",
        backup={"db_dump": dump} if dump else {},
    )
    scripts = [p.script for p in prepare_steps(runbook, steps, ctx)]
    artifact = artifact_reference(steps[0], ctx) if kind == "backup" else None
    return "set -euo pipefail\n" + "\n".join(scripts) + "\n", artifact


def _now_ts() -> str:
    return datetime.now(UTC).strftime("%Y%m%d_%H%M%S")


async def _bash(script: str, workdir: Path, env: dict[str, str], name: str) -> float:
    path = workdir / f"{name}.sh"
    path.write_text(script)
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec("bash", str(path), cwd=workdir, env=env)
    if await process.wait() != 0:
        raise RuntimeError(f"the bash baseline failed: {path}")
    return time.perf_counter() - started


async def _next_second() -> None:
    """Names made of the second (`ts`) never repeat: wait for the next one."""
    await asyncio.sleep(1.05 - datetime.now(UTC).microsecond / 1e6)


class Shop:
    """One measurement run: the server, the template, the workdir and the bot."""

    def __init__(self, work: Path, server: str) -> None:
        self.work, self.server = work, server
        self.workdir = work / "shop"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.db_url = database_url(server, DB)
        self.env = {
            **os.environ,
            **libpq_env(server, DB),
            "PATH": f"{pg_bin_dir()}:{os.environ.get('PATH', '')}",
        }
        self.env.pop("PGDATABASE", None)
        self.runbook = write_runbook(work / "shop-runbook.toml", workdir=self.workdir,
                                     db_url=self.db_url)  # fmt: skip
        self.facts: dict[str, float] = {}

    async def fresh(self) -> None:
        """The shop database as the backup saw it (a copy of the template)."""
        await shop_db.copy_of(self.server, TEMPLATE, DB)

    async def drop_kept(self) -> None:
        conn = await asyncpg.connect(self.server)
        try:
            for row in await conn.fetch(
                "select datname from pg_database where datname like $1", DB + "_failed_%"
            ):
                await conn.execute(f'drop database "{row["datname"]}" with (force)')
        finally:
            await conn.close()

    async def bash_backup(self) -> tuple[float, str]:
        await _next_second()
        ts = _now_ts()
        script, dump = bash_script(self.runbook, kind="backup", ts=ts)
        seconds = await _bash(script, self.workdir, self.env, "backup")
        return seconds, dump

    async def bash_rollback(self, dump: str) -> float:
        await self.fresh()
        await _next_second()
        script, _ = bash_script(self.runbook, kind="rollback", ts=_now_ts(), dump=dump)
        seconds = await _bash(script, self.workdir, self.env, "rollback")
        await self.drop_kept()
        return seconds


async def bot_backup(slack: Slack, conn: asyncpg.Connection) -> dict[str, float]:
    """`/rollback backup` through the bot; its claim → end and where the time went."""
    await _next_second()
    newest = await conn.fetchval("select coalesce(max(id), 0) from runs")
    await slack.send(slack.command("backup", user=drive.DECLARER, channel=CHANNEL))
    run = await drive.poll(
        conn,
        "select *, extract(epoch from ended_at - started_at)::float8 as seconds from runs"
        " where id > $1 and kind = 'backup' and state = any($2::text[])",
        newest,
        list(drive.RUN_ENDS),
        timeout=1800,
    )
    if run["state"] != "succeeded":
        raise RuntimeError(f"the bot's backup ended {run['state']}")
    return await _breakdown(conn, run) | {"run_id": run["id"]}


async def bot_rollback(slack: Slack, conn: asyncpg.Connection) -> dict[str, float]:
    """Declare, approve and run the `database` scenario; claim → end, click → first step."""
    await _next_second()
    incident = await drive.declare(slack, conn, "critical database benchmark", channel=CHANNEL)
    approval = await drive.poll(
        conn,
        "select id from approvals where incident_id = $1 and state = 'pending'",
        incident["id"],
        timeout=300,
    )
    await drive.outbox_drained(conn)
    clicked = time.time()
    ack = await slack.send(
        slack.click(user=drive.APPROVER, value=str(approval["id"]), channel=CHANNEL)
    )
    run = await drive.poll(
        conn,
        "select *, extract(epoch from ended_at - started_at)::float8 as seconds from runs"
        " where approval_id = $1 and state = any($2::text[])",
        approval["id"],
        list(drive.RUN_ENDS),
        timeout=3600,
    )
    if run["state"] != "succeeded":
        raise RuntimeError(f"the bot's rollback ended {run['state']}")
    facts = await _breakdown(conn, run)
    first = await conn.fetchval(
        "select extract(epoch from min(started_at))::float8 from step_results where run_id = $1",
        run["id"],
    )
    facts["click_to_first_step"] = first - clicked
    facts["approve_ack"] = ack
    passed = await conn.fetch("select name, passed, detail from check_results where run_id = $1",
                              run["id"])  # fmt: skip
    if not passed or not all(r["passed"] for r in passed):
        raise RuntimeError(f"the bot's verification did not pass: {[dict(r) for r in passed]}")
    await drive.resolve(slack, conn, incident_id=incident["id"], channel=CHANNEL)
    return facts


async def _breakdown(conn: asyncpg.Connection, run) -> dict[str, float]:
    """Claim → end, split: before the first step, the steps, after the last step."""
    row = await conn.fetchrow(
        "select extract(epoch from min(s.started_at) - r.started_at)::float8 as before,"
        " extract(epoch from max(s.ended_at) - min(s.started_at))::float8 as steps,"
        " extract(epoch from r.ended_at - max(s.ended_at))::float8 as after"
        " from runs r join step_results s on s.run_id = r.id where r.id = $1"
        " group by r.started_at, r.ended_at",
        run["id"],
    )
    compared = await conn.fetchval(
        "select extract(epoch from c.compared_at - max(s.ended_at))::float8"
        " from data_comparisons c join step_results s on s.run_id = c.run_id"
        " where c.run_id = $1 group by c.compared_at",
        run["id"],
    )
    check = await conn.fetchval(
        "select extract(epoch from sum(ended_at - started_at))::float8 from check_results"
        " where run_id = $1",
        run["id"],
    )
    return {"total": run["seconds"], **dict(row), "compare": compared or 0.0,
            "checks": check or 0.0}  # fmt: skip


async def _read_seconds(path: Path) -> tuple[float, float]:
    """One `cat FILE > /dev/null` and one sha256 of it (the bot's own function)."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_shell(f"cat '{path}' > /dev/null")
    await process.wait()
    cat = time.perf_counter() - started
    started = time.perf_counter()
    await asyncio.to_thread(file_digest, path)
    return cat, time.perf_counter() - started


async def measure(work: Path, server: str) -> list[Row]:
    """Every `--size real` row of the shop: backup, rollback, approval, restore formats."""
    shop = Shop(work, server)
    started = time.monotonic()
    async with shop_db.shop_template(server, TEMPLATE, SCALE):
        generated = time.monotonic() - started
        size = await shop_db.database_bytes(server, TEMPLATE)
        await shop.fresh()
        rows = [
            Row(
                f"Shop database generated (scale {SCALE:g}, template)",
                f"{size / 2**30:.2f} GiB, {shop_db.shop_size(SCALE).total_rows:,} rows",
                f"{generated:.0f} s to generate",
            )
        ]
        try:
            rows += await _through_the_bot(shop)
            rows += await restore_formats.measure(shop, DB, TEMPLATE)
        finally:  # the server may be TEST_DATABASE_URL's: leave no gigabyte behind
            await shop.drop_kept()
            await shop_db.admin(server, f"drop database if exists {DB} with (force)")
    return rows


async def _through_the_bot(shop: Shop) -> list[Row]:
    async with FakeSlack() as fake, fresh_database(shop.server) as dsn, session(4) as http:
        from benchmarks.suite import environment

        env = environment(api_url=fake.base_url, runbook=shop.runbook,
                          data_dir=shop.work / "shop-data", dsn=dsn)  # fmt: skip
        env.update({k: v for k, v in shop.env.items() if k.startswith("PG") or k == "PATH"})
        bot = bot_server(env, shop.work / "bot-shop.log")
        await bot.start()
        conn = await asyncpg.connect(dsn)
        try:
            slack = Slack(bot.url, fake.response_url, http)
            bash_backups, backups = [], []
            for rep in range(REPS):  # bash, bot, bot, bash, …
                for who in ("bash", "bot") if rep % 2 == 0 else ("bot", "bash"):
                    if who == "bash":
                        seconds, dump = await shop.bash_backup()
                        bash_backups.append(seconds)
                    else:
                        backups.append(await bot_backup(slack, conn))
            cat, sha = await _read_seconds(shop.workdir / dump)
            bash_rollbacks, rollbacks = [], []
            for rep in range(REPS):  # bot, bash, bash, bot, …
                for who in ("bot", "bash") if rep % 2 == 0 else ("bash", "bot"):
                    if who == "bash":
                        bash_rollbacks.append(await shop.bash_rollback(dump))
                    else:
                        await shop.fresh()
                        rollbacks.append(await bot_rollback(slack, conn))
                        await shop.drop_kept()
        finally:
            await conn.close()
            await bot.stop(signal.SIGKILL)
            await shop.drop_kept()
    shop.facts.update(dump_bytes=(shop.workdir / dump).stat().st_size)
    backup, rollback = _mean(backups), _mean(rollbacks)
    rollback["click_to_first_step"] = max(r["click_to_first_step"] for r in rollbacks)
    rollback["approve_ack"] = max(r["approve_ack"] for r in rollbacks)
    return real_rows.rows(statistics.mean(bash_backups), backup, statistics.mean(bash_rollbacks),
                 rollback, cat, sha, shop)  # fmt: skip


def _mean(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each part's mean over the runs (the mean of two is their median)."""
    return {key: statistics.mean(run[key] for run in runs) for key in runs[0]}
