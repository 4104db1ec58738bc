"""View resources: closed as the view returns, before the response; a failed close is a 500."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
import threading
import types
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from dependency_injector import containers, providers
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.test import (
    AsyncClient,
    AsyncRequestFactory,
    Client,
    RequestFactory,
    override_settings,
)

from lifespan_di import RequestResource, ViewResource, lifespan, request_scope
from lifespan_di.exceptions import ConfigurationError, RequestScopeError
from lifespan_di.handler import LifespanASGIHandler
from lifespan_di.middleware import LifespanStateMiddleware
from lifespan_di.preflight import startup_problems
from lifespan_di.testing import LifespanAsyncClient
from lifespan_di.view_resources import closing_view_resources
from tests.project import view_urls
from tests.project.view_urls import EVENTS
from tests.test_request_scope import TIMEOUT, http_scope
from tests.test_request_scope_faults import SCOPE_URLS, saved

VIEW_URLS = "tests.project.view_urls"

STYLES = [
    "/sync/",
    "/async/",
    "/state/",
    "/async-state/",
    "/class/",
    "/async-class/",
    "/rest/",
    "/ninja/uow",
]


class CommitFailed(Exception):
    """What a database raises when a deferred constraint fails at COMMIT."""


def unit_of_work(
    name: str = "uow", *, fail: bool = False
) -> Callable[..., Iterator[str]]:
    """A sync generator resource that records its life in EVENTS."""

    def open_(**deps: Any) -> Iterator[str]:
        EVENTS.append(f"open:{name}")
        try:
            yield name
        except BaseException as error:
            EVENTS.append(f"rollback:{name}:{type(error).__name__}")
            raise
        if fail:
            EVENTS.append(f"commit fails:{name}")
            msg = f"deferred constraint of {name} violated"
            raise CommitFailed(msg)
        EVENTS.append(f"commit:{name}")

    open_.__qualname__ = name
    return open_


def async_unit_of_work(
    name: str = "uow", *, fail: bool = False
) -> Callable[..., AsyncIterator[str]]:
    """The async generator twin of ``unit_of_work``."""
    sync = unit_of_work(name, fail=fail)

    async def open_(**deps: Any) -> AsyncIterator[str]:
        generator = sync(**deps)
        value = next(generator)
        try:
            yield value
        except BaseException as error:
            generator.throw(error)  # records the rollback, raises it again
        with contextlib.suppress(StopIteration):
            next(generator)

    open_.__qualname__ = name
    return open_


@pytest.fixture(autouse=True)
def _events() -> Iterator[None]:
    EVENTS.clear()
    with override_settings(ROOT_URLCONF=VIEW_URLS):
        yield
    EVENTS.clear()


async def serve(app: LifespanASGIHandler, path: str) -> tuple[int, bytes]:
    """Send one GET through ``app``; record each response start in EVENTS."""
    incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    incoming.put_nowait({"type": "http.request", "body": b""})
    status, body = 0, b""

    async def send(message: Any) -> None:
        nonlocal status, body
        if message["type"] == "http.response.start":
            status = message["status"]
            EVENTS.append(f"response starts:{status}")
        else:
            body += message.get("body", b"")

    await asyncio.wait_for(app(http_scope(path), incoming.get, send), TIMEOUT)
    return status, body


def shop(uow: Any, **more: Any) -> LifespanASGIHandler:
    """A handler serving view_urls with a container holding ``uow`` (and ``more``)."""
    container = containers.DynamicContainer()
    container.uow = uow
    for name, provider in more.items():
        setattr(container, name, provider)
    return LifespanASGIHandler(container)


class TestClosedBeforeTheResponse:
    @pytest.mark.parametrize("path", STYLES)
    @pytest.mark.parametrize("form", [unit_of_work, async_unit_of_work])
    async def test_commit_runs_before_the_response_starts(
        self, path: str, form: Callable[..., Any]
    ) -> None:
        """In every view style, sync or async, through inject or request.state, the view resource commits after the view returned and before the response starts."""
        app = shop(ViewResource(form()))

        async with LifespanAsyncClient(application=app):
            status, body = await serve(app, path)

        assert (status, body.strip(b'"')) == (200, b"saved")
        assert EVENTS == [
            "open:uow",
            "view returns:uow",
            "commit:uow",
            "response starts:200",
        ]

    @pytest.mark.parametrize("path", STYLES)
    @pytest.mark.parametrize("form", [unit_of_work, async_unit_of_work])
    async def test_a_failed_commit_is_a_500_from_handler500(
        self, path: str, form: Callable[..., Any], caplog: pytest.LogCaptureFixture
    ) -> None:
        """A view resource whose commit raises after the view returned makes the response a 500 answered by handler500 and logged by django.request."""
        app = shop(ViewResource(form(fail=True)))

        async with LifespanAsyncClient(application=app):
            status, body = await serve(app, path)

        assert (status, body) == (500, b"handler500 answered")
        assert EVENTS == [
            "open:uow",
            "view returns:uow",
            "commit fails:uow",
            "response starts:500",
        ]
        logged = [r for r in caplog.records if r.name == "django.request"]
        assert [r.levelno for r in logged] == [logging.ERROR]
        error = logged[0].exc_info[1]  # type: ignore[index]
        assert isinstance(error, RequestScopeError)
        assert isinstance(error.__cause__, CommitFailed)
        assert "'uow' raised CommitFailed" in str(error)

    async def test_the_response_lifetime_only_logs_a_failed_commit(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The same failing commit in a RequestResource runs after the response started: the client got 200 and the failure is only logged (why ViewResource exists)."""
        app = shop(RequestResource(unit_of_work(fail=True)))

        async with LifespanAsyncClient(application=app):
            status, _ = await serve(app, "/sync/")

        assert status == 200
        assert EVENTS.index("response starts:200") < EVENTS.index("commit fails:uow")
        assert not [r for r in caplog.records if r.name == "django.request"]

    @pytest.mark.parametrize("form", [unit_of_work, async_unit_of_work])
    async def test_the_teardown_receives_the_view_exception(
        self, form: Callable[..., Any]
    ) -> None:
        """A view that raises rolls its view resource back before Django answers with handler500."""
        app = shop(ViewResource(form()))

        async with LifespanAsyncClient(application=app):
            status, body = await serve(app, "/fail/")

        assert (status, body) == (500, b"handler500 answered")
        assert EVENTS == ["open:uow", "rollback:uow:ValueError", "response starts:500"]

    async def test_a_view_calling_a_view_closes_once_when_the_outer_returns(
        self,
    ) -> None:
        """A view function called by the view does not close the view resource: the outer view keeps using it, and it commits once, when the outer view returns."""
        app = shop(ViewResource(unit_of_work()))

        async with LifespanAsyncClient(application=app):
            status, _ = await serve(app, "/outer/")

        assert status == 200
        assert EVENTS == [
            "open:uow",
            "view returns:uow",
            "outer goes on:uow",
            "commit:uow",
            "response starts:200",
        ]

    async def test_a_request_resource_closes_after_the_response(self) -> None:
        """Next to a view resource, a request resource still closes after the response has been sent."""
        app = shop(
            ViewResource(async_unit_of_work()),
            session=RequestResource(unit_of_work("session")),
        )

        async with LifespanAsyncClient(application=app):
            status, _ = await serve(app, "/mixed/")

        assert status == 200
        assert EVENTS == [
            "open:uow",
            "open:session",
            "view returns:uow+session",
            "commit:uow",
            "response starts:200",
            "commit:session",
        ]

    async def test_a_failed_commit_rolls_back_the_request_resources(self) -> None:
        """When a view resource fails to commit, the request resources' teardowns receive that failure and roll back."""
        app = shop(
            ViewResource(unit_of_work(fail=True)),
            session=RequestResource(unit_of_work("session")),
        )

        async with LifespanAsyncClient(application=app):
            status, _ = await serve(app, "/mixed/")

        assert status == 500
        assert EVENTS[-2:] == [
            "response starts:500",
            "rollback:session:RequestScopeError",
        ]


