"""Request scopes under faults: late opens, blocking sync resources, teardowns that abort."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from dependency_injector import containers
from django.contrib.auth.models import Group
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.test import AsyncRequestFactory, RequestFactory, override_settings

from lifespan_di import request_scope
from lifespan_di.exceptions import RequestScopeError
from lifespan_di.handler import LifespanASGIHandler
from lifespan_di.middleware import LifespanStateMiddleware
from lifespan_di.providers import RequestResource
from lifespan_di.testing import LifespanAsyncClient
from tests.conftest import forget_connection
from tests.project import scope_urls
from tests.test_request_scope import TIMEOUT, Log, http_scope, recorded_generator

SCOPE_URLS = "tests.project.scope_urls"


async def serve(app: LifespanASGIHandler, path: str, query: bytes = b"") -> Any:
    """Send one GET through ``app``; return the response start once the app is done."""
    communicator = ApplicationCommunicator(app, http_scope(path, query))
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(TIMEOUT)
    await communicator.wait(TIMEOUT)
    return start


def recorded_async_generator(
    log: Log, name: str, *, fail_stop: BaseException | None = None
) -> Callable[..., AsyncIterator[str]]:
    async def open_(**deps: Any) -> AsyncIterator[str]:
        log.add(f"open:{name}")
        yield name
        log.add(f"close:{name}")
        if fail_stop is not None:
            raise fail_stop

    open_.__qualname__ = name  # the name failures are logged with
    return open_


def failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "lifespan_di" and record.levelno == logging.ERROR
    ]


class TestScopeEndsWithTheRequest:
    @pytest.mark.parametrize(
        "query",
        [
            b"late=late",
            b"late=late&how=async",
            b"open=session&late=late",
            b"open=session&late=late&how=async",
            b"open=session&late=session",
        ],
    )
    async def test_a_task_outliving_its_request_cannot_open(self, query: bytes) -> None:
        """A task the view left running cannot open a request resource, or read a closed one, once the request has ended."""
        log = Log()

        class Shop(containers.DeclarativeContainer):
            session = RequestResource(recorded_generator(log, "session"))
            late = RequestResource(recorded_generator(log, "late"))

        with override_settings(ROOT_URLCONF=SCOPE_URLS):
            app = LifespanASGIHandler(Shop())
            async with LifespanAsyncClient(application=app):
                start = await serve(app, "/late/", query)
                during = list(log.events)
                release, task = scope_urls.LATE.pop()
                release.set()
                with pytest.raises(RequestScopeError, match="request has ended"):
                    await asyncio.wait_for(task, TIMEOUT)

        assert start["status"] == 200
        assert log.events == during
        assert "open:late" not in log.events

    @pytest.mark.parametrize("view_is_async", [False, True])
    async def test_middleware_scope_ends_with_the_response(
        self, view_is_async: bool
    ) -> None:
        """Where the middleware opens the scope, code that kept the request's context cannot open a request resource after the response."""
        log = Log()
        resource = RequestResource(recorded_generator(log, "late"))
        kept: list[contextvars.Context] = []

        def view(request: HttpRequest) -> HttpResponse:
            kept.append(contextvars.copy_context())
            return HttpResponse("ok")

        async def async_view(request: HttpRequest) -> HttpResponse:
            return view(request)

        if view_is_async:
            middleware = LifespanStateMiddleware(async_view)
            response = await middleware(AsyncRequestFactory().get("/"))
        else:
            middleware = LifespanStateMiddleware(view)
            response = await sync_to_async(middleware)(RequestFactory().get("/"))

        assert response.status_code == 200
        with pytest.raises(RequestScopeError, match="request has ended"):
            kept[0].run(resource)
        assert log.events == []


async def saved(name: str) -> bool:
    def exists() -> bool:
        try:
            return Group.objects.filter(name=name).exists()
        finally:
            forget_connection()

    return await sync_to_async(exists)()


class TestSyncResourcesInAsyncViews:
    async def test_teardowns_run_in_threads_concurrently(self) -> None:
        """Ten concurrent async views whose sync request resource takes 0.2 s to close finish in under 1 s (0.22 s measured; 2.0 s when the teardowns ran on the loop), each resource opened and closed in its request's thread, never the loop's."""
        log = Log()

        def slow_to_close() -> Iterator[str]:
            log.add(f"open:{threading.get_ident()}")
            yield "session"
            time.sleep(0.2)
            log.add(f"close:{threading.get_ident()}")

        class Shop(containers.DeclarativeContainer):
            session = RequestResource(slow_to_close)

        loop_thread = threading.get_ident()
        with override_settings(ROOT_URLCONF=SCOPE_URLS):
            app = LifespanASGIHandler(Shop())
            async with LifespanAsyncClient(application=app):
                began = time.perf_counter()
                starts = await asyncio.gather(
                    *(serve(app, "/async/") for _ in range(10))
                )
                elapsed = time.perf_counter() - began

        opened = sorted(e.split(":")[1] for e in log.events if e.startswith("open"))
        closed = sorted(e.split(":")[1] for e in log.events if e.startswith("close"))
        assert [start["status"] for start in starts] == [200] * 10
        assert elapsed < 1.0
        assert len(closed) == 10
        assert opened == closed
        assert str(loop_thread) not in opened

    @pytest.mark.usefixtures("sqlite_db")
    async def test_atomic_request_resource_commits(self) -> None:
        """transaction.atomic() as a request resource of an async view wraps the view's ORM writes and commits them."""

        class Shop(containers.DeclarativeContainer):
            atomic = RequestResource(transaction.atomic)

        with override_settings(ROOT_URLCONF=SCOPE_URLS):
            app = LifespanASGIHandler(Shop())
            async with LifespanAsyncClient(application=app) as client:
                response = await client.get("/orm/", {"name": "kept"})

        assert response.status_code == 200
        assert response.json() == {"in_atomic_block": True}
        assert await saved("kept") is True

    @pytest.mark.usefixtures("sqlite_db")
    async def test_atomic_request_resource_rolls_back(self) -> None:
        """transaction.atomic() as a request resource of an async view rolls back the view's ORM writes when the view raises."""

        class Shop(containers.DeclarativeContainer):
            atomic = RequestResource(transaction.atomic)

        with override_settings(ROOT_URLCONF=SCOPE_URLS):
            app = LifespanASGIHandler(Shop())
            async with LifespanAsyncClient(application=app) as client:
                with pytest.raises(ValueError, match="after saving"):
                    await client.get("/orm/", {"name": "dropped", "fail": "1"})

        assert await saved("dropped") is False


