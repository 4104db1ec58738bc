"""Start a graph's resources in dependency order, atomically, and publish their values.

dependency-injector's ``init_resources()`` / ``shutdown_resources()`` leak on failure,
stop at the first teardown error and close indirect dependencies in random order
(see "What lifespan_di relies on" in docs/how-it-works.md), so the engine drives each
``providers.Resource`` itself, through the provider's own ``init()`` / ``shutdown()``
so that every caller of the provider sees the same started value.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from time import perf_counter
from typing import Any

from dependency_injector import providers

from lifespan_di.core.graph import ResourceGraph, ResourceNode
from lifespan_di.core.publishing import Unpublishable, build_state
from lifespan_di.core.report import (
    ResourceRecord,
    publish_failure,
    startup_failure,
)
from lifespan_di.core.shutdown import Stopped, stop_all
from lifespan_di.core.starts import ResourceStart, StartRaised, cancel_starts

__all__ = ["Engine"]

logger = logging.getLogger("lifespan_di")

Tasks = Mapping[asyncio.Task[None], ResourceNode]

ROLLBACK_GRACE = 1.0
"""Seconds a cancelled start may take to end before the rollback goes on without it
(``SHUTDOWN_TIMEOUT`` if that is shorter): docs/configuration.md."""


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
        self._starts: dict[ResourceNode, ResourceStart] = {}
        self._deadline: float | None = None
        self._late: list[ResourceNode] = []
        """Starts that ended after the deadline: they kept the event loop busy."""

    # --- starting -----------------------------------------------------------------

    async def start(self) -> None:
        """Start every resource after the ones it depends on, under the timeout.

        Raises:
            StartupError: A resource raised or ``startup_timeout`` passed; every
                resource that had started was shut down first.
            KeyboardInterrupt, SystemExit: A resource raised it; the startup was
                rolled back first, and the ``StartupError`` is its ``__cause__``.
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
        if self.startup_timeout is not None:
            self._deadline = loop.time() + self.startup_timeout
        order = self.graph.nodes.index
        pending = set(tasks)
        while pending:
            timeout = (
                None
                if self._deadline is None
                else max(0.0, self._deadline - loop.time())
            )
            done, pending = await asyncio.wait(
                pending, timeout=timeout, return_when=asyncio.FIRST_EXCEPTION
            )
            # Reported in declaration order, whatever order the tasks ended in.
            failed = sorted(
                (task for task in done if task.exception() is not None),
                key=lambda task: order(tasks[task]),
            )
            if failed:
                errors = {tasks[task]: StartRaised.unwrap(task) for task in failed}
                await self._roll_back(tasks, failed=errors)
            if self._late or not done:
                # A start that ended after the deadline held the event loop: it is
                # to blame, not the starts that could not run meanwhile.
                timed_out = (
                    self._late
                    or self._starting(tasks)
                    or [tasks[task] for task in pending]
                )
                await self._roll_back(tasks, failed=dict.fromkeys(timed_out))

    async def _start_one(self, node: ResourceNode) -> None:
        record = self.records[node.path]
        record.status = "starting"
        began = perf_counter()
        target = _effective(node.provider)
        self._targets[node] = target
        start = self._starts[node] = ResourceStart(node, target)
        value = await start.run(self.shutdown_timeout)
        if self._deadline is not None and asyncio.get_running_loop().time() > (
            self._deadline
        ):
            self._late.append(node)
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
        abandoned = await cancel_starts(tasks, self._starts, self._grace)
        to_stop = [node for node in self.graph.nodes if self._needs_stop(node)]
        outcome = await self.stop(sorted(to_stop, key=self._stop_rank))
        stopped = [node.path for node in outcome.ended]
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
        failure = startup_failure(
            failed,
            stopped,
            outcome.failures,
            abandoned,
            late=self._late,
            grace=self._grace,
            startup_timeout=self.startup_timeout,
        )
        interrupt = outcome.interrupt or next(
            (
                e
                for e in failed.values()
                if isinstance(e, KeyboardInterrupt | SystemExit)
            ),
            None,
        )
        if interrupt is not None:
            raise interrupt from failure
        raise failure

    @property
    def _grace(self) -> float:
        """How long cancelled starts may take to end: ``ROLLBACK_GRACE`` at most."""
        if self.shutdown_timeout is None:
            return ROLLBACK_GRACE
        return min(ROLLBACK_GRACE, self.shutdown_timeout)

    def _needs_stop(self, node: ResourceNode) -> bool:
        start = self._starts.get(node)
        return start is not None and start.finished

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
        try:
            return build_state(self.started, self.values)
        except Unpublishable as unpublishable:
            refused = unpublishable
        outcome = await self.stop(list(reversed(self.started)))
        ended = [node.path for node in outcome.ended]
        error = publish_failure(refused.reason, refused.node, ended, outcome.failures)
        logger.error("%s", error)
        raise error

    async def stop(self, nodes: list[ResourceNode]) -> Stopped:
        """Stop ``nodes``, given newest first: see ``shutdown.stop_all``."""
        return await stop_all(
            nodes,
            self.records,
            targets=self._targets,
            shutdown_timeout=self.shutdown_timeout,
        )

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
