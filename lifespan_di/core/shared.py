"""One lifespan per container, shared by every ``lifespan()`` block that needs it.

The first block starts it; blocks entered meanwhile, in any thread (or in tasks of
the same event loop), join it; the last one to leave shuts it down. A block entered
while it shuts down waits for the end, then starts a new one. So a resource starts
once, never closes under a block still using it, and never runs twice at once.

Loop-bound resources (``httpx.AsyncClient``, asyncpg, ``redis.asyncio``) work only on
the loop they were started on. A sync block starts them on a private ``LoopThread``
that lives until the last block leaves. An async block starts them on its own loop:
it owns them, so when it ends it waits for the blocks that joined it, then shuts
them down there. An async block on another loop cannot use them: it is refused.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future

from lifespan_di.core.lifespan import ContainerLifespan
from lifespan_di.core.loop import LoopThread, consume_outcome, running_loop

__all__ = ["Shared", "aenter", "aleave", "enter", "leave", "shares"]

Prepare = Callable[[], Awaitable[ContainerLifespan]]


class Shared:
    """A container's lifespan and the number of blocks using it."""

    def __init__(
        self, key: object, loop: asyncio.AbstractEventLoop, thread: LoopThread | None
    ) -> None:
        self.key = key
        self.loop = loop
        """The loop that owns the resources."""
        self.thread = thread
        """``loop``'s private thread, when a sync block started the lifespan."""
        self.users = 1
        self.stopping = False
        self.started: Future[ContainerLifespan] = Future()
        self.idle: Future[None] = Future()
        """Set when the last block leaves a lifespan an async block owns."""
        self.stopped: Future[None] = Future()
        self.pid = os.getpid()

    @property
    def lifespan(self) -> ContainerLifespan:
        return self.started.result()