class TestThreads:
    @pytest.mark.parametrize("path", ["/sync/", "/async/"])
    async def test_a_sync_one_opens_and_closes_in_the_view_thread(
        self, path: str
    ) -> None:
        """A sync view resource opens and commits in one thread, never the event loop's: a sync view's own thread, or an async view's request thread."""
        threads: list[int] = []

        def recorded() -> Iterator[str]:
            threads.append(threading.get_ident())
            yield "uow"
            threads.append(threading.get_ident())

        app = shop(ViewResource(recorded))

        async with LifespanAsyncClient(application=app):
            status, _ = await serve(app, path)

        assert status == 200
        assert len(threads) == 2
        assert threads[0] == threads[1] != threading.get_ident()


class TestAfterTheView:
    async def test_a_streamed_body_cannot_use_it(self) -> None:
        """A streamed body reading the view resource after the view returned gets RequestScopeError saying it closed with the view."""
        app = shop(ViewResource(unit_of_work()))

        async with LifespanAsyncClient(application=app):
            status, body = await serve(app, "/stream/")

        assert status == 200
        assert body.startswith(
            b"RequestScopeError: Cannot use the view resource 'uow' here: it was "
            b"closed when the view returned"
        )
        assert EVENTS == ["open:uow", "commit:uow", "response starts:200"]

    async def test_request_resource_built_on_a_view_resource_fails_startup(
        self,
    ) -> None:
        """A RequestResource depending on a ViewResource is reported as lifespan_di.E013 and stops the startup."""

        class Shop(containers.DeclarativeContainer):
            uow = ViewResource(unit_of_work())
            repository = RequestResource(unit_of_work("repository"), uow=uow)

        container = Shop()

        problems = startup_problems(container)

        assert [problem.id for problem in problems] == ["lifespan_di.E013"]
        assert "'repository' depends on the view resource 'uow'" in problems[0].msg
        with pytest.raises(ConfigurationError, match="E013"):
            async with LifespanAsyncClient(application=LifespanASGIHandler(container)):
                pass

    async def test_a_view_resource_may_depend_on_a_request_resource(self) -> None:
        """A ViewResource built on a RequestResource is accepted and opened after it."""

        class Shop(containers.DeclarativeContainer):
            session = RequestResource(unit_of_work("session"))
            uow = ViewResource(unit_of_work(), session=session)

        container = Shop()
        app = LifespanASGIHandler(container)

        async with LifespanAsyncClient(application=app):
            status, _ = await serve(app, "/sync/")

        assert startup_problems(container) == []
        assert status == 200
        assert EVENTS == [
            "open:session",
            "open:uow",
            "view returns:uow",
            "commit:uow",
            "response starts:200",
            "commit:session",
        ]

    def test_a_request_scope_block_closes_it_at_its_end(self) -> None:
        """Outside a view, in a request_scope() block, a view resource lives until the block ends."""
        uow = ViewResource(unit_of_work())

        with request_scope():
            value = uow()
            EVENTS.append("block goes on")

        assert value == "uow"
        assert EVENTS == ["open:uow", "block goes on", "commit:uow"]


