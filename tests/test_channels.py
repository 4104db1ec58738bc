"""Django Channels: the lifespan through the router, state and request scopes in consumers.

Protocol level: the router and consumers are driven with asgiref's
``ApplicationCommunicator`` (Channels' ``WebsocketCommunicator``); the real-server
tests are in tests/servers/test_channels.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from dependency_injector import containers
from django.core.checks import run_checks
from django.core.handlers.asgi import ASGIHandler
from django.test import override_settings
from django.urls import path

from lifespan_di import Provide, RequestResource, get_container, inject
from lifespan_di.channels import LifespanConsumerMixin, ProtocolTypeRouter
from lifespan_di.exceptions import (
    ConfigurationError,
    LifespanNotRunningError,
    RequestScopeError,
)
from lifespan_di.handler import LifespanASGIHandler
from lifespan_di.preflight import startup_problems
from tests.project import channels_asgi
from tests.project.containers import Session, events

TIMEOUT = 5

Connect = Callable[[str], "AsyncIterator[WebsocketCommunicator]"]


async def start(application: Any) -> tuple[ApplicationCommunicator, dict[str, Any]]:
    """Run the lifespan startup through ``application``; return it and its state."""
    state: dict[str, Any] = {}
    lifespan = ApplicationCommunicator(
        application, {"type": "lifespan", "state": state}
    )
    await lifespan.send_input({"type": "lifespan.startup"})
    assert await lifespan.receive_output(TIMEOUT) == {
        "type": "lifespan.startup.complete"
    }
    return lifespan, state


async def stop(lifespan: ApplicationCommunicator) -> None:
    await lifespan.send_input({"type": "lifespan.shutdown"})
    assert await lifespan.receive_output(TIMEOUT) == {
        "type": "lifespan.shutdown.complete"
    }


class Served:
    """The test project's Channels router with its lifespan running."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state

    async def connect(self, route: str) -> WebsocketCommunicator:
        # What a server does: each connection gets a copy of the lifespan state.
        communicator = WebsocketCommunicator(channels_asgi.application, route)
        communicator.scope["state"] = dict(self.state)
        connected, _ = await communicator.connect(TIMEOUT)
        assert connected
        return communicator

    async def exchange(self, route: str, texts: list[str]) -> list[str]:
        communicator = await self.connect(route)
        answers = []
        for text in texts:
            await communicator.send_to(text_data=text)
            answers.append(await communicator.receive_from(TIMEOUT))
        await communicator.disconnect()
        return answers


@pytest.fixture
async def served(record: Path) -> AsyncIterator[Served]:
    lifespan, state = await start(channels_asgi.application)
    yield Served(state)
    await stop(lifespan)


class TestRouter:
    def test_the_lifespan_goes_to_the_http_handler(self) -> None:
        """The router routes 'lifespan' to lifespan_di's handler serving 'http'."""
        mapping = channels_asgi.application.application_mapping

        assert mapping["lifespan"] is mapping["http"]

    def test_a_plain_django_handler_gets_a_lifespan_handler(self) -> None:
        """With Django's own handler for 'http', the lifespan gets lifespan_di's."""
        django_handler = ASGIHandler()

        router = ProtocolTypeRouter({"http": django_handler})

        lifespan = router.application_mapping["lifespan"]
        assert isinstance(lifespan, LifespanASGIHandler)
        assert router.application_mapping["http"] is django_handler

    def test_a_lifespan_route_of_the_mapping_is_kept(self) -> None:
        """A 'lifespan' route given in the mapping is used as it is."""
        own = LifespanASGIHandler()

        router = ProtocolTypeRouter({"websocket": URLRouter([]), "lifespan": own})

        assert router.application_mapping["lifespan"] is own

    async def test_the_lifespan_runs_through_the_router(self, record: Path) -> None:
        """lifespan.startup through the router starts the resources; shutdown stops them."""
        lifespan, state = await start(channels_asgi.application)
        assert events(record, "start:") == ["start:counter", "start:httpx_client"]
        assert isinstance(state["counter"], type(get_container().counter()))

        await stop(lifespan)

        assert sorted(events(record, "stop:")) == ["stop:counter", "stop:httpx_client"]