class _Registry:
    """The shared lifespans of this process, by container."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[int, Shared] = {}
        self.inherited: list[Shared] = []

    def after_fork_in_child(self) -> None:
        # The parent's loop threads do not exist here; keep their objects unclosed.
        self.inherited.extend(self.entries.values())
        self.lock = threading.Lock()
        self.entries = {}

    def join(
        self, key: object, loop: asyncio.AbstractEventLoop | None
    ) -> tuple[Shared | None, bool, Future[None] | None]:
        """Join ``key``'s lifespan or create it; or return the shutdown to wait for.

        ``loop`` is the async block's loop, None for a sync block.
        """
        with self.lock:
            shared = self.entries.get(id(key))
            if shared is None:
                if loop is None:
                    thread = LoopThread()
                    shared = Shared(key, thread.loop, thread)
                else:
                    shared = Shared(key, loop, None)
                self.entries[id(key)] = shared
                return shared, True, None
            if shared.stopping:
                return None, False, shared.stopped
            if loop is not None and loop is not shared.loop:
                raise _other_loop(shared)
            shared.users += 1
            return shared, False, None

    def shares(self, lifespan: ContainerLifespan) -> bool:
        return any(
            shared.started.done()
            and shared.started.exception() is None
            and shared.lifespan is lifespan
            for shared in list(self.entries.values())
        )

    def discard(self, shared: Shared) -> None:
        with self.lock:
            if self.entries.get(id(shared.key)) is shared:
                del self.entries[id(shared.key)]

    def release(self, shared: Shared) -> bool:
        """Count one block out; return whether it was the last one."""
        with self.lock:
            shared.users -= 1
            if shared.users > 0:
                return False
            shared.stopping = True
            return True


REGISTRY = _Registry()
os.register_at_fork(after_in_child=REGISTRY.after_fork_in_child)


def shares(lifespan: ContainerLifespan) -> bool:
    """Whether ``lifespan`` was started by a block, and so is shared by blocks."""
    return REGISTRY.shares(lifespan)


# --- sync blocks ----------------------------------------------------------------------


def enter(key: object, prepare: Prepare) -> Shared:
    """Join ``key``'s lifespan from sync code, starting it on a loop thread if needed.

    Raises what the startup raised, in every block that waited for it.
    """
    while True:
        shared, starter, stopping = REGISTRY.join(key, None)
        if shared is not None:
            break
        assert stopping is not None
        _wait(stopping)
    if starter:
        thread = shared.thread
        assert thread is not None
        _settle_start(shared, lambda: thread.run(_start(prepare)))
        return shared
    try:
        _wait(shared.started)
    except BaseException:
        if shared.started.done() and shared.started.exception() is None:
            leave(shared)  # interrupted while joining a lifespan that runs
        raise
    return shared


def leave(shared: Shared) -> None:
    """Leave from sync code; the last block out shuts the lifespan down."""
    if shared.pid != os.getpid() or not REGISTRY.release(shared):
        return  # a fork child's block leaves the parent's lifespan alone
    thread = shared.thread
    if thread is None:  # an async block owns it: it shuts it down
        shared.idle.set_result(None)
        return
    if running_loop() is shared.loop:  # sync code called on the loop thread itself
        task = shared.loop.create_task(_stop_on_own_loop(shared))
        task.add_done_callback(consume_outcome)
        return
    try:
        thread.run(shared.lifespan.shutdown())
    finally:
        REGISTRY.discard(shared)
        thread.close()
        shared.stopped.set_result(None)


def _wait(future: Future[object] | Future[None] | Future[ContainerLifespan]) -> None:
    if not future.done() and running_loop() is not None:
        for shared in list(REGISTRY.entries.values()):
            if shared.loop is running_loop():
                msg = (
                    "Cannot wait in a sync `with lifespan()` block on the event loop "
                    "that runs the lifespan: it would never end. Use `async with "
                    "lifespan()` there."
                )
                raise RuntimeError(msg)
    future.result()


# --- async blocks ---------------------------------------------------------------------


async def aenter(key: object, prepare: Prepare) -> tuple[Shared, bool]:
    """Join ``key``'s lifespan from async code on this loop, or start it here.

    Returns it, and whether this block started it: then it owns the lifespan.

    Raises:
        RuntimeError: It runs on another event loop.
    """
    loop = asyncio.get_running_loop()
    while True:
        shared, starter, stopping = REGISTRY.join(key, loop)
        if shared is not None:
            break
        assert stopping is not None
        await asyncio.shield(asyncio.wrap_future(stopping))
    if starter:
        await _asettle_start(shared, prepare)
        return shared, shared.thread is None
    try:
        await asyncio.shield(asyncio.wrap_future(shared.started))
    except BaseException:
        if shared.started.done() and shared.started.exception() is None:
            await aleave(shared, owner=False)
        raise
    return shared, False


async def aleave(shared: Shared, *, owner: bool) -> None:
    """Leave from async code. The owner waits for the others, then shuts down."""
    if shared.pid != os.getpid():
        return
    last = REGISTRY.release(shared)
    if not owner:
        if last and shared.thread is None:
            shared.idle.set_result(None)
        elif last:
            await _stop_on_own_loop(shared)
        return
    if not last:
        await asyncio.shield(asyncio.wrap_future(shared.idle))
    try:
        await shared.lifespan.shutdown()
    finally:
        REGISTRY.discard(shared)
        shared.stopped.set_result(None)


async def _stop_on_own_loop(shared: Shared) -> None:
    """Shut down a loop thread's lifespan from its own loop; close the thread aside."""
    assert shared.thread is not None
    try:
        await shared.lifespan.shutdown()
    finally:
        REGISTRY.discard(shared)
        threading.Thread(target=shared.thread.close, daemon=True).start()
        shared.stopped.set_result(None)


# --- starting -------------------------------------------------------------------------


async def _start(prepare: Prepare) -> ContainerLifespan:
    lifespan = await prepare()
    await lifespan.startup()
    return lifespan


def _settle_start(shared: Shared, start: Callable[[], ContainerLifespan]) -> None:
    try:
        lifespan = start()
    except BaseException as error:
        _failed(shared, error)
        raise
    shared.started.set_result(lifespan)


async def _asettle_start(shared: Shared, prepare: Prepare) -> None:
    try:
        lifespan = await _start(prepare)
    except BaseException as error:
        _failed(shared, error)
        raise
    shared.started.set_result(lifespan)


def _failed(shared: Shared, error: BaseException) -> None:
    REGISTRY.discard(shared)
    shared.started.set_exception(error)
    if shared.thread is not None:
        shared.thread.close()
    shared.stopped.set_result(None)


def _other_loop(shared: Shared) -> RuntimeError:
    msg = (
        "Cannot enter `async with lifespan()` on this event loop: the lifespan's "
        "resources run on another event loop, where they were "
        "started on another one, and loop-bound resources (httpx, asyncpg, "
        "redis.asyncio) work only there. Run this code on that loop with "
        "lifespan_di.run(), or finish the running lifespan first."
    )
    return RuntimeError(msg)