class TestWithoutTheHandler:
    """Django's own test clients and WSGI: LifespanStateMiddleware opens the scope."""

    @pytest.fixture
    def container(self) -> Any:
        container = containers.DynamicContainer()
        container.uow = ViewResource(unit_of_work(fail=True))
        return container

    @pytest.mark.parametrize("path", ["/sync/", "/async/", "/state/", "/class/"])
    async def test_a_failed_commit_is_a_500_with_the_async_client(
        self, path: str, container: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Under Django's AsyncClient, a failed commit of a view resource answers handler500's 500 and is logged by django.request."""
        async with lifespan(container):
            response = await AsyncClient(raise_request_exception=False).get(path)

        assert (response.status_code, response.content) == (
            500,
            b"handler500 answered",
        )
        assert "commit fails:uow" in EVENTS
        assert [r.name for r in caplog.records if r.name == "django.request"] == [
            "django.request"
        ]

    @pytest.mark.parametrize("path", ["/sync/", "/state/"])
    def test_a_failed_commit_is_a_500_with_the_client(
        self, path: str, container: Any
    ) -> None:
        """Under Django's sync Client (as under WSGI), a failed commit answers handler500's 500."""
        with lifespan(container):
            response = Client(raise_request_exception=False).get(path)

        assert (response.status_code, response.content) == (
            500,
            b"handler500 answered",
        )

    def test_middleware_raises_for_a_failed_commit(self) -> None:
        """Called directly with a RequestFactory request, the middleware raises the failed commit as RequestScopeError."""
        uow = ViewResource(unit_of_work(fail=True))

        def view(request: HttpRequest) -> HttpResponse:
            return view_urls.saved(uow())

        middleware = LifespanStateMiddleware(view)

        with pytest.raises(RequestScopeError) as raised:
            middleware(RequestFactory().get("/"))

        assert isinstance(raised.value.__cause__, CommitFailed)
        assert EVENTS == ["open:uow", "view returns:uow", "commit fails:uow"]

    async def test_async_middleware_closes_it_before_a_streamed_body(self) -> None:
        """With an async view, the middleware closes the view resource before returning a streamed response, whose body then cannot use it."""
        uow = ViewResource(async_unit_of_work())

        async def view(request: HttpRequest) -> Any:
            await uow.async_()

            async def body() -> AsyncIterator[str]:
                yield await uow.async_()

            return view_urls.StreamingHttpResponse(body())

        middleware = LifespanStateMiddleware(view)

        response = await middleware(AsyncRequestFactory().get("/"))

        assert EVENTS == ["open:uow", "commit:uow"]
        with pytest.raises(RequestScopeError, match="closed when the view returned"):
            async for _ in response:  # type: ignore[attr-defined]
                pass
        await sync_to_async(response.close)()


class _Session:
    """What the README's ``pool.session()`` returns; ``fail`` makes commit raise."""

    def __init__(self, fail: bool) -> None:
        self.fail = fail

    def __str__(self) -> str:
        return "session"

    def commit(self) -> None:
        EVENTS.append("commit")
        if self.fail:
            msg = "deferred constraint violated"
            raise CommitFailed(msg)

    def rollback(self) -> None:
        EVENTS.append("rollback")

    def close(self) -> None:
        EVENTS.append("close")


class TestReadmeExample:
    """The README's unit of work, run as written against a fake pool."""

    @staticmethod
    def container(*, fail: bool) -> Any:
        readme = (Path(__file__).parent.parent / "README.md").read_text("utf-8")
        blocks = re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
        (example,) = [block for block in blocks if "ViewResource(" in block]

        def create_pool() -> Iterator[Any]:
            yield types.SimpleNamespace(session=lambda: _Session(fail))

        namespace = {
            "containers": containers,
            "providers": providers,
            "create_pool": create_pool,
        }
        exec(example, namespace)
        return namespace["Container"]()

    @pytest.mark.parametrize(("fail", "status"), [(False, 200), (True, 500)])
    async def test_commit_ends_before_the_response(
        self, fail: bool, status: int
    ) -> None:
        """The README's unit of work commits before the response starts, and a commit that fails answers 500."""
        app = LifespanASGIHandler(self.container(fail=fail))

        async with LifespanAsyncClient(application=app):
            answered, _ = await serve(app, "/sync/")

        assert answered == status
        assert list(EVENTS) == [
            "view returns:session",
            "commit",
            "close",
            f"response starts:{status}",
        ]

    async def test_a_view_that_raises_rolls_back(self) -> None:
        """The README's unit of work rolls back when the view raises."""
        app = LifespanASGIHandler(self.container(fail=False))

        async with LifespanAsyncClient(application=app):
            answered, _ = await serve(app, "/fail/")

        assert answered == 500
        assert EVENTS == ["rollback", "close", "response starts:500"]


class TestDjangoTransaction:
    @pytest.mark.usefixtures("sqlite_db")
    @pytest.mark.parametrize(("query", "kept"), [({}, True), ({"fail": "1"}, False)])
    async def test_atomic_commits_as_the_view_returns(
        self, query: dict[str, str], kept: bool
    ) -> None:
        """transaction.atomic() as a view resource of an async view commits the view's ORM writes before the response, or rolls them back when the view raises."""

        class Shop(containers.DeclarativeContainer):
            atomic = ViewResource(transaction.atomic)

        with override_settings(ROOT_URLCONF=SCOPE_URLS):
            app = LifespanASGIHandler(Shop())
            async with LifespanAsyncClient(
                application=app, raise_request_exception=False
            ) as client:
                response = await client.get("/orm/", {"name": "group", **query})

        assert response.status_code == (200 if kept else 500)
        assert await saved("group") is kept


class TestDeferredConstraint:
    """The issue's reproduction: a commit refused by a deferred constraint (SQLite)."""

    async def test_a_refused_commit_answers_500_and_saves_nothing(
        self, tmp_path: Path
    ) -> None:
        """A view that saves a row breaking a deferred foreign key answers 500 where it used to answer 200 with nothing saved."""
        database = tmp_path / "shop.sqlite3"
        # closing(): a sqlite3 connection's `with` ends the transaction, not the
        # connection, and Python 3.13 warns about one left unclosed.
        with contextlib.closing(sqlite3.connect(database)) as setup:
            setup.executescript(
                "CREATE TABLE customer (id INTEGER PRIMARY KEY);"
                "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer INTEGER "
                "REFERENCES customer (id) DEFERRABLE INITIALLY DEFERRED);"
            )

        def transaction() -> Iterator[Any]:
            connection = sqlite3.connect(database, isolation_level=None)
            connection.execute("PRAGMA foreign_keys = ON")
            connection.execute("BEGIN")
            try:
                yield connection
            except BaseException:
                connection.rollback()
                raise
            else:
                connection.execute("COMMIT")  # the deferred check runs here
            finally:
                connection.close()

        app = shop(ViewResource(transaction))

        async with LifespanAsyncClient(application=app):
            status, _ = await serve(app, "/order/")

        with contextlib.closing(sqlite3.connect(database)) as check:
            rows = check.execute("SELECT count(*) FROM orders").fetchone()[0]
        assert (status, rows) == (500, 0)


def test_view_resource_is_a_request_resource() -> None:
    """A ViewResource is a RequestResource: inject, request.state and override treat it as one."""
    assert issubclass(ViewResource, RequestResource)
    assert isinstance(ViewResource(unit_of_work()), providers.Provider)


def test_the_wrapper_keeps_non_atomic_requests() -> None:
    """The handler's view wrapper keeps @transaction.non_atomic_requests, which Django's make_view_atomic reads from the view it wraps."""

    @transaction.non_atomic_requests
    def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    ViewResource(unit_of_work())  # views are wrapped once one exists

    wrapped = closing_view_resources(view)

    assert wrapped is not view
    assert wrapped._non_atomic_requests == {"default"}  # type: ignore[attr-defined]
