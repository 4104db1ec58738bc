"""These tests pin the upstream private APIs listed in docs/how-it-works.md ("What
lifespan_di relies on"), one test per API: each exercises Django, dependency-injector,
Django REST framework, asgiref or Channels directly, never lifespan_di's code, and asserts exactly the
behaviour lifespan_di relies on, so a failure here means an upgrade of one of them
changed something lifespan_di depends on.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

import pytest
from asgiref.sync import (
    SyncToAsync,
    ThreadSensitiveContext,
    iscoroutinefunction,
    markcoroutinefunction,
    sync_to_async,
)
from channels.auth import AuthMiddlewareStack
from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer
from channels.middleware import BaseMiddleware
from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter
from channels.security.websocket import OriginValidator
from channels.sessions import CookieMiddleware, SessionMiddleware
from channels.testing import WebsocketCommunicator
from dependency_injector import containers, providers, wiring
from django.core.exceptions import MiddlewareNotUsed, RequestAborted
from django.core.handlers.asgi import ASGIHandler, ASGIRequest
from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.test import AsyncClient, Client, RequestFactory, override_settings
from django.test.client import (
    AsyncClientHandler,
    ClientHandler,
    FakePayload,
    conditional_content_removal,
)
from django.urls import path
from django.utils.log import log_response
from rest_framework.decorators import api_view

from lifespan_di.core.loop import asgiref_loop

TIMEOUT = 2


@dataclass
class Probe:
    """What the views and handler subclasses record; views find it in the scope."""

    events: list[str] = field(default_factory=list)
    requests: list[HttpRequest] = field(default_factory=list)
    responses: list[HttpResponse] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)


class Exchange:
    """One HTTP request to an ASGI application, driven as a server drives it."""

    def __init__(self, probe: Probe, route: str) -> None:
        self.scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": route,
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver")],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
            "probe": probe,
        }
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.incoming.put_nowait({"type": "http.request", "body": b""})
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        return await self.incoming.get()

    async def send(self, message: Mapping[str, Any]) -> None:
        self.sent.append(dict(message))

    def disconnect(self) -> None:
        self.incoming.put_nowait({"type": "http.disconnect"})

    async def run(self, app: Any) -> None:
        await asyncio.wait_for(app(self.scope, self.receive, self.send), TIMEOUT)


class Records(logging.Handler):
    """Keeps the records logged to the logger it is attached to."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class ViewError(Exception):
    pass


async def recorded(request: HttpRequest) -> HttpResponse:
    probe = request.scope["probe"]  # type: ignore[attr-defined]
    response = HttpResponse("recorded")
    response._resource_closers.append(partial(probe.events.append, "closed"))  # type: ignore[attr-defined]
    probe.requests.append(request)
    probe.responses.append(response)
    return response


async def slow(request: HttpRequest) -> HttpResponse:
    probe = request.scope["probe"]  # type: ignore[attr-defined]
    probe.events.append("started")
    probe.started.set()
    try:
        await asyncio.sleep(0.2)
    except asyncio.CancelledError:
        probe.events.append("cancelled")
        raise
    probe.events.append("completed")
    probe.finished.set()
    return HttpResponse("slow")


async def raises_async(request: HttpRequest) -> HttpResponse:
    error = ViewError("async view")
    request.scope["probe"].errors.append(error)  # type: ignore[attr-defined]
    raise error


def raises_sync(request: HttpRequest) -> HttpResponse:
    error = ViewError("sync view")
    request.scope["probe"].errors.append(error)  # type: ignore[attr-defined]
    raise error


def echo(request: HttpRequest) -> HttpResponse:
    return HttpResponse(request.body)


LOADING: contextvars.ContextVar[bool] = contextvars.ContextVar("loading", default=False)


class CountingMiddleware:
    """Records which middleware is built (and whether inside load_middleware) and called."""

    built: ClassVar[list[tuple[str, bool]]] = []
    called: ClassVar[list[str]] = []

    def __init__(self, get_response: Any) -> None:
        CountingMiddleware.built.append((type(self).__name__, LOADING.get()))
        if isinstance(self, UnusedMiddleware):
            raise MiddlewareNotUsed
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        CountingMiddleware.called.append(type(self).__name__)
        return self.get_response(request)


class UnusedMiddleware(CountingMiddleware):
    pass


