"""Request resources: one per request, closed after the response, teardown sees the outcome."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from dependency_injector import containers, providers, resources
from django.core.signals import request_finished
from django.test import AsyncClient, Client, override_settings

from lifespan_di import get_container, lifespan, request_scope
from lifespan_di.exceptions import RequestScopeError
from lifespan_di.handler import LifespanASGIHandler
from lifespan_di.providers import RequestResource
from lifespan_di.testing import LifespanAsyncClient, LifespanClient, override
from tests.project.containers import Session, events

TIMEOUT = 5


def http_scope(path: str, query: bytes = b"") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


class Log:
    """Events written by the resources of the small containers below."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.lock = threading.Lock()

    def add(self, event: str) -> None:
        with self.lock:
            self.events.append(event)


def recorded_generator(log: Log, name: str) -> Any:
    def open_(**deps: Any) -> Iterator[str]:
        log.add(f"open:{name}")
        try:
            yield name
        except Exception as error:
            log.add(f"rollback:{name}:{type(error).__name__}")
            raise
        else:
            log.add(f"commit:{name}")

    return open_


class TestOneInstancePerRequest:
    async def test_inject_factory_and_state_share_the_request_instance(
        self, record: Path
    ) -> None:
        """Within a request, inject, a Factory built on it and request.state get one instance; the next request gets a new one."""
        async with LifespanAsyncClient() as client:
            first = (await client.get("/request/sync/")).json()
            second = (await client.get("/request/sync/")).json()

        assert first["repository_shares"] is True
        assert first["state_shares"] is True
        assert first["session"] != second["session"]
        assert events(record, "open:session") == [
            f"open:session:{first['session']}",
            f"open:session:{second['session']}",
        ]

    async def test_closed_once_after_the_response_with_commit(
        self, record: Path
    ) -> None:
        """A request resource is committed and closed exactly once per request, newest first."""
        async with LifespanAsyncClient() as client:
            body = (await client.get("/request/async/")).json()

        async_label = f"async_session:{body['async_session']}"
        label = f"session:{body['session']}"
        request_events = [
            line
            for line in events(record)
            if line.split(":")[0] not in ("start", "stop")
        ]
        assert request_events == [
            f"open:{async_label}",
            f"open:{label}",
            f"commit:{label}",
            f"close:{label}",
            f"commit:{async_label}",
            f"close:{async_label}",
        ]

    async def test_concurrent_requests_never_share_an_instance(
        self, record: Path
    ) -> None:
        """Fifty overlapping requests each open and close their own instances."""
        async with LifespanAsyncClient() as client:
            responses = await asyncio.gather(
                *(client.get("/request/async/", {"sleep": "0.05"}) for _ in range(50))
            )

        bodies = [response.json() for response in responses]
        ids = {body["async_session"] for body in bodies}
        assert len(ids) == 50
        assert all(body["state_shares"] for body in bodies)
        assert len(events(record, "open:async_session")) == 50
        assert len(events(record, "commit:async_session")) == 50
        assert len(events(record, "close:async_session")) == 50

    async def test_concurrent_first_uses_in_one_request_open_once(self) -> None:
        """Two tasks of one request asking for a slow async resource at once get one instance."""
        log = Log()

        async def slow_open() -> AsyncIterator[object]:
            log.add("open")
            await asyncio.sleep(0.05)
            yield object()
            log.add("close")

        resource = RequestResource(slow_open)

        async with request_scope():
            first, second = await asyncio.gather(resource.async_(), resource.async_())

        assert first is second
        assert log.events == ["open", "close"]

    def test_threads_of_one_request_open_a_sync_resource_once(self) -> None:
        """Eight threads of one request making the first call together get one instance."""
        log = Log()

        def slow_open() -> Iterator[object]:
            log.add("open")
            threading.Event().wait(0.05)
            yield object()
            log.add("close")

        resource = RequestResource(slow_open)
        seen: list[object] = []

        with request_scope():
            context = contextvars.copy_context()
            threads = [
                threading.Thread(
                    target=lambda: seen.append(context.copy().run(resource))
                )
                for _ in range(8)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(TIMEOUT)

        assert len(seen) == 8
        assert len({id(value) for value in seen}) == 1
        assert log.events == ["open", "close"]


class TestOutcome:
    @pytest.mark.parametrize("path", ["/request/fail/", "/request/async-fail/"])
    async def test_view_exception_rolls_back_and_gives_500(
        self, record: Path, path: str
    ) -> None:
        """A view that raises answers 500 and its request resource's teardown receives the exception."""
        async with LifespanAsyncClient(raise_request_exception=False) as client:
            response = await client.get(path)

        assert response.status_code == 500
        rollbacks = events(record, "rollback:")
        assert len(rollbacks) == 1
        assert rollbacks[0].endswith(":ValueError")
        assert events(record, "commit:") == []
        assert len(events(record, "close:")) == 1

    async def test_http404_from_the_view_is_an_outcome_too(self) -> None:
        """Like ATOMIC_REQUESTS, a view raising Http404 rolls its request resources back."""
        log = Log()

        class Shop(containers.DeclarativeContainer):
            session = RequestResource(recorded_generator(log, "session"))

        with override_settings(ROOT_URLCONF="tests.project.scope_urls"):
            app = LifespanASGIHandler(Shop())
            async with LifespanAsyncClient(application=app) as client:
                response = await client.get("/missing/")

        assert response.status_code == 404
        assert log.events == ["open:session", "rollback:session:Http404"]

    async def test_request_resource_never_closes_app_resources(
        self, record: Path
    ) -> None:
        """Closing a request resource leaves the app-scoped resources it uses open."""
        async with LifespanAsyncClient() as client:
            await client.get("/request/sync/")
            await client.get("/request/async/")
            counter = client.state["counter"]
            http = client.state["httpx_client"]
            still_open = not counter.closed and not http.is_closed
            await client.get("/request/sync/")

        assert still_open
        assert sorted(events(record, "stop:")) == ["stop:counter", "stop:httpx_client"]
        assert events(record)[-2:] == events(record, "stop:")


class TestStreaming:
    async def test_closed_only_after_the_last_chunk(self, record: Path) -> None:
        """A streaming body reads its request resource in every chunk; it is closed after the last one was sent."""
        app = LifespanASGIHandler()
        sent: list[tuple[dict[str, Any], int]] = []
        complete = asyncio.Event()
        received = False

        async def receive() -> dict[str, Any]:
            nonlocal received
            if not received:
                received = True
                return {"type": "http.request", "body": b""}
            await complete.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append((dict(message), len(events(record, "close:"))))
            if message["type"] == "http.response.body" and not message.get("more_body"):
                complete.set()

        async with LifespanAsyncClient(application=app):
            scope = http_scope("/request/stream/", b"chunks=4&delay=0.01")
            await asyncio.wait_for(app(scope, receive, send), TIMEOUT)
            closes_after_response = len(events(record, "close:"))

        body = b"".join(message.get("body", b"") for message, _ in sent[1:])
        lines = body.decode().splitlines()
        assert sent[0][0]["status"] == 200
        assert len(lines) == 4
        assert all(line.endswith(":open") for line in lines)
        assert [closes for _, closes in sent] == [0] * len(sent)
        assert closes_after_response == 1
        assert len(events(record, "commit:async_session")) == 1

    async def test_client_disconnect_mid_stream_still_closes(
        self, record: Path
    ) -> None:
        """A client that leaves mid-stream stops the body; the resource is closed and sees RequestAborted."""
        app = LifespanASGIHandler()
        async with LifespanAsyncClient(application=app):
            communicator = ApplicationCommunicator(
                app, http_scope("/request/stream/", b"chunks=500&delay=0.01")
            )
            await communicator.send_input({"type": "http.request", "body": b""})
            await communicator.receive_output(TIMEOUT)
            first = await communicator.receive_output(TIMEOUT)
            await communicator.send_input({"type": "http.disconnect"})
            await communicator.wait(TIMEOUT)

        assert first["body"].endswith(b":open\n")
        assert len(events(record, "rollback:async_session")) == 1
        assert events(record, "rollback:")[0].endswith(":RequestAborted")
        assert len(events(record, "close:async_session")) == 1

    async def test_client_disconnect_while_the_view_runs_still_closes(
        self, record: Path
    ) -> None:
        """A client that leaves while an async view awaits cancels it; its resources are closed with RequestAborted."""
        app = LifespanASGIHandler()
        async with LifespanAsyncClient(application=app):
            communicator = ApplicationCommunicator(
                app, http_scope("/request/async/", b"sleep=5")
            )
            await communicator.send_input({"type": "http.request", "body": b""})
            await asyncio.sleep(0.2)
            await communicator.send_input({"type": "http.disconnect"})
            await communicator.wait(TIMEOUT)

        assert len(events(record, "rollback:")) == 2
        assert all(
            line.endswith(":RequestAborted") for line in events(record, "rollback:")
        )
        assert len(events(record, "close:")) == 2


class TestSyncViews:
    async def test_sync_resource_closes_in_the_thread_that_opened_it(self) -> None:
        """A sync request resource opened by a sync view is closed in that view's thread."""
        log = Log()

        def open_session() -> Iterator[str]:
            log.add(f"open:{threading.get_ident()}")
            yield "session"
            log.add(f"close:{threading.get_ident()}")

        class Shop(containers.DeclarativeContainer):
            session = RequestResource(open_session)

        with override_settings(ROOT_URLCONF="tests.project.scope_urls"):
            app = LifespanASGIHandler(Shop())
            async with LifespanAsyncClient(application=app) as client:
                response = await client.get("/sync/")

        assert response.json() == {"session": "session"}
        opened, closed = log.events
        assert opened.split(":")[1] == closed.split(":")[1]

    async def test_async_resource_from_a_sync_view(self, record: Path) -> None:
        """A sync view reading an async request resource through request.state gets the object, closed on the loop."""
        async with LifespanAsyncClient() as client:
            body = (await client.get("/request/state/")).json()

        assert events(record, "close:async_session") == [
            f"close:async_session:{body['async_session']}"
        ]
        assert events(record, "close:session") == [f"close:session:{body['session']}"]

    @pytest.mark.parametrize("path", ["/request/sync/", "/request/async/"])
    async def test_closed_before_request_finished(
        self, record: Path, path: str
    ) -> None:
        """Request resources close before Django's request_finished signal closes the database connections."""

        def finished(**kwargs: Any) -> None:
            with record.open("a", encoding="utf-8") as file:
                file.write("request_finished\n")

        request_finished.connect(finished)
        try:
            async with LifespanAsyncClient() as client:
                await client.get(path)
        finally:
            request_finished.disconnect(finished)

        lines = events(record)
        assert lines.index("request_finished") > max(
            index for index, line in enumerate(lines) if line.startswith("close:")
        )

    def test_django_test_client_streams_through_the_middleware_scope(self) -> None:
        """Under Django's test Client a streamed body keeps its request resource open until the response is closed."""
        log = Log()

        class Shop(containers.DeclarativeContainer):
            session = RequestResource(recorded_generator(log, "session"))

        with (
            override_settings(ROOT_URLCONF="tests.project.scope_urls"),
            lifespan(Shop()),
        ):
            response = Client().get("/stream/")
            chunks = iter(response.streaming_content)  # type: ignore[attr-defined]
            first = next(chunks)
            streaming = list(log.events)
            body = first + b"".join(chunks)  # the test client closes it at the end

        assert body == b"0:session\n1:session\n2:session\n"
        assert streaming == ["open:session"]
        assert log.events == ["open:session", "commit:session"]

    async def test_django_async_client_streams_an_async_resource(
        self, record: Path
    ) -> None:
        """Under Django's AsyncClient an async streamed body opens an async request resource, closed once the response is closed."""
        async with lifespan():
            response = await AsyncClient().get("/request/stream/", {"chunks": "3"})
            chunks = [chunk async for chunk in response.streaming_content]  # type: ignore[attr-defined]
            for _ in range(100):  # closed by a task on this loop: bounded wait
                if events(record, "close:async_session"):
                    break
                await asyncio.sleep(0.01)

        lines = b"".join(chunks).decode().splitlines()
        assert len(lines) == 3
        assert all(line.endswith(":open") for line in lines)
        assert len(events(record, "commit:async_session")) == 1
        assert len(events(record, "close:async_session")) == 1

    def test_django_test_client_gets_a_scope_from_the_middleware(
        self, record: Path
    ) -> None:
        """Under Django's own test Client the middleware opens and closes the request scope."""
        with lifespan():
            body = Client().get("/request/sync/").json()

        assert events(record, "close:session") == [f"close:session:{body['session']}"]
        assert events(record, "commit:session") == [f"commit:session:{body['session']}"]

    def test_lifespan_client_sync_view(self, record: Path) -> None:
        """The sync LifespanClient serves request resources through the handler."""
        with LifespanClient() as client:
            body = client.get("/request/sync/").json()

        assert body["opened_in_view_thread"] is True
        assert events(record, "close:session") == [f"close:session:{body['session']}"]


class TestTeardownErrors:
    async def test_logged_with_name_and_response_kept(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A teardown that raises after the response was sent is logged with the resource's name; other resources still close and the response is intact."""
        log = Log()

        @contextmanager
        def open_broken() -> Iterator[str]:
            yield "broken"
            msg = "cannot commit"
            raise OSError(msg)

        class WithBroken(containers.DeclarativeContainer):
            session = RequestResource(recorded_generator(log, "session"))
            broken = RequestResource(open_broken)

        with override_settings(ROOT_URLCONF="tests.project.scope_urls"):
            app = LifespanASGIHandler(WithBroken())
            async with LifespanAsyncClient(application=app) as client:
                failing = await client.get("/broken/")
                after = await client.get("/sync/")

        assert failing.status_code == 200
        assert failing.json() == {"session": "session", "broken": "broken"}
        assert after.status_code == 200
        assert log.events == [
            "open:session",
            "commit:session",
            "open:session",
            "commit:session",
        ]
        failures = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(failures) == 1
        assert "'broken'" in failures[0].getMessage()

    def test_becomes_500_when_the_response_has_not_started(self) -> None:
        """Under Django's test Client the middleware closes before the response is returned, so a failing teardown gives 500."""
        log = Log()

        @contextmanager
        def open_broken() -> Iterator[str]:
            yield "broken"
            msg = "cannot commit"
            raise OSError(msg)

        class WithBroken(containers.DeclarativeContainer):
            session = RequestResource(recorded_generator(log, "session"))
            broken = RequestResource(open_broken)

        with (
            override_settings(ROOT_URLCONF="tests.project.scope_urls"),
            lifespan(WithBroken()),
        ):
            response = Client(raise_request_exception=False).get("/broken/")

        assert response.status_code == 500
        assert log.events == ["open:session", "commit:session"]


class TestResourceForms:
    async def test_every_form_opens_and_closes(self) -> None:
        """Generators, context managers, Resource subclasses, functions and coroutines all work as request resources."""
        log = Log()

        def generator() -> Iterator[str]:
            yield "generator"
            log.add("close:generator")

        async def async_generator() -> AsyncIterator[str]:
            yield "async_generator"
            log.add("close:async_generator")

        @contextmanager
        def context_manager() -> Iterator[str]:
            yield "context_manager"
            log.add("close:context_manager")

        @asynccontextmanager
        async def async_context_manager() -> AsyncIterator[str]:
            yield "async_context_manager"
            log.add("close:async_context_manager")

        class SyncResource(resources.Resource[str]):
            def init(self) -> str:
                return "resource"

            def shutdown(self, resource: str | None) -> None:
                log.add("close:resource")

        class AsyncResource(resources.AsyncResource[str]):
            async def init(self) -> str:
                return "async_resource"

            async def shutdown(self, resource: str | None) -> None:
                log.add("close:async_resource")

        def function() -> str:
            return "function"

        async def coroutine() -> str:
            return "coroutine"

        forms = [
            RequestResource(generator),
            RequestResource(async_generator),
            RequestResource(context_manager),
            RequestResource(async_context_manager),
            RequestResource(SyncResource),
            RequestResource(AsyncResource),
            RequestResource(function),
            RequestResource(coroutine),
        ]

        async with request_scope():
            values = [await form.async_() for form in forms]
            again = [form() for form in forms]

        assert values == [
            "generator",
            "async_generator",
            "context_manager",
            "async_context_manager",
            "resource",
            "async_resource",
            "function",
            "coroutine",
        ]
        assert again == values
        assert log.events == [
            "close:async_resource",
            "close:resource",
            "close:async_context_manager",
            "close:context_manager",
            "close:async_generator",
            "close:generator",
        ]

    async def test_async_context_manager_function_in_a_sync_view(self) -> None:
        """A sync view given an @asynccontextmanager function's request resource receives it entered, and it is exited after the response."""
        log = Log()

        @asynccontextmanager
        async def open_client() -> AsyncIterator[str]:
            log.add("enter")
            yield "client"
            log.add("exit")

        class Shop(containers.DeclarativeContainer):
            session = RequestResource(open_client)

        with override_settings(ROOT_URLCONF="tests.project.scope_urls"):
            app = LifespanASGIHandler(Shop())
            async with LifespanAsyncClient(application=app) as client:
                response = await client.get("/sync/")

        assert response.json() == {"session": "client"}
        assert log.events == ["enter", "exit"]

    async def test_dependencies_open_first_and_close_last(self) -> None:
        """A request resource depending on another opens after it and closes before it."""
        log = Log()

        def make(name: str) -> Any:
            def open_(**deps: Any) -> Iterator[str]:
                log.add(f"open:{name}")
                yield name
                log.add(f"close:{name}")

            return open_

        class Shop(containers.DeclarativeContainer):
            pool = providers.Resource(make("pool"))
            session = RequestResource(make("session"), pool=pool)
            uow = RequestResource(make("uow"), session=session)

        shop = Shop()
        async with lifespan(shop):
            async with request_scope():
                await shop.uow.async_()
            log.add("request over")

        assert log.events == [
            "open:pool",
            "open:session",
            "open:uow",
            "close:uow",
            "close:session",
            "request over",
            "close:pool",
        ]


class TestScopes:
    def test_outside_a_request_raises(self) -> None:
        """Using a request resource with no request scope raises a RequestScopeError saying how to open one."""
        resource = RequestResource(lambda: "value")

        with pytest.raises(RequestScopeError, match="request_scope"):
            resource()

    def test_bare_worker_thread_is_told_to_carry_the_context(self) -> None:
        """A thread started by a bare ThreadPoolExecutor.submit gets an error naming the ways to carry the request's context."""
        resource = RequestResource(lambda: "value")

        with request_scope(), ThreadPoolExecutor(max_workers=1) as executor:
            future = executor.submit(resource)
            with pytest.raises(RequestScopeError) as caught:
                future.result(timeout=TIMEOUT)

        assert "does not carry the request's context" in str(caught.value)
        assert "sync_to_async" in str(caught.value)
        assert "contextvars.copy_context().run" in str(caught.value)

    def test_thread_carrying_the_context_shares_the_instance(self) -> None:
        """A thread running in a copy of the request's context gets the request's instance."""
        resource = RequestResource(lambda: object())

        with request_scope(), ThreadPoolExecutor(max_workers=1) as executor:
            mine = resource()
            theirs = executor.submit(contextvars.copy_context().run, resource)
            shared = theirs.result(timeout=TIMEOUT)

        assert shared is mine

    async def test_async_resource_read_synchronously_on_the_loop(self) -> None:
        """Reading an async request resource synchronously on the event loop raises, naming the async ways."""

        async def session() -> AsyncIterator[str]:
            yield "session"

        resource = RequestResource(session)

        async with request_scope():
            with pytest.raises(RequestScopeError, match="aget"):
                resource()

    def test_request_scope_passes_the_exception(self) -> None:
        """request_scope() hands the exception leaving the block to the teardowns."""
        log = Log()
        resource = RequestResource(recorded_generator(log, "job"))

        def job() -> None:
            with request_scope():
                resource()
                raise KeyError("order")

        with pytest.raises(KeyError):
            job()

        assert log.events == ["open:job", "rollback:job:KeyError"]

    def test_request_scope_raises_a_failed_teardown(self) -> None:
        """A teardown failing on a clean exit of request_scope() raises RequestScopeError naming it."""

        def open_broken() -> Iterator[str]:
            yield "value"
            raise OSError

        resource = RequestResource(open_broken)

        with pytest.raises(RequestScopeError, match="broken"), request_scope():
            resource()

    async def test_scope_closed_refuses_new_resources(self) -> None:
        """A resource cannot be opened in a scope that has already been closed."""
        resource = RequestResource(lambda: "value")

        async with request_scope() as scope:
            pass

        with pytest.raises(RequestScopeError, match="request has ended"):
            scope.claim(resource, "value")

    async def test_override_replaces_a_request_resource(self, record: Path) -> None:
        """testing.override swaps a request resource for a fake in inject, Factories and request.state."""
        fake = Session("fake", None)

        async with LifespanAsyncClient() as client:
            with override(get_container().session, fake):
                body = (await client.get("/request/sync/")).json()

        assert body["session"] == fake.id
        assert body["repository_shares"] is True
        assert body["state_shares"] is True
        assert events(record, "open:session") == []


STYLES = [
    # (path, method, app resource, request resource)
    ("/view-sync/", "get", "counter", "session"),
    ("/view-async/", "get", "httpx_client", "async_session"),
    ("/dispatch-sync/", "get", "counter", "session"),
    ("/dispatch-async/", "get", "httpx_client", "async_session"),
    ("/context-data/", "get", "counter", "session"),
    ("/drf-viewset/", "get", "counter", "session"),
    ("/drf-apiview/", "get", "counter", "session"),
    ("/drf-api-view-outside/", "get", "counter", "session"),
    ("/drf-api-view-inside/", "get", "counter", "session"),
    ("/ninja/sync", "get", "counter", "session"),
    ("/ninja/async", "get", "httpx_client", "async_session"),
    ("/decorated-inside/", "post", "counter", "session"),
    ("/decorated-outside/", "post", "counter", "session"),
    ("/async-decorated-inside/", "post", "httpx_client", "async_session"),
    ("/async-decorated-outside/", "post", "httpx_client", "async_session"),
]


@override_settings(ROOT_URLCONF="tests.project.request_styles")
@pytest.mark.parametrize(("path", "method", "app", "scoped"), STYLES)
async def test_every_view_style_gets_app_and_request_resources(
    record: Path, path: str, method: str, app: str, scoped: str
) -> None:
    """Each view style, sync and async, receives the started app resource and its own request resource, committed and closed once."""
    async with LifespanAsyncClient() as client:
        response = await getattr(client, method)(path)
        started = client.state[app]

    body = response.json()
    label = f"{scoped}:{body['session']}"
    assert response.status_code == 200
    assert body["app"] == id(started)
    assert [line for line in events(record) if line.endswith(f":{label}")] == [
        f"open:{label}",
        f"commit:{label}",
        f"close:{label}",
    ]


class TestGeneratorSemantics:
    def test_generator_that_never_yields(self) -> None:
        """A request resource generator that returns without yielding fails to open, as with contextmanager."""

        def empty() -> Iterator[str]:
            return
            yield "never"

        resource = RequestResource(empty)

        with pytest.raises(RuntimeError, match="didn't yield"), request_scope():
            resource()

    async def test_generator_that_yields_twice(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A generator yielding a second time is closed and its teardown reported as failed."""
        log = Log()

        async def twice() -> AsyncIterator[str]:
            try:
                yield "first"
                yield "second"
            finally:
                log.add("closed")

        resource = RequestResource(twice)

        with pytest.raises(RequestScopeError, match="twice"):
            async with request_scope():
                await resource.async_()

        assert log.events == ["closed"]
        assert "didn't stop" in caplog.text

    def test_generator_may_swallow_the_exception(self) -> None:
        """A teardown that handles the view's exception is not a failure, and the exception still leaves the block."""
        log = Log()

        def forgiving() -> Iterator[str]:
            try:
                yield "value"
            except ValueError:
                log.add("handled")

        resource = RequestResource(forgiving)

        def job() -> None:
            with request_scope():
                resource()
                raise ValueError("order 7")

        with pytest.raises(ValueError, match="order 7"):
            job()

        assert log.events == ["handled"]

    async def test_coroutine_returning_an_async_context_manager(self) -> None:
        """A coroutine function returning an async context manager is awaited, then entered and exited."""
        log = Log()

        @asynccontextmanager
        async def client() -> AsyncIterator[str]:
            yield "client"
            log.add("exited")

        async def build() -> Any:
            return client()

        resource = RequestResource(build)

        async with request_scope():
            value = await resource.async_()

        assert value == "client"
        assert log.events == ["exited"]
