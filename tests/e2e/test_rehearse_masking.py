"""A rehearsal shows rendered commands: every secret in them is masked, in Slack and the CLI."""

from __future__ import annotations

from tests.e2e.harness import ack_body, outcome
from tests.e2e.test_rehearse_and_backup import cli

SALT = "n3xtauth-salt-0f-the-shop"  # a .env value under a key that does not look secret
SECRETS = (
    "hunter2-db-pass",
    "sk_live_51Hx9AbCdEfGhIjKlMn",
    "w3bh00ks3cret",
    SALT,
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
)


def leaky_runbook(sandbox) -> None:
    """A runbook whose only scenario puts secrets from [vars] into its commands."""
    with (sandbox.project / ".env").open("a", encoding="utf-8") as env:
        env.write(f"NEXTAUTH_SALT={SALT}\n")
    sandbox.runbook_path.write_text(
        f"""\
[project]
name = "Shop"
workdir = "{sandbox.project}"

[vars]
db_url = "postgresql://app:hunter2-db-pass@db.internal/shop"
stripe = "sk_live_51Hx9AbCdEfGhIjKlMn"
hook = "https://hooks.slack.com/services/T0ABC/B0DEF/w3bh00ks3cret"
salt = "{SALT}"
key = "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n-----END PRIVATE KEY-----"

[[scenario]]
key = "leaky"
title = "Leaky"
  [[scenario.step]]
  name = "Use them"
  run = '''
psql {{{{ vars.db_url }}}} -c 'select 1'
curl -d {{{{ vars.stripe }}}} {{{{ vars.hook }}}}
echo {{{{ vars.salt }}}}
printf '%s' {{{{ vars.key }}}} > key.pem
'''
""",
        encoding="utf-8",
    )


async def test_command_line_rehearsal_masks_every_secret(fresh_database, sandbox):
    leaky_runbook(sandbox)
    done = cli(sandbox, fresh_database, "rehearse", "leaky")
    assert "1. Use them" in done.stdout, done.stdout + done.stderr
    assert "psql postgresql://app:***@db.internal/shop -c 'select 1'" in done.stdout
    assert "https://hooks.slack.com/services/***" in done.stdout
    assert "-----BEGIN PRIVATE KEY-----" in done.stdout
    for secret in SECRETS:
        assert secret not in done.stdout + done.stderr, secret


async def test_slack_rehearsal_masks_every_secret(start_bot, fake, sandbox):
    leaky_runbook(sandbox)
    bot = await start_bot(runbook=sandbox.runbook_path, env=sandbox.env)
    url = fake.response_url()
    status, reply = await bot.command(
        "rehearse leaky", user="UOPS00001", channel="CREHEARSE", response_url=url
    )
    assert status == 200
    answer = await outcome(fake, ack_body(reply), url)
    assert "Use them" in answer["text"] and "echo ***" in answer["text"]
    everything = str([c.args for c in fake.calls]) + str([r.body for r in fake.responses])
    for secret in SECRETS:
        assert secret not in everything, secret
