"""One running bot process: pool, Slack client, Bolt app, outbox sender, scheduler."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import asyncpg
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from actions.model import Runbook
from actions.remote_artifacts import artifact_refusal_soon
from bot.app import commands, flow, home
from bot.comms import checklists, notice, reminders
from bot.comms.aftercare import Aftercare
from bot.db.postgres import create_pool
from bot.incidents import modal as views
from bot.incidents import restore_choice, restore_points
from bot.incidents.deadlines import DeadlineScheduler
from bot.runs import handlers as run_control
from bot.runs import store as run_store
from bot.runs.executor import RunExecutor
from bot.services import Services
from bot.settings import Settings
from bot.slack.outbox import Sender
from bot.slack.responder import SharedRespond

log = logging.getLogger(__name__)
DRAIN_SECONDS = 10.0
AFTER_ACK_SECONDS = 10.0  # at shutdown: what handlers still do after their acks (answers)


def make_client(settings: Settings) -> AsyncWebClient:
    """The Web API client: SLACK_API_URL, and slack_sdk's retry handlers (429, 5xx, resets)."""
    return AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=15,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def create_bolt_app(settings: Settings, services: Services, client: AsyncWebClient) -> AsyncApp:
    """The Bolt app with every Slack surface registered; nothing runs at import time."""
    app = AsyncApp(
        client=client,
        signing_secret=settings.slack_signing_secret or "socket-mode-needs-no-secret",
        request_verification_enabled=not settings.socket_mode
        or bool(settings.slack_signing_secret),
        # Bolt answers Slack when a handler returns, rather than polling every 10 ms for its
        # ack: what a handler does after acknowledging goes to services.after_ack.
        process_before_response=True,
    )

    @app.middleware
    async def shared_session_respond(context, next) -> None:
        # Bolt's own respond() opens a connection per answer; ours reuses one session.
        if context.response_url and services.http is not None:
            context["respond"] = SharedRespond(context.response_url, services.http)
        await next()

    for module in (commands, flow, views, run_control, home, notice, checklists, reminders):
        module.register(app, services)
    restore_choice.register(app, services)
    return app


@dataclass
class Runtime:
    """Everything one process holds while it serves."""

    settings: Settings
    runbook: Runbook
    pool: asyncpg.Pool
    client: AsyncWebClient
    services: Services
    bolt: AsyncApp
    sender: Sender
    scheduler: DeadlineScheduler
    tasks: list[asyncio.Task] = field(default_factory=list)

    async def healthy(self) -> bool:
        """True when the database answers (the runbook was validated at start-up)."""
        try:
            async with asyncio.timeout(2):
                async with self.pool.acquire() as conn:
                    await conn.fetchval("select 1")
            return True
        except Exception:
            return False


@contextlib.asynccontextmanager
async def running(settings: Settings, runbook: Runbook, dsn: str) -> AsyncIterator[Runtime]:
    """Open the pool, start background work; on exit, deliver what is owed, then close."""
    pool = await create_pool(dsn, max_size=settings.db_pool_size)
    client = make_client(settings)
    process_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    services = Services(pool=pool, runbook=runbook, process_id=process_id)
    services.data_dir, services.slack = settings.data_dir, client
    services.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    aftercare = Aftercare(services)
    services.run_finished = aftercare.run_finished
    services.incident_closed = aftercare.incident_closed

    async def members_of(group: str) -> set[str]:
        response = await client.usergroups_users_list(usergroup=group)
        return set(response.get("users") or [])

    services.members_of = members_of

    async def scenario_refusal(conn, scenario, backup_run_id: int | None = None) -> str | None:
        """Why `scenario` can't restore from backup `backup_run_id` (None: the default one)."""
        if backup_run_id is None:
            default = await restore_points.newest_clean(conn)
            backup_run_id = default["id"] if default else None
        if backup_run_id is None:
            return await artifact_refusal_soon(services.runbook, scenario, None, timeout=2.0)
        artifacts = await run_store.backup_artifacts(conn, backup_run_id=backup_run_id)
        # artifacts on hosts are checked there, briefly: the run's start checks them again
        return await artifact_refusal_soon(services.runbook, scenario, artifacts, timeout=2.0)

    services.scenario_refusal = scenario_refusal
    executor = RunExecutor(
        services,
        lease=settings.run_lease,
        poll_interval=settings.sync_interval,
        clock_after=settings.step_clock_after,
    )
    services.run_queued = executor.kick
    scheduler = DeadlineScheduler(
        pool,
        lambda deadline_id: flow.fire_deadline(services, deadline_id=deadline_id),
        sync_interval=settings.sync_interval,
    )
    services.schedule_deadline = scheduler.add
    sender = Sender(
        pool,
        client,
        min_interval=settings.slack_min_interval,
        poll_interval=1.0,
        bound=settings.run_lease,
    )
    runtime = Runtime(
        settings,
        runbook,
        pool,
        client,
        services,
        create_bolt_app(settings, services, client),
        sender,
        scheduler,
    )
    scheduler.start()
    runtime.tasks.append(asyncio.create_task(sender.run(), name="outbox-sender"))
    runtime.tasks.append(asyncio.create_task(executor.run_forever(), name="run-executor"))
    runtime.tasks.append(
        asyncio.create_task(aftercare.run_forever(settings.sync_interval), name="after-runs")
    )
    log.info("process %s ready", process_id)
    try:
        yield runtime
    finally:
        scheduler.shutdown()
        await services.after_ack.finish(AFTER_ACK_SECONDS)  # private answers still on their way
        await executor.shutdown(settings.shutdown_grace)
        await aftercare.close()
        for task in runtime.tasks:
            task.cancel()
        await asyncio.gather(*runtime.tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(DRAIN_SECONDS):
                await sender.deliver_all()  # what is still owed goes out before we exit
        await services.http.close()
        try:
            await asyncio.wait_for(pool.close(), 10)
        except TimeoutError:
            pool.terminate()
