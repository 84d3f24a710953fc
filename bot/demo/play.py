"""`rollback-bot demo`: a whole incident played by the real bot on a throwaway sandbox, with a
local stand-in for Slack, shown as the conversation a person would read. No settings needed."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bot.settings import Settings

DEFAULT_SCENARIO = "full"


@dataclass(frozen=True)
class DemoOptions:
    """How to play the demo."""

    data_dir: Path
    scenario: str = DEFAULT_SCENARIO
    keep: bool = False
    web: bool = False
    web_port: int = 0
    rows: int = 3000
    server_dsn: str | None = None  # None: the embedded PostgreSQL under data_dir
    plain: bool | None = None  # None: styled when stdout is a terminal
    suffix: str = ""  # appended to the demo's database names (tests sharing a server)
    pace: float = 0.0  # the bot's ROLLBACK_SLACK_MIN_INTERVAL (the stand-in has no rate limit)

    @property
    def root(self) -> Path:
        """Where everything the demo makes lives."""
        return self.data_dir / "demo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `demo` subcommand's options."""
    parser.add_argument(
        "--scenario",
        default=DEFAULT_SCENARIO,
        metavar="KEY",
        help=f"the runbook scenario to roll back with (default: {DEFAULT_SCENARIO})",
    )
    parser.add_argument(
        "--web", action="store_true", help="also show the conversation as a live page on 127.0.0.1"
    )
    parser.add_argument("--web-port", type=int, default=0, help="port of that page (default: free)")
    parser.add_argument("--keep", action="store_true", help="keep the sandbox afterwards")
    parser.add_argument(
        "--clean",
        action="store_true",
        help="delete a kept demo sandbox and its databases, then exit",
    )
    parser.add_argument("--plain", action="store_true", help="plain text even in a terminal")
    parser.add_argument("--rows", type=int, default=3000, help=argparse.SUPPRESS)
    parser.add_argument("--pace", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--server-dsn",
        metavar="DSN",
        help="use this PostgreSQL server for the demo's two databases instead of the embedded one",
    )


def options_from(settings: Settings, args: argparse.Namespace | None) -> DemoOptions:
    """DemoOptions from the command line (defaults when there is none, as for `start`)."""
    if args is None:
        return DemoOptions(data_dir=settings.data_dir)
    return DemoOptions(
        data_dir=settings.data_dir,
        scenario=args.scenario,
        keep=args.keep,
        web=args.web,
        web_port=args.web_port,
        rows=args.rows,
        server_dsn=args.server_dsn,
        plain=True if args.plain else None,
        pace=args.pace,
    )


