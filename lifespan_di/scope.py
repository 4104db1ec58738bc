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
import contextvars
import logging
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpResponseBase, StreamingHttpResponse

from lifespan_di.entries import Entry, Opening, aclose_entry, close_entry, stop
from lifespan_di.exceptions import RequestScopeError

__all__ = ["RequestScope", "current_scope", "request_scope"]

logger = logging.getLogger("lifespan_di")


class RequestScope:
    """The request resources of one request (or one ``request_scope()`` block).

    Resources are closed in reverse order of creation. Each teardown receives the
    exception the view raised, or ``None`` on success; a teardown that raises is
    logged with the resource's name and does not stop the others.
    """

    # Every request gets a scope and most open no request resource: the attributes
    # are class-level defaults until set, and the containers are made on first use.
    exception: BaseException | None = None
    """The first exception the view raised, passed to every teardown."""
    response_complete = False
    """Whether the last message of the response went to the server."""
    _closed = False
    _settled = False
    """True once every teardown has ended, or closing was handed to Django."""
    _waiter: asyncio.Future[None] | None = None

    @property
    def _entries(self) -> dict[object, Entry]:
        # dict.setdefault is atomic: two threads opening the first resources of a
        # request at once still share one dict.
        entries: dict[object, Entry] = self.__dict__.setdefault("_entry_map", {})
        return entries

    @property
    def _opened(self) -> list[Entry]:
        opened: list[Entry] = self.__dict__.setdefault("_opened_list", [])
        return opened

    def get(self, key: object) -> Entry | None:
        """Return the entry for ``key``, if a use in this scope created it."""
        entries = self.__dict__.get("_entry_map")
        return None if entries is None else entries.get(key)

    def claim(self, key: object, name: str) -> tuple[Entry, bool]:
        """Return the entry for ``key`` and whether the caller must create it."""
        if self._closed:
            msg = (
                f"Cannot open the request resource {name!r}: its request has "
                "finished and its resources were closed. Request resources live as "
                "long as the request that opened them."
            )
            raise RequestScopeError(msg)
        entry = Entry(name)
        # dict.setdefault is atomic: of two threads, exactly one creates the entry.
        existing = self._entries.setdefault(key, entry)
        return existing, existing is entry

    def opened(self, entry: Entry, opening: Opening, *, in_thread: bool) -> None:
        """Record that ``entry`` is ready; it will be closed with the scope."""
        entry.value, entry.kind, entry.handle = opening
        entry.in_thread = in_thread
        if entry.kind is not None:
            self._opened.append(entry)
        entry.finish()

    def failed(self, key: object, entry: Entry, error: BaseException) -> None:
        """Record that creating ``entry`` failed; a later use may try again."""
        entry.error = error
        self._entries.pop(key, None)
        entry.finish()

    def record_exception(self, exception: BaseException) -> None:
        """Remember the view's exception for the teardowns (the first one wins)."""
        if self.exception is None:
            self.exception = exception

    @property
    def open(self) -> bool:
        """Whether some resource of this scope still needs closing."""
        return bool(self.__dict__.get("_opened_list"))

    def settle(self) -> None:
        """Record that nothing is left to close, and wake ``wait_closed()``."""
        self._settled = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            # close() may run in a worker thread: wake the loop from there too.
            waiter.get_loop().call_soon_threadsafe(_release, waiter)

    @property
    def opened_in_threads_only(self) -> bool:
        """Whether every resource left to close was opened in a sync view's thread."""
        return bool(self._opened) and all(entry.in_thread for entry in self._opened)

    def defer_to(self, response: HttpResponseBase) -> None:
        """Close when Django closes ``response``, in the request's sync thread."""
        self.settle()
        response._resource_closers.append(self._close_deferred)  # type: ignore[attr-defined]

    def bind(self, response: StreamingHttpResponse) -> None:
        """Produce each chunk of ``response`` inside this scope.

        A streamed body runs after the middleware has returned, when this scope is
        no longer current: without this, a body opening a request resource would
        find no request.
        """
        context = contextvars.copy_context()
        context.run(CURRENT.set, self)
        content = response.streaming_content
        if response.is_async:
            response.streaming_content = _bound_async(content, context)  # type: ignore[arg-type]
        else:
            response.streaming_content = _bound(content, context)  # type: ignore[arg-type]

    def _close_deferred(self) -> None:
        self.close(self.exception)

    async def aclose(self, exception: BaseException | None = None) -> list[str]:
        """Close every resource, newest first; return those whose teardown raised."""
        self._closed = True
        failed = []
        try:
            while self._opened:
                entry = self._opened.pop()
                try:
                    if entry.in_thread:
                        await sync_to_async(close_entry, thread_sensitive=True)(
                            entry, exception
                        )
                    elif entry.kind == "generator":  # the common case, no coroutine
                        stop(entry.handle, exception)
                    else:
                        await aclose_entry(entry, exception)
                except Exception as error:
                    if _teardown_failed(entry, error, exception):
                        failed.append(entry.name)
        finally:
            self.settle()
        return failed

    async def wait_closed(self) -> None:
        """Wait until every resource is closed, or closing was left to Django."""
        if self._settled:
            return
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_future()
        await self._waiter

    def close(self, exception: BaseException | None = None) -> list[str]:
        """Close every resource from sync code, newest first, like ``aclose``.

        Called on a running event loop (Django's ``AsyncClient`` closes responses
        there) with asynchronous resources open, it cannot wait for them: the
        closing then runs as a task on that loop, in the same order, and failures
        are logged only.
        """
        loop = running_loop()
        if loop is not None and any(entry.kind in _ASYNC for entry in self._opened):
            task = loop.create_task(self.aclose(exception))
            _CLOSING.add(task)  # a task nobody references may be collected early
            task.add_done_callback(_CLOSING.discard)
            return []
        self._closed = True
        failed = []
        try:
            while self._opened:
                entry = self._opened.pop()
                try:
                    close_entry(entry, exception)
                except Exception as error:
                    if _teardown_failed(entry, error, exception):
                        failed.append(entry.name)
        finally:
            self.settle()
        return failed


