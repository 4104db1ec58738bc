"""Start a graph's resources in dependency order, atomically, and publish their values.

dependency-injector's ``init_resources()`` / ``shutdown_resources()`` leak on failure,
stop at the first teardown error and close indirect dependencies in random order
(see "What lifespan_di relies on" in docs/how-it-works.md), so the engine drives each
``providers.Resource`` itself, through the provider's own ``init()`` / ``shutdown()``
so that every caller of the provider sees the same started value.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from collections.abc import Mapping
from time import perf_counter
from typing import Any

from dependency_injector import providers

from lifespan_di.core import forms
from lifespan_di.core.graph import ResourceGraph, ResourceNode
from lifespan_di.core.report import (
    ResourceRecord,
    publish_failure,
    startup_failure,
)
from lifespan_di.core.shutdown import Failures, stop_all

__all__ = ["Engine"]

logger = logging.getLogger("lifespan_di")

Tasks = Mapping[asyncio.Task[None], ResourceNode]


class Engine:
    """Starts the resources of one graph, publishes their values, and stops them.

    ``started`` lists the resources in the order they finished starting, ``values``
    holds what each started with; ``records`` (by path) say what happened to each.
    """

    def __init__(
        self,
        name: str,
        graph: ResourceGraph,
        *,
        startup_timeout: float | None,
        shutdown_timeout: float | None,
    ) -> None:
        self.name = name
        self.graph = graph
        self.startup_timeout = startup_timeout
        self.shutdown_timeout = shutdown_timeout
        self.records = {
            node.path: ResourceRecord(
                node.path, tuple(dep.path for dep in node.dependencies)
            )
            for node in graph.nodes
        }
        self.started: list[ResourceNode] = []
        self.values: dict[ResourceNode, Any] = {}
        self._targets: dict[ResourceNode, providers.Provider[Any]] = {}
        self._threads: dict[ResourceNode, asyncio.Future[Any]] = {}

    # --- starting -----------------------------------------------------------------

    async def start(self) -> None:
        """Start every resource after the ones it depends on, under the timeout.

        Raises:
            StartupError: A resource raised or ``startup_timeout`` passed; every
                resource that had started was shut down first.
        """
        self._reset_async_mode()
        started = {node: asyncio.Event() for node in self.graph.nodes}

        async def start_after_dependencies(node: ResourceNode) -> None:
            for dependency in node.dependencies:
                await started[dependency].wait()
            await self._start_one(node)
            started[node].set()

        tasks = {
            asyncio.create_task(
                start_after_dependencies(node), name=f"start {node.path}"
            ): node
            for node in self.graph.nodes
        }
        try:
            await self._wait_for_starts(tasks)
        except asyncio.CancelledError:
            stopped = await self._roll_back(tasks, failed=None)
            logger.warning(
                "Startup of %s was cancelled; resources shut down: %s.",
                self.name,
                ", ".join(stopped) or "none",
            )
            raise

    async def _wait_for_starts(self, tasks: Tasks) -> None:
        loop = asyncio.get_running_loop()
        deadline = (
            None if self.startup_timeout is None else loop.time() + self.startup_timeout
        )
        order = self.graph.nodes.index
        pending = set(tasks)
        while pending:
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            done, pending = await asyncio.wait(
                pending, timeout=timeout, return_when=asyncio.FIRST_EXCEPTION
            )
            # Reported in declaration order, whatever order the tasks ended in.
            failed = sorted(
                (task for task in done if task.exception() is not None),
                key=lambda task: order(tasks[task]),
            )
            if failed:
                errors = {tasks[task]: task.exception() for task in failed}
                await self._roll_back(tasks, failed=errors)
            if not done:
                timed_out = self._starting(tasks) or [tasks[task] for task in pending]
                await self._roll_back(tasks, failed=dict.fromkeys(timed_out))

    async def _start_one(self, node: ResourceNode) -> None:
        record = self.records[node.path]
        record.status = "starting"
        began = perf_counter()
        target = _effective(node.provider)
        self._targets[node] = target
        if isinstance(target, providers.Resource) and forms.starts_in_thread(
            target.provides
        ):
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
        self.values[node] = value
        # From now on every caller, sync or async, gets the started value itself
        # instead of a Future (docs/how-it-works.md, "What lifespan_di relies on").
        node.provider.disable_async_mode()
        target.disable_async_mode()
        self.started.append(node)
        record.status = "started"
        record.start_seconds = perf_counter() - began
        logger.info(
            "Started resource %s in %.1f ms.", node.path, record.start_seconds * 1000
        )

    def _starting(self, tasks: Tasks) -> list[ResourceNode]:
        return [
            node
            for task, node in tasks.items()
            if not task.done() and self.records[node.path].status == "starting"
        ]

    async def _roll_back(
        self, tasks: Tasks, failed: Mapping[ResourceNode, BaseException | None] | None
    ) -> list[str]:
        """Cancel what is still starting and stop what started; raise StartupError.

        With ``failed`` None (the startup itself was cancelled), return the
        resources shut down instead of raising.
        """
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        leaked = await self._wait_for_threads()
        to_stop = [node for node in self.graph.nodes if self._needs_stop(node)]
        ended, stop_errors = await self.stop(sorted(to_stop, key=self._stop_rank))
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
        raise startup_failure(
            failed,
            stopped,
            stop_errors,
            leaked,
            startup_timeout=self.startup_timeout,
            shutdown_timeout=self.shutdown_timeout,
        )

    async def _wait_for_threads(self) -> list[ResourceNode]:
        """Wait (bounded) for starts in worker threads; return those still running."""
        running = {
            future: node for node, future in self._threads.items() if not future.done()
        }
        if not running:
            return []
        await asyncio.wait(running, timeout=self.shutdown_timeout)
        return [node for future, node in running.items() if not future.done()]

    def _needs_stop(self, node: ResourceNode) -> bool:
        if node in self.started:
            return True
        target = self._targets.get(node)
        return isinstance(target, providers.Resource) and target.initialized

    def _stop_rank(self, node: ResourceNode) -> int:
        # Newest first; a start that finished during rollback counts as newest.
        if node in self.started:
            return len(self.started) - self.started.index(node)
        return 0

    # --- publishing ---------------------------------------------------------------

    async def publish(self) -> dict[str, Any]:
        """Return the state: each started value under its names, managers merged.

        Raises:
            StartupError: A key is published twice, or a lifespan manager yielded
                something other than a mapping; everything started was shut down.
        """
        state: dict[str, Any] = {}
        owners: dict[str, ResourceNode] = {}
        for node in self.started:
            value = self.values[node]
            if node.merges_state and not isinstance(value, Mapping):
                reason = (
                    f"Cannot use {node.path}: it yielded {type(value).__name__}, "
                    "not a mapping of state values. Yield a dict."
                )
                raise await self._refuse(reason, node)
            items = (
                value.items()
                if node.merges_state
                else [(name, value) for name in node.names]
            )
            for key, item in items:
                if key in owners:
                    reason = (
                        f"Cannot publish the state key {key!r} of {node.path}: "
                        f"{owners[key].path} publishes it too. Rename one of them."
                    )
                    raise await self._refuse(reason, node)
                owners[key] = node
                state[key] = item
        return state

    async def stop(
        self, nodes: list[ResourceNode]
    ) -> tuple[list[ResourceNode], Failures]:
        """Stop ``nodes``, given newest first: see ``shutdown.stop_all``."""
        return await stop_all(
            nodes,
            self.records,
            targets=self._targets,
            shutdown_timeout=self.shutdown_timeout,
        )

    async def _refuse(self, reason: str, node: ResourceNode) -> Exception:
        ended, stop_errors = await self.stop(list(reversed(self.started)))
        error = publish_failure(
            reason, node, [node.path for node in ended], stop_errors
        )
        logger.error("%s", error)
        return error

    # --- the providers' own state ---------------------------------------------------

    def forget_closed_values(self) -> None:
        """Drop everything built from the closed resources, so a restart builds anew."""
        for provider in self.graph.resource_users:
            if isinstance(provider, providers.BaseSingleton):
                provider.reset()
        self._reset_async_mode()

    def _reset_async_mode(self) -> None:
        for node in self.graph.nodes:
            node.provider.reset_async_mode()
        for provider in self.graph.resource_users:
            provider.reset_async_mode()


def _effective(provider: providers.Provider[Any]) -> providers.Provider[Any]:
    """Follow overrides to the provider that actually produces the value."""
    while (overriding := provider.last_overriding) is not None:
        provider = overriding
    return provider
