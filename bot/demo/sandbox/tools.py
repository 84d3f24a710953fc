"""Executable stand-ins (they log to tool.log and act locally).

Always: `systemctl` (containers have no systemd; for nginx it starts and stops the sandbox's
real nginx when there is one) and Prisma's CLI (its engines download from a host that is not
reachable), as the local npm package `standin/prisma`. Only when node / npm are absent: npm,
npx, pm2 and node.
"""

from __future__ import annotations

SHIM_COMMON = '''
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(CONFIG["root"])
PROJECT = Path(CONFIG["project"])
PORT = int(CONFIG["port"])
PID_FILE = ROOT / "run" / "ecom-os.pid"


def log(tool):
    with open(ROOT / "tool.log", "a", encoding="utf-8") as handle:
        handle.write(shlex.join([tool, *sys.argv[1:]]) + "\\n")


def fail(message, code=1):
    print(message, file=sys.stderr)
    sys.exit(code)


def app_pid():
    """The app's pid while it runs (a zombie or a reused pid does not count), else None."""
    try:
        pid = int(PID_FILE.read_text())
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    if stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X") or b"server.py" not in cmdline:
        return None
    return pid


def start_app():
    if app_pid() is not None:
        return
    PID_FILE.parent.mkdir(parents=True, exist_ok=True)
    with open(ROOT / "app.log", "ab") as out:
        proc = subprocess.Popen(
            [CONFIG["python"], str(PROJECT / "server.py")],
            cwd=PROJECT,
            env={**os.environ, "PORT": str(PORT)},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    PID_FILE.write_text(str(proc.pid))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", PORT), timeout=0.2).close()
            return
        except OSError:
            if proc.poll() is not None:
                fail(f"ecom-os exited with status {proc.returncode}; see {ROOT / 'app.log'}")
            time.sleep(0.05)
    fail(f"ecom-os did not listen on port {PORT} within 10s")


def wait_app():
    """Wait until the app (started by the real pm2) listens on PORT."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", PORT), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    fail(f"ecom-os did not listen on port {PORT} within 20s; see `pm2 logs`")


NGINX = CONFIG.get("nginx")


def nginx_pid():
    """The sandbox's nginx master pid while it runs, else None."""
    try:
        pid = int(Path(NGINX["prefix"], "nginx.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, TypeError):
        return None
    return pid if b"nginx" in cmdline else None


def nginx(*args):
    with open(Path(NGINX["prefix"], "control.log"), "ab") as out:
        return subprocess.call([NGINX["binary"], "-p", NGINX["prefix"], "-c", NGINX["conf"],
                                *args], stdin=subprocess.DEVNULL, stdout=out, stderr=out)


def start_nginx():
    if NGINX is None or nginx_pid() is not None:
        return
    if nginx() != 0:
        fail(f"nginx did not start; see {Path(NGINX['prefix'], 'control.log')}")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", int(NGINX["port"])), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    fail(f"nginx did not listen on port {NGINX['port']} within 10s")


def stop_nginx():
    pid = nginx_pid() if NGINX is not None else None
    if pid is None:
        return
    nginx("-s", "quit")
    deadline = time.monotonic() + 10
    while nginx_pid() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    if nginx_pid() is not None:
        os.kill(pid, signal.SIGKILL)


def stop_app():
    pid = app_pid()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if pid is None:
            break
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + 5
        while app_pid() is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        pid = app_pid()
    PID_FILE.unlink(missing_ok=True)


if __name__ == "__main__":
    actions = {"start-app": start_app, "stop-app": stop_app, "start-nginx": start_nginx,
               "stop-nginx": stop_nginx, "wait-app": wait_app}
    actions[sys.argv[1]]()
'''

SHIM_HEAD = """\
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _shim import (  # noqa: E402
    NGINX, PROJECT, app_pid, fail, log, nginx, nginx_pid, start_app, start_nginx, stop_app,
    stop_nginx,
)

args = sys.argv[1:]
command = args[0] if args else ""
"""

