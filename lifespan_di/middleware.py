"""``LifespanStateMiddleware``: give every request its own ``request.state``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from lifespan_di.engine import LIFESPAN_STATE_KEY
from lifespan_di.exceptions import RequestScopeError
from lifespan_di.runtime import RUNTIME
from lifespan_di.scope import RequestScope, current_scope, enter_scope, exit_scope
from lifespan_di.state import State, UnavailableState

__all__ = ["AsyncMiddleware", "LifespanStateMiddleware", "request_state"]

GetResponse = Callable[[HttpRequest], HttpResponseBase]
AsyncGetResponse = Callable[[HttpRequest], Awaitable[HttpResponseBase]]


class LifespanStateMiddleware:
    """Set ``request.state`` to a copy of the lifespan state.

    Add it to ``MIDDLEWARE``; it works in sync and async middleware chains. Read
    resources as ``request.state["httpx_client"]`` or ``request.state.httpx_client``.
    Assignments stay in the request. When no lifespan ran in this process, reading
    the state raises ``LifespanNotRunningError`` explaining why.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse | AsyncGetResponse) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            # Django sees a coroutine function and skips the thread hop.
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        request.state = request_state(request)  # type: ignore[attr-defined]
        if current_scope() is not None:
            return self.get_response(request)
        # Not served by LifespanASGIHandler (WSGI, Django's test Client): the
        # request resources need a scope, closed when the response is done.
        request_scope, token = enter_scope()
        try:
            response: HttpResponseBase = self.get_response(request)  # type: ignore[assignment]
        finally:
            exit_scope(token)
        if request_scope.open:
            if response.streaming:
                _close_with(response, request_scope)
            else:
                _raise_failures(request_scope.close(request_scope.exception))
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
        if request_scope.open:
            if response.streaming:
                _close_with(response, request_scope)
            else:
                _raise_failures(await request_scope.aclose(request_scope.exception))
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        """Record the view's exception for the request resources' teardowns."""
        request_scope = current_scope()
        if request_scope is not None:
            request_scope.record_exception(exception)


AsyncMiddleware = LifespanStateMiddleware
"""django-asgi-lifespan's name for the middleware (sync and async capable here)."""


def _close_with(response: HttpResponseBase, request_scope: RequestScope) -> None:
    """Close the request resources when Django closes the streamed response."""

    def close() -> None:
        request_scope.close(request_scope.exception)

    # Django calls these from response.close(), after the last chunk was sent.
    response._resource_closers.append(close)  # type: ignore[attr-defined]


def _raise_failures(failed: list[str]) -> None:
    """Turn a failed teardown into Django's 500: the response has not started."""
    if failed:
        names = ", ".join(repr(name) for name in failed)
        msg = f"Closing the request resources {names} failed; see the log."
        raise RequestScopeError(msg)


def request_state(request: HttpRequest) -> State:
    """Return a new ``State`` for ``request``.

    The server's per-request copy of the lifespan state is used when it carries
    lifespan_di's marker. Otherwise (a server without ``state``, such as daphne, or
    Django's test client) the state of the lifespan running in this process is used,
    and when there is none, a state that explains the problem on first read.
    """
    scope = getattr(request, "scope", None)
    if scope is not None:
        server_state = scope.get("state")
        if server_state is not None and LIFESPAN_STATE_KEY in server_state:
            return State(server_state)
    active = RUNTIME.active
    if active is not None:
        return State(active.state)
    return UnavailableState()
