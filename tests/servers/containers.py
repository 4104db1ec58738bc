"""The matrix project's container: three resources in a chain, driven by environment.

``config`` (sync) ← ``pool`` (async) ← ``pool_user`` (a Factory) ← ``cache`` (async):
so they start in that order and stop in the reverse one, and ``cache`` depends on
``pool`` only through a dependency of a dependency.

Every server process reads its behaviour from the environment (comma-separated
names):

- ``LIFESPAN_DI_TEST_RECORD``: file that each process appends ``<pid> <event>``
  lines to: ``start:<name>``, ``stop:<name>`` (written when the teardown begins),
  ``hang:<name>``, ``stop-hang:<name>``, and the views' own events.
- ``LIFESPAN_DI_TEST_FAIL``: these resources (or ``pool_user``) raise at startup.
- ``LIFESPAN_DI_TEST_HANG``: these resources never finish starting.
- ``LIFESPAN_DI_TEST_SLOW``: these resources take ``LIFESPAN_DI_TEST_SLOW_SECONDS``
  to start.
- ``LIFESPAN_DI_TEST_STOP_FAIL``: these teardowns raise.
- ``LIFESPAN_DI_TEST_STOP_HANG``: these teardowns never finish.
- ``LIFESPAN_DI_TEST_START_CANCEL``: these async starts raise their own
  ``CancelledError`` (they await a task they cancelled).
- ``LIFESPAN_DI_TEST_STOP_CANCEL``: these async teardowns do the same.
- ``LIFESPAN_DI_TEST_STOP_INTERRUPT``: these teardowns raise ``KeyboardInterrupt``.
- ``LIFESPAN_DI_TEST_STUBBORN``: these async starts hang, and when cancelled go on
  for ``STUBBORN_SECONDS`` more (``stubborn:<name>`` is recorded), then start.

Request resources, per request: ``session`` (a sync generator, opened and closed in
a worker thread) and ``unit`` (an async generator). Each records ``<event>:<id>
<where>``, where is ``loop`` or ``thread``:

- ``LIFESPAN_DI_TEST_SESSION_STOP_SECONDS``: ``session``'s teardown blocks this long.
- ``LIFESPAN_DI_TEST_SESSION_STOP_RAISE``: ``cancel`` (its own ``CancelledError``)
  or ``interrupt`` (``KeyboardInterrupt``): what ``session``'s teardown raises.

``Blocking`` is the same container plus ``connect``, a plain-function resource that
blocks for ``LIFESPAN_DI_TEST_BLOCK_SECONDS`` (default: ever).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from dependency_injector import containers, providers

from lifespan_di import RequestResource
from tests.recorder import cancelled_await

__all__ = ["Blocking", "Container", "Handle", "PoolUser", "record"]

HANG_SECONDS = 3600.0
STUBBORN_SECONDS = 30.0


def record(event: str) -> None:
    """Append one event of this process to the record file, if there is one."""
    path = os.environ.get("LIFESPAN_DI_TEST_RECORD")
    if path:
        # One short write in append mode: lines of concurrent workers do not mix.
        with open(path, "a", encoding="utf-8") as file:
            file.write(f"{os.getpid()} {event}\n")


def asked(variable: str, name: str) -> bool:
    return name in os.environ.get(variable, "").split(",")


def slow_seconds(name: str) -> float:
    if asked("LIFESPAN_DI_TEST_SLOW", name):
        return float(os.environ.get("LIFESPAN_DI_TEST_SLOW_SECONDS", "3"))
    return 0.0


class Handle:
    """What a resource yields: its name, what it was built from, whether it closed."""

    def __init__(self, name: str, using: object = None) -> None:
        self.name = name
        self.using = using
        self.closed = False


class PoolUser:
    """A service built from ``pool`` by a Factory; ``cache`` is built from it."""

    def __init__(self, pool: Handle) -> None:
        if asked("LIFESPAN_DI_TEST_FAIL", "pool_user"):
            msg = "pool_user cannot be built"
            raise ValueError(msg)
        self.pool = pool


@contextmanager
def open_config() -> Iterator[Handle]:
    # Sync: lifespan_di starts and stops it in a worker thread.
    time.sleep(slow_seconds("config"))
    if asked("LIFESPAN_DI_TEST_FAIL", "config"):
        msg = "config cannot be read"
        raise ConnectionRefusedError(msg)
    handle = Handle("config")
    record("start:config")
    yield handle
    record("stop:config")
    handle.closed = True
    if asked("LIFESPAN_DI_TEST_STOP_FAIL", "config"):
        msg = "config teardown failed"
        raise RuntimeError(msg)
    if asked("LIFESPAN_DI_TEST_STOP_INTERRUPT", "config"):
        raise KeyboardInterrupt


@asynccontextmanager
async def open_resource(name: str, using: object) -> AsyncIterator[Handle]:
    if asked("LIFESPAN_DI_TEST_HANG", name):
        record(f"hang:{name}")
        await asyncio.sleep(HANG_SECONDS)
    if asked("LIFESPAN_DI_TEST_STUBBORN", name):
        try:
            await asyncio.sleep(HANG_SECONDS)
        except asyncio.CancelledError:
            record(f"stubborn:{name}")
            await asyncio.sleep(STUBBORN_SECONDS)
    if asked("LIFESPAN_DI_TEST_START_CANCEL", name):
        await cancelled_await()
    await asyncio.sleep(slow_seconds(name))
    if asked("LIFESPAN_DI_TEST_FAIL", name):
        msg = f"{name} cannot connect"
        raise ConnectionRefusedError(msg)
    handle = Handle(name, using)
    record(f"start:{name}")
    yield handle
    record(f"stop:{name}")
    if asked("LIFESPAN_DI_TEST_STOP_HANG", name):
        record(f"stop-hang:{name}")
        await asyncio.sleep(HANG_SECONDS)
    handle.closed = True
    if asked("LIFESPAN_DI_TEST_STOP_FAIL", name):
        msg = f"{name} teardown failed"
        raise RuntimeError(msg)
    if asked("LIFESPAN_DI_TEST_STOP_CANCEL", name):
        await cancelled_await()
    if asked("LIFESPAN_DI_TEST_STOP_INTERRUPT", name):
        raise KeyboardInterrupt


def where() -> str:
    """``loop`` if this thread runs an event loop, else ``thread``."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return "thread"
    return "loop"


