"""`rollback-bot` commands. Errors a person can fix are one line on stderr, never a traceback."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from actions.runbook import inspect_runbook, load_runbook
from bot.settings import Settings, SettingsError, load_settings
from bot.startup import (
    EXIT_PROBLEMS,
    EXIT_SETTINGS,
    Stop,
    database_dsn,
    find_runbook,
    load_or_stop,
    run_migrations,
)


def build_parser() -> argparse.ArgumentParser:
    """Every subcommand and its options."""
    parser = argparse.ArgumentParser(prog="rollback-bot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve Slack (Socket Mode if SLACK_APP_TOKEN is set)")
    serve.add_argument("--http", action="store_true", help="force HTTP mode")
    serve.add_argument("--port", type=int, help="HTTP port (default: $PORT or 3000)")
    serve.add_argument("--host", default="0.0.0.0", help="HTTP bind address (default 0.0.0.0)")
    serve.add_argument(
        "--health-port",
        type=int,
        help="Socket Mode: answer GET /healthz on this port (default: $PORT if set, else none)",
    )
    sub.add_parser(
        "start", help="serve when Slack is configured; otherwise say how, and show the demo"
    )
    sub.add_parser("migrate", help="apply database migrations and exit")
    runbook = sub.add_parser("runbook", help="runbook tools")
    runbook_sub = runbook.add_subparsers(dest="runbook_command", required=True)
    check = runbook_sub.add_parser("check", help="validate a runbook; exit 1 on problems")
    check.add_argument("file", nargs="?", type=Path)
    rehearse = sub.add_parser("rehearse", help="dry run: print each step's command, check backups")
    rehearse.add_argument("scenario")
    sub.add_parser("backup", help="run the runbook's backup steps now")
    init = sub.add_parser("init", help="write a starter runbook.toml and .env.example into DIR")
    init.add_argument("dir", nargs="?", type=Path, default=Path("."), help="default: here")
    init.add_argument("--force", action="store_true", help="overwrite files already there")
    sub.add_parser("runs", help="list active and recent runs (rollbacks and backups)")
    abort = sub.add_parser("abort", help="abort a stopped or interrupted run (see `runs`)")
    abort.add_argument("run", help="the run's id, as `rollback-bot runs` shows it")
    from bot.demo.play import add_arguments as demo_arguments

    demo_arguments(
        sub.add_parser("demo", help="play a whole incident on a sandbox; no Slack needed")
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        logging.basicConfig(
            level=settings.log_level,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        return _run(args, settings)
    except SettingsError as error:
        print(f"rollback-bot: setting {error}", file=sys.stderr)
        return getattr(error, "exit_code", EXIT_SETTINGS)
    except Stop as stop:
        print(f"rollback-bot: {stop}", file=sys.stderr)
        return stop.code
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "runbook":
        return _check(args.file or find_runbook(settings))
    if args.command == "init":
        from bot.starter import StarterError, init

        try:
            print(init(args.dir, force=args.force))
        except StarterError as error:
            raise Stop(str(error)) from None
        return 0
    if args.command == "migrate":
        applied = run_migrations(database_dsn(settings))
        print(
            f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else "")
        )
        return 0
    if args.command == "demo":
        from bot.demo.play import run_demo

        return run_demo(settings, args)
    if args.command == "start":
        if settings.slack_bot_token:
            args = build_parser().parse_args(["serve"])
        else:
            print(NOT_CONFIGURED, file=sys.stderr)
            return _demo_or_stop(settings)
    if args.command == "serve":
        from bot.app.serve import serve

        http = args.http or not settings.socket_mode
        settings.require_serving(http=http)
        runbook = load_or_stop(find_runbook(settings))
        return serve(
            settings,
            runbook,
            database_dsn(settings),
            http=http,
            host=args.host,
            port=args.port or settings.port,
            health_port=args.health_port or (settings.port if settings.port_given else None),
        )
    from bot.runs import offline

    if args.command in ("runs", "abort"):
        return offline.runs(settings, database_dsn(settings), args)
    runbook = load_or_stop(find_runbook(settings))
    if args.command == "rehearse":
        return offline.rehearse(settings, runbook, database_dsn(settings), args.scenario)
    return offline.backup(settings, runbook, database_dsn(settings))


NOT_CONFIGURED = """\
rollback-bot: no Slack workspace is configured (SLACK_BOT_TOKEN is not set).
  To connect one: create the app from manifest.yml, then put SLACK_BOT_TOKEN and
  SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode) in .env — see README.md.
  Meanwhile, here is the demo: a whole incident on a throwaway sandbox, no Slack needed."""


def _demo_or_stop(settings: Settings) -> int:
    try:
        from bot.demo.play import run_demo
    except ImportError:
        raise Stop("the demo is not available in this version; configure Slack to serve.") from None
    return run_demo(settings)


def _check(path: Path) -> int:
    problems, warnings = inspect_runbook(path)
    for problem in sorted([*problems, *warnings], key=lambda found: found.line):
        print(problem)
    noted = f", {len(warnings)} warning(s)" if warnings else ""
    if problems:
        print(f"{len(problems)} problem(s){noted} in {path}", file=sys.stderr)
        return EXIT_PROBLEMS
    from actions.shellcheck import lint_runbook

    findings = lint_runbook(path, load_runbook(path))
    if findings is None:
        print("shellcheck is not installed; the steps' bash was not checked", file=sys.stderr)
    for finding in findings or []:
        print(finding)
    errors = sum(finding.is_error for finding in findings or [])
    if errors:
        print(f"{errors} problem(s) in {path} (shellcheck errors)", file=sys.stderr)
        return EXIT_PROBLEMS
    count = len(warnings) + len(findings or [])
    noted = f", {count} warning(s)" if count else ""
    print(f"{path}: ok{noted}")  # warnings alone: the bot loads and runs this runbook
    return 0
