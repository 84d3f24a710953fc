"""Real OpenSSH servers for the tests: `/usr/sbin/sshd` on free 127.0.0.1 ports.

Each server has its own host key, config, PidFile and authorized_keys in a temporary folder
and runs as the current user (root in CI: no PAM, no privilege-separation surprises). Two of
them stand in for two machines. `ssh_pair` skips, saying why, only when sshd is missing.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"


@dataclass
class SshServer:
    """One running sshd: where it listens and the host key it presents."""

    name: str
    port: int
    host_key_line: str  # "ssh-ed25519 AAAA… comment" (the public half)
    folder: Path
    process: subprocess.Popen

    @property
    def known_hosts_line(self) -> str:
        """Its line for a known_hosts file (non-default port: `[127.0.0.1]:PORT`)."""
        return f"[127.0.0.1]:{self.port} {self.host_key_line}"


@dataclass
class SshPair:
    """Two sshd servers, the client key both accept, and a known_hosts trusting both."""

    servers: tuple[SshServer, SshServer]
    client_key: Path
    known_hosts: Path
    user: str

    def host_table(self, name: str, server: SshServer, **extra: object) -> str:
        """A `[hosts.NAME]` runbook table for `server`."""
        lines = [
            f"[hosts.{name}]",
            'address = "127.0.0.1"',
            f'user = "{self.user}"',
            f"port = {server.port}",
            f'identity = "{self.client_key}"',
            f'known_hosts = "{self.known_hosts}"',
        ]
        lines += [f"{key} = {value!r}".replace("'", '"') for key, value in extra.items()]
        return "\n".join(lines) + "\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
    )
    return path.with_suffix(".pub").read_text().strip()


def start_sshd(folder: Path, name: str, authorized: str) -> SshServer:
    """Start sshd in `folder` accepting the public key `authorized`; waits until it listens."""
    folder.mkdir(parents=True, exist_ok=True)
    host_key = _keygen(folder / "host_key")
    (folder / "authorized_keys").write_text(authorized + "\n")
    port = _free_port()
    config = folder / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {folder / 'host_key'}",
                f"PidFile {folder / 'sshd.pid'}",
                f"AuthorizedKeysFile {folder / 'authorized_keys'}",
                "UsePAM no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "PermitRootLogin yes",
                "StrictModes no",
                "LogLevel ERROR",
            ]
        )
        + "\n"
    )
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege-separation dir
    log = open(folder / "sshd.log", "wb")  # noqa: SIM115 - kept open for the server's life
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=log, stdout=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited: {(folder / 'sshd.log').read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(4).startswith(b"SSH-"):
                    STARTED.append(port)
                    return SshServer(name, port, host_key, folder, process)
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("sshd did not listen within 30 s")


def stop_sshd(server: SshServer) -> None:
    """Stop the listener and every session process it started."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(10)
        except subprocess.TimeoutExpired:
            server.process.kill()


STARTED: list[int] = []  # the ports of every sshd this test process started


def remote_processes(needle: str, ports: list[int] | None = None) -> list[str]:
    """Command lines containing `needle` of processes started through the sshd servers on
    `ports` (default: every one this test process started), found by the SSH_CONNECTION sshd
    gives their environment, so even one orphaned by its session counts, and a remote step of
    a test on another pytest-xdist worker (or another checkout on this machine) does not."""
    wanted = {str(port) for port in (STARTED if ports is None else ports)}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:  # it exited meanwhile, or is not ours to read
            continue
        if needle not in command:
            continue
        for variable in environ:
            if variable.startswith(b"SSH_CONNECTION="):
                fields = variable.split(b"=", 1)[1].decode(errors="replace").split()
                if len(fields) == 4 and fields[3] in wanted:
                    found.append(f"{entry.name} {command}")
    return found


@pytest.fixture(scope="session")
def ssh_pair(tmp_path_factory) -> Iterator[SshPair]:
    """Two real sshd servers ("app1", "app2") sharing one client key and one known_hosts."""
    if not (os.path.exists(SSHD) and shutil.which("ssh-keygen")):
        pytest.skip("OpenSSH server not installed: apt-get install openssh-server (.ci/run does)")
    root = tmp_path_factory.mktemp("sshd")
    client_pub = _keygen(root / "client_key")
    servers = []
    try:
        for name in ("app1", "app2"):
            servers.append(start_sshd(root / name, name, client_pub))
        known = root / "known_hosts"
        known.write_text("".join(s.known_hosts_line + "\n" for s in servers))
        yield SshPair((servers[0], servers[1]), root / "client_key", known, getpass.getuser())
    finally:
        for server in servers:
            stop_sshd(server)
