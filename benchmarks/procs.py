"""Server subprocesses: start one, wait for its health check, read its memory and CPU time."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tests.e2e.harness import REPO, free_port

BOT_ARGS = ("bot", "serve", "--http", "--host", "127.0.0.1")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    """`python -m <module> <args> --port <port>`, ready when GET `health` answers 200."""

    args: tuple[str, ...]
    env: dict[str, str]
    log_path: Path
    health: str = "/healthz"
    port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None
    ready_after: float = 0.0  # seconds from spawn to the first 200 on the health path

    @property
    def url(self) -> str:
        """http://127.0.0.1:port."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The server's process id (the Python interpreter itself, no shell between)."""
        assert self.process is not None, "not started"
        return self.process.pid

    async def start(self, timeout: float = 120.0) -> Server:
        """Spawn the process and poll the health path every 20 ms until it answers 200."""
        started = time.perf_counter()
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                *self.args,
                "--port",
                str(self.port),
                env=self.env,
                cwd=str(REPO),
                stdout=log,
                stderr=log,
            )
        async with aiohttp.ClientSession() as session:
            while time.perf_counter() - started < timeout:
                if self.process.returncode is not None:
                    raise RuntimeError(f"{self.args[0]} exited early:\n{self.log_tail()}")
                try:
                    async with session.get(self.url + self.health) as response:
                        if response.status == 200:
                            self.ready_after = time.perf_counter() - started
                            return self
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.02)
        raise RuntimeError(f"{self.args[0]} not ready within {timeout}s:\n{self.log_tail()}")

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        """Signal the process and wait for it to exit (SIGKILL after `timeout`)."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(sig)
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        """The last lines the process wrote."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def rss_mib(self) -> float:
        """Resident memory (VmRSS from /proc/<pid>/status), in MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no VmRSS for pid {self.pid}")

    def cpu_seconds(self) -> float:
        """User plus system CPU time the process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    async def settle(self, *, window: float = 0.3, idle: float = 0.02, limit: float = 15.0) -> None:
        """Wait until the process used at most `idle` CPU seconds in one `window` (or `limit`).

        Between measured batches, so one server's leftover work is not timed against the next.
        """
        deadline = time.monotonic() + limit
        before = self.cpu_seconds()
        while time.monotonic() < deadline:
            await asyncio.sleep(window)
            now = self.cpu_seconds()
            if now - before <= idle:
                return
            before = now


def bot_server(env: dict[str, str], log_path: Path) -> Server:
    """`rollback-bot serve --http` as users start it."""
    return Server(BOT_ARGS, env, log_path)


def bare_server(env: dict[str, str], log_path: Path) -> Server:
    """The bare Bolt app, started the same way."""
    return Server(("benchmarks.bare_app", "--host", "127.0.0.1"), env, log_path)


def fake_server(env: dict[str, str], log_path: Path, *, hooks: int) -> Server:
    """The fake Slack in its own process (ready when its Web API answers)."""
    return Server(
        ("benchmarks.fake_server", "--hooks", str(hooks)), env, log_path, health="/api/api.test"
    )
