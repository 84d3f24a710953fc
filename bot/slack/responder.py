"""Private answers through a response_url: Bolt's respond() over one shared HTTP session, and
the outbox's word to whoever asked for a message that Slack refused."""

from __future__ import annotations

import contextlib
from typing import Any

import aiohttp
from slack_sdk.webhook.async_client import AsyncWebhookClient


class SharedRespond:
    """Drop-in for Bolt's `respond()`: same keywords, but no new connection per answer.

    The webhook client is made on the first answer: most requests are answered in their
    acknowledgement and never call it, and making one costs more than the request's own work.
    """

    def __init__(self, response_url: str, session: aiohttp.ClientSession) -> None:
        self.response_url, self.session = response_url, session
        self._client: AsyncWebhookClient | None = None

    @property
    def client(self) -> AsyncWebhookClient:
        """The webhook client for this response_url, made once."""
        if self._client is None:
            self._client = AsyncWebhookClient(
                url=self.response_url, session=self.session, timeout=10
            )
        return self._client

    async def __call__(self, text: str | None = None, **fields: Any) -> Any:
        """POST a message to the response_url (ephemeral unless `response_type` says not)."""
        allowed = (
            "blocks",
            "response_type",
            "replace_original",
            "delete_original",
            "unfurl_links",
            "unfurl_media",
            "attachments",
            "metadata",
        )
        return await self.client.send(
            text=text, **{k: v for k, v in fields.items() if k in allowed}
        )


async def tell_requester(payload: dict, code: str) -> None:
    """When a message that someone asked for can't be posted, tell them why, privately."""
    url = payload.get("failure_response_url")
    if not url:
        return
    advice = {
        "not_in_channel": "Invite me to this channel (`/invite @rollback-bot`), then try again.",
        "channel_not_found": "I can't see this channel. Invite me to it, then try again.",
        "is_archived": "This channel is archived. Use another channel.",
    }.get(code, "Check the bot's logs; the incident is recorded but its thread is not in Slack.")
    text = f":warning: I couldn't post in this channel ({code}). {advice}"
    with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
        async with aiohttp.ClientSession() as session:
            await session.post(url, json={"response_type": "ephemeral", "text": text}, timeout=5)
