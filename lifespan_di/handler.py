"""The ASGI application: Django's handler plus the ASGI lifespan protocol.

Spec: https://asgi.readthedocs.io/en/latest/specs/lifespan.html. Django's own
``ASGIHandler`` rejects lifespan scopes (FACTS.md §2); this subclass answers them
and hands every other scope to Django unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from typing import Any

import django
from asgiref.typing import (
    ASGIReceiveCallable,
    ASGISendCallable,
    ASGISendEvent,
    LifespanScope,
)
from dependency_injector import containers
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler
from django.dispatch import Signal
from django.http import HttpRequest, HttpResponse

from lifespan_di.conf import (
    configured_container,
    configured_lifespan,
    container_configured,
)
from lifespan_di.engine import ContainerLifespan
from lifespan_di.exceptions import (
    ConfigurationError,
    InjectionError,
    LifespanDIError,
    ShutdownError,
)
from lifespan_di.health import health_check_problems
from lifespan_di.injection import unresolved_view_markers
from lifespan_di.register import registered_managers
from lifespan_di.scope import RequestScope, current_scope, enter_scope, exit_scope
from lifespan_di.signals import asgi_shutdown, asgi_startup

__all__ = ["LifespanASGIHandler", "get_asgi_application"]

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

    def __init__(self, container: containers.Container | None = None) -> None:
        super().__init__()
        self.container = container
        self.lifespan: ContainerLifespan | None = None
        """The lifespan started by the last ``lifespan.startup``."""
        self.startup_error: Exception | None = None
        """Why the last startup failed, if it did (test clients re-raise it)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self.handle_lifespan(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def handle(self, scope: Any, receive: Any, send: Any) -> None:
        """Serve one HTTP request inside its own request scope.

        The scope is normally closed by ``send_response`` once the body has been
        sent; it is closed here when the response never was (the client went away
        while the view ran, or Django raised).
        """
        request_scope, token = enter_scope()
        try:
            await super().handle(scope, receive, send)
        except BaseException as error:
            await request_scope.aclose(error)
            raise
        else:
            if request_scope.open:
                await request_scope.aclose(_outcome(request_scope))
        finally:
            exit_scope(token)

    async def send_response(self, response: Any, send: Any) -> None:
        """Send the response, then close the request's resources.

        Streaming and file responses are sent completely before anything closes:
        their body may read from a request resource.
        """
        request_scope = current_scope()
        if request_scope is None:
            await super().send_response(response, send)
            return
        if not request_scope.open and not response.streaming:
            # Nothing to close, and nothing can open while a plain body is sent.
            request_scope.settle()
            await super().send_response(response, send)
            return

        async def send_and_track(message: Any) -> None:
            if message["type"] == "http.response.body" and not message.get(
                "more_body", False
            ):
                request_scope.response_complete = True
            await send(message)

        try:
            await super().send_response(response, send_and_track)
        except asyncio.CancelledError:  # the client disconnected (Django's handle)
            await request_scope.aclose(_outcome(request_scope))
            raise
        except BaseException as error:
            await request_scope.aclose(error)
            raise
        if request_scope.opened_in_threads_only:
            # Django closes the response in the sync view's thread right away: the
            # resources that view opened are closed there, with no extra thread
            # hop, and before request_finished closes the database connections.
            request_scope.defer_to(response)
        else:
            await request_scope.aclose(request_scope.exception)

    async def listen_for_disconnect(self, receive: Any) -> None:
        """Wait for ``http.disconnect``; after a complete response, let teardowns end.

        Servers answer ``receive()`` with ``http.disconnect`` as soon as the last
        body message is sent, and Django's ``handle`` then cancels the task sending
        the response, which is where the request resources are being closed: a
        teardown cut half-way could leave a transaction open.
        """
        try:
            await super().listen_for_disconnect(receive)
        except RequestAborted:
            request_scope = current_scope()
            if request_scope is not None and request_scope.response_complete:
                await request_scope.wait_closed()
            raise

    def process_exception_by_middleware(
        self, exception: Exception, request: HttpRequest
    ) -> HttpResponse:
        """Record the view's exception for the request resources' teardowns."""
        request_scope = current_scope()
        if request_scope is not None:
            request_scope.record_exception(exception)
        return super().process_exception_by_middleware(exception, request)

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
            await send(_refusal(message["type"], running=False))
            return
        self.startup_error = None
        try:
            lifespan = self.lifespan = await self._create_lifespan()
            state = await lifespan.startup()
        except Exception as error:
            self.startup_error = error
            await send({"type": "lifespan.startup.failed", "message": _describe(error)})
            return
        try:
            server_state = scope.get("state")
            if server_state is not None:
                server_state.update(state)
            failure = await _send_signal(asgi_startup, type(self), scope)
            if failure is not None:
                await _shutdown_logging_errors(lifespan)
                await send({"type": "lifespan.startup.failed", "message": failure})
                return
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
        except BaseException:
            await _shutdown_logging_errors(lifespan)
            raise
        failure = await _send_signal(asgi_shutdown, type(self), scope)
        try:
            await lifespan.shutdown()
        except Exception as error:
            described = _describe(error)
            failed = described if failure is None else f"{failure} {described}"
            await send({"type": "lifespan.shutdown.failed", "message": failed})
            return
        if failure is not None:
            await send({"type": "lifespan.shutdown.failed", "message": failure})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
        else:
            await send(_refusal(message["type"], running=True))

    async def _create_lifespan(self) -> ContainerLifespan:
        managers = await registered_managers()
        if self.container is None and container_configured():
            # An explicit container may serve other views than the URLconf's (tests,
            # several applications in one process), so only the configured one is
            # held to them. This also reports the problem before the first request.
            problems = unresolved_view_markers(configured_container())
            if problems:
                raise InjectionError(" ".join(problems))
        # A project may only use the asgi_startup / asgi_shutdown signals.
        signals_only = asgi_startup.has_listeners() or asgi_shutdown.has_listeners()
        lifespan = configured_lifespan(
            self.container, managers, required=not signals_only
        )
        # A readiness probe must not be the first to find a broken HEALTH_CHECKS.
        problems = health_check_problems(lifespan.container)
        if problems:
            raise ConfigurationError(" ".join(problems))
        return lifespan


def get_asgi_application(
    container: containers.Container | None = None,
) -> LifespanASGIHandler:
    """Set up Django and return the ASGI application, as Django's own function does.

    Use it in ``asgi.py`` instead of ``django.core.asgi.get_asgi_application``:

    ```python
    from lifespan_di import get_asgi_application
    application = get_asgi_application()
    ```

    Args:
        container: Run this container instead of ``LIFESPAN_DI['CONTAINER']``;
            ``inject`` and ``get_container()`` use it while its lifespan runs.
    """
    django.setup(set_prefix=False)
    return LifespanASGIHandler(container=container)


def _outcome(request_scope: RequestScope) -> BaseException | None:
    """What the teardowns receive when Django cancelled the response's task."""
    if request_scope.response_complete:  # the server has the whole response
        return request_scope.exception
    return RequestAborted(
        "The client disconnected before the response was sent completely."
    )


def _refusal(received: str, *, running: bool) -> ASGISendEvent:
    """Answer a message the lifespan protocol does not allow at this point."""
    if received == "lifespan.shutdown":
        return {
            "type": "lifespan.shutdown.failed",
            "message": (
                "Received 'lifespan.shutdown' before 'lifespan.startup': no resources "
                "were started, so none were shut down."
            ),
        }
    if received == "lifespan.startup" and running:
        return {
            "type": "lifespan.startup.failed",
            "message": (
                "Received a second 'lifespan.startup' while the resources were "
                "running: they have been shut down. A server must send startup once "
                "per lifespan."
            ),
        }
    if running:
        return {
            "type": "lifespan.shutdown.failed",
            "message": (
                f"Received an unexpected lifespan message {received!r} while "
                "waiting for "
                "'lifespan.shutdown': the resources have been shut down."
            ),
        }
    return {
        "type": "lifespan.startup.failed",
        "message": (
            f"Received an unexpected lifespan message {received!r} while waiting for "
            "'lifespan.startup': no resources were started."
        ),
    }


def _describe(error: Exception) -> str:
    if isinstance(error, ShutdownError):
        return error.message
    if isinstance(error, ConfigurationError):
        logger.error("%s", error)  # the engine logs its own errors; this one is ours
        return str(error)
    if isinstance(error, LifespanDIError):
        return str(error)
    # Not one of ours: a bug or an unexpected failure; the traceback is the message.
    logger.error("Lifespan failed unexpectedly.", exc_info=error)
    return "".join(traceback.format_exception(error))


async def _send_signal(
    signal: Signal, sender: type[LifespanASGIHandler], scope: LifespanScope
) -> str | None:
    """Send a lifespan signal to its receivers; describe the failure, if any."""
    try:
        await signal.asend(sender=sender, scope=scope)
    except Exception as error:
        name = "asgi_startup" if signal is asgi_startup else "asgi_shutdown"
        logger.exception("A receiver of %s raised.", name)
        return f"A receiver of the {name} signal raised {error!r}."
    return None


async def _shutdown_logging_errors(lifespan: ContainerLifespan) -> None:
    try:
        await lifespan.shutdown()
    except Exception:
        logger.exception("Shutting down %s after a server error failed.", lifespan.name)