ABORTING = [asyncio.CancelledError, KeyboardInterrupt, SystemExit]


class TestTeardownsThatAbort:
    @pytest.mark.parametrize("error", ABORTING)
    async def test_every_other_teardown_runs(
        self, error: type[BaseException], caplog: pytest.LogCaptureFixture
    ) -> None:
        """A teardown raising CancelledError (no cancellation pending), KeyboardInterrupt or SystemExit is logged, the others still close newest first, and only then does it surface."""
        log = Log()
        first = RequestResource(recorded_async_generator(log, "first"))
        broken = RequestResource(
            recorded_async_generator(log, "broken", fail_stop=error())
        )
        last = RequestResource(recorded_async_generator(log, "last"))
        raised = RequestScopeError if error is asyncio.CancelledError else error

        async def use_all() -> None:
            async with request_scope():
                for resource in (first, broken, last):
                    await resource.async_()

        with pytest.raises(raised) as caught:
            await use_all()

        assert log.events[3:] == ["close:last", "close:broken", "close:first"]
        assert len(failures(caplog)) == 1
        assert "'broken'" in failures(caplog)[0]
        if raised is RequestScopeError:
            assert "'broken'" in str(caught.value)

    @pytest.mark.parametrize("error", ABORTING)
    def test_every_other_teardown_runs_from_sync_code(
        self, error: type[BaseException], caplog: pytest.LogCaptureFixture
    ) -> None:
        """Closed from sync code, a teardown raising CancelledError, KeyboardInterrupt or SystemExit does not stop the others either."""
        log = Log()

        def broken() -> Iterator[str]:
            yield "broken"
            log.add("close:broken")
            raise error()

        resources = [
            RequestResource(recorded_generator(log, "first")),
            RequestResource(broken),
            RequestResource(recorded_generator(log, "last")),
        ]
        raised = RequestScopeError if error is asyncio.CancelledError else error

        def use_all() -> None:
            with request_scope():
                for resource in resources:
                    resource()

        with pytest.raises(raised):
            use_all()

        assert log.events[2:] == ["commit:last", "close:broken", "commit:first"]
        assert len(failures(caplog)) == 1
        assert "broken" in failures(caplog)[0]

    async def test_a_cancelled_close_still_attempts_every_teardown(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A task cancelled while a teardown awaits still closes its other request resources, then ends cancelled."""
        log = Log()
        closing = asyncio.Event()

        async def slow() -> AsyncIterator[str]:
            yield "slow"
            closing.set()
            try:
                await asyncio.sleep(TIMEOUT)
            except asyncio.CancelledError:
                log.add("cancelled:slow")
                raise

        first = RequestResource(recorded_async_generator(log, "first"))
        slow_to_close = RequestResource(slow)

        async def job() -> None:
            async with request_scope():
                await first.async_()
                await slow_to_close.async_()

        task = asyncio.create_task(job())
        await asyncio.wait_for(closing.wait(), TIMEOUT)
        task.cancel()
        await asyncio.wait({task}, timeout=TIMEOUT)

        assert task.cancelled()
        assert log.events == ["open:first", "cancelled:slow", "close:first"]
        assert failures(caplog) == []

    async def test_served_request_closes_the_others(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Under the handler, a teardown raising CancelledError after the response is logged and the request's other resources still close."""
        log = Log()

        class Shop(containers.DeclarativeContainer):
            session = RequestResource(recorded_async_generator(log, "session"))
            broken = RequestResource(
                recorded_async_generator(
                    log, "broken", fail_stop=asyncio.CancelledError()
                )
            )

        with override_settings(ROOT_URLCONF=SCOPE_URLS):
            app = LifespanASGIHandler(Shop())
            async with LifespanAsyncClient(application=app):
                start = await serve(app, "/async-broken/")

        assert start["status"] == 200
        assert log.events == [
            "open:session",
            "open:broken",
            "close:broken",
            "close:session",
        ]
        assert len(failures(caplog)) == 1
        assert "'broken'" in failures(caplog)[0]
