"""The request scope: the request resources of one request, from opening to closing.

This module owns a request scope's whole life; ``LifespanASGIHandler`` and
``LifespanStateMiddleware`` only call it. The handler opens a scope for each HTTP
request and closes it once the response has been sent completely: a middleware
``finally`` runs before a streaming body is produced (see "What lifespan_di relies on"
in docs/how-it-works.md). Where the handler does not serve the request (WSGI,
Django's test clients), the middleware opens it and closes it when the response is
returned, or, for a streamed response, when Django closes it. A ``ViewResource``
closes earlier, as the view returns (``end_view``; ``lifespan_di.view_resources``).

Django runs the view and sends the response in a child task, and sync views in a
worker thread: both copy the context, so the scope is one mutable object shared
through a ContextVar rather than a ContextVar per resource (which is why
``providers.ContextLocalResource`` cannot be closed by the handler).

Longer than most modules, on purpose: opening, deferring and closing share the
scope's state (the close loop, the hand-over to Django and the wait for it), and
spread over several modules they drifted apart before.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
)
from contextvars import ContextVar, Token
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.core.exceptions import RequestAborted
from django.http import HttpResponseBase, StreamingHttpResponse

from lifespan_di.compat.django import close_with_response
from lifespan_di.core import forms
from lifespan_di.core.loop import call_from_sync, cancelling, running_loop
from lifespan_di.entry import Entry
from lifespan_di.exceptions import RequestScopeError

__all__ = [
    "RequestScope",
    "aclose_entries",
    "close_entries",
    "current_scope",
    "enter_scope",
    "exit_scope",
    "raise_failures",
    "record_view_exception",
]

logger = logging.getLogger("lifespan_di")

T = TypeVar("T")


class RequestScope:
    """The request resources of one request (or one ``request_scope()`` block).

    Resources are closed in reverse order of creation. Each teardown receives the
    exception the view raised, or ``None`` on success; a teardown that raises is
    logged with the resource's name and does not stop the others.
    """

    __slots__ = (
        "_closed",
        "_entries",
        "_opened",
        "_settled",
        "_waiter",
        "exception",
        "response_complete",
        "unit",
        "view_returned",
    )

    def __init__(self, unit: str = "request") -> None:
        self.unit = unit
        """What the scope lasts for, as messages name it: a consumer's "message"."""
        self.exception: BaseException | None = None
        """The first exception the view raised, passed to every teardown."""
        self.response_complete = False
        """Whether the last message of the response went to the server."""
        self.view_returned = False
        """Whether the view has returned: its ``ViewResource`` instances are closed."""
        self._entries: dict[object, Entry] = {}
        self._opened: list[Entry] = []
        self._closed = False
        self._settled = False
        """True once every teardown has ended, or closing was handed to Django."""
        self._waiter: asyncio.Future[None] | None = None

    # --- opening --------------------------------------------------------------------

    def get(self, key: object) -> Entry | None:
        """Return the entry for ``key``, if a use in this scope created it."""
        return self._entries.get(key)

    def claim(self, key: object, name: str) -> tuple[Entry, bool]:
        """Return the entry for ``key`` and whether the caller must create it."""
        if self._closed:
            msg = (
                f"Cannot open the request resource {name!r}: its {self.unit} has "
                "ended, so nothing would close it. Request resources live as long as "
                f"their {self.unit}; code that outlives it (a task or thread it "
                "started) must open its own scope: `with lifespan_di.request_scope():` "
                "(or `async with`)."
            )
            raise RequestScopeError(msg)
        entry = Entry(name)
        # dict.setdefault is atomic: of two threads, exactly one creates the entry.
        existing = self._entries.setdefault(key, entry)
        return existing, existing is entry

    def opened(
        self, entry: Entry, opening: forms.Opening, *, in_thread: bool, view: bool
    ) -> None:
        """Record that ``entry`` is ready; it closes with the view or the scope."""
        entry.value, entry.kind, entry.handle = opening
        entry.in_thread, entry.view = in_thread, view
        entry.loop = running_loop()
        if entry.kind is not None:
            self._opened.append(entry)
        entry.finish()

    def failed(self, key: object, entry: Entry, error: BaseException) -> None:
        """Record that creating ``entry`` failed; a later use may try again."""
        entry.error = error
        self._entries.pop(key, None)
        entry.finish()

    def end(self) -> None:
        """Refuse every later use: the request is over, whatever it opened.

        A task or thread the view started may outlive the request; what it opened
        now would never be closed, and what the request opened is closed already.
        """
        self._closed = True
        self._entries.clear()

    def end_view(self) -> list[Entry]:
        """Refuse later uses of view resources; return the open ones, oldest first."""
        self.view_returned = True
        if not self._opened:
            return []
        view = [entry for entry in self._opened if entry.view]
        for entry in view:  # one by one: another thread of the request may append
            self._opened.remove(entry)
        return view

    @property
    def open(self) -> bool:
        """Whether some resource of this scope still needs closing."""
        return bool(self._opened)

    # --- the end of a request ---------------------------------------------------------

    def closes_after(self, response: HttpResponseBase) -> bool:
        """Whether closing must wait until ``response`` has been sent.

        Not when nothing is open and the body is not streamed, as nothing can open
        while a plain body is sent: the scope is then done at once.
        """
        if self._opened or response.streaming:
            return True
        self.settle()
        return False

    def outcome(self, error: BaseException | None = None) -> BaseException | None:
        """What the teardowns receive when sending the response ended early.

        ``error`` if sending raised one; when Django cancelled the sending (the
        client disconnected), the view's exception if the server had the whole
        response, and ``RequestAborted`` if not.
        """
        if error is not None and not isinstance(error, asyncio.CancelledError):
            return error
        if self.response_complete:
            return self.exception
        return RequestAborted(
            "The client disconnected before the response was sent completely."
        )

    async def after_response(self, response: HttpResponseBase) -> None:
        """Close the resources once the response has been sent completely.

        When every one was opened in the sync view's thread, Django closes them as
        it closes the response, in that thread and before ``request_finished``
        closes the database connections: no extra thread hop.
        """
        if self._opened and all(entry.in_thread for entry in self._opened):
            self.defer_to(response)
        else:
            await self.aclose(self.exception)

    def finish(self, response: HttpResponseBase) -> None:
        """End a request the ASGI handler did not serve: close now, from sync code.

        A streamed response's resources close when Django closes the response.
        Otherwise the response has not started, so a failing teardown raises
        ``RequestScopeError`` and becomes Django's 500.
        """
        if self._streams(response):
            return
        if self._opened:
            raise_failures(self.close(self.exception))
        self.end()

    async def afinish(self, response: HttpResponseBase) -> None:
        """``finish()`` for async code."""
        if self._streams(response):
            return
        if self._opened:
            raise_failures(await self.aclose(self.exception))
        self.end()

    def _streams(self, response: HttpResponseBase) -> bool:
        if not isinstance(response, StreamingHttpResponse):
            return False
        self.bind(response)
        self.defer_to(response)
        return True

    def record_exception(self, exception: BaseException) -> None:
        """Remember the view's exception for the teardowns (the first one wins)."""
        if self.exception is None:
            self.exception = exception

    def defer_to(self, response: HttpResponseBase) -> None:
        """Close when Django closes ``response``, in the request's sync thread."""
        self.settle()
        close_with_response(response, self._close_deferred)

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

    def settle(self) -> None:
        """Record that nothing is left to close, and wake ``wait_closed()``."""
        self._settled = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            # close() may run in a worker thread: wake the loop from there too.
            waiter.get_loop().call_soon_threadsafe(_release, waiter)

    async def wait_closed(self) -> None:
        """Wait until every resource is closed, or closing was left to Django."""
        if self._settled:
            return
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_future()
        await self._waiter

    # --- closing ------------------------------------------------------------------

    async def aclose(self, exception: BaseException | None = None) -> list[str]:
        """Close every resource, newest first; return those whose teardown raised."""
        return await self._close_all(exception, _close_on_loop)

    def close(self, exception: BaseException | None = None) -> list[str]:
        """Close every resource from sync code, newest first, like ``aclose``.

        Called on a running event loop (Django's ``AsyncClient`` closes responses
        there) with asynchronous resources open, it cannot wait for them: the
        closing then runs as a task on that loop, in the same order, and failures
        are logged only.
        """
        loop = running_loop()
        if loop is not None and any(
            entry.kind in forms.ASYNC_KINDS for entry in self._opened
        ):
            task = loop.create_task(self.aclose(exception))
            _CLOSING.add(task)  # a task nobody references may be collected early
            task.add_done_callback(_CLOSING.discard)
            return []
        return _run_to_end(self._close_all(exception, _close_here))

    async def _close_all(
        self,
        exception: BaseException | None,
        close_one: Callable[[Entry, BaseException | None], Awaitable[None] | None],
    ) -> list[str]:
        self._closed = True
        try:
            return await _close_each(self._opened, exception, close_one)
        finally:
            self.end()
            self.settle()

    def _close_deferred(self) -> None:
        self.close(self.exception)