urlpatterns = [
    path("recorded/", recorded),
    path("slow/", slow),
    path("raises/async/", raises_async),
    path("raises/sync/", raises_sync),
    path("echo/", echo),
]


class TestDjango:
    @pytest.fixture(autouse=True)
    def _this_module_urls(self) -> Iterator[None]:
        with override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=[]):
            yield

    def test_response_close_runs_resource_closers_before_request_finished(
        self,
    ) -> None:
        """response.close() runs the callables in _resource_closers before sending request_finished."""
        events: list[str] = []
        response = HttpResponse()
        response._resource_closers.append(partial(events.append, "closer"))  # type: ignore[attr-defined]

        def on_request_finished(**kwargs: Any) -> None:
            events.append("request_finished")

        request_finished.connect(on_request_finished)
        try:
            response.close()
        finally:
            request_finished.disconnect(on_request_finished)

        assert events == ["closer", "request_finished"]

    def test_has_been_logged_makes_log_response_skip_a_5xx_response(self) -> None:
        """log_response() logs a 5xx response to django.request unless it has _has_been_logged = True."""
        request = RequestFactory().get("/health/")
        flagged = HttpResponse(status=503)
        flagged._has_been_logged = True  # type: ignore[attr-defined]
        unflagged = HttpResponse(status=503)
        logger = logging.getLogger("django.request")
        records = Records()

        logger.addHandler(records)
        try:
            log_response("Flagged", response=flagged, request=request)
            flagged_records = list(records.records)
            log_response("Unflagged", response=unflagged, request=request)
        finally:
            logger.removeHandler(records)

        assert flagged_records == []
        assert [record.getMessage() for record in records.records] == ["Unflagged"]

    async def test_asgi_call_hands_http_to_handle_and_refuses_lifespan(self) -> None:
        """ASGIHandler.__call__ calls self.handle(scope, receive, send) for http and raises ValueError for lifespan."""
        calls: list[tuple[Any, ...]] = []

        class HandleRecorder(ASGIHandler):
            async def handle(self, scope: Any, receive: Any, send: Any) -> None:
                calls.append((scope, receive, send))

        handler = HandleRecorder()
        exchange = Exchange(Probe(), "/recorded/")

        await exchange.run(handler)
        with pytest.raises(ValueError, match="lifespan"):
            await handler({"type": "lifespan"}, exchange.receive, exchange.send)

        assert calls == [(exchange.scope, exchange.receive, exchange.send)]
        assert calls[0][0] is exchange.scope

    async def test_handle_closes_response_after_send_response_returned(self) -> None:
        """ASGIHandler.handle calls send_response once with the view's response, then response.close()."""
        probe = Probe()
        sent: list[Any] = []

        class SendRecorder(ASGIHandler):
            async def send_response(self, response: Any, send: Any) -> None:
                sent.append(response)
                await super().send_response(response, send)
                probe.events.append("send_response done")

        exchange = Exchange(probe, "/recorded/")

        await exchange.run(SendRecorder())

        assert len(sent) == 1
        assert sent[0] is probe.responses[0]
        assert probe.events == ["send_response done", "closed"]
        assert exchange.sent[0]["status"] == 200

    async def test_disconnect_cancels_the_view_unless_listen_for_disconnect_waits(
        self,
    ) -> None:
        """handle cancels a running async view once listen_for_disconnect gets http.disconnect; an override waiting before super() delays that."""
        cancelled, patient = Probe(), Probe()

        class PatientHandler(ASGIHandler):
            async def listen_for_disconnect(self, receive: Any) -> None:
                patient.events.append("listening")
                await patient.finished.wait()
                await super().listen_for_disconnect(receive)

        async def disconnect_during_view(app: ASGIHandler, probe: Probe) -> None:
            exchange = Exchange(probe, "/slow/")
            served = asyncio.create_task(exchange.run(app))
            await asyncio.wait_for(probe.started.wait(), TIMEOUT)
            exchange.disconnect()
            await served

        await disconnect_during_view(ASGIHandler(), cancelled)
        await disconnect_during_view(PatientHandler(), patient)

        assert cancelled.events == ["started", "cancelled"]
        assert patient.events[-1] == "completed"
        assert "cancelled" not in patient.events
        assert patient.events.index("listening") < patient.events.index("completed")

    @pytest.mark.parametrize("route", ["/raises/async/", "/raises/sync/"])
    async def test_process_exception_by_middleware_receives_the_view_exception(
        self, route: str
    ) -> None:
        """BaseHandler.process_exception_by_middleware is called with the exception an async or sync view raised."""
        probe = Probe()
        received: list[Exception] = []

        class ExceptionRecorder(ASGIHandler):
            def process_exception_by_middleware(
                self, exception: Exception, request: HttpRequest
            ) -> Any:
                received.append(exception)
                return super().process_exception_by_middleware(exception, request)

        exchange = Exchange(probe, route)

        await exchange.run(ExceptionRecorder())

        assert len(probe.errors) == 1
        assert received == probe.errors
        assert exchange.sent[0]["status"] == 500

    @pytest.mark.parametrize("route", ["/recorded/", "/raises/async/", "/raises/sync/"])
    async def test_make_view_atomic_wraps_the_view_before_the_response_path(
        self, route: str
    ) -> None:
        """BaseHandler.make_view_atomic(view) gets the resolved view, and what it returns is called in its place before send_response; an exception raised there becomes the 500."""
        probe = Probe()
        calls: list[str] = []

        class Wrapping(ASGIHandler):
            def make_view_atomic(self, view: Any) -> Any:
                calls.append(f"wrap:{view.__name__}")
                if iscoroutinefunction(view):

                    async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                        calls.append("wrapper called")
                        return await view(*args, **kwargs)

                    return super().make_view_atomic(async_wrapper)

                def wrapper(*args: Any, **kwargs: Any) -> Any:
                    calls.append("wrapper called")
                    return view(*args, **kwargs)

                return super().make_view_atomic(wrapper)

            async def send_response(self, response: Any, send: Any) -> None:
                calls.append("send_response")
                await super().send_response(response, send)

        exchange = Exchange(probe, route)

        await exchange.run(Wrapping())

        view = route.strip("/").replace("/", "_")
        assert calls == [f"wrap:{view}", "wrapper called", "send_response"]
        assert exchange.sent[0]["status"] == (200 if view == "recorded" else 500)

    async def test_create_request_returns_the_request_the_view_receives(self) -> None:
        """ASGIHandler.create_request(scope, body_file) returns (ASGIRequest for that scope, None) to an overriding subclass."""
        probe = Probe()
        created: list[tuple[Any, Any]] = []

        class RequestRecorder(ASGIHandler):
            def create_request(self, scope: Any, body_file: Any) -> Any:
                result = super().create_request(scope, body_file)
                created.append(result)
                return result

        handler = RequestRecorder()
        exchanges = [Exchange(probe, "/recorded/"), Exchange(probe, "/recorded/")]

        for exchange in exchanges:
            await exchange.run(handler)

        assert [error for _, error in created] == [None, None]
        assert [request for request, _ in created] == probe.requests
        for (request, _), exchange in zip(created, exchanges, strict=True):
            assert isinstance(request, ASGIRequest)
            assert request.scope is exchange.scope

    async def test_request_class_is_what_create_request_instantiates(self) -> None:
        """ASGIHandler.create_request() builds each request from the handler's request_class."""
        probe = Probe()

        class StateRequest(ASGIRequest):
            pass

        class Handler(ASGIHandler):
            request_class = StateRequest

        await Exchange(probe, "/recorded/").run(Handler())

        assert [type(request) for request in probe.requests] == [StateRequest]

    async def test_load_middleware_builds_the_middleware_and_skips_middleware_not_used(
        self,
    ) -> None:
        """ASGIHandler() builds each MIDDLEWARE class inside its load_middleware(is_async=True) call, and leaves out of the chain one whose constructor raises MiddlewareNotUsed."""
        probe = Probe()

        class Handler(ASGIHandler):
            def load_middleware(self, is_async: bool = False) -> None:
                token = LOADING.set(is_async)
                try:
                    super().load_middleware(is_async)
                finally:
                    LOADING.reset(token)

        middleware = [f"{__name__}.UnusedMiddleware", f"{__name__}.CountingMiddleware"]
        with override_settings(MIDDLEWARE=middleware):
            CountingMiddleware.built.clear()
            CountingMiddleware.called.clear()
            handler = Handler()
            await Exchange(probe, "/recorded/").run(handler)

        assert CountingMiddleware.built == [
            ("CountingMiddleware", True),
            ("UnusedMiddleware", True),
        ]
        assert [type(request) for request in probe.requests] == [ASGIRequest]
        assert CountingMiddleware.called == ["CountingMiddleware"]

    def test_dont_enforce_csrf_checks_lets_a_post_without_token_through(self) -> None:
        """CsrfViewMiddleware accepts a POST without a token only from a request with _dont_enforce_csrf_checks = True."""
        factory = RequestFactory()
        exempted = factory.post("/echo/", {"field": "value"})
        exempted._dont_enforce_csrf_checks = True  # type: ignore[attr-defined]
        enforced = factory.post("/echo/", {"field": "value"})
        middleware = CsrfViewMiddleware(echo)

        exempted_response = middleware.process_view(exempted, echo, (), {})
        enforced_response = middleware.process_view(enforced, echo, (), {})

        assert exempted_response is None
        assert enforced_response is not None
        assert enforced_response.status_code == 403

    async def test_test_clients_send_base_scope_and_body_file_to_their_handler(
        self,
    ) -> None:
        """AsyncClient sends _base_scope() with the body in scope["_body_file"] to client.handler, replaceable like Client's."""
        seen: list[Any] = []

        class MarkingClient(AsyncClient):
            def _base_scope(self, **request: Any) -> dict[str, Any]:
                scope: dict[str, Any] = super()._base_scope(**request)  # type: ignore[misc]
                scope["marker"] = "from _base_scope"
                return scope

        class AsyncRecorder(AsyncClientHandler):
            async def __call__(self, scope: dict[str, Any]) -> Any:
                body = scope["_body_file"].read()
                seen.append((scope["marker"], body))
                scope["_body_file"] = FakePayload(body)
                return await super().__call__(scope)

        class SyncRecorder(ClientHandler):
            def __call__(self, environ: dict[str, Any]) -> Any:
                seen.append(environ["PATH_INFO"])
                return super().__call__(environ)

        async_client, sync_client = MarkingClient(), Client()
        async_client.handler = AsyncRecorder(False)
        sync_client.handler = SyncRecorder(True)

        async_response = await async_client.post(
            "/echo/", b"payload", content_type="application/octet-stream"
        )
        sync_response = sync_client.get("/echo/")

        assert seen == [("from _base_scope", b"payload"), "/echo/"]
        assert async_response.content == b"payload"
        assert sync_response.status_code == 200
        assert async_client.handler.enforce_csrf_checks is False
        assert sync_client.handler.enforce_csrf_checks is True

    def test_conditional_content_removal_empties_the_body_for_head(self) -> None:
        """conditional_content_removal(request, response) empties the body of a response to a HEAD request."""
        factory = RequestFactory()
        head_response, get_response = HttpResponse(b"body"), HttpResponse(b"body")

        conditional_content_removal(factory.head("/echo/"), head_response)
        conditional_content_removal(factory.get("/echo/"), get_response)

        assert head_response.content == b""
        assert get_response.content == b"body"


