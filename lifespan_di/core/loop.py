"""Event-loop helpers: a loop on a private thread for sync code, and task questions."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from asgiref.sync import SyncToAsync, async_to_sync

__all__ = [
    "LoopThread",
    "asgiref_loop",
    "call_from_sync",
    "cancelling",
    "consume_outcome",
    "in_daemon_thread",
    "run_on",
    "running_loop",
]

T = TypeVar("T")


class LoopThread:
    """An event loop running on a private daemon thread.

    Sync code hands it coroutines with ``run()``; every coroutine runs on the same
    loop, so loop-bound resources (httpx, asyncpg) started there stay usable.
    """

    def __init__(self, name: str = "lifespan_di") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` on the loop and return its result (blocking)."""
        if threading.current_thread() is self._thread:
            msg = (
                "Cannot wait on the lifespan's own loop from inside it: await instead."
            )
            raise RuntimeError(msg)
        return run_on(self.loop, awaitable)

    def close(self) -> None:
        """Cancel what still runs on the loop, stop it and join the thread."""
        if self.loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(_finish(self.loop), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


def run_on(
    loop: asyncio.AbstractEventLoop,
    awaitable: Awaitable[T],
    context: contextvars.Context | None = None,
) -> T:
    """Run ``awaitable`` on ``loop``, running in another thread; wait for its result.

    ``context``: the context to run it in (a copy of the caller's, to carry its
    request scope); by default the loop's own.

    If the wait is interrupted (Ctrl-C reaches the main thread waiting here), the
    coroutine is cancelled and the interrupt raised once it has ended, so that what it
    uses stays open while its own cleanup runs. A second interrupt ends the wait.
    """
    outcome: concurrent.futures.Future[T] = concurrent.futures.Future()
    tasks: list[asyncio.Task[T]] = []

    def create_task() -> None:
        task = loop.create_task(_awaited(awaitable), context=context)
        task.add_done_callback(functools.partial(_settle, outcome))
        tasks.append(task)

    def cancel() -> None:
        # Runs after create_task() if that was scheduled (the loop keeps their
        # order): an interrupt may come just before or just after it was.
        if tasks:
            tasks[0].cancel()
        elif not outcome.done():
            outcome.set_exception(asyncio.CancelledError())

    try:
        loop.call_soon_threadsafe(create_task)
        return outcome.result()
    except BaseException:
        if not outcome.done():
            loop.call_soon_threadsafe(cancel)
            concurrent.futures.wait([outcome])
        raise


def asgiref_loop() -> asyncio.AbstractEventLoop | None:
    """The loop asgiref's ``async_to_sync`` would run a coroutine on from this thread.

    asgiref records it in the threads ``sync_to_async`` runs code in (a sync view,
    sync middleware): ``async_to_sync`` there runs on that loop, in the caller's
    context, and sends thread-sensitive calls back to this thread. asgiref keeps it
    in ``SyncToAsync.threadlocal`` (pinned in tests/test_upstream.py).
    """
    local = SyncToAsync.threadlocal
    if getattr(local, "main_event_loop_pid", None) != os.getpid():
        return None
    loop: asyncio.AbstractEventLoop | None = getattr(local, "main_event_loop", None)
    return loop if loop is not None and loop.is_running() else None


def call_from_sync(
    loop: asyncio.AbstractEventLoop | None,
    fn: Callable[..., Awaitable[T]],
    *args: Any,
) -> T:
    """Run ``fn(*args)`` from sync code running outside any event loop; return it.

    Where asgiref hands this thread its work from a loop (a sync view), asgiref's
    ``async_to_sync`` runs it there. Elsewhere (a Celery task, a thread of a sync
    ``lifespan()`` block) it runs on ``loop``, if that runs, in a copy of the
    caller's context, so that its request scope is the caller's; with no ``loop``,
    on a new loop, as ``async_to_sync`` does.
    """
    if asgiref_loop() is None and loop is not None and loop.is_running():
        return run_on(loop, fn(*args), context=contextvars.copy_context())
    return async_to_sync(fn)(*args)


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


def _settle(outcome: concurrent.futures.Future[T], task: asyncio.Task[T]) -> None:
    if task.cancelled():
        outcome.set_exception(asyncio.CancelledError())
    elif (error := task.exception()) is not None:
        outcome.set_exception(error)
    else:
        outcome.set_result(task.result())


async def _finish(loop: asyncio.AbstractEventLoop) -> None:
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()


def running_loop() -> asyncio.AbstractEventLoop | None:
    """Return the event loop running in this thread, if any."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def cancelling() -> bool:
    """Whether the running task is being cancelled (never, outside a task).

    Tells a real cancellation from a ``CancelledError`` that user code raised on its
    own (the common ``task.cancel(); await task`` slip), which is that code's failure.
    """
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no event loop in this thread
        return False
    return task is not None and task.cancelling() > 0


def consume_outcome(future: asyncio.Future[Any]) -> None:
    """Done callback for a task nobody awaits: its error is reported elsewhere."""
    if not future.cancelled():
        future.exception()


def in_daemon_thread(function: Callable[[], T], name: str) -> asyncio.Future[T]:
    """Run ``function`` in a new daemon thread, in a copy of the current context.

    Returns a future of the running loop. A daemon thread rather than the loop's
    executor: the executor's threads are joined when the interpreter exits, so a
    start or teardown that never returns would keep the server process alive after
    it has given up on it.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def run() -> None:
        try:
            result = context.run(function)
        except BaseException as error:
            _settle_from_thread(loop, future.set_exception, future, error)
        else:
            _settle_from_thread(loop, future.set_result, future, result)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


def _settle_from_thread(
    loop: asyncio.AbstractEventLoop,
    settle: Callable[[Any], None],
    future: asyncio.Future[Any],
    outcome: Any,
) -> None:
    def settle_unless_done() -> None:
        if not future.done():  # cancelled meanwhile: nobody waits any more
            settle(outcome)

    # RuntimeError: the loop has closed, so nobody waits any more.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(settle_unless_done)