async def _close_each(
    entries: list[Entry],
    exception: BaseException | None,
    close_one: Callable[[Entry, BaseException | None], Awaitable[None] | None],
) -> list[str]:
    """The one close loop, for sync and async callers (see ``_run_to_end``).

    Closes ``entries`` newest first, emptying the list. Every teardown is attempted,
    whatever the others raise; what one raised is kept as its ``entry.error``. A
    cancellation of the closing task, a ``KeyboardInterrupt`` or a ``SystemExit`` is
    re-raised once all of them were; a ``CancelledError`` raised while the task is
    not being cancelled (``task.cancel(); await task`` in a teardown) is that
    resource's failure.
    """
    failed = []
    aborted: BaseException | None = None
    while entries:
        entry = entries.pop()
        try:
            pending = close_one(entry, exception)
            if pending is not None:
                await pending
        except BaseException as error:
            if error is exception:  # re-raising the view's: no failure
                continue
            if isinstance(error, asyncio.CancelledError) and cancelling():
                aborted = aborted or error
                continue
            logger.exception("Closing the request resource %r failed.", entry.name)
            entry.error = error
            failed.append(entry.name)
            if isinstance(error, KeyboardInterrupt | SystemExit):
                aborted = aborted or error
    if aborted is not None:
        raise aborted
    return failed