NPM = """
log("npm")
NEEDS_MODULES = {"build", "type-check", "prisma:generate", "prisma:studio", "dev", "start"}


def manifest():
    try:
        data = json.loads(Path("package.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        fail("npm ERR! code ENOENT\\nnpm ERR! enoent Could not read package.json")
    except ValueError as error:
        fail(f"npm ERR! code EJSONPARSE\\nnpm ERR! JSON.parse package.json: {error}")
    if not isinstance(data, dict):
        fail("npm ERR! code EJSONPARSE\\nnpm ERR! package.json must be an object")
    return data


def packages(data):
    return {**data.get("dependencies", {}), **data.get("devDependencies", {})}


if command in ("install", "i", "ci"):
    deps = packages(manifest())
    Path("node_modules").mkdir(exist_ok=True)
    Path("node_modules/.package-lock.json").write_text(json.dumps(deps, indent=2, sort_keys=True))
    print(f"added {len(deps)} packages, and audited {len(deps) + 1} packages in 2s")
elif command == "cache":
    print("npm WARN using --force Recommended protections disabled.")
elif command in ("run", "run-script"):
    data, name = manifest(), (args[1] if len(args) > 1 else "")
    script = data.get("scripts", {}).get(name)
    if script is None:
        fail(f'npm ERR! Missing script: "{name}"')
    print(f"\\n> {data.get('name')}@{data.get('version')} {name}\\n> {script}\\n")
    if script.startswith("pm2 "):
        sys.exit(subprocess.call(["sh", "-c", script]))
    if name in NEEDS_MODULES and not Path("node_modules").is_dir():
        fail(f"sh: 1: {script.split()[0]}: not found", 127)
    if name == "build":
        print("  ✓ Compiled successfully\\n  ✓ Generating static pages (4/4)")
elif command in ("list", "ls"):
    data = manifest()
    deps = sorted(packages(data).items())
    print(f"{data.get('name')}@{data.get('version')} {os.getcwd()}")
    for index, (name, spec) in enumerate(deps):
        print(f"{'└──' if index == len(deps) - 1 else '├──'} {name}@{spec.lstrip('^~')}")
"""

NPX = """
log("npx")
if args[:3] == ["prisma", "db", "pull"]:
    if not Path("prisma/schema.prisma").is_file():
        fail("Error: Could not find a schema.prisma file")
    print("Introspecting based on datasource defined in prisma/schema.prisma")
    print("✔ Introspected 5 models and wrote them into prisma/schema.prisma in 112ms")
elif args[:2] == ["prisma", "generate"]:
    print("✔ Generated Prisma Client to ./node_modules/@prisma/client")
"""

PM2 = """
log("pm2")
home = Path(os.environ.get("PM2_HOME") or Path.home() / ".pm2")
dump = home / "dump.pm2"
APP = {"name": "ecom-os", "pm_exec_path": str(PROJECT / "server.py"), "pm_cwd": str(PROJECT)}
if command == "save":
    home.mkdir(parents=True, exist_ok=True)
    dump.write_text(json.dumps([APP], indent=2) + "\\n")
    print(f"[PM2] Saving current process list...\\n[PM2] Successfully saved in {dump}")
elif command in ("list", "ls", "l", "status", ""):
    status = "online" if app_pid() is not None else "stopped"
    print("│ id │ name    │ mode │ ↺ │ status  │")
    print(f"│ 0  │ ecom-os │ fork │ 0 │ {status:<7} │")
elif command in ("stop", "delete"):
    stop_app()
    print(f"[PM2] Applying action stopProcessId on app [{' '.join(args[1:])}](ids: [ 0 ])")
elif command in ("start", "restart", "reload"):
    if command != "start":
        stop_app()
    start_app()
    print(f"[PM2] Applying action restartProcessId on app [{' '.join(args[1:])}](ids: [ 0 ])")
elif command == "resurrect":
    if not dump.is_file():
        fail("[PM2][ERROR] No processes saved; DUMP file doesn't exist")
    try:
        names = [process["name"] for process in json.loads(dump.read_text())]
    except (ValueError, TypeError, KeyError):
        fail(f"[PM2][ERROR] Failed to read dump file in {dump}")
    print(f"[PM2] Resurrecting\\n[PM2] Restoring processes located in {dump}")
    if "ecom-os" in names:
        start_app()
elif command == "dump":
    print(json.dumps([APP], indent=2))
elif command == "jlist":
    status = "online" if app_pid() is not None else "stopped"
    print(json.dumps([{**APP, "pm2_env": {"status": status}}]))
"""

