"""Run the resources outside a server: scripts, workers, management commands, tests."""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast

from asgiref.sync import iscoroutinefunction
from dependency_injector import containers

from lifespan_di.conf import (
    configured_container,
    configured_lifespan,
    container_configured,
)
from lifespan_di.engine import ContainerLifespan
from lifespan_di.register import registered_managers
from lifespan_di.runtime import RUNTIME
from lifespan_di.state import State

__all__ = ["Lifespan", "LoopThread", "lifespan", "with_lifespan"]

P = ParamSpec("P")
R = TypeVar("R")
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
        return asyncio.run_coroutine_threadsafe(_awaited(awaitable), self.loop).result()

    def close(self) -> None:
        """Cancel what still runs on the loop, stop it and join the thread."""
        if self.loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(_finish(self.loop), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class Lifespan:
    """The container's resources for one block of code, as ``with`` or ``async with``.

    Returned by ``lifespan()``; see there. ``run()`` runs a coroutine on the event
    loop that owns the resources of a sync block.
    """

    def __init__(self, container: containers.Container | None = None) -> None:
        self.container = container
        self._engine: ContainerLifespan | None = None
        self._loop: LoopThread | None = None

    async def __aenter__(self) -> State:
        running = self._running()
        if running is not None:
            return State(running.state)
        engine = configured_lifespan(self.container, await registered_managers())
        state = await engine.startup()
        self._engine = engine
        return State(state)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.shutdown()

    def __enter__(self) -> State:
        self._loop = LoopThread()
        try:
            return self._loop.run(self.__aenter__())
        except BaseException:
            self._close_loop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if self._loop is not None:
                self._loop.run(self.__aexit__(exc_type, exc, traceback))
        finally:
            self._close_loop()

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` on the loop that owns the resources of this sync block."""
        if self._loop is None:
            if inspect.iscoroutine(awaitable):
                awaitable.close()  # never awaited: close it rather than warn
            msg = "Cannot run a coroutine: enter the block with `with` first."
            raise RuntimeError(msg)
        return self._loop.run(awaitable)

    def _running(self) -> ContainerLifespan | None:
        container = self.container
        if container is None:
            active = RUNTIME.active
            return (
                active if active is not None and self._is_configured(active) else None
            )
        return RUNTIME.running_for(container)

    def _is_configured(self, active: ContainerLifespan) -> bool:
        return container_configured() and active.container is configured_container()

    def _close_loop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.close()


def lifespan(container: containers.Container | None = None) -> Lifespan:
    """Start the container's resources for a block of code, and shut them down after.

    For scripts, Celery workers, management commands and tests: the same ordering,
    rollback and timeouts as under a server. While the block runs, ``inject``,
    ``get_container()`` and ``request.state`` use it. If the container's lifespan is
    already running in this process, the block uses it and leaves it running.

    Async code:

    ```python
    async with lifespan() as state:
        client = state.httpx_client
    ```

    Sync code gets resolved values; the resources live on a private event loop
    thread, on which ``run()`` executes coroutines:

    ```python
    with lifespan() as state:
        counter = state["counter"]
    ```

    Args:
        container: The container to run; by default ``get_container()``'s.

    Raises:
        StartupError: A resource failed to start; the others were shut down.
        ShutdownError: One or more resources failed to shut down.
    """
    return Lifespan(container)


def with_lifespan(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` inside ``lifespan()``, so injected code works in it.

    Decorate a management command's ``handle()``, a Celery task body or a script's
    ``main()``; sync and async functions are both supported:

    ```python
    class Command(BaseCommand):
        @with_lifespan
        def handle(self, *args, **options):
            sync_report()  # an @inject function
    ```
    """
    if iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            async with lifespan():
                return await fn(*args, **kwargs)

        return cast("Callable[P, R]", async_wrapper)

    @functools.wraps(fn)
    def sync_wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with lifespan():
            return fn(*args, **kwargs)

    return sync_wrapper


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


async def _finish(loop: asyncio.AbstractEventLoop) -> None:
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()
