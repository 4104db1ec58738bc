"""Start one app resource where it belongs, and close it if the startup gave up on it.

Sync forms (a plain function, a generator, a sync context manager, a
``resources.Resource``) start in a worker thread, so that they never block the event
loop: a blocking connect does not stall other starts, and ``STARTUP_TIMEOUT`` stays
enforceable. A plain function may turn out to return an awaitable or an async context
manager; dependency-injector can open those only on the event loop, so they are
handed back to it.

A start still running when the rollback's grace ran out is *abandoned*: if it
finishes anyway, the resource is shut down there and then (in its thread, or on the
loop), so that nothing stays open behind a failed startup.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

from dependency_injector import providers

from lifespan_di.core import forms
from lifespan_di.core.graph import ResourceNode
from lifespan_di.core.loop import cancelling, consume_outcome, in_daemon_thread

__all__ = ["Abandoned", "ResourceStart", "StartRaised", "cancel_starts"]

logger = logging.getLogger("lifespan_di")

Progress = Literal["running", "finished", "failed", "abandoned"]


class Abandoned(Exception):
    """The start finished after the startup gave up on it; it was shut down."""


class StartRaised(Exception):
    """A start raised a ``BaseException`` that is not an ``Exception``.

    Carried out of the start's task as an ``Exception``: a ``CancelledError`` the
    resource raised itself is its failure, not a cancellation of the startup, and a
    ``KeyboardInterrupt`` or ``SystemExit`` raised out of a task would escape the
    event loop at once, before the rollback.
    """

    def __init__(self, raised: BaseException) -> None:
        super().__init__(raised)
        self.raised = raised

    @staticmethod
    def unwrap(task: asyncio.Task[Any]) -> BaseException:
        """What the finished, failed ``task`` raised, as the resource raised it."""
        error = task.exception()
        assert error is not None
        return error.raised if isinstance(error, StartRaised) else error


class ResourceStart:
    """The start of one resource through ``target``, the provider that produces it.

    ``progress`` is guarded by a lock, because a worker thread and the event loop
    race to decide who shuts down a start that ends while the startup gives up on it.
    """

    def __init__(self, node: ResourceNode, target: providers.Provider[Any]) -> None:
        self.node = node
        self.target = target
        self.progress: Progress = "running"
        self.thread: asyncio.Future[Any] | None = None
        """The worker thread's outcome, for a sync form."""
        self._lock = threading.Lock()

    @property
    def finished(self) -> bool:
        """Whether the resource is open, and so must be shut down by the startup."""
        return self.progress == "finished"

    async def run(self, shutdown_timeout: float | None) -> Any:
        """Start the resource and return its value.

        Raises:
            Abandoned: The startup gave up on it meanwhile; it has been shut down.
            StartRaised: It raised a ``BaseException`` that is not an ``Exception``
                (other than a cancellation of the startup).
        """
        try:
            return await self._run(shutdown_timeout)
        except asyncio.CancelledError as error:
            if cancelling():
                raise
            raise StartRaised(error) from None
        except (KeyboardInterrupt, SystemExit) as error:
            raise StartRaised(error) from None

    async def _run(self, shutdown_timeout: float | None) -> Any:
        target = self.target
        make: Callable[[], Any]
        if not isinstance(target, providers.Resource):
            make = target
        elif forms.starts_in_thread(target.provides):
            outcome = await self._start_in_thread(target)
            if not isinstance(outcome, _NeedsLoop):
                return outcome  # the thread settled the start
            make = functools.partial(_init_with, target, outcome.result)
        else:
            make = target.init
        try:
            value = make()
            if inspect.isawaitable(value):
                value = await value
        except BaseException:
            # Cancelled just as its start finished, the resource is open all the same.
            if not (isinstance(target, providers.Resource) and target.initialized):
                self.settle("failed")
            elif not self.settle("finished"):
                await _shut_down_late(self.node, target, shutdown_timeout)
            raise
        if self.settle("finished"):
            return value
        await _shut_down_late(self.node, target, shutdown_timeout)
        raise Abandoned(self.node.path)

    def abandon(self) -> bool:
        """Give up on a start still running; return whether it was still running.

        A start given up on shuts its resource down itself if it finishes later.
        """
        with self._lock:
            if self.progress != "running":
                return False
            self.progress = "abandoned"
            return True

    def settle(self, progress: Progress) -> bool:
        """Record how the start ended; return False if it had been abandoned."""
        with self._lock:
            if self.progress == "abandoned":
                return False
            self.progress = progress
            return True

    async def _start_in_thread(self, target: providers.Resource[Any]) -> Any:
        self.thread = in_daemon_thread(
            self._init_off_loop, f"lifespan_di start {self.node.path}"
        )
        # Shielded: a thread cannot be cancelled; the rollback waits for it instead.
        return await asyncio.shield(self.thread)

    def _init_off_loop(self) -> Any:
        """Start the resource in this worker thread, unless its result needs the loop.

        The thread settles the start itself, so that a start the startup gave up on
        meanwhile is shut down here, exactly once.
        """
        target = self.target
        assert isinstance(target, providers.Resource)
        try:
            value = _init_probing(target)
        except BaseException:
            self.settle("failed")
            raise
        if isinstance(value, _NeedsLoop) or self.settle("finished"):
            return value
        _log_late(self.node)
        try:
            target.shutdown()
        except Exception:
            logger.exception(
                "Shutting down %s after its late start failed.", self.node.path
            )
        return None


