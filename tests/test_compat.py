"""The drop-in path from django-asgi-lifespan: its names, signals and lifespan managers."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import asynccontextmanager
from typing import Any
from unittest.mock import patch

import pytest
from dependency_injector import containers, providers
from django.conf import settings
from django.core.checks import run_checks
from django.http import HttpRequest, HttpResponse
from django.test import AsyncRequestFactory, override_settings

from lifespan_di import asgi, signals
from lifespan_di.handler import LifespanASGIHandler
from lifespan_di.middleware import AsyncMiddleware, LifespanStateMiddleware
from lifespan_di.register import register_lifespan_manager
from lifespan_di.testing import LifespanAwareAsyncClient
from lifespan_di.types import LifespanManager, State
from tests.recorder import Recorder
from tests.test_handler import Lifespan


@pytest.fixture(autouse=True)
def clean_signals() -> Iterator[None]:
    """Receivers are process-wide: each test starts and ends with none."""
    everything = (signals.asgi_lifespan, signals.asgi_startup, signals.asgi_shutdown)
    saved = {signal: list(signal.receivers) for signal in everything}
    yield
    for signal in everything:
        with signal.lock:
            signal.receivers = saved[signal]
            signal.sender_receivers_cache.clear()


def manager(
    recorder: Recorder, name: str, values: dict[str, Any], fail: bool = False
) -> Any:
    @asynccontextmanager
    async def lifespan_manager() -> LifespanManager:
        if fail:
            raise ConnectionError(f"{name} is down")
        recorder.add(f"start:{name}")
        state: State = dict(values)
        yield state
        recorder.add(f"stop:{name}")

    lifespan_manager.__qualname__ = name
    return lifespan_manager


def one_resource(recorder: Recorder, fail: bool = False) -> containers.Container:
    class One(containers.DeclarativeContainer):
        db = providers.Resource(
            recorder.async_resource(
                "db", delay=0.01, fail_start=OSError("db down") if fail else None
            )
        )

    return One()


class TestNames:
    def test_import_paths(self) -> None:
        """django-asgi-lifespan's import paths exist here, with the same meaning."""
        assert asgi.get_asgi_application().__class__ is LifespanASGIHandler
        assert AsyncMiddleware is LifespanStateMiddleware

    def test_get_asgi_application_sets_django_up_through_its_module(self) -> None:
        """get_asgi_application() calls django.setup() through lifespan_di.asgi's own django import, which django-asgi-lifespan's tests patch."""
        with patch("lifespan_di.asgi.django.setup") as setup:
            application = asgi.get_asgi_application()

        setup.assert_called_once_with(set_prefix=False)
        assert isinstance(application, LifespanASGIHandler)