def open_session() -> Iterator[Handle]:
    handle = Handle("session")
    record(f"session:open:{id(handle)} {where()}")
    yield handle
    time.sleep(float(os.environ.get("LIFESPAN_DI_TEST_SESSION_STOP_SECONDS", "0")))
    handle.closed = True
    record(f"session:close:{id(handle)} {where()}")
    raising = os.environ.get("LIFESPAN_DI_TEST_SESSION_STOP_RAISE")
    if raising == "cancel":
        raise asyncio.CancelledError
    if raising == "interrupt":
        raise KeyboardInterrupt


async def open_unit() -> AsyncIterator[Handle]:
    handle = Handle("unit")
    record(f"unit:open:{id(handle)} {where()}")
    yield handle
    handle.closed = True
    record(f"unit:close:{id(handle)} {where()}")


def connect_blocking() -> Handle:
    # A plain function: lifespan_di starts it in a worker thread.
    time.sleep(float(os.environ.get("LIFESPAN_DI_TEST_BLOCK_SECONDS", HANG_SECONDS)))
    record("start:connect")
    return Handle("connect")


class Container(containers.DeclarativeContainer):
    config = providers.Resource(open_config)
    pool = providers.Resource(open_resource, "pool", using=config)
    pool_user = providers.Factory(PoolUser, pool=pool)
    cache = providers.Resource(open_resource, "cache", using=pool_user)
    unit = RequestResource(open_unit)
    session = RequestResource(open_session)


class Blocking(Container):
    connect = providers.Resource(connect_blocking)
