"""Private answers through a response_url, all over one shared HTTP session."""

from __future__ import annotations

from typing import Any

import aiohttp
from slack_sdk.webhook.async_client import AsyncWebhookClient


class SharedRespond:
    """Drop-in for Bolt's `respond()`: same keywords, but no new connection per answer."""

    def __init__(self, response_url: str, session: aiohttp.ClientSession) -> None:
        self.client = AsyncWebhookClient(url=response_url, session=session, timeout=10)

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
