"""A throw-away stand-in for the operator's production, for end-to-end tests and demos.

`build_sandbox(root, server_dsn=..., db_name=...)` makes, under `root`: a git project shaped
like the seed plan's (`root/project`, with a bare `root/remote.git` as `origin`, its packages
installed by the real `npm install`), the real pm2 (installed with npm once into a cache, see
bot.demo.sandbox.services; PM2_HOME is `root/pm2`), the real nginx in front of the app when it is
installed (`root/nginx`), stand-ins in `root/bin` for what can't run here (systemctl, and
Prisma's CLI as the npm package `root/standin/prisma`; they log to `root/tool.log`), and a
shop database `db_name` on the given PostgreSQL server. Without node / npm, npm, npx, pm2 and
node are stand-ins too. `Sandbox.env` is the environment the runbook's commands need (the real
pg_dump / psql of the `pgserver` package first on PATH). Linux only: the stand-ins watch
processes through /proc.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from actions.model import Runbook, Step
from actions.runbook import load_runbook
from bot import packaged
from bot.demo.sandbox import files, services, tools
from bot.demo.sandbox import runbook as sandbox_runbook

DEFAULT_RUNBOOK = packaged.default_runbook()  # the shipped one, installed or in a checkout
SNAPSHOT_SKIPS = (".git", "backup", "node_modules")  # top-level project dirs not snapshotted
WMS_BRANCH = "feature/wms-integration"
_DB_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_FIXED_DATE = "2024-01-01T08:00:00+00:00"  # sandbox commits get stable hashes


def pg_bin_dir() -> Path:
    """The pgserver package's PostgreSQL 16 client programs (pg_dump, psql, createdb, …)."""
    import pgserver

    return Path(pgserver.__file__).parent / "pginstall" / "bin"


def database_url(server_dsn: str, db_name: str) -> str:
    """`server_dsn` pointed at database `db_name`."""
    return urlunsplit(urlsplit(server_dsn)._replace(path="/" + db_name))


def libpq_env(server_dsn: str, db_name: str) -> dict[str, str]:
    """PGHOST / PGPORT / PGUSER (/ PGPASSWORD) of the DSN's server, PGDATABASE = db_name."""
    parts = urlsplit(server_dsn)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    found = {
        "PGHOST": query.get("host") or unquote(parts.hostname or ""),
        "PGPORT": query.get("port") or str(parts.port or ""),
        "PGUSER": query.get("user") or unquote(parts.username or ""),
        "PGPASSWORD": query.get("password") or unquote(parts.password or ""),
    }
    return {key: value for key, value in found.items() if value} | {"PGDATABASE": db_name}


@dataclass(frozen=True)
class Snapshot:
    """A sandbox's state: its database as text and every project file's sha256."""

    database: str  # schema (pg_dump --schema-only), then each table's rows in order
    files: dict[str, str]  # path relative to the project -> sha256, without SNAPSHOT_SKIPS


