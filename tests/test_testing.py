"""LifespanClient, LifespanAsyncClient and override: the project's lifespan in tests."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, ClassVar

import pytest
from dependency_injector import containers, providers
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, JsonResponse
from django.test import SimpleTestCase, override_settings
from django.urls import path

from lifespan_di import LifespanASGIHandler, Provide, get_container, inject, lifespan
from lifespan_di.core.lifespan import RUNTIME
from lifespan_di.exceptions import (
    ConfigurationError,
    LifespanNotRunningError,
    ShutdownError,
    StartupError,
)
from lifespan_di.testing import LifespanAsyncClient, LifespanClient, override
from lifespan_di.testing.clients import _share
from tests.project.containers import Container, Counter

REQUESTS = 20
assert_contains = SimpleTestCase().assertContains


@asynccontextmanager
async def running_loop() -> AsyncIterator[asyncio.AbstractEventLoop]:
    yield asyncio.get_running_loop()


class Loops(containers.DeclarativeContainer):
    """A resource bound to the event loop it was started on."""

    loop = providers.Resource(running_loop)


@inject
async def same_loop(
    request: HttpRequest, loop: asyncio.AbstractEventLoop = Provide["loop"]
) -> JsonResponse:
    return JsonResponse({"same_loop": loop is asyncio.get_running_loop()})


def echo(request: HttpRequest) -> JsonResponse:
    response = JsonResponse({"post": request.POST.dict(), "cookies": request.COOKIES})
    response.set_cookie("seen", "yes")
    return response


class LoopURLs:
    """A URLconf for the Loops container."""

    urlpatterns: ClassVar = [path("same-loop/", same_loop)]


class EchoURLs:
    """A URLconf whose view echoes the POST data and cookies, and sets a cookie."""

    urlpatterns: ClassVar = [path("echo/", echo)]


@contextmanager
def fragile() -> Iterator[str]:
    yield "fragile"
    raise OSError("disk gone")


class Fragile(containers.DeclarativeContainer):
    """A resource whose teardown fails."""

    fragile = providers.Resource(fragile)


async def plain_asgi_app(scope: Any, receive: Any, send: Any) -> None:
    """A bare ASGI application that publishes a state of its own."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] == "lifespan.startup":
            scope["state"]["greeting"] = "hello"
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await receive()
    body = json.dumps({"path": scope["path"], "state": scope["state"]}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"x-tag", b"a"),
        (b"x-tag", b"b"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": True})
    await send({"type": "http.response.body", "body": b" "})


@pytest.fixture
def record(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    path = tmp_path / "record.txt"
    monkeypatch.setenv("LIFESPAN_DI_TEST_RECORD", str(path))
    return path


def events(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@inject
def read_counter(counter: Counter = Provide["counter"]) -> Counter:
    return counter


class TestLifespanAsyncClient:
    async def test_loop_bound_resource_survives_many_requests(self) -> None:
        """Every request of one block gets the same open httpx client, closed after the block."""
        async with LifespanAsyncClient() as client:
            responses = [await client.get("/async-inject/") for _ in range(REQUESTS)]
            httpx_client = client.state.httpx_client
            open_during = not httpx_client.is_closed

        assert {response.json()["client"] for response in responses} == {
            id(httpx_client)
        }
        assert open_during
        assert httpx_client.is_closed

    async def test_sync_async_and_class_based_views(self) -> None:
        """Sync, async and class-based views answer through the application, and assertContains works."""
        async with LifespanAsyncClient() as client:
            sync = await client.get("/sync-inject/")
            state = await client.get("/sync-state/")
            greet = await client.get("/greet/")

        assert sync.json()["client_type"] == "AsyncClient"
        assert state.json()["same_by_attribute"] is True
        assert_contains(greet, "Hello, class-based!")
        assert greet.asgi_request.path == "/greet/"

    async def test_request_state_is_a_fresh_copy_per_request(self) -> None:
        """What a view writes to request.state is gone in the next request and in the lifespan state."""
        async with LifespanAsyncClient() as client:
            first = await client.get("/sync-state/", {"scratch": "mine"})
            second = await client.get("/async-inject/")
            lifespan_state = client.state

        first_request, second_request = first.asgi_request, second.asgi_request
        assert first_request.state["scratch"] == "mine"
        assert "scratch" not in second_request.state
        assert "scratch" not in lifespan_state
        assert first_request.scope["state"] is not second_request.scope["state"]

    async def test_startup_and_shutdown_run_around_the_block(
        self, record: Path
    ) -> None:
        """The application's lifespan starts every resource before the block and stops them after."""
        async with LifespanAsyncClient():
            during = events(record)

        assert sorted(during) == ["start:counter", "start:httpx_client"]
        assert sorted(events(record)[2:]) == ["stop:counter", "stop:httpx_client"]

    async def test_failing_startup_raises_naming_the_resource(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A resource failing to start raises the handler's own StartupError: resource, cause and rollback."""
        monkeypatch.setenv("LIFESPAN_DI_TEST_FAIL", "counter")

        with pytest.raises(StartupError) as caught:
            async with LifespanAsyncClient():
                pass

        assert "Cannot start resource 'Container.counter'" in str(caught.value)
        assert caught.value.resource == "Container.counter"
        # httpx_client starts concurrently: it has either been rolled back or cancelled.
        assert set(caught.value.rolled_back) <= {"Container.httpx_client"}
        assert isinstance(caught.value.__cause__, ConnectionRefusedError)
        assert RUNTIME.active is None

    async def test_application_without_lifespan_is_refused(self) -> None:
        """An application that cannot answer the lifespan scope raises a ConfigurationError saying so."""
        client = LifespanAsyncClient(application=ASGIHandler())

        with pytest.raises(ConfigurationError, match="raised ValueError"):
            async with client:
                pass

    async def test_post_cookies_and_redirects(self) -> None:
        """POST data reaches the view, cookies persist, and follow=True follows redirects."""
        middleware = [
            "lifespan_di.middleware.LifespanStateMiddleware",
            "django.middleware.common.CommonMiddleware",
        ]
        with override_settings(ROOT_URLCONF=EchoURLs, MIDDLEWARE=middleware):
            async with LifespanAsyncClient() as client:
                posted = await client.post("/echo/", {"name": "value"})
                again = await client.get("/echo/")
                redirected = await client.get("/echo", follow=True)

        assert posted.json()["post"] == {"name": "value"}
        assert again.json()["cookies"] == {"seen": "yes"}
        assert redirected.redirect_chain == [("/echo/", 301)]

    async def test_view_exception_is_raised_in_the_test(self) -> None:
        """An exception raised by a view is raised by the request, as with Django's client."""
        async with LifespanAsyncClient() as client:
            with pytest.raises(ValueError, match="could not convert"):
                await client.get("/slow/", {"seconds": "soon"})

    async def test_outside_its_block_it_uses_the_running_lifespan(self) -> None:
        """Outside a block the client serves with the lifespan running in the process, or none."""
        client = LifespanAsyncClient()

        async with lifespan() as state:
            served = await client.get("/sync-state/")
        with pytest.raises(LifespanNotRunningError):
            await client.get("/sync-state/")

        assert served.json()["client"] == id(state.httpx_client)

    async def test_failing_shutdown_raises_naming_the_resource(self) -> None:
        """A teardown that fails raises ShutdownError with the shutdown.failed message and the error."""
        application = LifespanASGIHandler(container=Fragile())

        with pytest.raises(ShutdownError) as caught:
            async with LifespanAsyncClient(application=application):
                pass

        assert "'lifespan.shutdown.failed'" in str(caught.value)
        assert caught.value.resources == ("Fragile.fragile",)
        assert isinstance(caught.value.exceptions[0], OSError)

    async def test_any_asgi_application_and_a_non_ascii_path(self) -> None:
        """Another ASGI application gets its own state, the UTF-8 path and a rebuilt asgi_request."""
        async with LifespanAsyncClient(application=plain_asgi_app) as client:
            response = await client.get("/caf\u00e9/")

        assert response.json() == {
            "path": "/caf\u00e9/",
            "state": {"greeting": "hello"},
        }
        assert response["X-Tag"] == "a, b"
        assert response.asgi_request.path == "/caf\u00e9/"

    async def test_misuse_is_refused(self) -> None:
        """Reading the state outside the block, or entering a running client again, raises."""
        client = LifespanAsyncClient()

        with pytest.raises(RuntimeError, match="does not run"):
            client.state  # noqa: B018
        async with client:
            with pytest.raises(RuntimeError, match="already runs"):
                await client.__aenter__()

    def test_requests_to_a_stopped_loop_are_refused(self) -> None:
        """A client sharing a lifespan whose loop is not running raises instead of hanging."""
        loop = asyncio.new_event_loop()
        owner = LifespanAsyncClient()
        loop.run_until_complete(owner.__aenter__())
        client = LifespanAsyncClient(application=owner.application)
        _share(client, owner)

        try:
            with pytest.raises(RuntimeError, match="not running"):
                asyncio.run(client.get("/plain/"))
        finally:
            loop.run_until_complete(owner.__aexit__(None, None, None))
            loop.close()


class TestLifespanClient:
    def test_loop_bound_resources_survive_many_requests(self) -> None:
        """Sync and async views get the same open resources in every request of one block."""
        with LifespanClient() as client:
            clients = {
                client.get("/async-inject/").json()["client"] for _ in range(REQUESTS)
            }
            counters = {
                client.get("/sync-inject/").json()["counter"] for _ in range(REQUESTS)
            }
            state = client.state
            open_during = not state.httpx_client.is_closed

        assert clients == {id(state.httpx_client)}
        assert counters == {id(state.counter)}
        assert state.counter.value == REQUESTS
        assert open_during
        assert state.counter.closed

    def test_every_request_runs_on_the_loop_that_owns_the_resources(self) -> None:
        """Each request runs on the event loop the resources were started on."""
        application = LifespanASGIHandler(container=Loops())

        with (
            override_settings(ROOT_URLCONF=LoopURLs),
            LifespanClient(application=application) as client,
        ):
            answers = [client.get("/same-loop/").json() for _ in range(REQUESTS)]

        assert answers == [{"same_loop": True}] * REQUESTS

    def test_startup_and_shutdown_run_around_the_block(self, record: Path) -> None:
        """The application's lifespan starts the resources before the block and stops them after."""
        with LifespanClient():
            during = events(record)

        assert sorted(during) == ["start:counter", "start:httpx_client"]
        assert sorted(events(record)[2:]) == ["stop:counter", "stop:httpx_client"]

    def test_failing_startup_raises_and_stops_the_loop(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A failing startup raises StartupError naming the resource, and leaves no loop thread."""
        monkeypatch.setenv("LIFESPAN_DI_TEST_FAIL", "httpx_client")

        with (
            pytest.raises(StartupError, match=r"'Container\.httpx_client'"),
            LifespanClient(),
        ):
            pass

        assert not [
            thread
            for thread in threading.enumerate()
            if thread.name == "lifespan_di test client"
        ]

    def test_requests_outside_the_block_raise(self) -> None:
        """A request outside the block raises, since no event loop owns the resources."""
        client = LifespanClient()

        with pytest.raises(RuntimeError, match="outside its block"):
            client.get("/plain/")

    def test_post_cookies_and_assert_contains(self) -> None:
        """POST data and cookies go through the application, and assertContains works."""
        with override_settings(ROOT_URLCONF=EchoURLs), LifespanClient() as client:
            posted = client.post("/echo/", {"name": "value"})
            again = client.get("/echo/")

        assert posted.json()["post"] == {"name": "value"}
        assert_contains(again, '"seen": "yes"')
        assert again.wsgi_request.path == "/echo/"

    def test_any_asgi_application_and_a_non_ascii_path(self) -> None:
        """Another ASGI application gets its own state and the UTF-8 path, as from a server."""
        with LifespanClient(application=plain_asgi_app) as client:
            response = client.get("/caf\u00e9/", {"q": "1"})

        assert response.json() == {
            "path": "/caf\u00e9/",
            "state": {"greeting": "hello"},
        }
        assert response.wsgi_request.GET["q"] == "1"


class TestOverride:
    async def test_inject_and_request_state_see_the_fake_during_the_block(
        self,
    ) -> None:
        """While an override runs, inject and request.state get the fake; the original after."""
        fake = Counter()

        async with LifespanAsyncClient() as client:
            original = client.state.counter
            with override(Container.counter, fake):
                during = await client.get("/sync-inject/")
            after = await client.get("/sync-inject/")

        assert during.json()["counter"] == id(fake)
        assert during.asgi_request.state["counter"] is fake
        assert after.json()["counter"] == id(original)
        assert after.asgi_request.state["counter"] is original
        assert (fake.value, original.value) == (1, 1)

    def test_sync_client_requests_see_the_fake(self) -> None:
        """Requests of a LifespanClient see an override entered in the test."""
        fake = Counter()

        with LifespanClient() as client:
            with override(Container.counter, fake):
                during = client.get("/sync-inject/")
            after = client.get("/sync-inject/")

        assert during.json()["counter"] == id(fake)
        assert after.json()["counter"] != id(fake)

    async def test_singletons_built_on_it_are_replaced_then_restored(self) -> None:
        """A Singleton built from the original is rebuilt from the fake, and is back unchanged after."""

        class Services(containers.DeclarativeContainer):
            counter = providers.Resource(Counter)
            greeting = providers.Singleton(dict, counter=counter)

        container = Services()
        fake = Counter()

        async with lifespan(container) as state:
            before = container.greeting()
            with override(Services.counter, fake):
                during = container.greeting()
                state_during = RUNTIME.claimed[id(container)].state["counter"]
            after = container.greeting()
            state_after = RUNTIME.claimed[id(container)].state["counter"]

        assert before["counter"] is state.counter
        assert during["counter"] is fake
        assert state_during is fake
        assert after is before
        assert state_after is state.counter

    async def test_decorates_sync_and_async_functions(self) -> None:
        """As a decorator, override wraps each call of a sync or an async function."""
        fake = Counter()

        @override(Container.counter, fake)
        def sync_read() -> Counter:
            return read_counter()

        @override(Container.counter, fake)
        async def async_read() -> Counter:
            return read_counter()

        async with lifespan():
            results = (sync_read(), await async_read(), read_counter())

        assert results[:2] == (fake, fake)
        assert results[2] is not fake

    @pytest.mark.parametrize("level", ["class", "instance"])
    def test_without_a_lifespan_it_overrides_the_configured_container(
        self, level: str
    ) -> None:
        """Without a running lifespan, a class-level or instance provider is overridden in the configured container."""
        provider = Container.greeter if level == "class" else get_container().greeter

        with override(provider, "fake greeter"):
            during = get_container().greeter()

        assert during == "fake greeter"
        assert get_container().greeter.last_overriding is None

    async def test_awaitable_fake_needs_async_with(self) -> None:
        """A fake that provides an awaitable is awaited by async with and refused by with."""
        fake = Counter()

        async def make() -> Counter:
            return fake

        provider = providers.Coroutine(make)

        async with lifespan() as state:
            with (
                pytest.raises(TypeError, match="async with"),
                override(Container.counter, provider),
            ):
                pass
            left_overridden = get_container().counter.last_overriding is not None
            async with override(Container.counter, provider):
                during = RUNTIME.claimed[id(get_container())].state["counter"]

        assert not left_overridden
        assert during is fake
        assert state.counter is not fake

    def test_entered_before_startup_the_real_resource_never_starts(
        self, record: Path
    ) -> None:
        """An override entered before the lifespan starts replaces the resource for the whole lifespan."""
        fake = Counter()

        with override(Container.counter, fake), LifespanClient() as client:
            response = client.get("/sync-inject/")

        assert response.json()["counter"] == id(fake)
        assert events(record) == ["start:httpx_client", "stop:httpx_client"]

    def test_cannot_be_entered_twice_at_once(self) -> None:
        """One override object cannot be active twice at the same time."""
        replaced = override(Container.greeter, "fake greeter")

        with replaced, pytest.raises(RuntimeError, match="twice at once"):
            replaced.__enter__()

    def test_rejects_a_resource_as_fake(self) -> None:
        """A Resource fake is refused, since nothing would start or stop it."""
        resource = providers.Resource(Counter)

        with pytest.raises(ConfigurationError, match="does not start or shut down"):
            override(Container.counter, resource)
