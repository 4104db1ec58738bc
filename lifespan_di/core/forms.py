"""The forms of a resource: which one a callable is, and how each opens and closes.

The forms are those ``providers.Resource`` accepts: a plain or coroutine function, a
generator or async generator function, a sync or async context manager (a class,
or a function returning one) and ``resources.Resource`` / ``AsyncResource``
subclasses. App resources are opened by their own ``providers.Resource`` (so that
every user of the provider sees the started value) and only classified here; request
resources are opened and closed here.

Generators are driven directly rather than through ``contextlib.contextmanager``,
with the same semantics: a request resource is opened and closed in every request
that uses it, and the wrapper's object costs about as much as the rest of opening it
(``benchmarks/request_scope.py``).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, Literal

from asgiref.sync import async_to_sync, sync_to_async

__all__ = [
    "Kind",
    "Opening",
    "aclose",
    "aopen",
    "aopen_in_thread",
    "close",
    "first",
    "generator_kind",
    "is_async",
    "needs_loop",
    "open_sync",
    "starts_in_thread",
    "stop",
]

Kind = Literal[
    "generator", "async generator", "context manager", "async context manager"
]
"""How an opened resource is closed; ``None`` where there is nothing to close."""

ASYNC_KINDS: tuple[Kind, ...] = ("async generator", "async context manager")

Opening = tuple[Any, "Kind | None", Any]
"""The value, the kind, and the handle closing it (a generator or ``__exit__``)."""

_DID_NOT_YIELD = "generator didn't yield: a resource generator must yield once"
_DID_NOT_STOP = "generator didn't stop: a resource generator must yield exactly once"


# --- classifying ------------------------------------------------------------------


def generator_kind(provides: Any) -> Kind | None:
    """``"generator"`` or ``"async generator"`` for a generator function, else None."""
    if inspect.isasyncgenfunction(provides):
        return "async generator"
    if inspect.isgeneratorfunction(provides):
        return "generator"
    return None


def is_async(provides: Any) -> bool:
    """Whether opening what ``provides`` returns needs an event loop.

    ``@asynccontextmanager`` functions are seen through, to the async generator
    function they wrap.
    """
    function = inspect.unwrap(provides) if callable(provides) else provides
    if inspect.isasyncgenfunction(function) or inspect.iscoroutinefunction(function):
        return True
    return (
        inspect.isclass(provides)
        and hasattr(provides, "__aenter__")
        and not hasattr(provides, "__enter__")
    )


def starts_in_thread(provides: Any) -> bool:
    """Whether an app resource is synchronous, and so may block the loop.

    Sync forms (a plain function, a generator function, a sync context manager, a
    ``resources.Resource`` subclass) start and stop in a worker thread, so that
    independent resources start concurrently and timeouts stay enforceable. A plain
    function whose result turns out to need the loop (``needs_loop``) is opened on
    the loop.
    """
    if provides is None:
        return False
    if inspect.isclass(provides):
        return hasattr(provides, "__enter__") and not hasattr(provides, "__aenter__")
    return not is_async(provides)


def needs_loop(result: Any) -> bool:
    """Whether what a resource's callable returned can only be opened on the loop."""
    return inspect.isawaitable(result) or (
        hasattr(result, "__aenter__") and not hasattr(result, "__enter__")
    )


# --- opening ----------------------------------------------------------------------


def open_sync(result: Any, kind: Kind | None) -> Opening:
    """Open a sync form: ``result`` is what the resource's callable returned."""
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


async def aopen_in_thread(maker: Callable[[], Any], kind: Kind | None) -> Opening:
    """Call ``maker`` and open a sync form in the thread-sensitive worker thread.

    That is the thread Django runs the request's sync code in (its views, its
    ``response.close()``), so ORM code works there. A plain function may turn out to
    return an awaitable or an async context manager: that is opened on the loop.
    """
    opening, pending = await sync_to_async(_open_here, thread_sensitive=True)(
        maker, kind
    )
    if opening is None:
        return await aopen(pending, kind)
    return opening


def _open_here(
    maker: Callable[[], Any], kind: Kind | None
) -> tuple[Opening | None, Any]:
    result = maker()
    if needs_loop(result):
        return None, result
    return open_sync(result, kind), None


def first(generator: Generator[Any, None, None]) -> Any:
    """Run a resource generator up to its ``yield``; return what it yielded."""
    try:
        return next(generator)
    except StopIteration:
        raise RuntimeError(_DID_NOT_YIELD) from None


# --- closing ----------------------------------------------------------------------


def close(kind: Kind | None, handle: Any, exception: BaseException | None) -> None:
    """Close an opened resource from sync code; an async form runs on an event loop.

    ``exception`` is raised where the resource yielded (or passed to ``__exit__``),
    as ``contextlib`` does: the resource sees how the code using it ended.
    """
    if kind == "generator":
        stop(handle, exception)
    elif kind == "context manager":
        handle(*_exc_info(exception))
    elif kind in ASYNC_KINDS:
        async_to_sync(aclose)(kind, handle, exception)


async def aclose(
    kind: Kind | None, handle: Any, exception: BaseException | None
) -> None:
    """Close an opened resource on the event loop; a sync form is closed in place."""
    if kind == "async generator":
        await _astop(handle, exception)
    elif kind == "async context manager":
        await handle(*_exc_info(exception))
    else:
        close(kind, handle, exception)


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
    raise RuntimeError(_DID_NOT_STOP)


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
    raise RuntimeError(_DID_NOT_STOP)


def _exc_info(exception: BaseException | None) -> tuple[Any, Any, Any]:
    if exception is None:
        return None, None, None
    return type(exception), exception, exception.__traceback__
