"""The example's WebSocket consumer: quotes on demand, over one connection."""

from __future__ import annotations

import json

from channels.generic.websocket import AsyncWebsocketConsumer

from example_app.containers import Container
from example_app.metrics import Metrics
from example_app.upstream import QuotesApi
from lifespan_di import Provide, inject
from lifespan_di.channels import LifespanConsumerMixin


# --8<-- [start:consumer]
class QuoteConsumer(LifespanConsumerMixin, AsyncWebsocketConsumer):
    """``ws/quotes/``: send a quote number, receive that quote as JSON.

    A number the upstream does not know, or text that is no number, is answered with
    ``{"error": ...}``; the connection stays open for the next one.
    """

    @inject
    async def receive(
        self,
        text_data: str | None = None,
        bytes_data: bytes | None = None,
        quotes: QuotesApi = Provide[Container.quotes],
        metrics: Metrics = Provide[Container.metrics],
    ) -> None:
        metrics.increment("quote messages")
        text = (text_data or "").strip()
        if not text.isdigit():
            await self.answer({"error": "Send a quote number, such as 1."})
            return
        found = await quotes.get(int(text))
        if found is None:
            await self.answer({"error": f"The upstream has no quote {text}."})
            return
        await self.answer(found)

    async def answer(self, content: object) -> None:
        await self.send(text_data=json.dumps(content))


# --8<-- [end:consumer]
