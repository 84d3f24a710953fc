"""Steps on hosts against two real OpenSSH servers (tests/sshd.py), driven through actions/."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from actions.events import StepEnded
from actions.masking import Masker
from actions.model import Host
from actions.remote import HostPool
from actions.remote_step import execute_on_hosts
from actions.runner import PreparedStep, run_steps
from tests import sshd
from tests.sshd import SshPair

ssh_pair = sshd.ssh_pair  # the fixture: two real sshd servers


def hosts_of(pair: SshPair, **overrides) -> dict[str, Host]:
    made = {}
    for server in pair.servers:
        fields = dict(
            name=server.name,
            address="127.0.0.1",
            user=pair.user,
            port=server.port,
            identity=pair.client_key,
            known_hosts=pair.known_hosts,
        )
        fields.update(overrides.get(server.name, {}))
        made[server.name] = Host(**fields)
    return made


def step(script: str, *hosts: str, timeout: float = 60, workdir: Path | None = None):
    return PreparedStep(0, "remote", script, workdir or Path("/tmp"), timeout, hosts=hosts)


def running(marker: str) -> list[str]:
    """Processes on this machine (where both sshd 'hosts' run) whose command line has marker."""
    found = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True).stdout
    return [line for line in found.splitlines() if "pgrep" not in line]


async def wait_until(condition, what: str, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_step_runs_on_one_host_with_strict_bash_in_its_workdir(ssh_pair, tmp_path):
    async with HostPool(hosts_of(ssh_pair)) as pool:
        result = await execute_on_hosts(
            step("pwd; echo $SSH_CONNECTION | cut -d' ' -f4; undefined_var=$nope", "app1",
                 workdir=tmp_path),
            pool,
            masker=Masker(),
        )  # fmt: skip
    assert result.status == "failed" and result.exit_code == 1  # set -u: $nope is unbound
    lines = result.output_tail.splitlines()
    assert lines[:2] == [str(tmp_path), str(ssh_pair.servers[0].port)]
    assert "nope: unbound variable" in lines[2]
    assert result.message == "on app1: exited with status 1"
    assert [(h.host, h.status, h.exit_code) for h in result.hosts] == [("app1", "failed", 1)]


async def test_two_hosts_run_in_parallel_and_the_step_fails_naming_the_failed_one(ssh_pair):
    marker = f"par-{uuid.uuid4().hex[:8]}"
    port = "$(echo $SSH_CONNECTION | cut -d' ' -f4)"
    script = "\n".join(
        [
            f"touch /tmp/{marker}-$PPID",  # then wait for the other host's file
            f"while [ $(ls /tmp/{marker}-* | wc -l) -lt 2 ]; do sleep 0.05; done",
            f'echo "on {port}"',
            f'[ "{port}" = {ssh_pair.servers[0].port} ]',
        ]
    )
    async with HostPool(hosts_of(ssh_pair)) as pool:
        result = await execute_on_hosts(
            step(script, "app1", "app2", timeout=30), pool, masker=Masker()
        )
    subprocess.run(f"rm -f /tmp/{marker}-*", shell=True, check=True)
    # each waited for the other's file: only a parallel run gets past the loop
    assert result.status == "failed"
    assert [(h.host, h.status) for h in result.hosts] == [("app1", "succeeded"), ("app2", "failed")]
    assert result.message == "failed on app2: exited with status 1; succeeded on app1"
    assert f"── app1 ──\non {ssh_pair.servers[0].port}" in result.output_tail
    assert f"── app2 ──\non {ssh_pair.servers[1].port}" in result.output_tail


async def test_a_timeout_kills_the_remote_process_group(ssh_pair):
    marker = f"tmo-{uuid.uuid4().hex[:8]}"
    script = f"bash -c 'sleep 300' {marker}-child & sleep 300; : {marker}"
    async with HostPool(hosts_of(ssh_pair)) as pool:
        result = await execute_on_hosts(step(script, "app1", timeout=2), pool, masker=Masker())
        leftover = await (await pool.connection("app2")).run(f"pgrep -f {marker}", check=False)
    assert result.status == "timed_out"
    assert result.message == "on app1: timed out after 2s; its processes were stopped"
    assert running(marker) == [] and leftover.stdout == ""


async def test_cancel_kills_the_remote_processes_on_every_host(ssh_pair):
    marker = f"cxl-{uuid.uuid4().hex[:8]}"
    script = f"bash -c 'sleep 300' {marker}-child & sleep 300; : {marker}"
    async with HostPool(hosts_of(ssh_pair)) as pool:
        task = asyncio.create_task(
            execute_on_hosts(step(script, "app1", "app2"), pool, masker=Masker())
        )
        await wait_until(lambda: len(running(f"{marker}-child")) == 2, "both remote steps")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # The groups are killed before the task ends; the `setsid -w` wrapper outside each group
    # exits once it has reaped its child, which on a loaded machine can take a moment.
    await wait_until(lambda: running(marker) == [], "every process of the step to be gone")


async def test_an_unknown_host_key_is_refused_with_its_fingerprint(ssh_pair, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text(ssh_pair.servers[0].known_hosts_line + "\n")  # app2's key is missing
    app2 = ssh_pair.servers[1]
    fingerprint = subprocess.run(
        ["ssh-keygen", "-lf", str(app2.folder / "host_key.pub")],
        capture_output=True, text=True, check=True,
    ).stdout.split()[1]  # fmt: skip
    hosts = hosts_of(ssh_pair, app2={"known_hosts": known})
    async with HostPool(hosts) as pool:
        result = await execute_on_hosts(step("echo never", "app2"), pool, masker=Masker())
    assert result.status == "failed" and result.exit_code is None and result.output_tail == ""
    assert result.message == (
        f"on app2: host app2 ({ssh_pair.user}@127.0.0.1:{app2.port}) presented ssh-ed25519 key "
        f"{fingerprint}, which is not in {known} (unknown or changed host key; refused). If "
        f"that is its real key, add it with `ssh-keyscan -p {app2.port} 127.0.0.1 >> {known}`, "
        "compare the fingerprint, then Retry"
    )


async def test_a_changed_host_key_is_refused(ssh_pair, tmp_path):
    known = tmp_path / "known_hosts"
    other_key = ssh_pair.servers[1].host_key_line  # app2's key, written down for app1
    known.write_text(f"[127.0.0.1]:{ssh_pair.servers[0].port} {other_key}\n")
    async with HostPool(hosts_of(ssh_pair, app1={"known_hosts": known})) as pool:
        result = await execute_on_hosts(step("echo never", "app1"), pool, masker=Masker())
    assert result.status == "failed" and "unknown or changed host key; refused" in result.message


async def test_a_wrong_client_key_is_refused_in_one_line(ssh_pair, tmp_path):
    key = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    async with HostPool(hosts_of(ssh_pair, app1={"identity": key})) as pool:
        result = await execute_on_hosts(step("echo never", "app1"), pool, masker=Masker())
    port = ssh_pair.servers[0].port
    assert result.message == (
        f"on app1: host app1 ({ssh_pair.user}@127.0.0.1:{port}) refused the login of "
        f"{ssh_pair.user} with identity {key}: add its public key to ~{ssh_pair.user}/.ssh/"
        "authorized_keys there, or fix `identity`"
    )


async def test_nothing_listening_is_one_clear_line(ssh_pair):
    hosts = hosts_of(ssh_pair, app1={"port": 1})
    async with HostPool(hosts) as pool:
        result = await execute_on_hosts(step("echo never", "app1"), pool, masker=Masker())
    assert result.message == (
        f"on app1: could not connect to host app1 ({ssh_pair.user}@127.0.0.1:1): Connection refused"
    )


async def test_remote_output_is_masked_and_the_bots_environment_is_not_sent(ssh_pair, monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-bot-secret")
    monkeypatch.setenv("DATABASE_URL", "postgres://bot:pw@db/bot")
    script = "echo password=hunter2-remote; env; echo HOME=$HOME"
    events = []

    async def sink(event):
        events.append(event)

    async with HostPool(hosts_of(ssh_pair)) as pool:
        ended = await run_steps(
            [step(script, "app1")],
            on_event=sink,
            masker=Masker(["hunter2-remote"]),
            env={"SLACK_BOT_TOKEN": "xoxb-bot-secret"},  # the local env is never sent
            pool=pool,
        )
    assert ended.status == "succeeded"
    (result,) = [e for e in events if isinstance(e, StepEnded)]
    assert "password=hunter2-remote" not in result.output_tail
    assert "password=" in result.output_tail
    assert "SLACK_BOT_TOKEN" not in result.output_tail
    assert "DATABASE_URL" not in result.output_tail
    assert "SSH_CONNECTION=" in result.output_tail  # the login environment sshd gives
    assert result.hosts[0].host == "app1"


async def test_a_missing_remote_workdir_fails_the_step(ssh_pair, tmp_path):
    async with HostPool(hosts_of(ssh_pair)) as pool:
        result = await execute_on_hosts(
            step("true", "app1", workdir=tmp_path / "gone"), pool, masker=Masker()
        )
    assert result.message == f"on app1: working directory {tmp_path / 'gone'} does not exist"


async def test_a_signal_is_reported_as_for_local_steps(ssh_pair):
    async with HostPool(hosts_of(ssh_pair)) as pool:
        result = await execute_on_hosts(step("kill -KILL $$", "app1"), pool, masker=Masker())
    assert (result.exit_code, result.message) == (-9, "on app1: killed by signal SIGKILL")


async def test_connections_are_reused_within_a_pool_and_closed_at_its_end(ssh_pair):
    pool = HostPool(hosts_of(ssh_pair))
    first = await pool.connection("app1")
    await execute_on_hosts(step("true", "app1"), pool, masker=Masker())
    assert await pool.connection("app1") is first
    await pool.close()
    assert first.is_closed()


async def test_a_jump_host_carries_the_connection(ssh_pair):
    hosts = hosts_of(ssh_pair, app2={"jump": "app1"})
    async with HostPool(hosts) as pool:
        result = await execute_on_hosts(
            step("echo $SSH_CONNECTION | cut -d' ' -f4", "app2"), pool, masker=Masker()
        )
    assert result.output_tail == str(ssh_pair.servers[1].port)


async def test_a_lost_connection_fails_the_step_instead_of_hanging(ssh_pair):
    marker = f"lost-{uuid.uuid4().hex[:8]}"
    listener = ssh_pair.servers[0].process.pid
    before = set(subprocess.run(["pgrep", "-P", str(listener)], capture_output=True,
                                text=True).stdout.split())  # fmt: skip
    async with HostPool(hosts_of(ssh_pair)) as pool:
        task = asyncio.create_task(
            execute_on_hosts(step(f"sleep 300; : {marker}", "app1"), pool, masker=Masker())
        )
        await wait_until(lambda: running(marker), "the remote step")
        sessions = subprocess.run(["pgrep", "-P", str(listener)], capture_output=True,
                                  text=True).stdout.split()  # fmt: skip
        for pid in set(sessions) - before:  # this connection's sshd: the "network" goes away
            subprocess.run(["kill", "-KILL", pid], check=False)
        result = await asyncio.wait_for(task, 60)
    for line in running(marker):  # the host could not be told to stop them: clean up here
        subprocess.run(["kill", "-KILL", line.split()[0]], check=False)
    assert result.status == "failed" and result.exit_code is None
    assert result.message == "on app1: the connection to host app1 was lost before the step ended"


async def test_a_run_check_on_a_host_runs_there(ssh_pair, tmp_path):
    from actions.model import Check
    from actions.verify import run_check

    check = Check(name="Port", run="echo $SSH_CONNECTION | cut -d' ' -f4; exit 2", hosts=("app2",))
    async with HostPool(hosts_of(ssh_pair)) as pool:
        ended = await run_check(
            check, rendered=check.run, workdir=tmp_path, masker=Masker(), pool=pool
        )
    assert not ended.passed
    assert ended.detail == f"on app2: exited with status 2\n{ssh_pair.servers[1].port}"