async def cancel_starts(
    tasks: Mapping[asyncio.Task[None], ResourceNode],
    starts: Mapping[ResourceNode, ResourceStart],
    grace: float,
) -> list[ResourceNode]:
    """Cancel the start tasks, wait ``grace`` seconds for them; return those abandoned.

    A start still running after the grace (a coroutine slow to honour the
    cancellation, a worker thread) is abandoned: it shuts its resource down itself
    if it ever finishes.
    """
    for task in tasks:
        task.cancel()
    threads = [start.thread for start in starts.values() if start.thread is not None]
    running = {future for future in (*tasks, *threads) if not future.done()}
    if running:
        await asyncio.wait(running, timeout=grace)
    abandoned = []
    for task, node in tasks.items():
        if not task.done():
            task.add_done_callback(consume_outcome)
        start = starts.get(node)
        if start is None:
            continue
        thread = start.thread
        running_yet = not task.done() or (thread is not None and not thread.done())
        if running_yet and start.abandon():
            abandoned.append(node)
    return abandoned


class _NeedsLoop(Exception):
    """A plain function returned something only the event loop can open."""

    def __init__(self, result: Any) -> None:
        super().__init__()
        self.result = result


def _init_probing(target: providers.Resource[Any]) -> Any:
    """``target.init()``, cut short where a plain function's result needs the loop."""
    provides = target.provides
    assert provides is not None

    def probe(*args: Any, **kwargs: Any) -> Any:
        result = provides(*args, **kwargs)
        if forms.needs_loop(result):
            raise _NeedsLoop(result)
        return result

    try:
        with _provides(target, probe):
            return target.init()
    except _NeedsLoop as needs_loop:
        return needs_loop


def _init_with(target: providers.Resource[Any], result: Any) -> Any:
    """Hand ``result`` (already made in a thread) to ``target`` to open on the loop.

    dependency-injector keeps a resource's state private: the only way in is
    ``init()``, which calls ``provides`` with the declared arguments.
    """
    args, kwargs = target.args, target.kwargs
    target.clear_args().clear_kwargs()
    try:
        with _provides(target, lambda: result):
            return target.init()
    finally:
        target.set_args(*args).set_kwargs(**kwargs)


@contextmanager
def _provides(target: providers.Resource[Any], provides: Any) -> Iterator[None]:
    """Swap ``target.provides`` for the block (the provider is not in use yet)."""
    original = target.provides
    target.set_provides(provides)
    try:
        yield
    finally:
        target.set_provides(original)


async def _shut_down_late(
    node: ResourceNode, target: providers.Provider[Any], shutdown_timeout: float | None
) -> None:
    _log_late(node)
    try:
        result = target.shutdown() if isinstance(target, providers.Resource) else None
        if inspect.isawaitable(result):
            await asyncio.wait_for(result, shutdown_timeout)
    except Exception:
        logger.exception("Shutting down %s after its late start failed.", node.path)


def _log_late(node: ResourceNode) -> None:
    logger.warning(
        "Resource %s finished starting after the startup had given up on it; "
        "shutting it down.",
        node.path,
    )