class Infra(containers.DeclarativeContainer):
    cache = providers.Object("cache")


class Services(containers.DeclarativeContainer):
    db = providers.Object("db")
    infra = providers.Container(Infra)


class Wrapping(providers.Provider[Any]):
    """DI's custom-provider recipe, as lifespan_di's RequestResource follows it."""

    __slots__ = ("_callable",)

    def __init__(self, provides: Any, *args: Any, **kwargs: Any) -> None:
        self._callable = providers.Callable(provides, *args, **kwargs)
        super().__init__()

    def __deepcopy__(self, memo: dict[Any, Any] | None) -> Wrapping:
        copied: Wrapping | None = (memo or {}).get(id(self))
        if copied is not None:
            return copied
        copied = type(self)(
            self._callable.provides,
            *providers.deepcopy(self._callable.args, memo),
            **providers.deepcopy(self._callable.kwargs, memo),
        )
        self._copy_overridings(copied, memo)
        return copied

    @property
    def related(self) -> Iterator[providers.Provider[Any]]:
        yield from self._callable.related
        yield from super().related

    def _provide(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return ("from _provide", self._callable(*args, **kwargs))


class TestDependencyInjector:
    def test_providers_map_resolves_markers_to_the_instance_providers(self) -> None:
        """ProvidersMap(container).resolve_provider maps class-level, string and dotted markers to the instance's providers."""
        container = Services()
        providers_map = wiring.ProvidersMap(container)
        markers = [
            wiring.Provide[Services.db],
            wiring.Provide["db"],
            wiring.Provide["infra.cache"],
            wiring.Provide[providers.Object("elsewhere")],
        ]

        resolved = [
            providers_map.resolve_provider(marker.provider, marker.modifier)
            for marker in markers
        ]

        assert [marker.modifier for marker in markers] == [None] * 4
        assert resolved[0] is container.db
        assert resolved[0] is not Services.db
        assert resolved[1] is container.db
        assert resolved[2] is container.infra.cache
        assert resolved[3] is None

    def test_custom_provider_recipe_is_provided_copied_and_traversed(self) -> None:
        """A Provider subclass built on DI's recipe is called through _provide, deep-copied with its overrides, and traversed through related."""

        def make(*args: Any) -> tuple[Any, ...]:
            return args

        class Container(containers.DeclarativeContainer):
            setting = providers.Object("setting")
            wrapped = Wrapping(make, setting, providers.Object("inline"))

        Container.wrapped.override(providers.Object("overridden"))

        provided = Wrapping(make, 1)(2)
        container = Container()
        dependency, inline = list(container.wrapped._callable.args)
        declared_inline = list(Container.wrapped._callable.args)[1]
        traversed: list[providers.Provider[Any]] = list(container.traverse())

        assert provided == ("from _provide", (1, 2))
        assert container.wrapped is not Container.wrapped
        assert dependency is container.setting
        assert dependency is not Container.setting
        assert container.wrapped() == "overridden"
        assert inline is not declared_inline
        assert any(provider is inline for provider in traversed)

    def test_a_class_override_answers_class_calls_and_is_copied_into_instances(
        self,
    ) -> None:
        """An overriding of a class provider answers its calls as they are, async_() included, and a new instance deep-copies it."""

        class Answer(providers.Provider[Any]):
            def _provide(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
                return "answer"

            def __deepcopy__(self, memo: dict[int, Any] | None) -> Any:
                copied.append(self)
                return Answer()

        class Container(containers.DeclarativeContainer):
            pool = providers.Resource(dict)

        copied: list[Answer] = []
        answer = Answer()
        Container.pool.disable_async_mode()
        Container.pool.override(answer)
        try:
            called, awaited = Container.pool(), Container.pool.async_()
            Container()
        finally:
            Container.pool.reset_last_overriding()
            Container.pool.reset_async_mode()

        assert (called, awaited) == ("answer", "answer")
        assert copied == [answer]
        assert not Container.pool.initialized

    def test_declarative_parent_is_the_class_of_a_declarative_instance(self) -> None:
        """A DeclarativeContainer instance's declarative_parent is its class; a hand-built DynamicContainer's is None."""
        declarative = Services()
        dynamic = containers.DynamicContainer()

        assert declarative.declarative_parent is Services
        assert getattr(dynamic, "declarative_parent", None) is None

    def test_reset_state_forgets_a_started_resource_without_its_teardown(
        self,
    ) -> None:
        """Resource.reset_state() drops the started value unclosed, and init() starts anew."""
        events: list[str] = []

        def opened() -> Iterator[int]:
            events.append("start")
            yield len(events)
            events.append("stop")

        resource = providers.Resource(opened)
        first = resource.init()

        resource.reset_state()  # type: ignore[attr-defined]
        second = resource.init()

        assert (first, second) == (1, 2)
        assert events == ["start", "start"]
        assert resource.initialized
        resource.shutdown()


class TestRestFramework:
    def test_api_view_keeps_the_function_in_the_handler_closure(self) -> None:
        """@api_view installs per-method handlers named api_view.* that hold the function in their "func" closure cell."""

        def listing(request: HttpRequest) -> HttpResponse:
            return HttpResponse()

        view = api_view(["GET", "POST"])(listing)

        handlers = [vars(view.cls)[method] for method in ("get", "post")]

        for handler in handlers:
            assert handler.__qualname__.startswith("api_view.")
            cell = handler.__closure__[handler.__code__.co_freevars.index("func")]
            assert cell.cell_contents is listing


class TestAsgiref:
    async def test_sync_to_async_threads_record_the_loop_async_to_sync_uses(
        self,
    ) -> None:
        """asgiref records the loop in the threads sync_to_async runs code in, which
        lifespan_di.core.loop.asgiref_loop() reads; other threads have none."""
        loop = asyncio.get_running_loop()

        seen = await sync_to_async(asgiref_loop, thread_sensitive=False)()
        elsewhere: list[object] = []
        thread = threading.Thread(target=lambda: elsewhere.append(asgiref_loop()))
        thread.start()
        thread.join()

        assert seen is loop
        assert elsewhere == [None]

    async def test_a_context_with_an_executor_runs_its_block_there_and_keeps_it(
        self,
    ) -> None:
        """ThreadSensitiveContext(executor=...) (asgiref 3.13) sends the block's
        thread-sensitive calls to that executor and leaves it running afterwards."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="given")

        def name() -> str:
            return threading.current_thread().name

        try:
            async with ThreadSensitiveContext(executor=executor):
                inside = await sync_to_async(name)()
            again = executor.submit(name).result(TIMEOUT)
        finally:
            executor.shutdown()

        assert inside.startswith("given")
        assert again == inside

    async def test_listen_for_disconnect_aborts_on_disconnect_and_asserts_else(
        self,
    ) -> None:
        """ASGIHandler.listen_for_disconnect raises RequestAborted on http.disconnect
        and AssertionError on any other message: LifespanASGIHandler inlines it."""
        messages = iter([{"type": "http.disconnect"}, {"type": "http.request"}])

        async def receive() -> dict[str, Any]:
            return next(messages)

        with pytest.raises(RequestAborted):
            await ASGIHandler().listen_for_disconnect(receive)
        with pytest.raises(AssertionError, match=r"after request body: http\.request"):
            await ASGIHandler().listen_for_disconnect(receive)

    async def test_django_handles_a_request_in_a_thread_sensitive_context(
        self,
    ) -> None:
        """ASGIHandler.__call__ runs handle() in a new ThreadSensitiveContext, which
        LifespanASGIHandler's __call__ inlines (with a leased executor, if any)."""
        seen: list[object] = []

        class Recording(ASGIHandler):
            async def handle(self, scope: Any, receive: Any, send: Any) -> None:
                seen.append(SyncToAsync.thread_sensitive_context.get(None))

        await Recording()({"type": "http"}, None, None)

        assert isinstance(seen[0], ThreadSensitiveContext)


class TestChannels:
    def test_routers_and_middleware_keep_what_they_route_to(self) -> None:
        """Routers keep their mapping and routes; middleware the application it wraps."""
        consumer = AsyncWebsocketConsumer.as_asgi()
        urls = URLRouter([path("ws/", consumer)])
        auth = AuthMiddlewareStack(urls)
        validator = OriginValidator(urls, ["*"])
        router = ProtocolTypeRouter({"websocket": auth})
        names = ChannelNameRouter({"worker": consumer})

        assert router.application_mapping == {"websocket": auth}
        assert names.application_mapping == {"worker": consumer}
        assert [route.callback for route in urls.routes] == [consumer]
        assert consumer.consumer_class is AsyncWebsocketConsumer  # type: ignore[attr-defined]
        assert validator.application is urls
        wrapped: Any = auth
        while isinstance(
            wrapped, CookieMiddleware | SessionMiddleware | BaseMiddleware
        ):
            wrapped = wrapped.inner
        assert wrapped is urls

    async def test_consumers_dispatch_each_message_in_their_task_or_a_thread(
        self,
    ) -> None:
        """dispatch() runs once per message, sync handlers in a thread with its context."""
        seen: list[tuple[str, bool, str | None]] = []
        marker: contextvars.ContextVar[str | None] = contextvars.ContextVar(
            "marker", default=None
        )

        def consumer_of(base: type[Any]) -> type[Any]:
            class Recording(base):  # type: ignore[misc,valid-type]
                async def dispatch(self, message: Any) -> None:
                    token = marker.set(message["type"])
                    try:
                        await super().dispatch(message)
                    finally:
                        marker.reset(token)

                def record(self) -> None:
                    main = threading.current_thread() is threading.main_thread()
                    seen.append((base.__name__, main, marker.get()))

                def websocket_receive(self, message: Any) -> Any:
                    self.record()
                    return super().websocket_receive(message)

            return Recording

        for base in (AsyncWebsocketConsumer, WebsocketConsumer):
            communicator = WebsocketCommunicator(consumer_of(base).as_asgi(), "/")
            assert (await communicator.connect(TIMEOUT))[0]
            await communicator.send_to(text_data="x")
            await communicator.disconnect()

        assert seen == [
            ("AsyncWebsocketConsumer", True, "websocket.receive"),
            ("WebsocketConsumer", False, "websocket.receive"),
        ]
