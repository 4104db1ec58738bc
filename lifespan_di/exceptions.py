"""Every error lifespan_di raises derives from ``LifespanDIError``.

Each also derives from the built-in (or Django) exception it behaves like, so
``except KeyError`` or ``except ImproperlyConfigured`` keep working.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import ImproperlyConfigured

__all__ = [
    "AlreadyRunningError",
    "ConfigurationError",
    "InjectionError",
    "LifespanDIError",
    "LifespanNotRunningError",
    "RequestScopeError",
    "ShutdownError",
    "StartupError",
    "StateKeyError",
]


class LifespanDIError(Exception):
    """Base class of every error raised by lifespan_di."""


class ConfigurationError(LifespanDIError, ImproperlyConfigured):
    """The ``LIFESPAN_DI`` setting, or how the project uses lifespan_di, is wrong."""

    check_id: str | None = None
    """The system check that reports the same problem, if any."""


class LifespanNotRunningError(ConfigurationError):
    """Lifespan state or a resource was needed, but no lifespan runs in this process."""

    @classmethod
    def accessing(
        cls, what: str, consumer: str | None = None
    ) -> LifespanNotRunningError:
        """Build the error for an attempt to use ``what`` without a running lifespan.

        ``consumer``: the Channels consumer that tried, whose likely cause is a
        router that routes no lifespan.
        """
        if consumer is not None:
            msg = (
                f"Cannot use {what} in the Channels consumer {consumer}: no lifespan "
                "is running in this process, so no resources were started. Either the "
                "server sends no lifespan events (daphne, which Channels' runserver "
                "runs, never does: serve with uvicorn, hypercorn or granian), or the "
                "router passes them to nothing (Channels' ProtocolTypeRouter has no "
                "'lifespan' route unless its mapping has one: in asgi.py, import "
                "ProtocolTypeRouter from lifespan_di.channels instead of "
                "channels.routing)."
            )
            return cls(msg)
        # Imported here: this module is imported by every other, and the question
        # is asked only once the error is being built.
        from lifespan_di.installation import runserver_cause

        cause = runserver_cause()
        if cause is not None:
            msg = (
                f"Cannot use {what}: no lifespan is running in this process, so no "
                f"resources were started. {cause} Under another server, serve "
                "lifespan_di.get_asgi_application() with lifespan on (`uvicorn "
                "myproject.asgi:application --lifespan on`); in tests use "
                "lifespan_di.testing.LifespanAsyncClient or LifespanClient; in "
                "scripts and commands wrap the code in `with lifespan_di.lifespan():`."
            )
            return cls(msg)
        msg = (
            f"Cannot use {what}: no lifespan is running in this process, so no "
            "resources were started. Either the server sent no lifespan events "
            "(daphne and Django's WSGI runserver never do; uvicorn needs --lifespan "
            "on), asgi.py does not use lifespan_di.get_asgi_application(), or this "
            "code runs outside a server. Serve with `uvicorn myproject.asgi:"
            "application --lifespan on` (or `manage.py runserver` with "
            "django-lifespan-di[server] installed); in tests use "
            "lifespan_di.testing.LifespanAsyncClient or LifespanClient; in scripts "
            "and commands wrap the code in `with lifespan_di.lifespan():`."
        )
        return cls(msg)


class StateKeyError(LifespanDIError, KeyError, AttributeError):
    """``request.state`` has no value under the requested name.

    It is a ``KeyError`` for item access and an ``AttributeError`` for attribute
    access, so ``getattr(state, name, default)`` and ``state.get(name)`` work.
    """

    def __str__(self) -> str:
        # KeyError.__str__ would wrap the whole sentence in quotes.
        return str(self.args[0])


class InjectionError(ConfigurationError):
    """An ``inject`` marker is misused or names no provider of the container."""


class AlreadyRunningError(LifespanDIError, RuntimeError):
    """The container's lifespan is already running in this process."""


