"""``LifespanClient``, ``LifespanAsyncClient``: Django's clients, through the ASGI app.

Both keep Django's client API (responses, cookies, ``follow=True``) and replace only
its handler, so that each request goes through the project's ASGI application with
the lifespan state in its scope. ``_share`` lets the pytest fixtures hand one
running lifespan to several clients.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

from asgiref.typing import ASGI3Application
from django.test import AsyncClient, Client

from lifespan_di.core.loop import LoopThread
from lifespan_di.state import State
from lifespan_di.testing._asgi import _Application
from lifespan_di.testing._handlers import _AsyncHandler, _SyncHandler

__all__ = ["LifespanAsyncClient", "LifespanClient"]


class _LifespanClientMixin:
    """What both clients add to Django's: the application and its lifespan."""

    _app: _Application
    _handler_class: type[_AsyncHandler] | type[_SyncHandler]
    handler: Any

    def __init__(
        self,
        enforce_csrf_checks: bool = False,
        raise_request_exception: bool = True,
        *,
        application: ASGI3Application | None = None,
        headers: Mapping[str, str] | None = None,
        query_params: Mapping[str, Any] | None = None,
        **defaults: Any,
    ) -> None:
        super().__init__(  # type: ignore[call-arg]  # Django's Client / AsyncClient
            enforce_csrf_checks,
            raise_request_exception,
            headers=headers,
            query_params=query_params,
            **defaults,
        )
        self._app = _Application(application)
        self.handler = self._handler_class(self._app, enforce_csrf_checks)

    @property
    def application(self) -> ASGI3Application:
        """The ASGI application the requests go through."""
        return self._app.app

    @property
    def state(self) -> State:
        """A copy of the lifespan state, as a request would get it."""
        return self._app.current_state()


class LifespanAsyncClient(_LifespanClientMixin, AsyncClient):
    """Django's ``AsyncClient``, sending each request through the ASGI application.

    ``async with LifespanAsyncClient() as client:`` sends the application
    ``lifespan.startup`` before the block and ``lifespan.shutdown`` after it, on the
    running event loop; every request gets a fresh shallow copy of the lifespan
    state in its scope, so middleware, ``request.state`` and ``inject`` behave as
    under a server. Responses are Django test responses (``json()``, ``client``,
    ``asgi_request``, cookies, ``follow=True``).

    Args:
        application: The ASGI application; by default a ``LifespanASGIHandler`` for
            the configured container. ``response.asgi_request`` is the request the
            view saw only with the default; with another application it is rebuilt
            from the scope, and CSRF checks are enforced as in production.

    Raises:
        StartupError: On entry, if the application answered
            ``lifespan.startup.failed``; its message is included.
        ShutdownError: On exit, if it answered ``lifespan.shutdown.failed``.
    """

    _handler_class = _AsyncHandler

    async def __aenter__(self) -> Self:
        await self._app.startup()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._app.shutdown()


class LifespanClient(_LifespanClientMixin, Client):
    """Django's ``Client``, sending each request through the ASGI application.

    ``with LifespanClient() as client:`` starts an event loop on a private thread,
    runs the application's lifespan startup there, and sends every request through
    the application on that loop, so loop-bound resources (httpx, asyncpg) stay
    usable from one request to the next; sync and async views both work. The
    shutdown runs after the block. Requests outside the block raise.

    Takes the same arguments as ``LifespanAsyncClient``.
    """

    _handler_class = _SyncHandler

    def __enter__(self) -> Self:
        thread = LoopThread(name="lifespan_di test client")
        try:
            thread.run(self._app.startup())
        except BaseException:
            thread.close()
            raise
        self._app.thread = thread
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        thread, self._app.thread = self._app.thread, None
        if thread is None:
            return
        try:
            thread.run(self._app.shutdown())
        finally:
            thread.close()


AnyClient = TypeVar("AnyClient", LifespanClient, LifespanAsyncClient)


def _share(client: AnyClient, owner: LifespanClient | LifespanAsyncClient) -> AnyClient:
    """Make ``client`` send its requests through ``owner``'s running lifespan."""
    handler = client.handler
    assert isinstance(handler, _AsyncHandler | _SyncHandler)
    client._app = handler.app = owner._app
    return client
