"""One opened request resource: how each resource form is opened and closed.

The forms are those ``providers.Resource`` accepts. Generators are driven directly
rather than through ``contextlib.contextmanager``, with the same semantics: this runs
for every request resource of every request, and the wrapper's object costs about
as much as the rest of opening it (benchmarks/request_scope.py).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import AsyncGenerator, Generator
from typing import Any, Literal

from asgiref.sync import async_to_sync

__all__ = [
    "Entry",
    "Kind",
    "aclose_entry",
    "aopen",
    "close_entry",
    "first",
    "open_sync",
    "stop",
]

Kind = Literal[
    "generator", "async generator", "context manager", "async context manager"
]
"""How a resource is closed; ``None`` where there is nothing to close."""

Opening = tuple[Any, "Kind | None", Any]
"""The value, the kind, and the handle closing it (a generator or ``__exit__``)."""

_DID_NOT_YIELD = "generator didn't yield: a resource generator must yield once"

# Guards Entry.waiter; held for a few instructions at a time.
_WAITERS = threading.Lock()


class Entry:
    """One request resource of a scope: its value once ready, and how to close it."""

    __slots__ = (
        "done",
        "error",
        "handle",
        "in_thread",
        "kind",
        "name",
        "value",
        "waiter",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.done = False
        """Whether opening it ended, with a value or an error."""
        self.value: Any = None
        self.error: BaseException | None = None
        self.kind: Kind | None = None
        self.handle: Any = None
        self.in_thread = False
        """Opened in a worker thread (a sync view): closed in that thread too."""
        # Created only when a second use waits for the first one to open it, which
        # is rare: most requests never pay for an Event.
        self.waiter: threading.Event | None = None

    def wait(self) -> None:
        """Block until opening it ended, in another thread or task."""
        with _WAITERS:
            if self.waiter is None:
                self.waiter = threading.Event()
            waiter = self.waiter
        # The opener sets done before it reads waiter, and this side set waiter
        # before it reads done: one of the two always sees the other.
        if not self.done:
            waiter.wait()

    def finish(self) -> None:
        """Mark opening as ended and wake whoever waits for it."""
        self.done = True
        waiter = self.waiter
        if waiter is not None:
            waiter.set()


def open_sync(result: Any, kind: Kind | None) -> Opening:
    """Open a sync form: ``result`` is what the provider's callable returned."""
    if kind == "generator":
        return first(result), kind, result
    if hasattr(result, "__enter__") and hasattr(result, "__exit__"):
        return result.__enter__(), "context manager", result.__exit__
    return result, None, None


async def aopen(result: Any, kind: Kind | None) -> Opening:
    """Open any form, awaiting what needs it, as ``providers.Resource`` does."""
    if kind == "async generator":
        try:
            return await anext(result), kind, result
        except StopAsyncIteration:
            raise RuntimeError(_DID_NOT_YIELD) from None
    if inspect.isawaitable(result):
        result = await result
        if hasattr(result, "__aenter__") and hasattr(result, "__aexit__"):
            return await result.__aenter__(), "async context manager", result.__aexit__
        return open_sync(result, None)
    if (
        kind is None
        and not hasattr(result, "__enter__")
        and hasattr(result, "__aenter__")
        and hasattr(result, "__aexit__")
    ):
        return await result.__aenter__(), "async context manager", result.__aexit__
    return open_sync(result, kind)


def close_entry(entry: Entry, exception: BaseException | None) -> None:
    """Close ``entry`` from sync code; an async form runs on the event loop."""
    if entry.kind == "generator":
        stop(entry.handle, exception)
    elif entry.kind == "context manager":
        entry.handle(*_exc_info(exception))
    else:
        async_to_sync(aclose_entry)(entry, exception)


async def aclose_entry(entry: Entry, exception: BaseException | None) -> None:
    """Close an async form of ``entry``; a sync one is closed in place."""
    if entry.kind == "async generator":
        await _astop(entry.handle, exception)
    elif entry.kind == "async context manager":
        await entry.handle(*_exc_info(exception))
    else:
        close_entry(entry, exception)


def first(generator: Generator[Any, None, None]) -> Any:
    """Run a resource generator up to its ``yield``; return what it yielded."""
    try:
        return next(generator)
    except StopIteration:
        raise RuntimeError(_DID_NOT_YIELD) from None


def stop(
    generator: Generator[Any, None, None], exception: BaseException | None
) -> None:
    """Resume after the ``yield``, or raise ``exception`` there (as contextmanager)."""
    try:
        if exception is None:
            next(generator)
        else:
            generator.throw(exception)
    except StopIteration:
        return
    generator.close()
    msg = "generator didn't stop: a resource generator must yield exactly once"
    raise RuntimeError(msg)


async def _astop(
    generator: AsyncGenerator[Any, None], exception: BaseException | None
) -> None:
    try:
        if exception is None:
            await anext(generator)
        else:
            await generator.athrow(exception)
    except StopAsyncIteration:
        return
    await generator.aclose()
    msg = "generator didn't stop: a resource generator must yield exactly once"
    raise RuntimeError(msg)


def _exc_info(exception: BaseException | None) -> tuple[Any, Any, Any]:
    if exception is None:
        return None, None, None
    return type(exception), exception, exception.__traceback__