def run_demo(settings: Settings, args: argparse.Namespace | None = None) -> int:
    """Play the demo in this terminal; the exit code."""
    from bot.demo.stage import MARKER, DemoError
    from bot.demo.terminal import TerminalView
    from bot.demo.transcript import Transcript

    options = options_from(settings, args)
    logging.getLogger().setLevel(logging.WARNING)  # the conversation is the output
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")  # pgserver's, harmless
    failures = (
        DemoError,
        RuntimeError,
        OSError,
        ValueError,
        asyncpg.PostgresError,
        subprocess.CalledProcessError,
    )
    if args is not None and args.clean:
        try:
            return asyncio.run(clean(options))
        except failures as error:
            print(f"rollback-bot demo --clean: {_one_line(error)}", file=sys.stderr)
            return 1
    transcript = Transcript(names())
    view = TerminalView(transcript, styled_output=False if options.plain else None)
    try:
        asyncio.run(watched(options, transcript, view))
        return 0
    except failures as error:  # one line: what failed, where to look
        view.close()
        print(f"rollback-bot demo: {_one_line(error)}", file=sys.stderr)
        if (options.root / MARKER).exists():
            print(f"rollback-bot demo: what it made is in {options.root}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except asyncio.CancelledError:  # SIGTERM
        return 143
    finally:
        view.close()


def _one_line(error: BaseException) -> str:
    """What failed, in one line: the command and its exit status for a failed command."""
    if isinstance(error, subprocess.CalledProcessError):
        command = error.cmd if isinstance(error.cmd, str) else " ".join(map(str, error.cmd))
        return f"`{command[:120]}` exited {error.returncode}; the demo's log has its output."
    from bot.demo.stage import DemoError

    text = str(error).splitlines()[0] if str(error) else ""
    return text if isinstance(error, DemoError) else f"{type(error).__name__}: {text}"


def names() -> dict[str, str]:
    """Slack IDs of the demo's people and channels -> their names."""
    from bot.demo.stage import CHANNEL_NAMES, PEOPLE

    return {**PEOPLE, **CHANNEL_NAMES}


async def server_dsn(options: DemoOptions) -> str:
    """The PostgreSQL server the demo's databases live on."""
    from bot.demo.stage import DemoError, embedded_server_dsn

    if options.server_dsn:
        return options.server_dsn
    try:
        return await asyncio.to_thread(embedded_server_dsn, options.data_dir)
    except Exception as error:  # pgserver's errors are many and varied
        raise DemoError(f"could not start the embedded PostgreSQL: {error}") from None


async def watched(options: DemoOptions, transcript, view) -> None:
    """Play the demo for a person: with --web, serve the page too and leave it up at the end."""
    from bot.demo import web as demo_web

    with contextlib.suppress(NotImplementedError):  # SIGTERM: clean up as for Ctrl-C
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
    page = await demo_web.serve_page(transcript, options.web_port) if options.web else None
    try:
        await play_demo(options, transcript, view, page_url=page.url if page else None)
        if page is not None:
            view.close()
            print(f"The page stays at {page.url}; press Ctrl-C to stop.", flush=True)
            await asyncio.Event().wait()
    finally:
        if page is not None:
            await page.close()


async def play_demo(options: DemoOptions, transcript, view=None, page_url: str | None = None):
    """Stage, play and summarise the demo; the Outcome."""
    from actions.runbook import load_runbook
    from bot.demo import stage as demo_stage
    from bot.demo.sandbox.build import DEFAULT_RUNBOOK
    from bot.demo.script import play
    from bot.demo.stage import DemoError, staged
    from bot.demo.summary import find_postmortems, summarise
    from bot.demo.transcript import Watcher

    keys = [scenario.key for scenario in load_runbook(DEFAULT_RUNBOOK).scenarios]
    if options.scenario not in keys:
        raise DemoError(f"no scenario {options.scenario!r}; the runbook has: {', '.join(keys)}")
    started = time.monotonic()
    pacer = asyncio.create_task(view.pace()) if view is not None and view.delay else None
    try:
        where = (
            f"its own PostgreSQL in {options.data_dir / demo_stage.DEMO_CLUSTER}"
            if not options.server_dsn
            else "the server you gave"
        )
        databases = f"{demo_stage.SHOP_DB}{options.suffix}, {demo_stage.BOT_DB}{options.suffix}"
        transcript.narrate(
            "rollback-bot demo: a whole incident, no Slack workspace needed",
            f"It touches nothing outside {options.root}\n"
            f"and its own databases {databases} on {where}.\n"
            "The real bot runs; what it sends goes to a local stand-in for the Slack Web API\n"
            "and is shown here as people would read it in Slack.\n"
            f"pm2 is installed once into {tools_cache(options)} and reused.",
        )
        if page_url is not None:
            transcript.note(f"The conversation is also live at {page_url}")
        transcript.note(
            "Starting PostgreSQL; building the sandbox: shop database, git project, app…"
        )
        dsn = await server_dsn(options)
        async with staged(
            root=options.root,
            server_dsn=dsn,
            rows=options.rows,
            keep=options.keep,
            suffix=options.suffix,
            pace=options.pace,
            tools_cache=tools_cache(options),
        ) as stage:
            for line in stage.sandbox.tools.notes():
                transcript.note(line)
            if view is not None:
                view.attach_log((stage.root / "transcript.txt").open("w", encoding="utf-8"))
            transcript.note(
                f"The bot is serving on {stage.bot_url}; the app answers on {stage.sandbox.app_url}"
            )
            outcome = await play(
                stage, transcript, Watcher(stage.fake, transcript), options.scenario
            )
            outcome.postmortem = find_postmortems(stage)
            if view is not None:
                await view.drain()
        summarise(
            transcript,
            outcome,
            stage,
            scenario=options.scenario,
            keep=options.keep,
            seconds=time.monotonic() - started,
        )
        transcript.finished = True
        if view is not None:
            await view.drain()
        return outcome
    finally:
        if pacer is not None:
            pacer.cancel()


def tools_cache(options: DemoOptions) -> Path:
    """Where the demo installs pm2 once: $ROLLBACK_TOOLS_CACHE, else under the data dir."""
    from bot.demo.sandbox.services import CACHE_ENV

    return Path(os.environ.get(CACHE_ENV) or options.data_dir / "demo-tools")


async def clean(options: DemoOptions) -> int:
    """Delete a kept demo: its databases and its directory (only if the demo made it)."""
    from bot.demo.stage import BOT_DB, MARKER, SHOP_DB, recreate_database

    root = options.root
    if not (root / MARKER).exists():
        print(f"rollback-bot demo: nothing to clean in {root}")
        return 0
    dsn = await server_dsn(options)
    for name in (SHOP_DB + options.suffix, BOT_DB + options.suffix):
        await recreate_database(dsn, name, create=False)
    shutil.rmtree(root)
    print(f"rollback-bot demo: deleted {root} and the databases {SHOP_DB}, {BOT_DB}")
    return 0
