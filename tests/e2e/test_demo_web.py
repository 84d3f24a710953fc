"""`rollback-bot demo --web`: a real browser shows the conversation, updating live.

Needs Debian's chromium (`apt-get install -y chromium`) and the playwright package; Playwright's
own browser download is not used (it can't reach its servers here).
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from bot.demo.play import DemoOptions, names, play_demo
from bot.demo.transcript import Transcript
from bot.demo.web import serve_page
from bot.slack.blocks import approval_request

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed: apt-get install -y chromium"
)
playwright_api = pytest.importorskip(
    "playwright.async_api", reason="the playwright package is not installed: pip install playwright"
)


async def launch(playwright):
    return await playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
    )


async def test_demo_page_follows_the_incident_live_and_shows_edits_in_place(
    pg_server_dsn, tmp_path
):
    transcript = Transcript(names())
    served = await serve_page(transcript)
    options = DemoOptions(
        data_dir=tmp_path / "data",
        rows=300,
        server_dsn=pg_server_dsn,
        suffix="_" + uuid.uuid4().hex[:6],
    )
    try:
        async with playwright_api.async_playwright() as playwright:
            browser = await launch(playwright)
            page = await browser.new_page()
            await page.goto(served.url)
            assert await page.locator(".msg").count() == 0
            demo = asyncio.create_task(play_demo(options, transcript, page_url=served.url))
            # The demo starts its own bot and database first: on a loaded machine that alone
            # has taken longer than Playwright's default 30 s, so wait as long as for the demo.
            await page.wait_for_function(
                "document.querySelectorAll('.msg').length >= 3", timeout=120_000
            )
            early = await page.locator(".msg").count()
            await asyncio.wait_for(demo, 120)
            await page.wait_for_selector("body[data-finished=true]", state="attached")
            assert await page.locator(".msg").count() > early  # it grew without a reload
            assert await page.locator("#status").inner_text() == "finished"
            feed = await page.locator("#feed").inner_text()
            await browser.close()
    finally:
        await served.close()
    assert "only visible to @alice" in feed
    assert "a second person must approve" in feed
    assert "Approved by @bob" in feed
    assert "Verification: 5/5 checks passed" in feed
    assert "Rollback finished" in feed
    assert "Identical to before the failure: database yes, project files yes" in feed
    assert "⏳" not in feed  # every step message shows its final state, in place
    assert feed.count("Rollback requested for RB-1") == 0  # the request was replaced in place


async def test_buttons_mentions_and_code_render_as_slack_shows_them(tmp_path):
    from datetime import UTC, datetime

    transcript = Transcript({"UBOB": "bob", "CROOM": "ecom-ops"})
    incident = {"id": 4, "severity": "critical"}
    approval = {"id": 9, "scenario": "full", "expires_at": datetime(2024, 5, 1, tzinfo=UTC)}
    text, blocks = approval_request(
        incident,
        approval,
        scenario_title="Complete failure",
        steps=["Stop app"],
        contacts=["UBOB"],
        approvers=[],
    )
    transcript.add(
        "message", channel="CROOM", ts="1.0", author="rollback-bot", text=text, blocks=blocks
    )
    served = await serve_page(transcript)
    try:
        async with playwright_api.async_playwright() as playwright:
            browser = await launch(playwright)
            page = await browser.new_page()
            await page.goto(served.url)
            await page.wait_for_selector(".msg")
            approve = page.locator(".button.primary")
            assert await approve.inner_text() == "[Approve]"
            assert await page.locator(".button.danger").inner_text() == "[Reject]"
            assert await page.locator(".mention").first.inner_text() == "@bob"
            assert await page.locator("code").first.inner_text() == "full"
            colour = await approve.evaluate("e => getComputedStyle(e).backgroundColor")
            assert colour == "rgb(0, 122, 90)"  # Slack's green primary button
            await page.screenshot(path=str(tmp_path / "page.png"))
            await browser.close()
    finally:
        await served.close()
