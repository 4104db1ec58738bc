"""The ASGI application: Django's handler plus the ASGI lifespan protocol.

Spec: https://asgi.readthedocs.io/en/latest/specs/lifespan.html. Django's own
``ASGIHandler`` rejects lifespan scopes; this subclass answers them and hands every
other scope to Django, inside a request scope (``lifespan_di.scope``). Its Django
overrides: docs/how-it-works.md ("What lifespan_di relies on"), pinned by tests.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager, suppress
from typing import Any

from asgiref.sync import ThreadSensitiveContext
from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, LifespanScope
from dependency_injector import containers
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponse

from lifespan_di.compat.django_asgi_lifespan import asgi_shutdown, asgi_startup
from lifespan_di.conf import container_configured, get_settings
from lifespan_di.core.lifespan import ContainerLifespan
from lifespan_di.exceptions import ConfigurationError
from lifespan_di.lifespan_answers import (
    Failed,
    describe,
    refusal,
    send_signal,
    shutdown_failed,
    shutdown_logging_errors,
    startup_failed,
)
from lifespan_di.middleware import loading_for_lifespan_handler
from lifespan_di.preflight import prepare_lifespan
from lifespan_di.providers import RequestResource
from lifespan_di.request_threads import RequestThreads
from lifespan_di.scope import CURRENT, RequestScope, record_view_exception
from lifespan_di.state import LifespanASGIRequest
from lifespan_di.view_resources import closing_view_resources

__all__ = ["LifespanASGIHandler"]

logger = logging.getLogger("lifespan_di")


class LifespanASGIHandler(ASGIHandler):
    """Django's ``ASGIHandler`` that runs the container's resources for the lifespan.

    On ``lifespan.startup`` it starts every app-scoped resource of the container
    (ordered, concurrent, rolled back on failure), publishes the state into the
    lifespan scope's ``state`` and records it for the process; on
    ``lifespan.shutdown`` it shuts them down in reverse dependency order. Failures
    are reported with ``lifespan.startup.failed`` / ``lifespan.shutdown.failed``:
    raising would make servers serve on without resources (see the Deploying page).

    Args:
        container: The container to run instead of ``LIFESPAN_DI['CONTAINER']``.
    """

    request_class = LifespanASGIRequest  # request.state, with or without middleware

    def __init__(self, container: containers.Container | None = None) -> None:
        super().__init__()
        self.container = container
        self.lifespan: ContainerLifespan | None = None
        """The lifespan this handler runs; when none runs, the last one it tried."""
        self.startup_error: Exception | None = None
        """Why the last startup failed, if it did (test clients re-raise it)."""
        self.request_threads: RequestThreads | None = None
        """The threads lent to requests (``REQUEST_THREADS``), if the setting asks."""
        self._threads_read = False
        self._closing_hooked = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Answer lifespan scopes; serve HTTP ones as Django does, each in its scope.

        Django's own ``__call__`` is inlined (every frame on a request's stack costs
        it at each resumption): a ``ThreadSensitiveContext``, with the thread lent by
        ``REQUEST_THREADS`` if set, around ``handle()``. Inside it, once a request
        resource exists, the request scope: ``send_response`` closes it after the
        body; it is closed here if the response never was sent (client gone, Django
        raised), and always ended here, so that a task the view left running
        cannot open request resources.
        """
        if scope["type"] == "lifespan":
            await self.handle_lifespan(scope, receive, send)
            return
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)  # Django refuses it
            return
        if not self._threads_read:
            self._read_request_threads()
        threads = self.request_threads
        thread = None if threads is None else threads.lease()
        try:
            async with (
                ThreadSensitiveContext()
                if thread is None
                else ThreadSensitiveContext(executor=thread)
            ):
                if not RequestResource.declared:
                    await self.handle(scope, receive, send)
                    return
                if not self._closing_hooked:
                    self._hook_closing()
                request_scope = RequestScope()
                token = CURRENT.set(request_scope)
                try:
                    await self.handle(scope, receive, send)
                except BaseException as error:
                    await request_scope.aclose(error)
                    raise
                else:
                    if request_scope.open:
                        await request_scope.aclose(request_scope.outcome())
                finally:
                    request_scope.end()
                    CURRENT.reset(token)
        finally:
            if threads is not None and thread is not None:
                threads.release(thread)

    # --- the lifespan protocol ------------------------------------------------------

    async def handle_lifespan(
        self, scope: LifespanScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        """Run one lifespan: startup, wait for shutdown, shutdown.

        Exceptions raised by the server's ``send()`` or ``receive()`` propagate (after
        the started resources are shut down): hypercorn stops only if the
        ``LifespanFailureError`` its ``send()`` raises reaches it.
        """
        message = await receive()
        if message["type"] != "lifespan.startup":
            await send(refusal(message["type"], running=False))
            return
        if not self._threads_read:
            self._read_request_threads()
        try:
            async with self._resources(scope):
                await send({"type": "lifespan.startup.complete"})
                message = await receive()
        except Failed as failure:
            await send(failure.answer)
            if failure.interrupt is not None:
                raise failure.interrupt from None
            return
        finally:
            await self._close_request_threads()
        if message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
        else:
            await send(refusal(message["type"], running=True))

    @asynccontextmanager
    async def _resources(self, scope: LifespanScope) -> AsyncIterator[None]:
        """Run the resources for the block, with the signals around them.

        Our own failures leave as ``Failed``, carrying the answer for the server
        (and a resource's ``KeyboardInterrupt`` or ``SystemExit``, raised once the
        server was told); anything else (the server's ``send()``, a cancellation)
        propagates after the resources were shut down.
        """
        self.startup_error = None
        try:
            lifespan = await prepare_lifespan(self.container)
            if not (self.lifespan and self.lifespan.running):  # never hide that one
                self.lifespan = lifespan
            await lifespan.startup()
        except Exception as error:
            self.startup_error = error
            raise startup_failed(describe(error)) from error
        except (KeyboardInterrupt, SystemExit) as interrupt:
            raise startup_failed(describe(interrupt), interrupt) from interrupt
        try:
            server_state = scope.get("state")
            if server_state is not None:
                lifespan.publish(server_state)
            failure = await send_signal(asgi_startup, type(self), scope)
            if failure is None:
                yield
        except BaseException:
            await shutdown_logging_errors(lifespan)
            raise
        if failure is not None:
            await shutdown_logging_errors(lifespan)
            raise startup_failed(failure)
        failure = await send_signal(asgi_shutdown, type(self), scope)
        try:
            await lifespan.shutdown()
        except (Exception, KeyboardInterrupt, SystemExit) as error:
            described = describe(error)
            message = described if failure is None else f"{failure} {described}"
            stop = None if isinstance(error, Exception) else error
            raise shutdown_failed(message, stop) from error
        if failure is not None:
            raise shutdown_failed(failure)

    def _read_request_threads(self) -> None:
        """Lend requests pooled threads if ``REQUEST_THREADS`` asks: read at a
        lifespan startup or the first request, and again after a shutdown."""
        self._threads_read = True
        if container_configured():
            with suppress(ConfigurationError):  # reported by checks and the startup
                size = get_settings().request_threads
                if size is not None:
                    self.request_threads = RequestThreads(size)

    async def _close_request_threads(self) -> None:
        """Close the pooled threads' database connections, in each; end the threads."""
        threads, self.request_threads = self.request_threads, None
        self._threads_read = False
        if threads is not None:
            await threads.aclose()

    # --- HTTP requests, each in its request scope -----------------------------------

    def load_middleware(self, is_async: bool = False) -> None:
        """Load ``MIDDLEWARE``; ``LifespanStateMiddleware`` steps aside: this handler
        does its work (``request.state``, the request scope, the view's exception)."""
        with loading_for_lifespan_handler():
            super().load_middleware(is_async)

    def _hook_closing(self) -> None:
        """Close request resources in Django's request path, from now on.

        Run once the process declares a request resource: this handler's
        ``send_response`` and ``make_view_atomic`` become the methods below, which
        call the class's own. Installed on the instance rather than overridden on the
        class, so that a project without request resources runs Django's methods
        with no frame of ours on every request (docs/benchmarks.md).
        """
        self.send_response = self._send_response_closing  # type: ignore[method-assign]
        self.make_view_atomic = self._make_view_atomic_closing  # type: ignore[method-assign]
        self._closing_hooked = True

    def _send_response_closing(
        self, response: Any, send: Any
    ) -> Coroutine[Any, Any, None]:
        """Send the response, streamed body included, then close request resources.

        The class's coroutine as it is when nothing closes after the body.
        """
        request_scope = CURRENT.get()
        if request_scope is None or not request_scope.closes_after(response):
            return type(self).send_response(self, response, send)
        return self._send_response_then_close(response, send, request_scope)

    async def _send_response_then_close(
        self, response: Any, send: Any, request_scope: RequestScope
    ) -> None:
        async def send_and_track(message: Any) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                request_scope.response_complete = True
            await send(message)

        try:
            await type(self).send_response(self, response, send_and_track)
        except BaseException as error:
            await request_scope.aclose(request_scope.outcome(error))
            raise
        await request_scope.after_response(response)

    async def listen_for_disconnect(self, receive: Any) -> None:
        """Wait for ``http.disconnect``; after a complete response, let teardowns end.

        Servers answer ``receive()`` with ``http.disconnect`` as soon as the last
        body message is sent, and Django's ``handle`` then cancels the sending of
        the response, which is where the request resources are being closed: a
        teardown cut half-way could leave a transaction open. Django's own method,
        with that wait, inlined rather than wrapped: every request ends through it.
        """
        message = await receive()
        if message["type"] == "http.disconnect":
            request_scope = CURRENT.get()
            if request_scope is not None and request_scope.response_complete:
                await request_scope.wait_closed()
            raise RequestAborted()
        msg = f"Invalid ASGI message after request body: {message['type']}"
        raise AssertionError(msg)  # Django's assert, which handle() expects

    def _make_view_atomic_closing(self, view: Any) -> Any:
        """Close ``ViewResource`` instances as the view returns, inside its atomic."""
        if RequestResource.views_declared:
            view = closing_view_resources(view)
        return type(self).make_view_atomic(self, view)

    def process_exception_by_middleware(
        self, exception: Exception, request: HttpRequest
    ) -> HttpResponse:
        """Record the view's exception for the request resources' teardowns."""
        record_view_exception(exception)
        return super().process_exception_by_middleware(exception, request)
