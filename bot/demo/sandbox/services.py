"""The sandbox's real tools: npm and pm2 (installed with npm, cached) and nginx when installed.

What can't run here stays a stand-in (bot.demo.sandbox.tools): Prisma's CLI, whose engines download
from a host that is not reachable, and systemctl, since containers have no systemd. Without
node / npm, npm, npx, pm2 and node are stand-ins too, and `Tools.notes()` says so.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bot.demo.sandbox.files import NODE_DIR

PM2_LOCK = NODE_DIR / "pm2" / "package-lock.json"
CACHE_ENV = "ROLLBACK_TOOLS_CACHE"  # where pm2 is installed once and reused (a directory)


@dataclass(frozen=True)
class Tools:
    """Which tools a sandbox runs for real."""

    node: bool  # real node, npm, npx and pm2
    pm2_bin: Path | None  # the directory holding the real pm2
    nginx: Path | None  # the real nginx binary
    nginx_port: int | None
    fallback: str = ""  # why npm, npx, pm2 and node are stand-ins, when they are

    def notes(self) -> list[str]:
        """One line per fact a reader of the demo should know: real tools and stand-ins."""
        lines = []
        if self.node:
            lines.append("npm, npx and pm2 run for real (pm2 installed with npm, PM2_HOME in "
                         "the sandbox; its daemon is killed at the end).")  # fmt: skip
        else:
            why = self.fallback or "node/npm are not installed"
            lines.append(f"{why}, so npm, npx, pm2 and node are stand-ins that act locally.")
        if self.nginx is not None:
            lines.append(f"nginx runs for real on 127.0.0.1:{self.nginx_port}, in front of the "
                         "app, and is stopped at the end.")  # fmt: skip
        else:
            lines.append("nginx is not installed: `systemctl … nginx` only logs "
                         "(apt-get install nginx to run it for real).")  # fmt: skip
        lines.append("Stand-ins: Prisma's CLI (its engines download from a host that is not "
                     "reachable) and systemctl (containers have no systemd; for nginx it starts "
                     "and stops the sandbox's nginx).")  # fmt: skip
        return lines


def node_available() -> bool:
    """True when node and npm are on PATH."""
    return shutil.which("node") is not None and shutil.which("npm") is not None


def nginx_binary() -> Path | None:
    """Debian's nginx (in /usr/sbin, off a normal user's PATH), or None."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    return Path(found) if found else None


def default_cache() -> Path:
    """$ROLLBACK_TOOLS_CACHE, else ~/.cache/rollback-bot (XDG_CACHE_HOME honoured)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rollback-bot"


def install_pm2(cache: Path, env: dict[str, str]) -> Path:
    """pm2 installed with `npm ci` from the committed lock into `cache` (once per lock
    version; a finished install is moved into place whole). Its node_modules/.bin."""
    lock = PM2_LOCK.read_bytes()
    target = cache / f"pm2-{hashlib.sha256(lock).hexdigest()[:12]}"
    binary = target / "node_modules" / ".bin" / "pm2"
    if binary.exists():
        return binary.parent
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="pm2-install-", dir=cache))
    try:
        shutil.copy(NODE_DIR / "pm2" / "package.json", work / "package.json")
        shutil.copy(PM2_LOCK, work / "package-lock.json")
        done = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=work,
            env={**os.environ, **env}, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"npm could not install pm2 ({done.returncode}): {done.stderr}")
        try:
            work.rename(target)
        except OSError:  # another process finished first
            if not binary.exists():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return binary.parent


def nginx_config(prefix: Path, port: int, app_port: int) -> str:
    """nginx.conf for a private nginx under `prefix`, proxying 127.0.0.1:port to the app."""
    temp = prefix / "temp"
    paths = "".join(
        f"  {kind}_temp_path {temp / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"pid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'};\n"
        "worker_processes 1;\nevents { worker_connections 64; }\n"
        f"http {{\n  access_log off;\n{paths}"
        f"  server {{\n    listen 127.0.0.1:{port};\n"
        f"    location / {{ proxy_pass http://127.0.0.1:{app_port}; }}\n  }}\n}}\n"
    )


def prepare_nginx(root: Path, port: int, app_port: int) -> dict[str, str] | None:
    """Write the sandbox's nginx config under root/nginx; the stand-ins' view of it, or None
    when nginx is not installed."""
    binary = nginx_binary()
    if binary is None:
        return None
    prefix = root / "nginx"
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / "temp" / kind).mkdir(parents=True, exist_ok=True)
    (prefix / "logs").mkdir(exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_config(prefix, port, app_port), encoding="utf-8")
    return {"binary": str(binary), "prefix": str(prefix), "conf": str(conf), "port": str(port)}
