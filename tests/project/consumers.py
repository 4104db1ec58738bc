"""Channels consumers of the test project, routed by ``tests.project.channels_asgi``.

Each answers a text message with what its injected resources hold; a message
``"raise"`` makes its handler raise ``ValueError``.
"""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer

from lifespan_di import Provide, inject
from lifespan_di.channels import LifespanConsumerMixin
from tests.project.containers import Container, Counter, Session


class AsyncSessionConsumer(LifespanConsumerMixin, AsyncWebsocketConsumer):
    """An async consumer using an async request resource and an app resource."""

    @inject
    async def receive(
        self,
        text_data: str | None = None,
        bytes_data: bytes | None = None,
        session: Session = Provide[Container.async_session],
        counter: Counter = Provide[Container.counter],
    ) -> None:
        if text_data == "raise":
            raise ValueError(text_data)
        same = self.state["counter"] is counter
        await self.send(text_data=f"{text_data} {session.label()} {same}")


class SyncSessionConsumer(LifespanConsumerMixin, WebsocketConsumer):
    """A sync consumer using a sync and an async request resource."""

    @inject
    def receive(
        self,
        text_data: str | None = None,
        bytes_data: bytes | None = None,
        session: Session = Provide[Container.session],
        async_session: Session = Provide[Container.async_session],
    ) -> None:
        if text_data == "raise":
            raise ValueError(text_data)
        self.send(text_data=f"{text_data} {session.label()} {async_session.label()}")


class ConnectionConsumer(LifespanConsumerMixin, AsyncWebsocketConsumer):
    """Holds its request resources for the whole connection."""

    resources_per = "connection"

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None
    ) -> None:
        session = await self.state.aget("async_session")
        await self.send(text_data=f"{text_data} {session.label()}")


class StateConsumer(LifespanConsumerMixin, AsyncWebsocketConsumer):
    """Answers with ``self.state[text]``, or the error reading it raised."""

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None
    ) -> None:
        assert text_data is not None
        try:
            value: Any = self.state[text_data]
        except Exception as error:
            await self.send(text_data=f"{type(error).__name__}: {error}")
        else:
            await self.send(text_data=type(value).__name__)


class PlainConsumer(AsyncWebsocketConsumer):
    """A consumer without the mixin: its messages have no request scope."""

    @inject
    async def receive(
        self,
        text_data: str | None = None,
        bytes_data: bytes | None = None,
        counter: Counter = Provide[Container.counter],
    ) -> None:
        try:
            await Container.async_session.async_()
        except Exception as error:
            await self.send(text_data=f"{type(error).__name__}: {error}")


class PlainSyncConsumer(WebsocketConsumer):
    """A sync consumer without the mixin."""

    def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None
    ) -> None:
        try:
            Container.session()
        except Exception as error:
            self.send(text_data=f"{type(error).__name__}: {error}")


class UnknownMarkerConsumer(AsyncWebsocketConsumer):
    """A consumer whose marker names no provider of the container."""

    @inject
    async def receive(
        self,
        text_data: str | None = None,
        bytes_data: bytes | None = None,
        client: object = Provide["htpx_client"],
    ) -> None:
        await self.send(text_data=repr(client))