class TestMessageScope:
    async def test_each_message_opens_and_closes_its_resources(
        self, served: Served, record: Path
    ) -> None:
        """An async consumer: one request resource per message, closed after it."""
        answers = await served.exchange("async/", ["a", "b", "c"])

        assert [answer.split()[0] for answer in answers] == ["a", "b", "c"]
        assert all(answer.endswith(" True") for answer in answers)
        opened = events(record, "open:")
        closed = events(record, "close:")
        assert len(opened) == len(closed) == 3
        assert [line.split(":", 1)[1] for line in opened] == [
            line.split(":", 1)[1] for line in closed
        ]
        assert len(events(record, "commit:")) == 3

    async def test_a_sync_consumer_opens_per_message_too(
        self, served: Served, record: Path
    ) -> None:
        """A sync consumer: sync and async request resources, each once per message."""
        answers = await served.exchange("sync/", ["a", "b"])

        assert len(answers) == 2
        assert len(events(record, "open:session:")) == 2
        assert len(events(record, "close:session:")) == 2
        assert len(events(record, "open:async_session:")) == 2
        assert len(events(record, "close:async_session:")) == 2

    @pytest.mark.parametrize("route", ["async/", "sync/"])
    async def test_a_teardown_sees_the_handler_exception(
        self, served: Served, record: Path, route: str
    ) -> None:
        """A handler that raises: its request resources roll back with its exception."""
        communicator = await served.connect(route)

        await communicator.send_to(text_data="raise")
        with pytest.raises(ValueError, match="raise"):
            await communicator.wait(TIMEOUT)

        rollbacks = events(record, "rollback:")
        assert rollbacks
        assert all(line.endswith(":ValueError") for line in rollbacks)
        assert len(events(record, "close:")) == len(events(record, "open:"))

    async def test_connection_scope_holds_one_instance(
        self, served: Served, record: Path
    ) -> None:
        """resources_per = 'connection': one instance for every message, closed at the end."""
        answers = await served.exchange("connection/", ["a", "b", "c"])

        labels = {answer.split()[1] for answer in answers}
        assert len(labels) == 1
        assert len(events(record, "open:")) == 1
        assert len(events(record, "close:")) == 1

    async def test_a_failing_close_ends_the_connection(self, record: Path) -> None:
        """A teardown that fails after a handler that succeeded raises RequestScopeError."""

        def open_broken() -> Any:
            yield Session("broken", None)
            msg = "commit failed"
            raise RuntimeError(msg)

        class Broken(containers.DeclarativeContainer):
            broken = RequestResource(open_broken)

        class BrokenConsumer(LifespanConsumerMixin, AsyncWebsocketConsumer):
            @inject
            async def receive(
                self,
                text_data: str | None = None,
                bytes_data: bytes | None = None,
                unit: Session = Provide[Broken.broken],
            ) -> None:
                await self.send(text_data="done")

        router = ProtocolTypeRouter(
            {
                "lifespan": LifespanASGIHandler(container=Broken()),
                "websocket": URLRouter([path("", BrokenConsumer.as_asgi())]),
            }
        )
        lifespan, state = await start(router)
        communicator = WebsocketCommunicator(router, "/")
        communicator.scope["state"] = dict(state)
        assert (await communicator.connect(TIMEOUT))[0]

        await communicator.send_to(text_data="x")
        assert await communicator.receive_from(TIMEOUT) == "done"
        with pytest.raises(RequestScopeError, match="'broken' failed"):
            await communicator.wait(TIMEOUT)
        await stop(lifespan)

    async def test_a_task_outliving_its_message_cannot_open(
        self, served: Served
    ) -> None:
        """A request resource opened after its message was handled names the message."""
        leftover: list[asyncio.Task[Any]] = []
        started = asyncio.Event()

        class Leaving(LifespanConsumerMixin, AsyncWebsocketConsumer):
            async def receive(
                self, text_data: str | None = None, bytes_data: bytes | None = None
            ) -> None:
                async def later() -> Any:
                    await asyncio.sleep(0.05)
                    return await self.state.aget("async_session")

                leftover.append(asyncio.create_task(later()))
                started.set()

        application = URLRouter([path("", Leaving.as_asgi())])
        communicator = WebsocketCommunicator(application, "/")
        communicator.scope["state"] = dict(served.state)
        assert (await communicator.connect(TIMEOUT))[0]
        await communicator.send_to(text_data="x")
        await asyncio.wait_for(started.wait(), TIMEOUT)

        with pytest.raises(RequestScopeError, match="its message has ended"):
            await asyncio.wait_for(leftover[0], TIMEOUT)
        await communicator.disconnect()


class TestState:
    async def test_the_state_hides_lifespan_di_keys(self, served: Served) -> None:
        """self.state lists the app resources only, as request.state does."""
        communicator = await served.connect("state/")

        await communicator.send_to(text_data="missing")
        answer = await communicator.receive_from(TIMEOUT)

        assert answer.startswith("StateKeyError: self.state has no 'missing'.")
        assert "'counter', 'httpx_client'" in answer
        assert "lifespan_di" not in answer.split("Available:")[1].split(".")[0]
        await communicator.disconnect()

    async def test_an_async_resource_read_synchronously_names_the_consumer(
        self, served: Served
    ) -> None:
        """self.state['async_session'] on the loop tells the consumer to await aget()."""
        answers = await served.exchange("state/", ["async_session"])

        assert answers[0].startswith(
            "RequestScopeError: Cannot open the request resource 'async_session' "
            "synchronously in the Channels consumer "
            "tests.project.consumers.StateConsumer"
        )
        assert "`await self.state.aget('async_session')`" in answers[0]

    async def test_without_a_lifespan_the_state_says_why(self) -> None:
        """self.state with no lifespan running names the consumer and the router fix."""
        communicator = WebsocketCommunicator(channels_asgi.websocket, "state/")
        assert (await communicator.connect(TIMEOUT))[0]

        await communicator.send_to(text_data="counter")
        answer = await communicator.receive_from(TIMEOUT)

        assert answer.startswith(
            "LifespanNotRunningError: Cannot use self.state['counter'] in the Channels "
            "consumer tests.project.consumers.StateConsumer: no lifespan is running"
        )
        assert "import ProtocolTypeRouter from lifespan_di.channels" in answer
        await communicator.disconnect()


