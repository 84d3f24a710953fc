"""A long step says how long it has run and how long it took last time; the run its finish."""

from __future__ import annotations

import asyncio
import re
import textwrap
from datetime import UTC, datetime

import asyncpg

from actions.durations import format_duration
from bot.db.postgres import migrate
from bot.runs import store as run_store
from tests.e2e.harness import fetch, text_of
from tests.e2e.test_runs import CHANNEL, DECLARER, roll_back

SCENARIOS = textwrap.dedent("""
    [[scenario]]
    key = "clock"
    title = "Waits for a signal"
    trigger = "test"
      [[scenario.step]]
      name = "Quick"
      run = "echo quick"
      [[scenario.step]]
      name = "Wait for the signal"
      run = "sleep 1.5; seq 1 1000000; until test -f go; do sleep 0.2; done; rm go"
""")
WAIT = "Wait for the signal"


def posted_ts(fake, key: str) -> str | None:
    """The ts Slack gave the message the bot posted under outbox key `key`."""
    for call in fake.calls_to("chat.postMessage"):
        if call.ok and call.args.get("metadata", {}).get("event_payload", {}).get("key") == key:
            return call.response["ts"]
    return None


def first_section(message: dict) -> str:
    return message["blocks"][0]["text"]["text"]


def edits_of(fake, ts: str) -> list[dict]:
    """Every chat.update Slack accepted for the channel's message `ts`, in order."""
    return [
        c.args
        for c in fake.calls_to("chat.update")
        if c.ok and c.args.get("channel") == CHANNEL and c.args.get("ts") == ts
    ]


async def run_row(dsn: str, run_id: int, *states: str, timeout: float = 60) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        rows = await fetch(dsn, "select * from runs where id = $1", run_id)
        if rows and rows[0]["state"] in states:
            return dict(rows[0])
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} not in {states}")


async def test_a_long_step_shows_how_long_it_ran_and_took_last_time_and_the_run_its_finish(
    start_bot, fake, tmp_path
):
    bot = await start_bot(
        scenarios=SCENARIOS, workdir=tmp_path, env={"ROLLBACK_STEP_CLOCK_AFTER": "1"}
    )
    # The waiting step prints a million lines once its clock shows (1.5 s > 1 s), then waits
    # for `go`: here at once, so this first run gives it a last duration.
    (tmp_path / "go").write_text("")
    await roll_back(bot, fake, "clock")
    await run_row(start_bot.dsn, 1, "succeeded")
    before = await fetch(
        start_bot.dsn,
        "select name, identity, extract(epoch from ended_at - started_at)::float8 as took"
        " from step_results where run_id = 1 order by step_index",
    )
    last = format_duration(before[1]["took"])
    await bot.command("resolve RB-1", user=DECLARER, channel=CHANNEL, response_url="https://x/y")
    await fake.wait_for(lambda f: [m for m in f.messages(CHANNEL) if "resolved" in text_of(m)])

    await roll_back(bot, fake, "clock")  # run 2: its wait goes on until the test says go
    step_ts = await fake.wait_for(lambda f: posted_ts(f, "run/2/step/1/1"), timeout=30)
    progress_ts = posted_ts(fake, "run/2/progress")
    running = re.compile(
        rf":hourglass_flowing_sand: \*Step 2/2: {WAIT}\* — running (\d+s|\d+m \d\ds)"
        rf" \(last time {re.escape(last)}\)"
    )
    finish = re.compile(
        rf"\*Rollback `clock`\* · 1/2 steps done · step 2 of 2: \*{WAIT}\* — running \d+s"
        rf" \(last time {re.escape(last)}\) · elapsed [0-9.]+s · estimated finish"
        r" <!date\^(\d+)\^\{time\}\|(\d\d:\d\d) UTC> \(under a minute left\)\n▰▱"
    )

    def shown(f):
        step = [e for e in edits_of(f, step_ts) if running.fullmatch(first_section(e))]
        top = [e for e in edits_of(f, progress_ts) if finish.fullmatch(first_section(e))]
        return step and top and (step, top)

    step_edits, progress_edits = await fake.wait_for(shown, timeout=30)
    (tmp_path / "go").write_text("")
    await run_row(start_bot.dsn, 2, "succeeded")

    first_post = next(
        c.args for c in fake.calls_to("chat.postMessage") if c.ok and c.response["ts"] == step_ts
    )
    assert re.fullmatch(
        rf":hourglass_flowing_sand: \*Step 2/2: {WAIT}\* — running since <!date\^\d+\^"
        rf"[^>]+> \(last time {re.escape(last)}\)",
        first_section(first_post),
    )
    epoch, fallback = finish.fullmatch(first_section(progress_edits[0])).groups()
    assert datetime.fromtimestamp(int(epoch), UTC).strftime("%H:%M") == fallback
    assert int(epoch) % 60 == 0  # rounded up to the minute: the text changes at most then
    thread = first_post["thread_ts"]

    def ended(f):
        now = next((m for m in f.thread(CHANNEL, thread) if m["ts"] == step_ts), None)
        return now and "succeeded in" in first_section(now) and first_section(now)

    done = await fake.wait_for(ended, timeout=30)
    assert re.fullmatch(rf":white_check_mark: \*Step 2/2: {WAIT}\* — succeeded in \S+", done)
    for ts in (step_ts, progress_ts):  # a million lines of output, yet no edit repeats one
        texts = [first_section(e) for e in edits_of(fake, ts)]
        assert len(texts) == len(set(texts)), texts
    after = await fetch(
        start_bot.dsn, "select identity from step_results where run_id = 2 order by step_index"
    )
    assert [r["identity"] for r in after] == [r["identity"] for r in before]
    assert all(r["identity"] for r in after)
    assert len(step_edits) <= len(edits_of(fake, step_ts))


async def test_last_durations_are_the_newest_success_per_step_found_through_the_index(
    fresh_database,
):
    await migrate(fresh_database)
    conn = await asyncpg.connect(fresh_database)
    try:
        run_id = await conn.fetchval(
            "insert into runs (kind, channel, requested_by, ts, state)"
            " values ('backup', '', 'cli:test', '0', 'succeeded') returning id"
        )
        # 3,000 results of 300 other steps, then the ones the look-up must choose between
        await conn.execute(
            "insert into step_results (run_id, step_index, name, status, started_at, ended_at,"
            " identity) select $1, 0, 'other', 'succeeded', now(), now(), 'other-' || (i % 300)"
            " from generate_series(1, 3000) as i",
            run_id,
        )
        for identity, status, seconds in [
            ("dump", "succeeded", 30), ("dump", "succeeded", 12), ("dump", "failed", 99),
            ("copy", "timed_out", 5), (None, "succeeded", 7),
        ]:  # fmt: skip
            await conn.execute(
                "insert into step_results (run_id, step_index, name, status, started_at,"
                " ended_at, identity) values ($1, 0, 's', $2, now() - make_interval(secs => $3),"
                " now(), $4)",
                run_id,
                status,
                float(seconds),
                identity,
            )
        await conn.execute("analyze step_results")
        found = await run_store.last_durations(conn, identities=["dump", "copy", "new"])
        assert found.keys() == {"dump"} and round(found["dump"]) == 12
        await conn.execute("set enable_seqscan = off")  # the plan must be able to use the index
        plan = await conn.fetchval(
            "explain (format json) " + run_store.LAST_DURATIONS, ["dump", "copy"]
        )
        assert "step_results_last_success" in plan
    finally:
        await conn.close()
