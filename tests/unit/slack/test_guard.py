"""The acknowledgement carries the outcome; slow work is acked as "still working", then answered."""

from __future__ import annotations

import asyncio

from bot.services import Refusal
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

    await guard.ack_with_outcome(ack, respond, work())
    assert ack.calls == [{"response_type": "ephemeral", "text": "RB-3 is resolved."}]
    assert respond.calls == []


async def test_a_refusal_is_acked_as_a_warning_and_blocks_ride_along():
    ack, respond = Recorder(), Recorder()

    async def refused() -> str:
        raise Refusal("RB-3 belongs to <#C1>; resolve it there. Nothing changed.")

    await guard.ack_with_outcome(ack, respond, refused())
    assert ack.calls[0]["text"].startswith(":warning: RB-3 belongs to <#C1>")

    async def preview() -> dict:
        return {"text": "Preview", "blocks": [{"type": "divider"}]}

    await guard.ack_with_outcome(ack, respond, preview())
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

    task = asyncio.ensure_future(guard.ack_with_outcome(ack, respond, slow()))
    while not ack.calls:
        await asyncio.sleep(0.01)
    assert ack.calls == [{"response_type": "ephemeral", "text": guard.STILL_WORKING}]
    assert respond.calls == []  # nothing is claimed before the work is done
    release.set()
    await task
    assert respond.calls == [
        {"text": "RB-3 is resolved.", "response_type": "ephemeral", "replace_original": False}
    ]