class TestConsumerErrors:
    @pytest.mark.parametrize(
        ("route", "consumer"),
        [("plain/", "PlainConsumer"), ("plain-sync/", "PlainSyncConsumer")],
    )
    async def test_a_consumer_without_the_mixin_is_told_to_add_it(
        self, served: Served, route: str, consumer: str
    ) -> None:
        """A request resource in a consumer without the mixin names the consumer."""
        answers = await served.exchange(route, ["x"])

        assert answers[0].startswith(
            "RequestScopeError: Cannot open the request resource "
        )
        assert (
            f"in the Channels consumer tests.project.consumers.{consumer}"
            in (answers[0])
        )
        assert f"`class {consumer}(LifespanConsumerMixin, " in answers[0]
        assert "get_asgi_application" not in answers[0]

    async def test_inject_without_a_lifespan_names_the_consumer(self) -> None:
        """inject in a consumer with no lifespan running points at the router."""
        communicator = WebsocketCommunicator(channels_asgi.websocket, "plain/")
        assert (await communicator.connect(TIMEOUT))[0]

        await communicator.send_to(text_data="x")
        with pytest.raises(LifespanNotRunningError) as caught:
            await communicator.wait(TIMEOUT)

        message = str(caught.value)
        assert "in the Channels consumer tests.project.consumers.PlainConsumer" in (
            message
        )
        assert "import ProtocolTypeRouter from lifespan_di.channels" in message

    def test_the_mixin_must_come_first(self) -> None:
        """A consumer listing Channels' class before the mixin is refused at definition."""
        with pytest.raises(ConfigurationError, match="Put LifespanConsumerMixin first"):

            class Wrong(WebsocketConsumer, LifespanConsumerMixin):  # type: ignore[misc]
                pass

    def test_resources_per_is_checked(self) -> None:
        """An unknown resources_per is refused at class definition."""
        with pytest.raises(
            ConfigurationError, match=r"'message' \(the default\) or 'connection'"
        ):

            class Wrong(LifespanConsumerMixin, WebsocketConsumer):
                resources_per = "request"  # type: ignore[assignment]


class TestChecks:
    def test_a_router_without_lifespan_is_w003(self) -> None:
        """ASGI_APPLICATION naming Channels' router with no lifespan route warns."""
        with override_settings(
            ASGI_APPLICATION="tests.project.channels_asgi.without_lifespan"
        ):
            found = [m for m in run_checks() if m.id == "lifespan_di.W003"]

        assert len(found) == 1
        assert "'tests.project.channels_asgi.without_lifespan'" in found[0].msg
        assert "lifespan_di.channels" in str(found[0].hint)

    @pytest.mark.parametrize("name", ["application", "with_lifespan_route"])
    def test_a_router_with_lifespan_passes(self, name: str) -> None:
        """lifespan_di's router, or Channels' with a lifespan route, raise nothing."""
        with override_settings(ASGI_APPLICATION=f"tests.project.channels_asgi.{name}"):
            ids = [m.id for m in run_checks() if str(m.id).startswith("lifespan_di.")]

        assert ids == []

    def test_consumer_markers_are_checked(self) -> None:
        """A consumer marker naming no provider is E007, behind middleware and routers."""
        with override_settings(
            ASGI_APPLICATION="tests.project.channels_asgi.unknown_marker"
        ):
            problems = startup_problems()
            found = [m for m in run_checks() if m.id == "lifespan_di.E007"]

        assert [problem.id for problem in problems] == ["lifespan_di.E007"]
        assert len(found) == 1
        assert "UnknownMarkerConsumer.receive" in found[0].msg
        assert "'htpx_client'" in found[0].msg


class TestInTests:
    async def test_a_communicator_uses_the_lifespan_fixture(
        self, lifespan: Any, record: Path
    ) -> None:
        """Channels' WebsocketCommunicator in a test reaches the fixture's resources."""
        communicator = WebsocketCommunicator(channels_asgi.application, "async/")
        assert (await communicator.connect(TIMEOUT))[0]

        await communicator.send_to(text_data="a")
        answer = await communicator.receive_from(TIMEOUT)
        await communicator.disconnect()

        assert answer.startswith("a async_session:")
        assert answer.endswith(" True")
        assert len(events(record, "open:")) == len(events(record, "close:")) == 1