class StartupError(LifespanDIError, RuntimeError):
    """A resource failed to start; the resources started before it were shut down.

    Attributes:
        resource: Container path of the resource that failed (``"Container.db"``).
        rolled_back: Resources that had started and were shut down, in stop order.
    """

    def __init__(self, message: str, resource: str, rolled_back: Sequence[str]) -> None:
        super().__init__(message)
        self.resource = resource
        self.rolled_back = tuple(rolled_back)


class ShutdownError(LifespanDIError, ExceptionGroup[Exception]):
    """One or more resources failed to shut down; every other one was still shut down.

    ``exceptions`` holds what each failing teardown raised (a ``TimeoutError`` for a
    teardown that exceeded ``SHUTDOWN_TIMEOUT``), each with a note naming its
    resource; ``resources`` holds those resources' container paths.
    """

    resources: tuple[str, ...]


class RequestScopeError(LifespanDIError, RuntimeError):
    """A request resource was used outside its request or view, or failed there."""

    @classmethod
    def no_scope(
        cls, name: str, in_thread: bool, consumer: str | None = None
    ) -> RequestScopeError:
        """Build the error for request resource ``name`` used with no request scope.

        ``in_thread``: used outside the main thread, where the likely cause is a
        thread that was not given the request's context. ``consumer``: used by this
        Channels consumer, which needs the mixin that opens a scope per message.
        """
        if consumer is not None:
            short = consumer.rsplit(".", 1)[-1]
            msg = (
                f"Cannot open the request resource {name!r} in the Channels consumer "
                f"{consumer}: it handles its messages outside any request scope. Put "
                "lifespan_di.channels.LifespanConsumerMixin first among its bases "
                f"(`class {short}(LifespanConsumerMixin, AsyncWebsocketConsumer)`): "
                "each message it handles then opens the request resources it uses "
                "and closes them once handled."
            )
            return cls(msg)
        msg = (
            f"Cannot open the request resource {name!r}: no request is being served "
            "in this context. Request resources exist per request: serve the "
            "project with lifespan_di.get_asgi_application() (or add "
            "LifespanStateMiddleware), or wrap other code in "
            "`with lifespan_di.request_scope():`. LifespanASGIHandler opens request "
            "scopes once the process has declared a request resource: declare them "
            "in the container's module, not in one a request imports first."
        )
        if in_thread:
            msg += (
                " If a request is being served, this thread does not carry the "
                "request's context (ThreadPoolExecutor.submit() and threading.Thread "
                "never pass it): use asgiref's sync_to_async() or submit "
                "contextvars.copy_context().run with the function."
            )
        return cls(msg)

    @classmethod
    def async_on_loop(cls, name: str, consumer: str | None = None) -> RequestScopeError:
        """Build the error for async resource ``name`` opened sync on the event loop."""
        short = name.rsplit(".", 1)[-1]
        if consumer is not None:
            msg = (
                f"Cannot open the request resource {name!r} synchronously in the "
                f"Channels consumer {consumer}: it is asynchronous and this handler "
                "runs on the event loop. Use it through @inject on an async handler, "
                f"`await self.state.aget({short!r})`, or `await provider.async_()`."
            )
            return cls(msg)
        msg = (
            f"Cannot open the request resource {name!r} synchronously: it is "
            "asynchronous and this code runs on the event loop. Use it through "
            f"@inject on an async view, `await request.state.aget({short!r})`, or "
            "`await provider.async_()`."
        )
        return cls(msg)

    @classmethod
    def view_returned(cls, name: str) -> RequestScopeError:
        """Build the error for view resource ``name`` used after the view returned."""
        msg = (
            f"Cannot use the view resource {name!r} here: it was closed when the "
            "view returned, before the response was sent, and this code runs after "
            "that (a streamed body, a template rendered after the view, a middleware "
            "or a task the view left running). Use it within the view, or declare it "
            "as RequestResource (closed after the response has been sent) if it must "
            "outlive the view."
        )
        return cls(msg)
