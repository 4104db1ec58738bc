"""Resources outside a server: scripts, workers, management commands, tests.

``lifespan()`` runs the app-scoped resources for a block, ``request_scope()`` gives a
block its own request resources.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast

from asgiref.sync import async_to_sync, iscoroutinefunction
from dependency_injector import containers

from lifespan_di.compat.channels import calling_consumer
from lifespan_di.conf import configured_container, container_configured
from lifespan_di.core.lifespan import ContainerLifespan, lifespan_loop, running_lifespan
from lifespan_di.core.loop import asgiref_loop, run_on, running_loop
from lifespan_di.core.shared import Shared, aenter, aleave, enter, leave, shares
from lifespan_di.exceptions import ConfigurationError, LifespanNotRunningError
from lifespan_di.preflight import prepare_lifespan
from lifespan_di.scope import RequestScope, enter_scope, exit_scope, raise_failures
from lifespan_di.state import State

__all__ = ["Lifespan", "lifespan", "request_scope", "run", "with_lifespan"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class Lifespan:
    """The container's resources for one block of code, as ``with`` or ``async with``.

    Returned by ``lifespan()``; see there.
    """

    def __init__(self, container: containers.Container | None = None) -> None:
        self.container = container
        self._shared: list[tuple[Shared, bool]] = []
        """The shared lifespans this object's blocks joined, and whether each block
        started the lifespan on its own loop; a stack, as one object may be nested."""

    async def __aenter__(self) -> State:
        container = self._container()
        running = self._running(container)
        if running is not None:
            self._shared.append((_NOT_SHARED, False))
            return State(running.state)
        shared, owner = await aenter(container, self._prepare)
        self._shared.append((shared, owner))
        return State(shared.lifespan.state)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        shared, owner = self._shared.pop()
        if shared is not _NOT_SHARED:
            await aleave(shared, owner=owner)

    def __enter__(self) -> State:
        container = self._container()
        running = self._running(container)
        if running is not None:
            self._shared.append((_NOT_SHARED, False))
            return State(running.state)
        shared = enter(container, self._prepare)
        self._shared.append((shared, False))
        return State(shared.lifespan.state)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        shared, _ = self._shared.pop()
        if shared is not _NOT_SHARED:
            leave(shared)

    def run(self, awaitable: Awaitable[T]) -> T:
        """The same as ``lifespan_di.run()``."""
        return run(awaitable)

    async def _prepare(self) -> ContainerLifespan:
        return await prepare_lifespan(self.container)

    def _container(self) -> containers.Container | None:
        if self.container is None and container_configured():
            try:
                return configured_container()
            except ConfigurationError:
                return None  # and prepare_lifespan() reports it
        return self.container

    def _running(
        self, container: containers.Container | None
    ) -> ContainerLifespan | None:
        """The container's lifespan, if one that no block shares runs here.

        A server's, a test client's: the block uses it and leaves it running.
        """
        running = None if container is None else running_lifespan(container)
        if running is None or shares(running):
            return None
        return running


_NOT_SHARED: Any = object()


def run(awaitable: Awaitable[T]) -> T:
    """Run a coroutine on the event loop that owns the resources; return its result.

    For sync code inside a ``with lifespan()`` block, a nested one, a
    ``@with_lifespan`` function, a ``LifespanCommand``, a Celery task or a sync view
    under a server: loop-bound resources (``httpx.AsyncClient``, asyncpg,
    ``redis.asyncio``) work only on the loop they were started on. The coroutine
    runs in a copy of the caller's context, so it sees the caller's request scope.
    Safe to call from many threads at once; the coroutines run concurrently on that
    loop.

    ```python
    with lifespan():
        page = lifespan_di.run(fetch_page())  # fetch_page uses an injected client
    ```

    Raises:
        LifespanNotRunningError: No lifespan runs in this process.
        RuntimeError: Called on that loop itself, where it would wait forever:
            ``await`` instead.
    """
    loop = lifespan_loop()
    problem: BaseException | None = None
    if loop is None or loop.is_closed():
        what = "lifespan_di.run()"
        problem = LifespanNotRunningError.accessing(what, calling_consumer())
    elif running_loop() is loop:
        problem = RuntimeError(
            "Cannot wait for a coroutine on the event loop that runs it: this code "
            "runs on the lifespan's loop. Await the coroutine instead."
        )
    if problem is not None:
        if inspect.iscoroutine(awaitable):
            awaitable.close()  # never awaited: close it rather than warn
        raise problem
    assert loop is not None
    if asgiref_loop() is loop:
        # A sync view: asgiref's way keeps its thread-sensitive calls on this thread.
        return async_to_sync(_awaited)(awaitable)
    return run_on(loop, awaitable, context=contextvars.copy_context())


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


def lifespan(container: containers.Container | None = None) -> Lifespan:
    """Start the container's resources for a block of code, and shut them down after.

    For scripts, Celery workers, management commands and tests: the same ordering,
    rollback and timeouts as under a server. While the block runs, ``inject``,
    ``get_container()`` and ``request.state`` use it.

    Blocks share one lifespan per container: the first block starts it, blocks
    entered meanwhile (in other threads, nested, or in tasks of the same event loop)
    join it, and the last one to leave shuts it down. If a lifespan that no block
    started runs (a server's), the block uses it and leaves it running.

    Async code:

    ```python
    async with lifespan() as state:
        client = state.httpx_client
    ```

    Sync code gets resolved values; the resources live on a private event loop
    thread, on which ``lifespan_di.run()`` executes coroutines:

    ```python
    with lifespan() as state:
        counter = state["counter"]
    ```

    Args:
        container: The container to run; by default ``get_container()``'s.

    Raises:
        StartupError: A resource failed to start; the others were shut down. Every
            block that waited for that startup raises it.
        ShutdownError: One or more resources failed to shut down (in the last
            block to leave).
        RuntimeError: An ``async with`` block on another event loop than the one
            the running lifespan's resources belong to.
    """
    return Lifespan(container)


def with_lifespan(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` inside ``lifespan()``, so injected code works in it.

    Decorate a sync management command's ``handle()`` or a script's ``main()``;
    sync and async functions are both supported (for an async command body, use
    ``LifespanCommand``; for Celery tasks, ``lifespan_di.celery.install()``, which
    starts the resources once per worker process rather than per call). Concurrent
    calls share one lifespan:

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
