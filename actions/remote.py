"""SSH connections to `[hosts.NAME]` machines (asyncssh): verified host keys, one-line errors.

Host keys are checked against the host's `known_hosts` file only; an unknown or changed key
is refused with its SHA256 fingerprint and the `ssh-keyscan` line that would add it. There
is no accept-new mode. A `HostPool` belongs to one run: it opens each host's connection once,
reuses it for every step and check of that run, and closes them all when the run ends.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from types import TracebackType

import asyncssh

from actions.model import Host

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 20.0  # seconds to connect and log in
# A connection that stops answering is declared lost after about interval × count seconds,
# so a step on a vanished host fails instead of hanging.
KEEPALIVE_INTERVAL = 10.0
KEEPALIVE_COUNT_MAX = 3


class RemoteError(Exception):
    """A host could not be reached or refused us; str() is one line for people."""


class _Client(asyncssh.SSHClient):
    """Remembers the host key the server presented when known_hosts did not trust it."""

    def __init__(self) -> None:
        self.refused_key: asyncssh.SSHKey | None = None

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.refused_key = key
        return False  # only keys in the runbook's known_hosts file are trusted


class HostPool:
    """The SSH connections of one run, keyed by host name; use as `async with`."""

    def __init__(self, hosts: Mapping[str, Host]) -> None:
        self.hosts = dict(hosts)
        self._connections: dict[str, asyncssh.SSHClientConnection] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def __aenter__(self) -> HostPool:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def host(self, name: str) -> Host:
        """The host called `name` (the runbook check guarantees it exists)."""
        return self.hosts[name]

    async def connection(self, name: str) -> asyncssh.SSHClientConnection:
        """The open connection to host `name`, made on first use; raises RemoteError."""
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            conn = self._connections.get(name)
            if conn is None or conn.is_closed():
                conn = await self._connect(self.host(name))
                self._connections[name] = conn
            return conn

    def forget(self, name: str) -> None:
        """Drop a connection that was lost, so the next use (a Retry) connects afresh."""
        conn = self._connections.pop(name, None)
        if conn is not None:
            conn.abort()

    async def close(self) -> None:
        """Close every connection (jump hosts last, as they carry the others)."""
        for conn in reversed(list(self._connections.values())):
            conn.close()
            try:
                await asyncio.wait_for(conn.wait_closed(), 5.0)
            except (TimeoutError, OSError, asyncssh.Error):
                conn.abort()
        self._connections.clear()

    async def _connect(self, host: Host) -> asyncssh.SSHClientConnection:
        tunnel = await self.connection(host.jump) if host.jump else None
        client = _Client()
        keys = [str(host.identity)] if host.identity else ()  # (): ssh-agent, ~/.ssh keys
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                conn, _ = await asyncssh.create_connection(
                    lambda: client,
                    host.address,
                    host.port,
                    tunnel=tunnel,
                    username=host.user,
                    known_hosts=str(host.known_hosts),
                    client_keys=keys,
                    config=None,  # the runbook says everything; ~/.ssh/config does not apply
                    password_auth=False,
                    kbdint_auth=False,
                    agent_forwarding=False,
                    send_env=None,
                    keepalive_interval=KEEPALIVE_INTERVAL,
                    keepalive_count_max=KEEPALIVE_COUNT_MAX,
                )
        except asyncssh.HostKeyNotVerifiable:
            raise RemoteError(host_key_message(host, client.refused_key)) from None
        except asyncssh.PermissionDenied:
            how = f"identity {host.identity}" if host.identity else "the ssh-agent / ~/.ssh keys"
            raise RemoteError(
                f"host {host.label} refused the login of {host.user} with {how}: add its public "
                f"key to ~{host.user}/.ssh/authorized_keys there, or fix `identity`"
            ) from None
        except asyncssh.KeyExchangeFailed as exc:
            raise RemoteError(
                f"host {host.label}: key exchange failed ({exc.reason}); if its host key changed "
                f"type, check it and add it with "
                f"`ssh-keyscan -p {host.port} {host.address} >> {host.known_hosts}`"
            ) from None
        except TimeoutError:
            raise RemoteError(
                f"host {host.label} did not answer within {CONNECT_TIMEOUT:g}s: check its "
                "address, port and firewall"
            ) from None
        except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
            raise RemoteError(
                f"host {host.name}: cannot use identity {host.identity}: {exc} (a passphrase-"
                "protected key must be loaded into an ssh-agent instead)"
            ) from None
        except asyncssh.Error as exc:
            raise RemoteError(f"host {host.label}: SSH failed: {exc.reason}") from None
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__
            if exc.filename:  # the identity or known_hosts file could not be read
                message = f"host {host.name}: cannot read {exc.filename}: {reason}"
                raise RemoteError(message) from None
            raise RemoteError(f"could not connect to host {host.label}: {reason}") from None
        return conn


def host_key_message(host: Host, key: asyncssh.SSHKey | None) -> str:
    """The one line that says a host's key is not trusted, and how to trust it."""
    presented = (
        f"presented {key.get_algorithm()} key {key.get_fingerprint('sha256')}"
        if key is not None
        else "presented a host key"
    )
    return (
        f"host {host.label} {presented}, which is not in {host.known_hosts} (unknown or changed "
        f"host key; refused). If that is its real key, add it with "
        f"`ssh-keyscan -p {host.port} {host.address} >> {host.known_hosts}`, compare the "
        "fingerprint, then Retry"
    )