_ASYNC = ("async generator", "async context manager")
_CLOSING: set[asyncio.Task[list[str]]] = set()


def _bound(content: Iterable[Any], context: contextvars.Context) -> Iterator[Any]:
    iterator = iter(content)
    while True:
        try:
            part = context.run(next, iterator)
        except StopIteration:
            return
        yield part


async def _bound_async(
    content: AsyncIterable[Any], context: contextvars.Context
) -> AsyncIterator[Any]:
    iterator = aiter(content)
    while True:
        try:
            step = anext(iterator)
            part: Any = await asyncio.create_task(step, context=context)  # type: ignore[arg-type]
        except StopAsyncIteration:
            return
        yield part


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _teardown_failed(
    entry: Entry, error: Exception, exception: BaseException | None
) -> bool:
    """Log a teardown's error; re-raising the view's exception is no error."""
    if error is exception:
        return False
    logger.error("Closing the request resource %r failed.", entry.name, exc_info=error)
    return True


CURRENT: ContextVar[RequestScope | None] = ContextVar(
    "lifespan_di_request_scope", default=None
)
"""The request scope of the running request; ``current_scope()`` reads it too."""


def current_scope() -> RequestScope | None:
    """Return the request scope of the running request, or None outside requests."""
    return CURRENT.get()


def enter_scope() -> tuple[RequestScope, Token[RequestScope | None]]:
    """Open a new request scope in the current context."""
    scope = RequestScope()
    return scope, CURRENT.set(scope)


def exit_scope(token: Token[RequestScope | None]) -> None:
    """Restore the scope that was current before ``enter_scope``."""
    CURRENT.reset(token)


class request_scope:  # used like a function: `with request_scope():`
    """Open a request scope outside an HTTP request: tasks, commands, scripts, tests.

    Request resources used inside the block are created on first use and closed when
    it ends, newest first; each teardown receives the exception leaving the block.
    Works as ``with`` and ``async with``:

    ```python
    with request_scope():
        handle_order(order_id)   # an @inject function using a RequestResource
    ```

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
        failed = self._scope.close(exc)
        if exc is None:
            raise_failures(failed)

    async def __aenter__(self) -> RequestScope:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        exit_scope(self._token)
        failed = await self._scope.aclose(exc)
        if exc is None:
            raise_failures(failed)


def raise_failures(failed: list[str]) -> None:
    """Raise ``RequestScopeError`` naming the resources whose teardown failed."""
    if failed:
        names = ", ".join(repr(name) for name in failed)
        msg = f"Closing the request resources {names} failed; see the log."
        raise RequestScopeError(msg)


def running_loop() -> asyncio.AbstractEventLoop | None:
    """Return the event loop running in this thread, if any."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
