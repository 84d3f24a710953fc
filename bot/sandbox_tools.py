"""Executable stand-ins for npm, npx, pm2 and systemctl (they log, act locally)."""

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
    {"start-app": start_app, "stop-app": stop_app}[sys.argv[1]]()
'''

SHIM_HEAD = """\
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _shim import PROJECT, fail, log, start_app, stop_app, app_pid  # noqa: E402

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
"""

SYSTEMCTL = """
log("systemctl")
if command in ("status", "is-active"):
    print("active")
"""


def shims(python: str, config: dict[str, object]) -> dict[str, str]:
    """File name in root/bin -> text. Executables get `python` as their interpreter."""
    tools = {"npm": NPM, "npx": NPX, "pm2": PM2, "systemctl": SYSTEMCTL}
    files = {name: f"#!{python}\n{SHIM_HEAD}{body}" for name, body in tools.items()}
    files["_shim.py"] = f"CONFIG = {config!r}\n{SHIM_COMMON}"
    return files


# --- The runbook, rewritten line by line so its comments and scripts stay as shipped ---------
