"""The acknowledgement carries the outcome; slow work is acked as "still working", then answered."""

from __future__ import annotations

import asyncio

from bot.services import Background, Refusal
from bot.slack import guard


class Recorder:
    def __init__(self) -> None:
        self.calls: list[dict] = []

    async def __call__(self, **fields) -> None:
        self.calls.append(fields)


async def test_the_ack_is_the_answer_of_the_finished_work():
    ack, respond = Recorder(), Recorder()

    async def work() -> str:
        return "RB-3 is resolved."

    await guard.ack_with_outcome(ack, respond, work(), after=Background())
    assert ack.calls == [{"response_type": "ephemeral", "text": "RB-3 is resolved."}]
    assert respond.calls == []


async def test_a_refusal_is_acked_as_a_warning_and_blocks_ride_along():
    ack, respond = Recorder(), Recorder()

    async def refused() -> str:
        raise Refusal("RB-3 belongs to <#C1>; resolve it there. Nothing changed.")

    await guard.ack_with_outcome(ack, respond, refused(), after=Background())
    assert ack.calls[0]["text"].startswith(":warning: RB-3 belongs to <#C1>")

    async def preview() -> dict:
        return {"text": "Preview", "blocks": [{"type": "divider"}]}

    await guard.ack_with_outcome(ack, respond, preview(), after=Background())
    assert ack.calls[1] == {
        "response_type": "ephemeral",
        "text": "Preview",
        "blocks": [{"type": "divider"}],
    }


async def test_work_slower_than_slack_waits_is_acked_as_still_working_then_answered(
    monkeypatch,
):
    monkeypatch.setattr(guard, "ACK_BUDGET", 0.05)
    ack, respond = Recorder(), Recorder()
    release = asyncio.Event()

    async def slow() -> str:
        await release.wait()
        return "RB-3 is resolved."

    after = Background()
    # the handler returns at once (Bolt answers Slack then); the outcome follows from `after`
    await guard.ack_with_outcome(ack, respond, slow(), after=after)
    assert ack.calls == [{"response_type": "ephemeral", "text": guard.STILL_WORKING}]
    assert respond.calls == []  # nothing is claimed before the work is done
    release.set()
    await after.finish(timeout=5)
    assert respond.calls == [
        {"text": "RB-3 is resolved.", "response_type": "ephemeral", "replace_original": False}
    ]


async def test_a_button_acks_once_its_work_is_done_and_answers_after_returning():
    respond, after = Recorder(), Background()
    order = []

    async def work() -> str:
        order.append("work")
        return "Approved."

    async def acked(**fields) -> None:
        order.append("ack")

    await guard.done_then_answer(acked, respond, work(), after=after)
    assert order == ["work", "ack"] and respond.calls == []  # returned: Bolt answers Slack now
    await after.finish(timeout=5)
    assert respond.calls == [
        {"text": "Approved.", "response_type": "ephemeral", "replace_original": False}
    ]


async def test_long_work_is_acked_first_and_answered_when_done():
    ack, respond, after = Recorder(), Recorder(), Background()
    release = asyncio.Event()

    async def checklist() -> str:
        await release.wait()
        return "Checklist: 3 of 5 done."

    await guard.ack_then(ack, respond, checklist(), after=after)
    assert ack.calls == [{}] and respond.calls == []
    release.set()
    await after.finish(timeout=5)
    assert respond.calls[0]["text"] == "Checklist: 3 of 5 done."


async def test_work_after_an_ack_that_fails_is_logged_and_shutdown_cancels_what_hangs(caplog):
    after = Background()

    async def broken() -> None:
        raise KeyError("channel")

    never = asyncio.Event()
    after.start(broken())
    after.start(never.wait())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert "background work" in caplog.text and "failed" in caplog.text
    await after.finish(timeout=0.05)  # returns although one task would wait forever
    assert not after._tasks
