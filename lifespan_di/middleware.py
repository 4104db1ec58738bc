"""``LifespanStateMiddleware``: give every request its own ``request.state``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import MiddlewareNotUsed
from django.http import HttpRequest, HttpResponseBase

from lifespan_di.preflight import require_installed
from lifespan_di.scope import (
    current_scope,
    enter_scope,
    exit_scope,
    record_view_exception,
)
from lifespan_di.state import request_state
from lifespan_di.view_resources import aend_view, end_view

__all__ = ["AsyncMiddleware", "LifespanStateMiddleware", "request_state"]

GetResponse = Callable[[HttpRequest], HttpResponseBase]
AsyncGetResponse = Callable[[HttpRequest], Awaitable[HttpResponseBase]]


class LifespanStateMiddleware:
    """Set ``request.state`` to a copy of the lifespan state.

    Add it to ``MIDDLEWARE``; it works in sync and async middleware chains. Read
    resources as ``request.state["httpx_client"]`` or ``request.state.httpx_client``.
    Assignments stay in the request. When no lifespan ran in this process, reading
    the state raises ``LifespanNotRunningError`` explaining why.

    Where ``LifespanASGIHandler`` does not serve the request (WSGI, Django's own
    test clients), it also opens the request scope that request resources need, and
    closes the ``ViewResource`` instances when the response comes back through it.
    Where it does, the handler does all of this itself, so the middleware steps
    aside when that handler loads it (Django's ``MiddlewareNotUsed``) and costs its
    requests nothing.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse | AsyncGetResponse) -> None:
        # Django builds the middleware when its handler starts: under Django's own
        # runserver or a WSGI server, no lifespan startup would refuse the project.
        require_installed()
        if _LOADING_FOR_HANDLER.get():
            msg = "LifespanASGIHandler gives request.state and the request scope."
            raise MiddlewareNotUsed(msg)
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            # Django sees a coroutine function and skips the thread hop.
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        request.state = request_state(request)  # type: ignore[attr-defined]
        if current_scope() is not None:  # the handler's scope
            return self.get_response(request)
        request_scope, token = enter_scope()
        try:
            response: HttpResponseBase = self.get_response(request)  # type: ignore[assignment]
        finally:
            exit_scope(token)
        failure = end_view(request_scope, request_scope.exception)
        if failure is not None:  # the response is discarded: close everything now
            request_scope.close(failure)
            raise failure
        request_scope.finish(response)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        request.state = request_state(request)  # type: ignore[attr-defined]
        if current_scope() is not None:
            response: HttpResponseBase = await self.get_response(request)  # type: ignore[misc]
            return response
        request_scope, token = enter_scope()
        try:
            response = await self.get_response(request)  # type: ignore[misc]
        finally:
            exit_scope(token)
        failure = await aend_view(request_scope, request_scope.exception)
        if failure is not None:
            await request_scope.aclose(failure)
            raise failure
        await request_scope.afinish(response)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        """Record the view's exception for the request resources' teardowns."""
        record_view_exception(exception)


_LOADING_FOR_HANDLER: ContextVar[bool] = ContextVar(
    "lifespan_di_loading_for_handler", default=False
)


@contextmanager
def loading_for_lifespan_handler() -> Iterator[None]:
    """Tell the ``LifespanStateMiddleware`` built in the block that it is not needed.

    ``LifespanASGIHandler`` loads its middleware inside: its request class gives
    ``request.state``, and it opens the request scope and records the view's
    exception itself.
    """
    token = _LOADING_FOR_HANDLER.set(True)
    try:
        yield
    finally:
        _LOADING_FOR_HANDLER.reset(token)


AsyncMiddleware = LifespanStateMiddleware
"""django-asgi-lifespan's name for the middleware (sync and async capable here)."""
