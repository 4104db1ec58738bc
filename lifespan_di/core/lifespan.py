"""``ContainerLifespan``: one run of a container's resources, and which runs here.

ContextVars set during lifespan are not visible in requests on any server, and
granian empties the server's state dict before shutdown (see "What lifespan_di relies
on" in docs/how-it-works.md), so the process keeps its own record of the lifespans
that run in it: ``RUNTIME`` (``core/runtime.py``, empty in a forked child).
``running_lifespan()`` is the one answer to "which lifespan runs
here?"; ``inject`` reads ``RUNTIME.active``, the same answer as a plain attribute,
because it asks on every call.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from time import perf_counter
from typing import Any, Literal

from dependency_injector import containers, providers

from lifespan_di.compat.dependency_injector import forget_started
from lifespan_di.compat.django_asgi_lifespan import ManagerFactory
from lifespan_di.core.class_level import follow_lifespan
from lifespan_di.core.engine import Engine
from lifespan_di.core.graph import build_graph, container_name
from lifespan_di.core.report import ResourceRecord, shutdown_failure
from lifespan_di.core.runtime import Runtime
from lifespan_di.core.timeouts import check_timeout

__all__ = [
    "LIFESPAN_STATE_KEY",
    "RUNTIME",
    "ContainerLifespan",
    "container_lifespan",
    "lifespan_loop",
    "running_lifespan",
]

logger = logging.getLogger("lifespan_di")

LIFESPAN_STATE_KEY = "lifespan_di:lifespan"
"""State key of the marker that says a lifespan_di lifespan ran; its value is the
``ContainerLifespan``. A ``:`` never occurs in a provider path, so it cannot collide."""

Phase = Literal["new", "starting", "running", "stopping", "stopped", "inherited"]


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
        check_timeout("startup_timeout", startup_timeout)
        check_timeout("shutdown_timeout", shutdown_timeout)
        self.name = (
            "lifespan managers" if container is None else container_name(container)
        )
        # Without a container (only registered managers), an empty one keeps the
        # engine, and the process's record of running lifespans, uniform.
        self.container = (
            containers.DynamicContainer() if container is None else container
        )
        self.managers = tuple(managers)
        self.startup_timeout = startup_timeout
        self.shutdown_timeout = shutdown_timeout
        self.state: dict[str, Any] = {}
        """Started values by provider name, plus the ``LIFESPAN_STATE_KEY`` marker."""
        self.records: dict[str, ResourceRecord] = {}
        """What happened to each resource, by its path (``"Container.db"``)."""
        self._phase: Phase = "new"
        self._engine: Engine | None = None
        self.shared_dicts: dict[int, dict[str, Any]] = {id(self.state): self.state}
        """The dicts every user of this lifespan reads, by ``id()``: its state, and
        the servers' it was published into. A request must write to a copy of one
        (``shared_dicts.get(id(data)) is data``). Held here, so no other live object
        can have their ids."""

    @property
    def running(self) -> bool:
        """Whether startup completed and shutdown has not begun."""
        return self._phase == "running"

    def publish(self, target: dict[str, Any]) -> None:
        """Copy the state into ``target``: a server's lifespan-scope ``state`` dict."""
        target.update(self.state)
        self.shared_dicts[id(target)] = target

    def started_value(self, provider: providers.Provider[Any], default: Any) -> Any:
        """Return the value ``provider`` started with in this lifespan, or ``default``.

        ``default`` also when the lifespan is not running: its values are closed.
        """
        if self._phase != "running" or self._engine is None:
            return default
        for node, value in self._engine.values.items():
            if node.provider is provider:
                return value
        return default

    async def __aenter__(self) -> dict[str, Any]:
        return await self.startup()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    async def startup(self) -> dict[str, Any]:
        """Start every resource after the ones it depends on; return the state.

        Raises:
            StartupError: A resource raised or ``startup_timeout`` passed; every
                resource that had started was shut down first.
            KeyboardInterrupt, SystemExit: A resource raised it, after the
                rollback; its ``__cause__`` is the ``StartupError``.
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
            engine = self._engine = Engine(
                self.name,
                build_graph(self.container, self.managers),
                startup_timeout=self.startup_timeout,
                shutdown_timeout=self.shutdown_timeout,
            )
            self.records = engine.records
            await engine.start()
            self.state.update(await engine.publish())
        except BaseException:
            self._stopped()
            raise
        self.state[LIFESPAN_STATE_KEY] = self
        self._phase = "running"
        RUNTIME.activate(self)
        follow_lifespan(self)  # the class's providers answer from this instance
        self._log("Started", began)
        return self.state

    async def shutdown(self) -> None:
        """Shut down every started resource before the ones it depends on.

        Every teardown is attempted, each bounded by ``shutdown_timeout``. Calling
        it on a lifespan that is not running does nothing.

        Raises:
            ShutdownError: One or more teardowns raised or timed out.
            KeyboardInterrupt, SystemExit: A teardown raised it, after every
                other teardown; its ``__cause__`` is the ``ShutdownError``.
        """
        engine = self._engine
        if self._phase != "running" or engine is None:
            return
        self._phase = "stopping"
        RUNTIME.deactivate(self)
        began = perf_counter()
        try:
            outcome = await engine.stop(list(reversed(engine.started)))
        finally:
            self._stopped()
        if outcome.failures:
            failure = shutdown_failure(self.name, outcome.failures, len(self.records))
            if outcome.interrupt is not None:
                raise outcome.interrupt from failure
            raise failure
        self._log("Stopped", began)

    def disown(self) -> None:
        """Give up this lifespan in a forked child: it belongs to the parent.

        It stops handing out values (``running`` is False) and does nothing on
        ``shutdown()``; its providers forget the parent's started values without
        closing them, so that the child can start the container anew.
        """
        self._phase = "inherited"
        engine = self._engine
        if engine is not None:
            for node in engine.graph.nodes:
                for provider in (node.provider, *node.provider.overridden):
                    forget_started(provider)
            engine.forget_closed_values()
        follow_lifespan(self)  # the class's providers stop answering from it

    def _log(self, done: str, began: float) -> None:
        count = len(self._engine.started) if self._engine else 0
        ms = (perf_counter() - began) * 1000
        noun = "resource" if count == 1 else "resources"
        logger.info("%s %d %s of %s in %.1f ms.", done, count, noun, self.name, ms)

    def _stopped(self) -> None:
        self._phase = "stopped"
        if self._engine is not None:
            self._engine.forget_closed_values()
        RUNTIME.release(self)
        follow_lifespan(self)


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


RUNTIME: Runtime[ContainerLifespan] = Runtime()
# A fork child starts with no lifespan running (see core/runtime.py).
os.register_at_fork(after_in_child=RUNTIME.after_fork_in_child)


def lifespan_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop the active lifespan's resources run on, if a lifespan runs."""
    active = RUNTIME.active
    return None if active is None else RUNTIME.loop_of(active)


def running_lifespan(
    container: object | None = None, *, state: Mapping[str, Any] | None = None
) -> ContainerLifespan | None:
    """Return the lifespan running in this process, or None.

    By default the newest one (the server's, in a served process). Its ``records``
    say what happened to each resource; its ``state`` holds the started values.

    Args:
        container: That container's running lifespan instead.
        state: A request's copy of the lifespan state (``scope["state"]``): the
            lifespan that published it, while it runs. A state that no lifespan_di
            lifespan published falls back to the default.
    """
    lifespan = None if state is None else state.get(LIFESPAN_STATE_KEY)
    if not isinstance(lifespan, ContainerLifespan):
        if container is None:
            return RUNTIME.active
        lifespan = RUNTIME.claimed.get(id(container))
    return lifespan if lifespan is not None and lifespan.running else None