class TestLifespanManagers:
    async def test_yielded_mapping_joins_the_state(self, recorder: Recorder) -> None:
        """A registered manager runs at startup; what it yields is in the state next to the resources, and it exits at shutdown."""
        register_lifespan_manager(
            context_manager=manager(recorder, "clients", {"httpx_client": "client"})
        )
        state: dict[str, Any] = {}
        lifespan = Lifespan(LifespanASGIHandler(one_resource(recorder)), state)

        started = await lifespan.send("lifespan.startup")
        published = {key: state[key] for key in ("httpx_client",)}
        stopped = await lifespan.send("lifespan.shutdown")

        assert started["type"] == "lifespan.startup.complete"
        assert published == {"httpx_client": "client"}
        assert "db" in state
        assert stopped["type"] == "lifespan.shutdown.complete"
        assert sorted(recorder.stopped) == ["clients", "db"]

    async def test_views_read_manager_values(self, recorder: Recorder) -> None:
        """The AsyncMiddleware alias gives views the manager's values in request.state."""
        register_lifespan_manager(
            context_manager=manager(recorder, "clients", {"httpx_client": "client"})
        )
        seen: dict[str, Any] = {}

        async def view(request: HttpRequest) -> HttpResponse:
            seen["client"] = request.state["httpx_client"]  # type: ignore[attr-defined]
            return HttpResponse()

        state: dict[str, Any] = {}
        lifespan = Lifespan(LifespanASGIHandler(one_resource(recorder)), state)
        await lifespan.send("lifespan.startup")
        request = AsyncRequestFactory().get("/")
        request.scope["state"] = dict(state)  # type: ignore[attr-defined]

        await AsyncMiddleware(view)(request)
        await lifespan.send("lifespan.shutdown")

        assert seen == {"client": "client"}

    async def test_failing_resource_rolls_back_managers(
        self, recorder: Recorder
    ) -> None:
        """A resource failing at startup shuts down a manager that had started."""
        register_lifespan_manager(
            context_manager=manager(recorder, "clients", {"a": 1})
        )
        lifespan = Lifespan(LifespanASGIHandler(one_resource(recorder, fail=True)), {})

        message = await lifespan.send("lifespan.startup")

        assert message["type"] == "lifespan.startup.failed"
        assert "'One.db'" in message["message"]
        assert recorder.events == ["start:clients", "stop:clients"]

    async def test_failing_manager_rolls_back_resources(
        self, recorder: Recorder
    ) -> None:
        """A manager failing at startup fails it, naming the manager, and started resources are shut down."""
        register_lifespan_manager(
            context_manager=manager(recorder, "broken", {}, fail=True)
        )
        container = containers.DynamicContainer()
        container.fast = providers.Resource(recorder.async_resource("fast"))
        lifespan = Lifespan(LifespanASGIHandler(container), {})

        message = await lifespan.send("lifespan.startup")

        assert message["type"] == "lifespan.startup.failed"
        assert "lifespan manager tests.test_compat.broken" in message["message"]
        assert recorder.events == ["start:fast", "stop:fast"]

    async def test_registering_twice_runs_it_once(
        self, recorder: Recorder, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The same manager registered twice runs once, as Django's signals ignore a second identical connect, and says so at debug level."""
        twice = manager(recorder, "twice", {"a": 1})
        register_lifespan_manager(context_manager=twice)
        register_lifespan_manager(context_manager=twice)
        state: dict[str, Any] = {}
        lifespan = Lifespan(LifespanASGIHandler(one_resource(recorder)), state)

        with caplog.at_level(logging.DEBUG, logger="lifespan_di"):
            started = await lifespan.send("lifespan.startup")
        stopped = await lifespan.send("lifespan.shutdown")

        assert started == {"type": "lifespan.startup.complete"}
        assert stopped == {"type": "lifespan.shutdown.complete"}
        assert state["a"] == 1
        assert recorder.events.count("start:twice") == 1
        assert recorder.events.count("stop:twice") == 1
        assert (
            "Lifespan manager tests.test_compat.twice is registered twice; it runs once."
            in caplog.messages
        )

    async def test_same_key_from_two_managers_fails_startup(
        self, recorder: Recorder
    ) -> None:
        """Two managers yielding the same key fail the startup, naming both; everything started is shut down."""
        register_lifespan_manager(
            context_manager=manager(recorder, "first", {"client": 1})
        )
        register_lifespan_manager(
            context_manager=manager(recorder, "second", {"client": 2})
        )
        lifespan = Lifespan(LifespanASGIHandler(one_resource(recorder)), {})

        message = await lifespan.send("lifespan.startup")

        assert message["type"] == "lifespan.startup.failed"
        assert "'client'" in message["message"]
        assert "tests.test_compat.first" in message["message"]
        assert "tests.test_compat.second" in message["message"]
        assert sorted(recorder.stopped) == ["db", "first", "second"]

    async def test_key_colliding_with_a_resource_fails_startup(
        self, recorder: Recorder
    ) -> None:
        """A manager yielding a resource's name fails the startup instead of hiding the resource."""
        register_lifespan_manager(
            context_manager=manager(recorder, "shadow", {"db": "not the db"})
        )
        lifespan = Lifespan(LifespanASGIHandler(one_resource(recorder)), {})

        message = await lifespan.send("lifespan.startup")

        assert message["type"] == "lifespan.startup.failed"
        assert "'db'" in message["message"]
        assert "One.db" in message["message"]

    async def test_without_a_container(self, recorder: Recorder) -> None:
        """A project with registered managers and no LIFESPAN_DI setting runs the managers and passes the checks."""
        register_lifespan_manager(
            context_manager=manager(recorder, "only", {"client": "c"})
        )
        state: dict[str, Any] = {}

        with override_settings():
            del settings.LIFESPAN_DI
            ids = [
                message.id
                for message in run_checks()
                if (message.id or "").startswith("lifespan_di.")
            ]
            lifespan = Lifespan(LifespanASGIHandler(), state)
            started = await lifespan.send("lifespan.startup")
            stopped = await lifespan.send("lifespan.shutdown")

        assert ids == []
        assert started["type"] == "lifespan.startup.complete"
        assert state["client"] == "c"
        assert stopped["type"] == "lifespan.shutdown.complete"
        assert recorder.events == ["start:only", "stop:only"]


class TestLifespanAwareAsyncClient:
    async def test_views_see_the_given_state(self) -> None:
        """LifespanAwareAsyncClient(state=...) gives views that state, with no lifespan running."""
        client = LifespanAwareAsyncClient(state={"httpx_client": "fake", "counter": 1})

        body = (await client.get("/sync-state/", {"scratch": "x"})).json()

        assert body["keys"] == ["counter", "httpx_client", "scratch"]
        assert body["same_by_attribute"] is True

    async def test_each_request_gets_its_own_copy(self) -> None:
        """A view's writes to request.state reach neither the next request nor the given dict."""
        given = {"httpx_client": "fake"}
        client = LifespanAwareAsyncClient(state=given)

        await client.get("/sync-state/", {"scratch": "x"})
        second = (await client.get("/sync-state/")).json()

        assert given == {"httpx_client": "fake"}
        assert second["keys"] == ["httpx_client", "scratch"]


class TestSignals:
    async def test_signals_without_a_container(self) -> None:
        """A project that only connects asgi_startup / asgi_shutdown receivers, with no LIFESPAN_DI, gets them called."""
        calls: list[str] = []

        async def on_startup(**kwargs: Any) -> None:
            calls.append("startup")

        def on_shutdown(**kwargs: Any) -> None:
            calls.append("shutdown")

        signals.asgi_startup.connect(on_startup)
        signals.asgi_shutdown.connect(on_shutdown)

        with override_settings():
            del settings.LIFESPAN_DI
            lifespan = Lifespan(LifespanASGIHandler(), {})
            started = await lifespan.send("lifespan.startup")
            stopped = await lifespan.send("lifespan.shutdown")

        assert started["type"] == "lifespan.startup.complete"
        assert stopped["type"] == "lifespan.shutdown.complete"
        assert calls == ["startup", "shutdown"]

    async def test_startup_after_resources_and_shutdown_before(
        self, recorder: Recorder
    ) -> None:
        """asgi_startup fires once resources are up and asgi_shutdown before they go down, sync and async receivers alike, with the scope."""
        calls: list[tuple[str, Any, bool]] = []
        container = one_resource(recorder)

        def on_startup(sender: Any, scope: Any, **kwargs: Any) -> None:
            calls.append(
                (
                    "startup",
                    sender,
                    "db" in scope["state"] and not scope["state"]["db"].closed,
                )
            )

        async def on_shutdown(sender: Any, scope: Any, **kwargs: Any) -> None:
            calls.append(("shutdown", sender, not scope["state"]["db"].closed))

        signals.asgi_startup.connect(on_startup)
        signals.asgi_shutdown.connect(on_shutdown)
        lifespan = Lifespan(LifespanASGIHandler(container), {})

        await lifespan.send("lifespan.startup")
        await lifespan.send("lifespan.shutdown")

        assert calls == [
            ("startup", LifespanASGIHandler, True),
            ("shutdown", LifespanASGIHandler, True),
        ]

    async def test_startup_receiver_raising_fails_startup(
        self, recorder: Recorder
    ) -> None:
        """A raising asgi_startup receiver fails the startup and the resources are shut down."""

        async def broken(**kwargs: Any) -> None:
            raise RuntimeError("cache warm-up failed")

        signals.asgi_startup.connect(broken)
        lifespan = Lifespan(LifespanASGIHandler(one_resource(recorder)), {})

        message = await lifespan.send("lifespan.startup")

        assert message["type"] == "lifespan.startup.failed"
        assert "asgi_startup" in message["message"]
        assert "cache warm-up failed" in message["message"]
        assert recorder.events == ["start:db", "stop:db"]

    async def test_shutdown_receiver_raising_still_shuts_down(
        self, recorder: Recorder
    ) -> None:
        """A raising asgi_shutdown receiver is reported, and the resources are shut down anyway."""

        def broken(**kwargs: Any) -> None:
            raise RuntimeError("flush failed")

        signals.asgi_shutdown.connect(broken)
        lifespan = Lifespan(LifespanASGIHandler(one_resource(recorder)), {})
        await lifespan.send("lifespan.startup")

        message = await lifespan.send("lifespan.shutdown")

        assert message["type"] == "lifespan.shutdown.failed"
        assert "flush failed" in message["message"]
        assert recorder.stopped == ["db"]
