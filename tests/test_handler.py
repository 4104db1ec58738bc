"""The ASGI lifespan protocol, message by message, with ApplicationCommunicator."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from dependency_injector import containers, providers
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponse
from django.test import override_settings
from django.urls import path

from lifespan_di import get_asgi_application, get_container
from lifespan_di.core.lifespan import LIFESPAN_STATE_KEY, RUNTIME
from lifespan_di.handler import LifespanASGIHandler
from lifespan_di.middleware import LifespanStateMiddleware
from lifespan_di.providers import RequestResource
from lifespan_di.scope import RequestScope, current_scope
from tests.recorder import Recorder
from tests.test_request_scope import http_scope

TIMEOUT = 5

SCOPES_SEEN: list[RequestScope | None] = []


async def scope_view(request: HttpRequest) -> HttpResponse:
    """Record the request scope the view runs in."""
    SCOPES_SEEN.append(current_scope())
    return HttpResponse()


urlpatterns = [path("scope/", scope_view)]


class Lifespan:
    """Drives one lifespan scope of an application, as a server would."""

    def __init__(self, app: Any, state: dict[str, Any] | None = None) -> None:
        scope: dict[str, Any] = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
        }
        if state is not None:
            scope["state"] = state
        self.communicator = ApplicationCommunicator(app, scope)

    async def send(self, message_type: str, **extra: Any) -> dict[str, Any]:
        await self.communicator.send_input({"type": message_type, **extra})
        return dict(await self.communicator.receive_output(TIMEOUT))

    async def finished(self) -> None:
        await asyncio.wait_for(self.communicator.future, TIMEOUT)


def three_resources(
    recorder: Recorder, fail: str | None = None
) -> containers.Container:
    def resource(name: str) -> Any:
        error = ConnectionRefusedError(f"{name} is down") if name == fail else None
        return recorder.async_resource(name, fail_start=error)

    class Three(containers.DeclarativeContainer):
        first = providers.Resource(resource("first"))
        middle = providers.Resource(resource("middle"), first=first)
        last = providers.Resource(resource("last"), middle=middle)

    return Three()


async def http_get(
    app: Any, path: str, state: dict[str, Any] | None = None, *, copy: bool = True
) -> tuple[int, dict[str, Any]]:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    if state is not None:
        # A server following the spec copies the lifespan state for each request.
        scope["state"] = dict(state) if copy else state
    communicator = ApplicationCommunicator(app, scope)
    await communicator.send_input(
        {"type": "http.request", "body": b"", "more_body": False}
    )
    start = await communicator.receive_output(TIMEOUT)
    body = b""
    while True:
        message = await communicator.receive_output(TIMEOUT)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await communicator.wait(TIMEOUT)
    return start["status"], json.loads(body) if body else {}


class TestStartupAndShutdown:
    async def test_complete_cycle(self, recorder: Recorder) -> None:
        """Startup completes, the state reaches the server's dict, shutdown completes in reverse order."""
        state: dict[str, Any] = {}
        lifespan = Lifespan(LifespanASGIHandler(three_resources(recorder)), state)

        started = await lifespan.send("lifespan.startup")
        published = set(state)
        stopped = await lifespan.send("lifespan.shutdown")
        await lifespan.finished()

        assert started == {"type": "lifespan.startup.complete"}
        assert published == {"first", "middle", "last", LIFESPAN_STATE_KEY}
        assert stopped == {"type": "lifespan.shutdown.complete"}
        assert recorder.events == [
            "start:first",
            "start:middle",
            "start:last",
            "stop:last",
            "stop:middle",
            "stop:first",
        ]

    async def test_shutdown_survives_an_emptied_state_dict(
        self, recorder: Recorder
    ) -> None:
        """Shutdown closes every resource even when the server emptied the state dict first, as granian does."""
        state: dict[str, Any] = {}
        lifespan = Lifespan(LifespanASGIHandler(three_resources(recorder)), state)
        await lifespan.send("lifespan.startup")
        state.clear()

        message = await lifespan.send("lifespan.shutdown")

        assert message == {"type": "lifespan.shutdown.complete"}
        assert recorder.stopped == ["last", "middle", "first"]

    @pytest.mark.parametrize("fail", ["first", "middle", "last"])
    async def test_resource_raising_fails_startup(
        self, recorder: Recorder, fail: str
    ) -> None:
        """A resource raising at startup sends startup.failed naming it; everything started is stopped."""
        lifespan = Lifespan(
            LifespanASGIHandler(three_resources(recorder, fail=fail)), {}
        )

        message = await lifespan.send("lifespan.startup")
        await lifespan.finished()

        assert message["type"] == "lifespan.startup.failed"
        assert message["message"].startswith(
            f"Cannot start resource 'Three.{fail}': it raised ConnectionRefusedError('{fail} is down')."
        )
        assert recorder.stopped == list(reversed(recorder.started))
        assert fail not in recorder.started

    @override_settings(
        LIFESPAN_DI={
            "CONTAINER": "tests.project.containers.Container",
            "STARTUP_TIMEOUT": 0.2,
        }
    )
    async def test_startup_timeout_fails_startup(self, recorder: Recorder) -> None:
        """STARTUP_TIMEOUT, read at each startup, turns a hung resource into startup.failed."""

        class Hung(containers.DeclarativeContainer):
            fine = providers.Resource(recorder.async_resource("fine"))
            hung = providers.Resource(recorder.async_resource("hung", delay=30))

        lifespan = Lifespan(LifespanASGIHandler(Hung()), {})

        message = await lifespan.send("lifespan.startup")
        await lifespan.finished()

        assert message["type"] == "lifespan.startup.failed"
        assert "'Hung.hung'" in message["message"]
        assert "STARTUP_TIMEOUT (0.2 s)" in message["message"]
        assert recorder.events == ["start:fine", "stop:fine"]

    async def test_cancelled_startup_rolls_back(self, recorder: Recorder) -> None:
        """Cancelling the lifespan during startup stops what started and does not swallow the cancel."""

        class Slow(containers.DeclarativeContainer):
            fine = providers.Resource(recorder.async_resource("fine"))
            slow = providers.Resource(recorder.async_resource("slow", delay=30))

        lifespan = Lifespan(LifespanASGIHandler(Slow()), {})
        await lifespan.communicator.send_input({"type": "lifespan.startup"})
        await asyncio.sleep(0.1)

        lifespan.communicator.future.cancel()
        with pytest.raises(asyncio.CancelledError):
            await lifespan.communicator.future

        assert recorder.events == ["start:fine", "stop:fine"]

    async def test_teardown_raising_fails_shutdown(self, recorder: Recorder) -> None:
        """A teardown raising sends shutdown.failed naming it, after every other resource stopped."""

        class Bad(containers.DeclarativeContainer):
            base = providers.Resource(recorder.async_resource("base"))
            bad = providers.Resource(
                recorder.async_resource("bad", fail_stop=RuntimeError("flush failed")),
                base=base,
            )

        lifespan = Lifespan(LifespanASGIHandler(Bad()), {})
        await lifespan.send("lifespan.startup")

        message = await lifespan.send("lifespan.shutdown")
        await lifespan.finished()

        assert message["type"] == "lifespan.shutdown.failed"
        assert "'Bad.bad' (RuntimeError('flush failed'))" in message["message"]
        assert recorder.stopped == ["bad", "base"]

    async def test_two_teardowns_raising_are_both_reported(
        self, recorder: Recorder
    ) -> None:
        """Two failing teardowns are both named in shutdown.failed."""

        class Bad(containers.DeclarativeContainer):
            one = providers.Resource(
                recorder.async_resource("one", fail_stop=RuntimeError("one"))
            )
            two = providers.Resource(
                recorder.sync_resource("two", fail_stop=RuntimeError("two"))
            )

        lifespan = Lifespan(LifespanASGIHandler(Bad()), {})
        await lifespan.send("lifespan.startup")

        message = await lifespan.send("lifespan.shutdown")

        assert message["type"] == "lifespan.shutdown.failed"
        assert "'Bad.one'" in message["message"]
        assert "'Bad.two'" in message["message"]
        assert sorted(recorder.stopped) == ["one", "two"]

    async def test_configuration_error_fails_startup(self) -> None:
        """A broken LIFESPAN_DI setting fails the startup with the configuration message."""
        with override_settings(
            LIFESPAN_DI={"CONTAINER": "tests.project.missing.Container"}
        ):
            lifespan = Lifespan(LifespanASGIHandler(), {})
            message = await lifespan.send("lifespan.startup")

        assert message["type"] == "lifespan.startup.failed"
        assert (
            "Cannot import LIFESPAN_DI['CONTAINER'] = 'tests.project.missing.Container'"
            in message["message"]
        )

    async def test_container_module_raising_fails_startup_as_e003(self) -> None:
        """A container module raising a non-ImportError at import fails the startup with E003 naming the exception."""
        with override_settings(
            LIFESPAN_DI={"CONTAINER": "tests.project.raising_container.Container"}
        ):
            lifespan = Lifespan(LifespanASGIHandler(), {})
            message = await lifespan.send("lifespan.startup")
            await lifespan.finished()

        assert message["type"] == "lifespan.startup.failed"
        assert message["message"].startswith(
            "Cannot import LIFESPAN_DI['CONTAINER'] = "
            "'tests.project.raising_container.Container': importing it raised "
            "RuntimeError('the container module is broken')."
        )
        assert "(lifespan_di.E003)" in message["message"]
        assert "Traceback" not in message["message"]

    async def test_timeout_too_large_for_the_event_loop_fails_startup_as_e005(
        self,
    ) -> None:
        """A STARTUP_TIMEOUT too large to add to the loop's clock fails the startup as E005, not with OverflowError."""
        with override_settings(
            LIFESPAN_DI={
                "CONTAINER": "tests.project.containers.Container",
                "STARTUP_TIMEOUT": 10**400,
            }
        ):
            lifespan = Lifespan(LifespanASGIHandler(), {})
            message = await lifespan.send("lifespan.startup")
            await lifespan.finished()

        assert message["type"] == "lifespan.startup.failed"
        assert "(lifespan_di.E005)" in message["message"]
        assert "OverflowError" not in message["message"]


