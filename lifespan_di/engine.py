"""Start and stop a container's app-scoped resources: ordered, concurrent, atomic.

dependency-injector's ``init_resources()`` / ``shutdown_resources()`` leak on failure,
stop at the first teardown error and close indirect dependencies in random order
(FACTS.md §3), so this module drives each ``providers.Resource`` itself, through the
provider's own ``init()`` / ``shutdown()`` so that every caller of the provider sees
the same started value.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from time import perf_counter
from types import TracebackType
from typing import Any, Literal

from dependency_injector import containers, providers

from lifespan_di.exceptions import ConfigurationError, ShutdownError, StartupError
from lifespan_di.graph import (
    ResourceGraph,
    ResourceNode,
    build_graph,
    container_name,
    named_providers,
)
from lifespan_di.providers import RequestResource
from lifespan_di.runtime import RUNTIME

__all__ = [
    "LIFESPAN_STATE_KEY",
    "ContainerLifespan",
    "ManagerFactory",
    "ResourceRecord",
    "container_lifespan",
    "valid_timeout",
]

logger = logging.getLogger("lifespan_di")

LIFESPAN_STATE_KEY = "lifespan_di:lifespan"
"""State key of the marker that says a lifespan_di lifespan ran; its value is the
``ContainerLifespan``. A ``:`` never occurs in a provider path, so it cannot collide."""

ManagerFactory = Callable[[], AbstractAsyncContextManager[Mapping[str, Any]]]
"""A callable returning an async context manager that yields state values, such as an
``@asynccontextmanager`` function (django-asgi-lifespan's ``ManagerFactory``)."""

Status = Literal[
    "pending",
    "starting",
    "started",
    "failed",
    "cancelled",
    "stopping",
    "stopped",
    "stop failed",
]


@dataclass
class ResourceRecord:
    """What happened to one resource during a lifespan (for logs and reports)."""

    path: str
    dependencies: tuple[str, ...]
    status: Status = "pending"
    start_seconds: float | None = None
    stop_seconds: float | None = None
    error: BaseException | None = None


class ContainerLifespan:
    """Start a container's app-scoped resources, then shut them down.

    Use it through ``container_lifespan()`` as an async context manager, or call
    ``startup()`` and ``shutdown()`` yourself. One instance runs once; the same
    container can be started again with a new instance after shutdown.
    """

    def __init__(
        self,
        container: containers.Container | None,
        *,
        startup_timeout: float | None = 30.0,
        shutdown_timeout: float | None = 30.0,
        managers: Sequence[ManagerFactory] = (),
    ) -> None:
        _check_timeout("startup_timeout", startup_timeout)
        _check_timeout("shutdown_timeout", shutdown_timeout)
        self.name = (
            "lifespan managers" if container is None else container_name(container)
        )
        # Without a container (only registered managers), an empty one keeps the
        # rest of the engine, and the process registry, uniform.
        self.container = (
            containers.DynamicContainer() if container is None else container
        )
        self.managers = tuple(managers)
        self.startup_timeout = startup_timeout
        self.shutdown_timeout = shutdown_timeout
        self.state: dict[str, Any] = {}
        """Started values by provider name, plus the ``LIFESPAN_STATE_KEY`` marker."""
        self.records: dict[str, ResourceRecord] = {}
        self.request_resources: dict[str, RequestResource[Any]] = {}
        """The container's request resources by provider name, for ``request.state``."""
        self._phase: Literal["new", "starting", "running", "stopping", "stopped"] = (
            "new"
        )
        self._graph: ResourceGraph | None = None
        self._started: list[ResourceNode] = []
        self._targets: dict[ResourceNode, providers.Provider[Any]] = {}
        self._threads: dict[ResourceNode, asyncio.Future[Any]] = {}
        self._values: dict[ResourceNode, Any] = {}

    @property
    def running(self) -> bool:
        """Whether startup completed and shutdown has not begun."""
        return self._phase == "running"

    def started_value(self, provider: providers.Provider[Any], default: Any) -> Any:
        """Return the value ``provider`` started with in this lifespan, or ``default``.

        ``default`` also when the lifespan is not running: its values are closed.
        """
        if self._phase != "running":
            return default
        for node, value in self._values.items():
            if node.provider is provider:
                return value
        return default

    async def __aenter__(self) -> dict[str, Any]:
        return await self.startup()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.shutdown()

    async def startup(self) -> dict[str, Any]:
        """Start every resource after the ones it depends on; return the state.

        Raises:
            StartupError: A resource raised or ``startup_timeout`` passed; every
                resource that had started was shut down first.
            AlreadyRunningError: This container's lifespan is already running.
        """
        if self._phase != "new":
            msg = (
                f"Cannot start {self.name!r} again with the same ContainerLifespan: "
                "create a new one with container_lifespan()."
            )
            raise RuntimeError(msg)
        RUNTIME.claim(self)
        self._phase = "starting"
        began = perf_counter()
        try:
            self._graph = graph = build_graph(self.container)
            graph.nodes.extend(manager_nodes(self.managers))
            self.records = {
                node.path: ResourceRecord(
                    node.path, tuple(dep.path for dep in node.dependencies)
                )
                for node in graph.nodes
            }
            _reset_async_mode(graph)
            self.request_resources = {
                name: provider
                for name, provider in named_providers(self.container)
                if isinstance(provider, RequestResource)
            }
            await self._start_all(graph)
            try:
                self._publish()
            except _PublishError as error:
                raise await self._unpublishable(error) from None
        except BaseException:
            self._phase = "stopped"
            _forget_closed_values(self._graph)
            RUNTIME.release(self)
            raise
        self.state[LIFESPAN_STATE_KEY] = self
        self._phase = "running"
        RUNTIME.activate(self)
        logger.info(
            "Started %d resources of %s in %.1f ms.",
            len(self._started),
            self.name,
            (perf_counter() - began) * 1000,
        )
        return self.state

    async def shutdown(self) -> None:
        """Shut down every started resource before the ones it depends on.

        Every teardown is attempted, each bounded by ``shutdown_timeout``. Calling
        it on a lifespan that is not running does nothing.

        Raises:
            ShutdownError: One or more teardowns raised or timed out.
        """
        if self._phase != "running":
            return
        self._phase = "stopping"
        RUNTIME.deactivate(self)
        began = perf_counter()
        try:
            _, errors = await self._stop_all(list(reversed(self._started)))
        finally:
            self._phase = "stopped"
            _forget_closed_values(self._graph)
            RUNTIME.release(self)
        if errors:
            failed = ", ".join(f"{node.path!r} ({error!r})" for node, error in errors)
            msg = (
                f"Cannot shut down {self.name} cleanly: {len(errors)} of "
                f"{len(self.records)} resources failed to stop: {failed}. "
                "Every other resource was shut down."
            )
            group = ShutdownError(msg, [error for _, error in errors])
            group.resources = tuple(node.path for node, _ in errors)
            raise group
        logger.info(
            "Stopped %d resources of %s in %.1f ms.",
            len(self._started),
            self.name,
            (perf_counter() - began) * 1000,
        )

    def _publish(self) -> None:
        """Fill the state; a key yielded by two sources fails the startup."""
        owners: dict[str, ResourceNode] = {}
        for node in self._started:
            value = self._values[node]
            if node.merges_state:
                if not isinstance(value, Mapping):
                    msg = (
                        f"Cannot use {node.path}: it yielded {type(value).__name__}, "
                        "not a mapping of state values. Yield a dict."
                    )
                    raise _PublishError(msg, node)
                items = list(value.items())
            else:
                items = [(name, value) for name in node.names]
            for key, item in items:
                if key in owners:
                    msg = (
                        f"Cannot publish the state key {key!r} of {node.path}: "
                        f"{owners[key].path} publishes it too. Rename one of them."
                    )
                    raise _PublishError(msg, node)
                owners[key] = node
                self.state[key] = item

    async def _unpublishable(self, error: _PublishError) -> StartupError:
        """Shut down everything started, and describe why the state was refused."""
        ended, stop_errors = await self._stop_all(list(reversed(self._started)))
        stopped = [node.path for node in ended]
        msg = f"{error} The started resources were shut down: {', '.join(stopped)}."
        for node, stop_error in stop_errors:
            msg += f" Shutting down {node.path!r} failed too: {stop_error!r}."
        logger.error("%s", msg)
        return StartupError(msg, resource=error.node.path, rolled_back=stopped)

    async def _start_all(self, graph: ResourceGraph) -> None:
        started = {node: asyncio.Event() for node in graph.nodes}

        async def start_after_dependencies(node: ResourceNode) -> None:
            for dependency in node.dependencies:
                await started[dependency].wait()
            await self._start_one(node)
            started[node].set()

        tasks = {
            asyncio.create_task(
                start_after_dependencies(node), name=f"start {node.path}"
            ): node
            for node in graph.nodes
        }
        loop = asyncio.get_running_loop()
        deadline = (
            None if self.startup_timeout is None else loop.time() + self.startup_timeout
        )
        pending = set(tasks)
        try:
            while pending:
                timeout = None if deadline is None else max(0.0, deadline - loop.time())
                done, pending = await asyncio.wait(
                    pending, timeout=timeout, return_when=asyncio.FIRST_EXCEPTION
                )
                # Reported in declaration order, whatever order the tasks ended in.
                failed = sorted(
                    (task for task in done if task.exception() is not None),
                    key=lambda task: graph.nodes.index(tasks[task]),
                )
                if failed:
                    errors = {tasks[task]: task.exception() for task in failed}
                    await self._roll_back(tasks, failed=errors)
                if not done:
                    timed_out = self._starting_nodes(tasks) or [
                        tasks[task] for task in pending
                    ]
                    await self._roll_back(tasks, failed=dict.fromkeys(timed_out))
        except asyncio.CancelledError:
            stopped = await self._roll_back(tasks, failed=None)
            logger.warning(
                "Startup of %s was cancelled; resources shut down: %s.",
                self.name,
                ", ".join(stopped) or "none",
            )
            raise

    async def _start_one(self, node: ResourceNode) -> None:
        record = self.records[node.path]
        record.status = "starting"
        began = perf_counter()
        target = _effective(node.provider)
        self._targets[node] = target
        if isinstance(target, providers.Resource) and _starts_in_thread(target):
            context = contextvars.copy_context()
            future = asyncio.get_running_loop().run_in_executor(
                None, context.run, target.init
            )
            self._threads[node] = future
            # Shielded: a thread cannot be cancelled, so rollback waits for it instead.
            value = await asyncio.shield(future)
        else:
            value = (
                target.init() if isinstance(target, providers.Resource) else target()
            )
            if inspect.isawaitable(value):
                value = await value
        self._values[node] = value
        # From now on every caller, sync or async, gets the started value itself
        # instead of a Future (FACTS.md §3).
        node.provider.disable_async_mode()
        target.disable_async_mode()
        self._started.append(node)
        record.status = "started"
        record.start_seconds = perf_counter() - began
        logger.info(
            "Started resource %s in %.1f ms.", node.path, record.start_seconds * 1000
        )

    def _starting_nodes(
        self, tasks: Mapping[asyncio.Task[None], ResourceNode]
    ) -> list[ResourceNode]:
        return [
            node
            for task, node in tasks.items()
            if not task.done() and self.records[node.path].status == "starting"
        ]

    async def _roll_back(
        self,
        tasks: Mapping[asyncio.Task[None], ResourceNode],
        failed: Mapping[ResourceNode, BaseException | None] | None,
    ) -> list[str]:
        """Cancel what is still starting and stop what started; raise StartupError."""
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        leaked = await self._wait_for_threads()
        to_stop = [node for node in self._graph_nodes() if self._needs_stop(node)]
        ordered = sorted(to_stop, key=self._stop_rank)
        ended, stop_errors = await self._stop_all(ordered)
        stopped = [node.path for node in ended]
        for record in self.records.values():
            if record.status == "starting":
                record.status = "cancelled"
        if failed is None:
            return stopped
        for node, error in failed.items():
            record = self.records[node.path]
            record.status = "failed"
            record.error = error
            if error is not None:
                logger.error("Resource %s failed to start.", node.path, exc_info=error)
        raise self._startup_error(failed, stopped, stop_errors, leaked)

    def _startup_error(
        self,
        failed: Mapping[ResourceNode, BaseException | None],
        stopped: list[str],
        stop_errors: list[tuple[ResourceNode, Exception]],
        leaked: list[ResourceNode],
    ) -> StartupError:
        nodes = list(failed)
        first = nodes[0]
        if failed[first] is None:
            names = ", ".join(repr(node.path) for node in nodes)
            noun = "resource" if len(nodes) == 1 else "resources"
            msg = (
                f"Cannot start {noun} {names}: startup did not finish within "
                f"STARTUP_TIMEOUT ({self.startup_timeout} s)."
            )
            cause: BaseException | None = TimeoutError(msg)
        else:
            cause = failed[first]
            msg = f"Cannot start resource {first.path!r}: it raised {cause!r}."
            others = ", ".join(
                f"{node.path!r} ({failed[node]!r})" for node in nodes[1:]
            )
            if others:
                msg += f" At the same time, these failed too: {others}."
        if stopped:
            msg += f" Resources started before it were shut down: {', '.join(stopped)}."
        else:
            msg += " No other resource had started."
        for node, error in stop_errors:
            msg += f" Shutting down {node.path!r} failed too: {error!r}."
        for node in leaked:
            msg += (
                f" {node.path!r} was still starting in a worker thread after "
                f"SHUTDOWN_TIMEOUT ({self.shutdown_timeout} s) and may stay open."
            )
        error = StartupError(msg, resource=first.path, rolled_back=stopped)
        error.__cause__ = cause
        return error

    async def _wait_for_threads(self) -> list[ResourceNode]:
        """Wait (bounded) for starts in worker threads; return those still running."""
        running = {
            future: node for node, future in self._threads.items() if not future.done()
        }
        if not running:
            return []
        await asyncio.wait(running, timeout=self.shutdown_timeout)
        return [node for future, node in running.items() if not future.done()]

    def _graph_nodes(self) -> list[ResourceNode]:
        return self._graph.nodes if self._graph is not None else []

    def _needs_stop(self, node: ResourceNode) -> bool:
        if node in self._started:
            return True
        target = self._targets.get(node)
        return isinstance(target, providers.Resource) and target.initialized

    def _stop_rank(self, node: ResourceNode) -> int:
        # Newest first; a start that finished during rollback counts as newest.
        if node in self._started:
            return len(self._started) - self._started.index(node)
        return 0

    async def _stop_all(
        self, nodes: list[ResourceNode]
    ) -> tuple[list[ResourceNode], list[tuple[ResourceNode, Exception]]]:
        """Stop ``nodes`` (given newest first), each after the resources that use it.

        Returns the nodes in the order their teardown ended, and the failures.
        """
        stopped = {node: asyncio.Event() for node in nodes}
        ended: list[ResourceNode] = []
        errors: list[tuple[ResourceNode, Exception]] = []

        async def stop_after_dependents(node: ResourceNode) -> None:
            try:
                for dependent in node.dependents:
                    if dependent in stopped:
                        await stopped[dependent].wait()
                await self._stop_one(node)
            except Exception as error:
                errors.append((node, error))
            finally:
                ended.append(node)
                stopped[node].set()

        await asyncio.gather(
            *(
                asyncio.create_task(
                    stop_after_dependents(node), name=f"stop {node.path}"
                )
                for node in nodes
            )
        )
        return ended, errors

    async def _stop_one(self, node: ResourceNode) -> None:
        record = self.records[node.path]
        record.status = "stopping"
        began = perf_counter()
        target = self._targets.get(node, node.provider)
        try:
            if isinstance(target, providers.Resource):
                await self._bounded(node, target)
        except Exception as error:
            record.status = "stop failed"
            record.error = error
            error.add_note(f"Raised while shutting down resource {node.path!r}.")
            logger.exception("Resource %s failed to shut down.", node.path)
            raise
        record.status = "stopped"
        record.stop_seconds = perf_counter() - began
        logger.info(
            "Stopped resource %s in %.1f ms.", node.path, record.stop_seconds * 1000
        )

    async def _bounded(
        self, node: ResourceNode, target: providers.Resource[Any]
    ) -> None:
        teardown: Awaitable[Any]
        if _starts_in_thread(target):
            context = contextvars.copy_context()
            future = asyncio.get_running_loop().run_in_executor(
                None, context.run, target.shutdown
            )
            # Shielded: on timeout stop waiting, the thread itself cannot be stopped.
            teardown = asyncio.shield(future)
        else:
            result = target.shutdown()
            if not inspect.isawaitable(result):
                return
            teardown = result
        task = asyncio.ensure_future(teardown)
        try:
            done, _ = await asyncio.wait({task}, timeout=self.shutdown_timeout)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if task in done:
            task.result()
            return
        # Not awaited after cancel: a teardown that ignores cancellation must not
        # hold the others. Its eventual outcome is consumed, not reported twice.
        task.cancel()
        task.add_done_callback(_consume_outcome)
        msg = (
            f"Resource {node.path!r} did not shut down within SHUTDOWN_TIMEOUT "
            f"({self.shutdown_timeout} s)."
        )
        raise TimeoutError(msg)


def container_lifespan(
    container: containers.Container,
    *,
    startup_timeout: float | None = 30.0,
    shutdown_timeout: float | None = 30.0,
) -> ContainerLifespan:
    """Run a container's app-scoped resources for an ``async with`` block.

    On entry every ``providers.Resource`` of the container (nested containers
    included, ``ContextLocalResource`` excluded) starts after the resources it
    depends on, independent ones concurrently; the block receives the state: each
    started value under its provider name (``"db"``, ``"infra.cache"``). If one
    fails to start, the ones already started are shut down, newest first, and
    ``StartupError`` is raised. On exit the resources are shut down in reverse
    dependency order; every teardown is attempted and failures are raised together
    as ``ShutdownError``.

    ``startup_timeout`` bounds the whole startup; ``shutdown_timeout`` bounds each
    resource's teardown. ``None`` means no bound.

    Example:

    ```python
    async with container_lifespan(Container()) as state:
        client = state["httpx_client"]
    ```
    """
    return ContainerLifespan(
        container, startup_timeout=startup_timeout, shutdown_timeout=shutdown_timeout
    )


class _PublishError(Exception):
    def __init__(self, message: str, node: ResourceNode) -> None:
        super().__init__(message)
        self.node = node


def manager_nodes(managers: Sequence[ManagerFactory]) -> list[ResourceNode]:
    """Wrap registered lifespan managers as resources without dependencies."""
    seen: dict[ManagerFactory, int] = {}
    for manager in managers:
        seen[manager] = seen.get(manager, 0) + 1
    twice = [manager for manager, count in seen.items() if count > 1]
    if twice:
        names = ", ".join(_manager_name(manager) for manager in twice)
        msg = (
            f"Cannot start the lifespan managers: {names} is registered more than "
            "once. Register each manager once (AppConfig.ready() may run twice if "
            "you also call it yourself)."
        )
        raise ConfigurationError(msg)
    return [
        ResourceNode(
            path=f"lifespan manager {_manager_name(manager)}",
            names=(),
            provider=providers.Resource(manager),
            merges_state=True,
        )
        for manager in managers
    ]


def _manager_name(manager: ManagerFactory) -> str:
    module = getattr(manager, "__module__", None)
    name = getattr(manager, "__qualname__", None) or repr(manager)
    return f"{module}.{name}" if module else name


def _consume_outcome(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def valid_timeout(value: object) -> bool:
    """Whether ``value`` is a timeout: a positive number of seconds, or None."""
    if value is None:
        return True
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _check_timeout(name: str, value: float | None) -> None:
    if not valid_timeout(value):
        msg = (
            f"Cannot use {name}={value!r}: it must be a positive number of seconds "
            "or None."
        )
        raise ConfigurationError(msg)


def _effective(provider: providers.Provider[Any]) -> providers.Provider[Any]:
    """Follow overrides to the provider that actually produces the value."""
    while (overriding := provider.last_overriding) is not None:
        provider = overriding
    return provider


def _starts_in_thread(resource: providers.Resource[Any]) -> bool:
    """Whether the resource is certainly synchronous, and so may block the loop.

    Generator and context-manager resources (and ``resources.Resource`` subclasses)
    start and stop in a worker thread, so that independent resources start
    concurrently and timeouts stay enforceable. A plain function might return an
    awaitable or a context manager, which dependency-injector can only handle on
    the event loop, so it is called there.
    """
    provides = resource.provides
    if inspect.isclass(provides):
        return hasattr(provides, "__enter__") and not hasattr(provides, "__aenter__")
    return provides is not None and inspect.isgeneratorfunction(
        inspect.unwrap(provides)
    )


def _reset_async_mode(graph: ResourceGraph) -> None:
    for node in graph.nodes:
        node.provider.reset_async_mode()
    for provider in graph.resource_users:
        provider.reset_async_mode()


def _forget_closed_values(graph: ResourceGraph | None) -> None:
    """Drop everything built from the closed resources, so a restart builds it anew."""
    if graph is None:
        return
    for provider in graph.resource_users:
        if isinstance(provider, providers.BaseSingleton):
            provider.reset()
    _reset_async_mode(graph)
