"""Through the bot: a backup and a rollback whose steps run on two real sshd "hosts"."""

from __future__ import annotations

import asyncio
import textwrap

from actions.artifacts import file_digest
from tests import sshd
from tests.e2e.harness import fetch, text_of
from tests.e2e.test_runs import (
    CHANNEL,
    DECLARER,
    buttons,
    roll_back,
    wait_state,
)

ssh_pair = sshd.ssh_pair  # the fixture: two real sshd servers


def scenarios(pair) -> str:
    app1, app2 = pair.servers
    tables = pair.host_table("app1", app1) + "\n" + pair.host_table("app2", app2)
    return (
        "\n"
        + tables
        + textwrap.dedent(f"""
        [backup]
          [[backup.step]]
          name = "Dump on app1"
          host = "app1"
          run = "echo dump-$RANDOM > {{{{ artifact }}}}"
          artifact = {{ name = "dump", path = "dump_{{{{ ts }}}}.txt" }}

        [[scenario]]
        key = "remote"
        title = "Restart the app servers"
        trigger = "test"
          [[scenario.step]]
          name = "Restart on both"
          hosts = ["app1", "app2"]
          run = '''
        port=$(echo $SSH_CONNECTION | cut -d' ' -f4)
        token=${{SLACK_BOT_TOKEN:-no-bot-token}} db=${{DATABASE_URL:-no-db-url}}
        echo "restarting on $port with $token $db"
        cat {{{{ backup.dump }}}} >> ran-$port.log
        [ "$port" = {app1.port} ] || {{ echo "app2 is down" >/dev/stderr; exit 4; }}
        '''
        """)
    )


async def test_backup_and_rollback_run_on_hosts_and_the_thread_shows_each_host(
    start_bot, fake, tmp_path, ssh_pair
):
    bot = await start_bot(scenarios=scenarios(ssh_pair), workdir=tmp_path)
    url = fake.response_url()
    await bot.command("backup", user=DECLARER, channel=CHANNEL, response_url=url)
    rows = []
    for _ in range(300):
        rows = await fetch(start_bot.dsn, "select state from runs where kind = 'backup'")
        if rows and rows[0]["state"] in ("succeeded", "failed", "waiting"):
            break
        await asyncio.sleep(0.1)
    assert rows and rows[0]["state"] == "succeeded", fake.summary()
    (artifact,) = await fetch(start_bot.dsn, "select path, size, sha256 from artifacts")
    assert (artifact["size"], artifact["sha256"]) == file_digest(tmp_path / artifact["path"])

    await roll_back(bot, fake, "remote")
    await wait_state(start_bot.dsn, fake, "waiting")
    app1, app2 = ssh_pair.servers
    dump = (tmp_path / artifact["path"]).read_text()
    assert (tmp_path / f"ran-{app1.port}.log").read_text() == dump  # ran on both hosts
    assert (tmp_path / f"ran-{app2.port}.log").read_text() == dump
    (result,) = await fetch(
        start_bot.dsn, "select status, exit_code, message, output_tail from step_results"
        " where run_id = (select id from runs where kind = 'rollback')",
    )  # fmt: skip
    assert (result["status"], result["exit_code"]) == ("failed", 4)
    assert result["message"] == "failed on app2: exited with status 4; succeeded on app1"
    assert "no-bot-token no-db-url" in result["output_tail"]  # the bot's secrets stay home

    def step_message(f):
        for root in f.messages(CHANNEL):
            for message in f.thread(CHANNEL, root["ts"]):
                if "Step 1/1: Restart on both" in text_of(message) and "failed" in text_of(message):
                    return message
        return None

    message = await fake.wait_for(step_message, timeout=20)
    contexts = [b["elements"][0]["text"] for b in message["blocks"] if b["type"] == "context"]
    assert contexts == [
        "failed on app2: exited with status 4; succeeded on app1",
        ":white_check_mark: *app1* — succeeded",
        ":x: *app2* — failed: exited with status 4",
    ]
    shown = text_of(message)
    assert f"restarting on {app1.port} with no-bot-token no-db-url" in shown
    assert "app2 is down" in shown
    # Retry / Abort, as for any failed step (the controls message may come after the step's)
    assert await fake.wait_for(lambda f: buttons(f, "run_retry"), timeout=20)

    answer = (await bot.ask("rehearse remote", user=DECLARER, channel=CHANNEL))["text"]
    assert "1. Restart on both\n" in answer  # no program missing on app1 or app2
    assert "Backup: the artifacts it needs are intact" in answer
    assert answer.endswith("Result: PASSED```")
    (tmp_path / artifact["path"]).write_text("tampered\n")
    answer = (await bot.ask("rehearse remote", user=DECLARER, channel=CHANNEL))["text"]
    assert f"Backup: backup file {artifact['path']} on host app1 has changed" in answer