@dataclass
class Sandbox:
    """A built sandbox; `destroy()` removes all of it."""

    root: Path
    project: Path
    db_name: str
    db_url: str  # the database's DSN, as `[vars].db_url` and the verify checks use it
    server_dsn: str
    env: dict[str, str]  # what the runbook's commands need on top of the bot's environment
    app_port: int
    runbook_path: Path
    secrets: tuple[str, ...]  # values in `.env` that must never reach Slack
    tools: services.Tools  # which tools run for real

    @property
    def nginx_url(self) -> str | None:
        """The app through the sandbox's nginx, when nginx is installed."""
        port = self.tools.nginx_port
        return f"http://127.0.0.1:{port}/" if self.tools.nginx is not None else None

    @property
    def app_url(self) -> str:
        """Where the app answers `Ecom OS` while it runs."""
        return f"http://127.0.0.1:{self.app_port}/"

    def run(
        self, *command: str, cwd: Path | None = None, input: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> str:  # fmt: skip
        """Run a command with the sandbox's environment; its stdout. Raises on failure."""
        environment = {**os.environ, **self.env, **(env or {})}
        done = subprocess.run(
            command, cwd=cwd or self.project, env=environment, input=input,
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr}")
        return done.stdout

    def psql(self, sql: str, *, database: str | None = None) -> str:
        """Run SQL with psql (stops at the first error); its unaligned output."""
        return self.run("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                        "-d", database or self.db_name, input=sql)  # fmt: skip

    def write_runbook(
        self,
        base: Path = DEFAULT_RUNBOOK,
        *,
        path: Path | None = None,
        notice_channels: Sequence[str] | None = None,
        contacts: Mapping[str, str] | None = None,
        approvers: Sequence[str] | None = None,
        declarers: Sequence[str] | None = None,
        high_rollback_after: str | None = None,
        approval_expires_after: str | None = None,
    ) -> Path:
        """The shipped runbook pointed at this sandbox, written to `path` (runbook_path).

        Only `[project].workdir`, `[vars]` db_name / db_url / recovery_csv, the given
        `[notify]`, `[contacts]` and `[policy]` values and the verify checks' `http` / `dsn`
        change; every step stays as shipped (checked). Durations are written like "30s".
        """
        text = Path(base).read_text(encoding="utf-8")
        document = tomllib.loads(text)
        policy = {"approvers": approvers, "declarers": declarers,
                  "high_rollback_after": high_rollback_after,
                  "approval_expires_after": approval_expires_after}  # fmt: skip
        tables: dict[str, dict[str, object]] = {
            "project": {**document.get("project", {}), "workdir": str(self.project)},
            "vars": {**document.get("vars", {}), "db_name": self.db_name, "db_url": self.db_url,
                     "app_url": self.app_url,
                     "recovery_csv": str(self.root / "recovery" / "inventory_data.csv")},
            "policy": {**document.get("policy", {}),
                       **{key: value for key, value in policy.items() if value is not None}},
            "notify": {**document.get("notify", {})},
            "contacts": dict(contacts if contacts is not None else document.get("contacts", {})),
        }  # fmt: skip
        if notice_channels is not None:
            tables["notify"]["notice_channels"] = list(notice_channels)
        checks = {"http": self._app_url_for, "dsn": lambda _: self.db_url}
        target = Path(path or self.runbook_path)
        target.write_text(sandbox_runbook.rewrite_toml(text, tables, checks), encoding="utf-8")
        _same_actions(load_runbook(Path(base)), load_runbook(target))
        return target

    def _app_url_for(self, url: object) -> str:
        if "{{" in str(url):  # a placeholder such as {{ vars.app_url }}, set in [vars]
            return str(url)
        return urlunsplit(urlsplit(str(url))._replace(netloc=f"127.0.0.1:{self.app_port}"))

    def start_app(self) -> None:
        """Start the app under pm2 (and nginx in front of it); wait until both listen."""
        if self.tools.node:
            if '"ecom-os"' not in self.run("pm2", "jlist"):
                self.run("pm2", "start", "server.py", "--name", "ecom-os",
                         "--interpreter", sys.executable,
                         env={"PORT": str(self.app_port)})  # fmt: skip
            self._shim("wait-app")
        else:
            self._shim("start-app")
        self._shim("start-nginx")

    def stop_app(self) -> None:
        """Stop the app, pm2's daemon and nginx if they run."""
        if self.tools.node:
            if (self.root / "pm2" / "pm2.pid").exists():
                self.run("pm2", "kill")
        else:
            self._shim("stop-app")
        self._shim("stop-nginx")

    def pm2_status(self) -> dict[str, str]:
        """pm2's apps and their status (`pm2 jlist`)."""
        listed = json.loads(self.run("pm2", "jlist"))
        return {app["name"]: app["pm2_env"]["status"] for app in listed}

    def _shim(self, action: str) -> None:
        self.run(sys.executable, str(self.root / "bin" / "_shim.py"), action)

    def snapshot(self) -> Snapshot:
        """The database content and the project's files, deterministic and comparable."""
        schema = self.run("pg_dump", "--schema-only", "--no-owner", "--no-privileges",
                          "-d", self.db_name)  # fmt: skip
        schema = "".join(
            line for line in schema.splitlines(keepends=True) if not line.startswith("\\")
        )  # pg_dump >= 16.10 wraps its output in \restrict KEY, a random key
        tables = self.psql("select tablename from pg_tables where schemaname = 'public' "
                           "order by tablename").split()  # fmt: skip
        script = "".join(
            f"\\echo '-- table {name}'\nCOPY (SELECT r.* FROM public.\"{name}\" AS r "
            f"ORDER BY r) TO STDOUT;\n"
            for name in tables
        )
        script += ("\\echo '-- sequences'\nselect sequencename, last_value from pg_sequences "
                   "where schemaname = 'public' order by sequencename;\n")  # fmt: skip
        digests = {
            file.relative_to(self.project).as_posix(): hashlib.sha256(file.read_bytes()).hexdigest()
            for file in sorted(self.project.rglob("*"))
            if file.is_file()
            and file.relative_to(self.project).parts[0] not in SNAPSHOT_SKIPS
            and ".git" not in file.relative_to(self.project).parts
        }
        return Snapshot(schema + self.psql(script), digests)

    def break_like_failed_integration(self) -> None:
        """Leave the sandbox as a failed WMS integration would (see sandbox_files).

        Database: a column added, rows changed and deleted, wms_inventory_transaction
        replaced. Code: branch `feature/wms-integration` with a commit (WMS dirs, lib/db.ts,
        package.json, schema), then uncommitted work on top (app/api/v1/wms/, lib/wms/sync.ts,
        a changed lib/format.ts, package.json and package-lock.json) and a changed `.env`.
        """
        self.psql(files.BREAK_SQL)
        self.run("git", "checkout", "-q", "-b", WMS_BRANCH)
        _write(self.project, files.WMS_COMMITTED)
        schema = self.project / "prisma" / "schema.prisma"
        schema.write_text(schema.read_text() + files.WMS_SCHEMA_ADDITION)
        self._write_packages(files.WMS_DEPENDENCIES)
        self.run("git", "add", "-A")
        self.run("git", "commit", "-q", "-m", "WMS integration: inventory sync")
        _write(self.project, files.WMS_UNCOMMITTED)
        self._write_packages(files.WMS_DEPENDENCIES_UNCOMMITTED)
        with (self.project / ".env").open("a", encoding="utf-8") as env_file:
            env_file.write(files.wms_env_lines(self.db_name))

    def _write_packages(self, extra: dict[str, str] | None) -> None:
        _write(self.project, {"package.json": files.package_json(extra),
                              "package-lock.json": files.package_lock(extra)})  # fmt: skip

    def kept_databases(self) -> list[str]:
        """The failed databases rollbacks kept (renamed to `<db_name>_failed_<ts>`)."""
        pattern = self.db_name.replace("_", "\\_") + "\\_failed\\_%"
        return self.psql(
            f"SELECT datname FROM pg_database WHERE datname LIKE '{pattern}' ORDER BY datname",
            database=_maintenance_db(self.server_dsn),
        ).split()

    def destroy(self) -> None:
        """Stop the app, drop the database and remove the root directory."""
        try:
            if (self.root / "bin" / "_shim.py").exists():
                self.stop_app()
            _drop_database(self, self.db_name)
            for kept in self.kept_databases():  # failed databases a rollback renamed
                _drop_database(self, kept)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.destroy()


def build_sandbox(
    root: Path, *, server_dsn: str, db_name: str, rows: int = 3000,
    real_tools: bool | None = None, tools_cache: Path | None = None,
) -> Sandbox:  # fmt: skip
    """Build a sandbox in `root` (absent or empty) with database `db_name` (replaced if it
    exists) on the server of `server_dsn`, and write its runbook (`runbook_path`).

    `real_tools`: run npm and pm2 for real (default: when node and npm are installed);
    pm2 is installed once into `tools_cache` (default: services.default_cache())."""
    if not _DB_NAME.fullmatch(db_name) or db_name in ("postgres", "template0", "template1"):
        raise ValueError(f"db_name {db_name!r}: use lower-case letters, digits and _")
    root = Path(root).resolve()
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty; a sandbox needs a directory of its own")
    project, bin_dir, home = root / "project", root / "bin", root / "home"
    for directory in (project, bin_dir, home, root / "pm2", root / "recovery"):
        directory.mkdir(parents=True)
    node = services.node_available() if real_tools is None else real_tools
    pm2_bin, fallback = None, "" if node else "node/npm are not installed"
    if node:
        npm_env = {"HOME": str(home), "npm_config_update_notifier": "false"}
        try:
            pm2_bin = services.install_pm2(tools_cache or services.default_cache(), npm_env)
        except RuntimeError as error:  # e.g. the npm registry is unreachable
            if real_tools:
                raise
            node, fallback = False, f"npm could not install pm2 ({str(error)[:200]})"
    paths = [str(bin_dir), *([str(pm2_bin)] if pm2_bin else []), str(pg_bin_dir())]
    env = {
        "PATH": os.pathsep.join([*paths, os.environ.get("PATH", "")]),
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
        "HOME": str(home),
        "PM2_HOME": str(root / "pm2"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "PSQLRC": os.devnull,
        **libpq_env(server_dsn, db_name),
    }
    secrets = tuple(files.env_secrets(db_name).values())
    app_port, nginx_port = _free_port(), _free_port()
    nginx = services.prepare_nginx(root, nginx_port, app_port)
    found = services.Tools(node, pm2_bin, nginx and Path(nginx["binary"]), nginx_port, fallback)
    box = Sandbox(root, project, db_name, database_url(server_dsn, db_name), server_dsn, env,
                  app_port, root / "runbook.toml", secrets, found)  # fmt: skip
    config = {"root": str(root), "project": str(project), "port": box.app_port,
              "python": sys.executable, "nginx": nginx}  # fmt: skip
    if node:
        _write(root / "standin" / "prisma", {"package.json": tools.PRISMA_PACKAGE,
                                             "cli.js": tools.PRISMA_CLI})  # fmt: skip
        (root / "standin" / "prisma" / "cli.js").chmod(0o755)
    for name, text in tools.shims(sys.executable, config, node=node).items():
        (bin_dir / name).write_text(text, encoding="utf-8")
        (bin_dir / name).chmod(0o755 if not name.endswith(".py") else 0o644)
    _drop_database(box, db_name)
    box.psql(f'CREATE DATABASE "{db_name}"', database=_maintenance_db(server_dsn))
    box.psql(files.database_sql(rows))
    box.psql(f"\\copy wms_inventory_transaction TO '{root}/recovery/inventory_data.csv' "
             "WITH (FORMAT csv)")  # fmt: skip
    _make_project(box)
    box.write_runbook()
    (root / "tool.log").write_text("")  # only what the runbook runs from here on
    return box


def _make_project(box: Sandbox) -> None:
    _write(box.project, files.PROJECT_FILES)
    box._write_packages(None)
    (box.project / ".env").write_text(files.env_file(box.db_name), encoding="utf-8")
    dated = {**box.env, "GIT_AUTHOR_DATE": _FIXED_DATE, "GIT_COMMITTER_DATE": _FIXED_DATE}
    remote = box.root / "remote.git"
    for command in (
        ["git", "init", "-q", "--bare", "-b", "main", str(remote)],
        ["git", "init", "-q", "-b", "main"],
        ["git", "config", "user.name", "Ecom OS Deploy"],
        ["git", "config", "user.email", "deploy@ecom-os.example.test"],
        ["git", "add", "-A"],
        ["git", "commit", "-q", "-m", "Ecom OS 1.4.2"],
        ["git", "remote", "add", "origin", str(remote)],
        ["git", "push", "-q", "-u", "origin", "main"],
        ["npm", "install"],
    ):
        subprocess.run(command, cwd=box.project, env={**os.environ, **dated}, check=True,
                       capture_output=True)  # fmt: skip


def _write(base: Path, contents: Mapping[str, str]) -> None:
    for name, text in contents.items():
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_text(text, encoding="utf-8")


def _maintenance_db(server_dsn: str) -> str:
    return urlsplit(server_dsn).path.lstrip("/") or "postgres"


def _drop_database(box: Sandbox, name: str) -> None:
    box.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
             database=_maintenance_db(box.server_dsn))  # fmt: skip


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _same_actions(base: Runbook, sandbox: Runbook) -> None:
    """Raise unless both runbooks run the same backup, scenarios, checks and checklists."""

    def steps(items: tuple[Step, ...]) -> tuple[Step, ...]:
        return tuple(dataclasses.replace(step, line=0) for step in items)

    def plain(runbook: Runbook) -> tuple[object, ...]:
        return (
            steps(runbook.backup_steps),
            tuple((s.key, s.title, s.trigger, steps(s.steps)) for s in runbook.scenarios),
            tuple(dataclasses.replace(c, line=0, http=None, dsn=None) for c in runbook.checks),
            runbook.checklists,
        )

    if plain(base) != plain(sandbox):
        raise RuntimeError("the sandbox runbook would run other commands than the shipped one")