# Only without node: the runbook's one use of `node -e`, checking that pm2's apps are online.
NODE = """
log("node")
if args[:1] != ["-e"] or "pm2_env" not in " ".join(args[1:]):
    fail("node stand-in: only the runbook's pm2 online check is understood")
apps = json.loads(sys.stdin.read())
down = [app["name"] for app in apps if app["pm2_env"]["status"] != "online"]
if not apps or down:
    fail("pm2: not online: " + (", ".join(down) or "no app in the list"))
"""

SYSTEMCTL = """
log("systemctl")
unit = args[1].removesuffix(".service") if len(args) > 1 else ""
if unit == "nginx" and NGINX is not None:  # the sandbox's real nginx
    if command in ("stop", "restart"):
        stop_nginx()
    if command in ("start", "restart"):
        start_nginx()
    if command == "reload" and nginx("-s", "reload") != 0:
        fail("nginx: reload failed")
    if command in ("status", "is-active"):
        print("active" if nginx_pid() is not None else "inactive")
        sys.exit(0 if nginx_pid() is not None else 3)
elif command in ("status", "is-active"):
    print("active")
"""

# Prisma's CLI as a local npm package (a devDependency `file:../standin/prisma`), so that
# `npx prisma` and `npm run prisma:generate` find it in node_modules/.bin as in a real project.
PRISMA_PACKAGE = '{"name": "prisma", "version": "5.9.1", "bin": {"prisma": "cli.js"}}\n'
PRISMA_CLI = """#!/usr/bin/env node
// Stand-in for Prisma's CLI: its engines download from binaries.prisma.sh, not reachable here.
const fs = require("fs");
const path = require("path");
const args = process.argv.slice(2);
const log = path.join(__dirname, "..", "..", "tool.log");
fs.appendFileSync(log, ["prisma", ...args].join(" ") + "\\n");
if (args[0] === "db" && args[1] === "pull") {
  if (!fs.existsSync("prisma/schema.prisma")) {
    console.error("Error: Could not find a schema.prisma file");
    process.exit(1);
  }
  console.log("Introspecting based on datasource defined in prisma/schema.prisma");
  console.log("✔ Introspected 5 models and wrote them into prisma/schema.prisma in 112ms");
} else if (args[0] === "generate") {
  console.log("✔ Generated Prisma Client to ./node_modules/@prisma/client");
}
"""


def shims(python: str, config: dict[str, object], *, node: bool) -> dict[str, str]:
    """File name in root/bin -> text. Executables get `python` as their interpreter. With
    `node` (real node and npm), only systemctl; else npm, npx, pm2 and node too."""
    tools = {"systemctl": SYSTEMCTL}
    if not node:
        tools |= {"npm": NPM, "npx": NPX, "pm2": PM2, "node": NODE}
    files = {name: f"#!{python}\n{SHIM_HEAD}{body}" for name, body in tools.items()}
    files["_shim.py"] = f"CONFIG = {config!r}\n{SHIM_COMMON}"
    return files


# --- The runbook, rewritten line by line so its comments and scripts stay as shipped ---------
