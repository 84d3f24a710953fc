"""`[hosts.NAME]` tables and the `host` / `hosts` keys of steps and checks, located problems."""

from __future__ import annotations

import os
import re
from pathlib import Path

from actions.model import Host
from actions.runbook_reader import Table, kind_of

HOST_KEYS = ("address", "user", "port", "identity", "known_hosts", "jump")
_HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_KEYSCAN = "create it with `ssh-keyscan -p PORT ADDRESS >> FILE` and check the fingerprints"


def read_hosts(table: Table, base: Path) -> dict[str, Host]:
    """Every `[hosts.NAME]` table; files are relative to `base` (the runbook's folder)."""
    hosts: dict[str, Host] = {}
    for name, data in table.data.items():
        where = f"[hosts.{name}]"
        if not isinstance(data, dict):
            table.report(name, f"hosts.{name} must be a [hosts.{name}] table, not {kind_of(data)}")
            continue
        entry = Table(table.reader, data, (*table.at, name), where)
        entry.known(HOST_KEYS)
        if not _HOST_NAME.fullmatch(name):
            entry.report(None, f"host name {name!r}: use letters, digits, '.', '-' and '_'")
        address, user = entry.text("address", required=True), entry.text("user", required=True)
        known_hosts = _file(entry, "known_hosts", base, required=True)
        identity = _file(entry, "identity", base, required=False)
        jump = entry.text("jump")
        if jump is not None and jump not in table.data:
            entry.report("jump", f"jump {jump!r} is not a host (known: {_names(table.data)})")
        elif jump == name:
            entry.report("jump", "a host cannot jump through itself")
        hosts[name] = Host(
            name=name,
            address=address or "",
            user=user or "",
            known_hosts=known_hosts or Path(),
            port=_port(entry),
            identity=identity,
            jump=jump,
            line=table.reader.line(entry.at),
        )
    _cycles(table, hosts)
    return hosts


def _port(entry: Table) -> int:
    value = entry.data.get("port", 22)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        entry.report("port", f"port must be a number from 1 to 65535, not {value!r}")
        return 22
    return value


def _file(entry: Table, key: str, base: Path, *, required: bool) -> Path | None:
    text = entry.text(key, required=required)
    if text is None or not text.strip():
        return None
    path = Path(os.path.normpath(base / Path(text).expanduser()))
    if not path.is_file():
        hint = _KEYSCAN if key == "known_hosts" else "give the private key file the bot may read"
        entry.report(key, f"{key} file {path} does not exist; {hint}")
    return path


def _cycles(table: Table, hosts: dict[str, Host]) -> None:
    for name in hosts:
        seen, current = [name], hosts[name].jump
        while current is not None and current in hosts and current != seen[-1]:
            if current in seen:
                if current == name:  # reported once per host on the loop, at its own jump
                    loop = " -> ".join([*seen, current])
                    table.reader.report(
                        (*table.at, name, "jump"), f"[hosts.{name}]", f"jump loop: {loop}"
                    )
                break
            seen.append(current)
            current = hosts[current].jump


def _names(data: dict) -> str:
    return ", ".join(sorted(data)) or "none: add a [hosts.NAME] table"


def step_hosts(table: Table, hosts: dict[str, Host]) -> tuple[str, ...]:
    """The hosts named by `host = "NAME"` or `hosts = ["NAME", …]` (empty: runs locally)."""
    if "host" in table.data and "hosts" in table.data:
        table.report("hosts", "give either host or hosts, not both")
        return ()
    if "host" in table.data:
        value = table.text("host")
        names: tuple[str, ...] = () if value is None else (value,)
        key = "host"
    elif "hosts" in table.data:
        names, key = table.strings("hosts"), "hosts"
        if "hosts" in table.data and isinstance(table.data["hosts"], list) and not names:
            table.report("hosts", "hosts must name at least one host (or leave it out: local)")
    else:
        return ()
    found = []
    for position, name in enumerate(names):
        at = (*table.at, key) if key == "host" else (*table.at, key, position)
        if name not in hosts:
            message = f"{key}: {name!r} is not a host (known: {_names(hosts)})"
            table.reader.report(at, table.where, message)
        elif name in found:
            table.reader.report(at, table.where, f"{key}: {name!r} is named twice")
        else:
            found.append(name)
    return tuple(found)
