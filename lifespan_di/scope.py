"""The request scope: the request resources opened in one request, closed at its end.

``LifespanASGIHandler`` opens a scope for each HTTP request and closes it once the
response has been sent completely (FACTS.md §2: a middleware ``finally`` runs before a
streaming body is produced). Django runs the view and sends the response in a child
task, and sync views in a worker thread: both copy the context, so the scope is one
mutable object shared through a ContextVar rather than a ContextVar per resource
(which is why ``providers.ContextLocalResource`` cannot be closed by the handler).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any, Literal

from asgiref.sync import async_to_sync, sync_to_async

from lifespan_di.exceptions import RequestScopeError

__all__ = ["RequestScope", "current_scope", "request_scope"]

logger = logging.getLogger("lifespan_di")

Closer = Callable[
    [type[BaseException] | None, BaseException | None, TracebackType | None], Any
]
Where = Literal["loop", "thread", "async"]
"""How a teardown runs: on the event loop, in the thread-sensitive worker thread
(where Django runs sync views, so a sync resource is closed in the thread that
opened it), or awaited."""


class Opened:
    """One request resource: its value once ready, and how to close it."""

    __slots__ = ("close", "error", "event", "name", "ready", "value", "where")

    def __init__(self, name: str) -> None:
        self.name = name
        self.ready = False
        self.value: Any = None
        self.error: BaseException | None = None
        self.close: Closer | None = None
        self.where: Where = "loop"
        # Set when the value is ready or creating it failed: concurrent first uses
        # in one request wait for the one creation instead of creating twice.
        self.event = threading.Event()


class RequestScope:
    """The request resources of one request (or one ``request_scope()`` block).

    Resources are closed in reverse order of creation. Each teardown receives the
    exception the view raised, or ``None`` on success; a teardown that raises is
    logged with the resource's name and does not stop the others.
    """

    __slots__ = ("_closed", "_entries", "_opened", "exception")

    def __init__(self) -> None:
        self._entries: dict[object, Opened] = {}
        self._opened: list[Opened] = []
        self._closed = False
        self.exception: BaseException | None = None
        """The first exception the view raised, passed to every teardown."""

    def get(self, key: object) -> Opened | None:
        """Return the entry for ``key``, if a use in this scope created it."""
        return self._entries.get(key)

    def claim(self, key: object, name: str) -> tuple[Opened, bool]:
        """Return the entry for ``key`` and whether the caller must create it."""
        if self._closed:
            msg = (
                f"Cannot open the request resource {name!r}: its request has "
                "finished and its resources were closed. Request resources live as "
                "long as the request that opened them."
            )
            raise RequestScopeError(msg)
        entry = Opened(name)
        # dict.setdefault is atomic: of two threads, exactly one creates the entry.
        existing = self._entries.setdefault(key, entry)
        return existing, existing is entry

    def opened(
        self, entry: Opened, value: Any, close: Closer | None, where: Where
    ) -> None:
        """Record that ``entry`` is ready; it will be closed with the scope."""
        entry.value, entry.close, entry.where = value, close, where
        entry.ready = True
        if close is not None:
            self._opened.append(entry)
        entry.event.set()

    def failed(self, key: object, entry: Opened, error: BaseException) -> None:
        """Record that creating ``entry`` failed; a later use may try again."""
        entry.error = error
        self._entries.pop(key, None)
        entry.event.set()

    def record_exception(self, exception: BaseException) -> None:
        """Remember the view's exception for the teardowns (the first one wins)."""
        if self.exception is None:
            self.exception = exception

    @property
    def open(self) -> bool:
        """Whether some resource of this scope still needs closing."""
        return bool(self._opened)

    async def aclose(self, exception: BaseException | None = None) -> list[str]:
        """Close every resource, newest first; return those whose teardown raised."""
        self._closed = True
        failed = []
        while self._opened:
            entry = self._opened.pop()
            try:
                await _close(entry, exception)
            except Exception as error:
                if error is not exception:  # a teardown re-raising the view's error
                    _log_failure(entry, error)
                    failed.append(entry.name)
        return failed

    def close(self, exception: BaseException | None = None) -> list[str]:
        """Close every resource from sync code, newest first, like ``aclose``."""
        self._closed = True
        failed = []
        while self._opened:
            entry = self._opened.pop()
            try:
                _close_sync(entry, exception)
            except Exception as error:
                if error is not exception:
                    _log_failure(entry, error)
                    failed.append(entry.name)
        return failed


async def _close(entry: Opened, exception: BaseException | None) -> None:
    assert entry.close is not None
    args = _exc_info(exception)
    if entry.where == "async":
        await entry.close(*args)
    elif entry.where == "thread":
        await sync_to_async(entry.close, thread_sensitive=True)(*args)
    else:
        entry.close(*args)


def _close_sync(entry: Opened, exception: BaseException | None) -> None:
    assert entry.close is not None
    args = _exc_info(exception)
    if entry.where == "async":

        async def close() -> None:
            assert entry.close is not None
            await entry.close(*args)

        async_to_sync(close)()
    else:
        entry.close(*args)


def _exc_info(
    exception: BaseException | None,
) -> tuple[type[BaseException] | None, BaseException | None, TracebackType | None]:
    if exception is None:
        return None, None, None
    return type(exception), exception, exception.__traceback__


def _log_failure(entry: Opened, error: Exception) -> None:
    logger.error("Closing the request resource %r failed.", entry.name, exc_info=error)


_CURRENT: ContextVar[RequestScope | None] = ContextVar(
    "lifespan_di_request_scope", default=None
)


def current_scope() -> RequestScope | None:
    """Return the request scope of the running request, or None outside requests."""
    return _CURRENT.get()


def enter_scope() -> tuple[RequestScope, Token[RequestScope | None]]:
    """Open a new request scope in the current context."""
    scope = RequestScope()
    return scope, _CURRENT.set(scope)


def exit_scope(token: Token[RequestScope | None]) -> None:
    """Restore the scope that was current before ``enter_scope``."""
    _CURRENT.reset(token)


class request_scope:  # used like a function: `with request_scope():`
    """Open a request scope outside an HTTP request: tasks, commands, scripts, tests.

    Request resources used inside the block are created on first use and closed when
    it ends, newest first; each teardown receives the exception leaving the block.
    Works as ``with`` and ``async with``::

        with request_scope():
            handle_order(order_id)   # an @inject function using a RequestResource

    Raises:
        RequestScopeError: On exit, if a teardown raised while no exception was
            leaving the block (otherwise the failure is logged).
    """

    __slots__ = ("_scope", "_token")

    def __enter__(self) -> RequestScope:
        self._scope, self._token = enter_scope()
        return self._scope

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        exit_scope(self._token)
        _raise_failures(self._scope.close(exc), exc)

    async def __aenter__(self) -> RequestScope:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        exit_scope(self._token)
        _raise_failures(await self._scope.aclose(exc), exc)


def _raise_failures(failed: list[str], exc: BaseException | None) -> None:
    if failed and exc is None:
        names = ", ".join(repr(name) for name in failed)
        msg = f"Closing the request resources {names} failed; see the log."
        raise RequestScopeError(msg)


def running_loop() -> asyncio.AbstractEventLoop | None:
    """Return the event loop running in this thread, if any."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