class TestProtocolViolations:
    async def test_unknown_message_before_startup(self, recorder: Recorder) -> None:
        """An unknown first message gets startup.failed and starts nothing."""
        lifespan = Lifespan(LifespanASGIHandler(three_resources(recorder)), {})

        message = await lifespan.send("lifespan.bogus")
        await lifespan.finished()

        assert message["type"] == "lifespan.startup.failed"
        assert "'lifespan.bogus'" in message["message"]
        assert recorder.events == []

    async def test_shutdown_before_startup(self, recorder: Recorder) -> None:
        """Shutdown as the first message gets shutdown.failed and starts nothing."""
        lifespan = Lifespan(LifespanASGIHandler(three_resources(recorder)), {})

        message = await lifespan.send("lifespan.shutdown")
        await lifespan.finished()

        assert message["type"] == "lifespan.shutdown.failed"
        assert "before 'lifespan.startup'" in message["message"]
        assert recorder.events == []

    async def test_second_startup(self, recorder: Recorder) -> None:
        """A second startup gets startup.failed, and the running resources are shut down, not leaked."""
        lifespan = Lifespan(LifespanASGIHandler(three_resources(recorder)), {})
        await lifespan.send("lifespan.startup")

        message = await lifespan.send("lifespan.startup")
        await lifespan.finished()

        assert message["type"] == "lifespan.startup.failed"
        assert "second 'lifespan.startup'" in message["message"]
        assert recorder.stopped == ["last", "middle", "first"]

    async def test_refused_second_lifespan_keeps_the_running_one(
        self, recorder: Recorder
    ) -> None:
        """A second lifespan scope refused while the first runs leaves handler.lifespan on the running one."""
        handler = LifespanASGIHandler(three_resources(recorder))
        first = Lifespan(handler, {})
        await first.send("lifespan.startup")
        running = handler.lifespan

        second = Lifespan(handler, {})
        refused = await second.send("lifespan.startup")
        await second.finished()
        kept = handler.lifespan
        await first.send("lifespan.shutdown")
        await first.finished()

        assert refused["type"] == "lifespan.startup.failed"
        assert "already running" in refused["message"]
        assert running is not None
        assert kept is running
        assert recorder.stopped == ["last", "middle", "first"]

    async def test_unknown_message_while_running(self, recorder: Recorder) -> None:
        """An unknown message while running gets shutdown.failed after the resources are shut down."""
        lifespan = Lifespan(LifespanASGIHandler(three_resources(recorder)), {})
        await lifespan.send("lifespan.startup")

        message = await lifespan.send("lifespan.bogus", extra="ignored")
        await lifespan.finished()

        assert message["type"] == "lifespan.shutdown.failed"
        assert "'lifespan.bogus'" in message["message"]
        assert recorder.stopped == ["last", "middle", "first"]

    async def test_extra_keys_are_ignored(self, recorder: Recorder) -> None:
        """Extra keys in lifespan messages are allowed by the spec and ignored."""
        lifespan = Lifespan(LifespanASGIHandler(three_resources(recorder)), {})

        started = await lifespan.send("lifespan.startup", extra={"x": 1})
        stopped = await lifespan.send("lifespan.shutdown", extra=True)

        assert started["type"] == "lifespan.startup.complete"
        assert stopped["type"] == "lifespan.shutdown.complete"

    async def test_send_raising_shuts_down_and_propagates(
        self, recorder: Recorder
    ) -> None:
        """If the server's send() raises after startup, the resources are shut down and the error propagates."""
        handler = LifespanASGIHandler(three_resources(recorder))
        messages = iter([{"type": "lifespan.startup"}])

        async def receive() -> Any:
            return next(messages)

        async def send(message: Any) -> None:
            raise OSError("server went away")

        with pytest.raises(OSError, match="server went away"):
            await handler(
                {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                receive,
                send,
            )

        assert recorder.stopped == ["last", "middle", "first"]

    async def test_send_raising_after_startup_failed_propagates(
        self, recorder: Recorder
    ) -> None:
        """An exception from send(startup.failed), as hypercorn raises, reaches the server."""
        handler = LifespanASGIHandler(three_resources(recorder, fail="middle"))

        class LifespanFailureError(Exception):
            pass

        async def receive() -> Any:
            return {"type": "lifespan.startup"}

        async def send(message: Any) -> None:
            if message["type"] == "lifespan.startup.failed":
                raise LifespanFailureError(message["message"])

        with pytest.raises(LifespanFailureError):
            await handler(
                {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                receive,
                send,
            )

        assert recorder.stopped == ["first"]


async def get_in_a_lifespan(app: Any, path: str) -> tuple[int, dict[str, Any]]:
    """GET ``path`` from ``app`` while a LifespanASGIHandler runs the lifespan."""
    state: dict[str, Any] = {}
    lifespan = Lifespan(LifespanASGIHandler(), state)
    await lifespan.send("lifespan.startup")
    try:
        return await http_get(app, path, state)
    finally:
        await lifespan.send("lifespan.shutdown")
        await lifespan.finished()


class TestRequests:
    @pytest.mark.parametrize("handler_class", [ASGIHandler, LifespanASGIHandler])
    async def test_a_message_after_the_body_other_than_disconnect_is_refused(
        self, handler_class: type[ASGIHandler]
    ) -> None:
        """As Django does: AssertionError naming it (lifespan_di inlines the listener)."""
        scope = http_scope("/threads/sync/", b"id=1&sleep=0.2")  # still in the view
        communicator = ApplicationCommunicator(handler_class(), scope)
        await communicator.send_input({"type": "http.request", "body": b""})
        await communicator.send_input({"type": "websocket.bogus"})

        with pytest.raises(
            AssertionError, match=r"after request body: websocket\.bogus"
        ):
            await communicator.wait(TIMEOUT)

    async def test_request_state_works_without_the_middleware(self) -> None:
        """Without LifespanStateMiddleware, a view served by the handler still reads request.state."""
        with override_settings(MIDDLEWARE=[]):
            app = LifespanASGIHandler()

        status, body = await get_in_a_lifespan(app, "/sync-state/")

        assert status == 200
        assert "httpx_client" in body["keys"]

    @pytest.mark.parametrize("middleware", [True, False], ids=["middleware", "bare"])
    async def test_server_reusing_one_state_dict_leaks_no_write(
        self, middleware: bool
    ) -> None:
        """A server passing the lifespan's own state dict to every request never shows a view's write to the next request."""
        installed = ["lifespan_di.middleware.LifespanStateMiddleware"] * middleware
        with override_settings(MIDDLEWARE=installed):
            app = LifespanASGIHandler()
        shared: dict[str, Any] = {}
        lifespan = Lifespan(app, shared)
        await lifespan.send("lifespan.startup")
        published = dict(shared)

        first, _ = await http_get(app, "/sync-state/", shared, copy=False)
        second, _ = await http_get(app, "/sync-state/", shared, copy=False)
        after = dict(shared)
        await lifespan.send("lifespan.shutdown")
        await lifespan.finished()

        assert (first, second) == (200, 200)
        assert "scratch" not in after
        assert after == published

    async def test_missing_state_still_serves_resources(self) -> None:
        """With no ``state`` in the scopes, resources start and requests see them through the process snapshot."""
        app = LifespanASGIHandler()
        lifespan = Lifespan(app, state=None)
        await lifespan.send("lifespan.startup")

        status, body = await http_get(app, "/sync-state/")
        await lifespan.send("lifespan.shutdown")

        assert status == 200
        assert "httpx_client" in body["keys"]

    async def test_http_goes_to_django_with_server_state(self) -> None:
        """HTTP scopes go to Django unchanged and views see the server's per-request state copy."""
        app = LifespanASGIHandler()
        state: dict[str, Any] = {}
        lifespan = Lifespan(app, state)
        await lifespan.send("lifespan.startup")

        status, body = await http_get(app, "/async-inject/", state)
        await lifespan.send("lifespan.shutdown")

        assert status == 200
        assert body["client_type"] == "AsyncClient"
        assert body["client"] == body["state_client"] == id(state["httpx_client"])

    async def test_explicit_container_is_used_by_inject(self) -> None:
        """get_asgi_application(container=X) makes inject and get_container() use X while it runs."""
        from tests.project.containers import Container

        other = Container()
        app = get_asgi_application(container=other)
        lifespan = Lifespan(app, {})
        await lifespan.send("lifespan.startup")

        status, body = await http_get(app, "/async-inject/")
        current = get_container()
        client = other.httpx_client()
        await lifespan.send("lifespan.shutdown")

        assert status == 200
        assert current is other
        assert body["client"] == id(client)
        assert RUNTIME.active is None

    async def test_unresolved_view_marker_fails_startup(
        self, recorder: Recorder
    ) -> None:
        """A URLconf view whose marker names no provider of the configured container fails the startup before any resource starts."""
        with override_settings(ROOT_URLCONF="tests.project.broken_urls"):
            lifespan = Lifespan(LifespanASGIHandler(), {})
            message = await lifespan.send("lifespan.startup")
            await lifespan.finished()

        assert message["type"] == "lifespan.startup.failed"
        assert (
            "parameter 'client' of tests.project.broken_urls.typo" in message["message"]
        )
        assert (
            "parameter 'cache' of tests.project.broken_urls.TypoView.get"
            in message["message"]
        )
        assert RUNTIME.active is None


class TestWhatARequestPaysFor:
    @pytest.mark.parametrize("declared", [False, True])
    async def test_a_request_scope_opens_once_a_request_resource_exists(
        self, declared: bool, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Until the process declares a RequestResource, the handler opens no request scope; once one exists, every request has its scope."""
        monkeypatch.setattr(RequestResource, "declared", declared)
        SCOPES_SEEN.clear()
        with override_settings(ROOT_URLCONF=__name__):
            status, _ = await http_get(LifespanASGIHandler(), "/scope/")

        assert status == 200
        assert len(SCOPES_SEEN) == 1
        assert isinstance(SCOPES_SEEN[0], RequestScope) is declared

    @pytest.mark.parametrize(
        ("handler_class", "runs"),
        [(ASGIHandler, True), (LifespanASGIHandler, False)],
        ids=["django", "lifespan_di"],
    )
    async def test_the_middleware_steps_aside_under_the_handler(
        self,
        handler_class: type[ASGIHandler],
        runs: bool,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """LifespanStateMiddleware serves requests under Django's handler, and is left out of LifespanASGIHandler's chain, whose requests still read request.state."""
        calls: list[HttpRequest] = []
        original = LifespanStateMiddleware.__call__

        def counting(self: LifespanStateMiddleware, request: HttpRequest) -> Any:
            calls.append(request)
            return original(self, request)

        monkeypatch.setattr(LifespanStateMiddleware, "__call__", counting)
        app = handler_class()

        status, body = await get_in_a_lifespan(app, "/sync-state/")

        assert status == 200
        assert "httpx_client" in body["keys"]
        assert len(calls) == runs

    async def test_djangos_own_methods_serve_until_a_request_resource_exists(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Until the process declares a RequestResource, requests run Django's send_response and make_view_atomic, with no frame of the handler's; the first request after one exists hooks the closing of request resources in."""
        monkeypatch.setattr(RequestResource, "declared", False)
        handler = LifespanASGIHandler()
        with override_settings(ROOT_URLCONF=__name__):
            await http_get(handler, "/scope/")
            before = (handler.send_response, handler.make_view_atomic)
            monkeypatch.setattr(RequestResource, "declared", True)
            await http_get(handler, "/scope/")
            after = (handler.send_response, handler.make_view_atomic)

        assert [method.__func__ for method in before] == [
            ASGIHandler.send_response,
            ASGIHandler.make_view_atomic,
        ]
        assert [method.__func__ for method in after] == [
            LifespanASGIHandler._send_response_closing,
            LifespanASGIHandler._make_view_atomic_closing,
        ]

    async def test_a_subclass_keeps_its_methods_once_closing_is_hooked(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A subclass's send_response and make_view_atomic run once per request, through super() to Django's, after the handler has hooked the closing of request resources in."""
        calls: list[str] = []

        class Subclass(LifespanASGIHandler):
            async def send_response(self, response: Any, send: Any) -> None:
                calls.append("send_response")
                await super().send_response(response, send)

            def make_view_atomic(self, view: Any) -> Any:
                calls.append("make_view_atomic")
                return super().make_view_atomic(view)

        monkeypatch.setattr(RequestResource, "declared", True)
        handler = Subclass()
        with override_settings(ROOT_URLCONF=__name__):
            statuses = [(await http_get(handler, "/scope/"))[0] for _ in range(2)]

        assert statuses == [200, 200]
        assert handler.send_response.__func__ is Subclass._send_response_closing  # type: ignore[attr-defined]
        assert calls == ["make_view_atomic", "send_response"] * 2

    def test_a_view_is_wrapped_only_once_a_view_resource_exists(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Until the process declares a ViewResource, the hooked make_view_atomic returns Django's own view."""

        def view(request: HttpRequest) -> HttpResponse:
            return HttpResponse()

        handler = LifespanASGIHandler()
        handler._hook_closing()
        monkeypatch.setattr(RequestResource, "views_declared", False)
        unwrapped = handler.make_view_atomic(view)
        monkeypatch.setattr(RequestResource, "views_declared", True)
        wrapped = handler.make_view_atomic(view)

        assert unwrapped is view
        assert wrapped is not view
