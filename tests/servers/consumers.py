"""Consumers of the Channels project, and its container: the matrix one plus ``guard``.

Each consumer answers a text message with what its injected resources are, so the
tests can match answers against the record file (tests/servers/containers.py):

- ``AsyncUnitConsumer``: ``unit`` (async request resource) and ``pool`` (app).
- ``SyncSessionConsumer``: a sync consumer, ``session`` (sync request resource).
- ``RaisingConsumer``: ``guard``, then raises ``ValueError`` on ``"raise"``.
- ``ConnectionConsumer``: ``unit`` with ``resources_per = "connection"``.
- ``StateConsumer``: ``self.state[<message>]``, letting an error propagate.

The record names request resources by ``id()``, which CPython hands out again once an
object is freed: the consumers keep every request resource they used alive (in
``KEPT``), so that each one's id in the record is its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer

from lifespan_di import Provide, RequestResource, inject
from lifespan_di.channels import LifespanConsumerMixin
from tests.servers.containers import Container, Handle, record, where


async def open_guard() -> AsyncIterator[Handle]:
    """A request resource whose teardown records the exception it receives."""
    handle = Handle("guard")
    record(f"guard:open:{id(handle)} {where()}")
    try:
        yield handle
    except BaseException as error:
        record(f"guard:error:{id(handle)} {type(error).__name__}: {error}")
        raise
    record(f"guard:close:{id(handle)} {where()}")


KEPT: list[Handle] = []
"""Every request resource a consumer used, kept alive: their ids stay distinct."""


class ChannelsContainer(Container):
    guard = RequestResource(open_guard)


class AsyncUnitConsumer(LifespanConsumerMixin, AsyncWebsocketConsumer):
    """Answers ``<text> <id of unit> <pool's name> <pool is self.state's pool>``."""

    @inject
    async def receive(
        self,
        text_data: str | None = None,
        bytes_data: bytes | None = None,
        unit: Handle = Provide[ChannelsContainer.unit],
        pool: Handle = Provide[ChannelsContainer.pool],
    ) -> None:
        KEPT.append(unit)
        same = self.state["pool"] is pool
        await self.send(text_data=f"{text_data} {id(unit)} {pool.name} {same}")


class SyncSessionConsumer(LifespanConsumerMixin, WebsocketConsumer):
    """Answers ``<text> <id of session> <pool's name> <pool is self.state's pool>``."""

    @inject
    def receive(
        self,
        text_data: str | None = None,
        bytes_data: bytes | None = None,
        session: Handle = Provide[ChannelsContainer.session],
        pool: Handle = Provide[ChannelsContainer.pool],
    ) -> None:
        KEPT.append(session)
        same = self.state["pool"] is pool
        self.send(text_data=f"{text_data} {id(session)} {pool.name} {same}")


class RaisingConsumer(LifespanConsumerMixin, AsyncWebsocketConsumer):
    """Answers ``<text> <id of guard>``; on ``"raise"``, raises ValueError instead."""

    @inject
    async def receive(
        self,
        text_data: str | None = None,
        bytes_data: bytes | None = None,
        guard: Handle = Provide[ChannelsContainer.guard],
    ) -> None:
        KEPT.append(guard)
        if text_data == "raise":
            msg = f"consumer failed with guard {id(guard)}"
            raise ValueError(msg)
        await self.send(text_data=f"{text_data} {id(guard)}")


class ConnectionConsumer(LifespanConsumerMixin, AsyncWebsocketConsumer):
    """As ``AsyncUnitConsumer``, with one ``unit`` for the whole connection."""

    resources_per = "connection"

    @inject
    async def receive(
        self,
        text_data: str | None = None,
        bytes_data: bytes | None = None,
        unit: Handle = Provide[ChannelsContainer.unit],
        pool: Handle = Provide[ChannelsContainer.pool],
    ) -> None:
        await self.send(text_data=f"{text_data} {id(unit)} {pool.name}")


class StateConsumer(LifespanConsumerMixin, AsyncWebsocketConsumer):
    """Answers the type of ``self.state[<text>]``; an error reading it propagates."""

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None
    ) -> None:
        assert text_data is not None
        await self.send(text_data=type(self.state[text_data]).__name__)