async def aclose_entries(
    entries: list[Entry], exception: BaseException | None
) -> list[str]:
    """Close ``entries`` from async code, as ``RequestScope.aclose`` closes its own."""
    return await _close_each(entries, exception, _close_on_loop)


def close_entries(entries: list[Entry], exception: BaseException | None) -> list[str]:
    """Close ``entries`` from sync code off the loop, as ``RequestScope.close``."""
    return _run_to_end(_close_each(entries, exception, _close_here))


def _close_here(entry: Entry, exception: BaseException | None) -> None:
    if entry.kind in forms.ASYNC_KINDS:
        call_from_sync(entry.loop, forms.aclose, entry.kind, entry.handle, exception)
    else:
        forms.close(entry.kind, entry.handle, exception)


def _close_on_loop(
    entry: Entry, exception: BaseException | None
) -> Awaitable[None] | None:
    if entry.in_thread:
        return sync_to_async(forms.close, thread_sensitive=True)(
            entry.kind, entry.handle, exception
        )
    if entry.kind == "generator":  # the common case: no coroutine needed
        forms.stop(entry.handle, exception)
        return None
    return forms.aclose(entry.kind, entry.handle, exception)


def _run_to_end(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that awaits nothing to its end, without an event loop.

    With ``_close_here`` every step of the close loop is synchronous, so the
    coroutine returns on its first step: sync and async callers share one loop.
    """
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    msg = "A synchronous close awaited something."
    raise RuntimeError(msg)


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


def raise_failures(failed: list[str]) -> None:
    """Raise ``RequestScopeError`` naming the resources whose teardown failed."""
    if failed:
        names = ", ".join(repr(name) for name in failed)
        msg = f"Closing the request resources {names} failed; see the log."
        raise RequestScopeError(msg)


# --- the current scope ----------------------------------------------------------------

CURRENT: ContextVar[RequestScope | None] = ContextVar(
    "lifespan_di_request_scope", default=None
)
"""The request scope of the running request; ``current_scope()`` reads it too."""


def current_scope() -> RequestScope | None:
    """Return the request scope of the running request, or None outside requests."""
    return CURRENT.get()


def enter_scope(
    unit: str = "request",
) -> tuple[RequestScope, Token[RequestScope | None]]:
    """Open a new request scope in the current context; ``unit`` names what it lasts."""
    scope = RequestScope(unit)
    return scope, CURRENT.set(scope)


def exit_scope(token: Token[RequestScope | None]) -> None:
    """Restore the scope that was current before ``enter_scope``."""
    CURRENT.reset(token)


def record_view_exception(exception: BaseException) -> None:
    """Remember the exception the view of the current request raised, if any."""
    scope = CURRENT.get()
    if scope is not None:
        scope.record_exception(exception)
