"""Resources outside a server: scripts, workers, management commands, tests.

``lifespan()`` runs the app-scoped resources for a block, ``request_scope()`` gives a
block its own request resources.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast

from asgiref.sync import iscoroutinefunction
from dependency_injector import containers

from lifespan_di.conf import configured_container, container_configured
from lifespan_di.core.lifespan import ContainerLifespan, running_lifespan
from lifespan_di.core.loop import LoopThread
from lifespan_di.preflight import prepare_lifespan
from lifespan_di.scope import RequestScope, enter_scope, exit_scope, raise_failures
from lifespan_di.state import State

__all__ = ["Lifespan", "lifespan", "request_scope", "with_lifespan"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


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
        engine = await prepare_lifespan(self.container)
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
        """The lifespan of this block's container, if it already runs here."""
        if running_lifespan() is None:
            return None  # and prepare_lifespan() reports a broken setting, if any
        container = self.container
        if container is None and container_configured():
            container = configured_container()
        return None if container is None else running_lifespan(container)

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
