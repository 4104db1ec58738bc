"""A fake that resources write ``start:x`` / ``stop:x`` into, for exact ordering checks."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any


async def cancelled_await() -> None:
    """The ``task.cancel(); await task`` slip: raises CancelledError in the caller."""
    task = asyncio.ensure_future(asyncio.sleep(3600))
    task.cancel()
    await task


class Handle:
    """The value a recorded resource yields: its name, its dependencies, whether closed."""

    def __init__(self, name: str, deps: dict[str, Any]) -> None:
        self.name = name
        self.deps = deps
        self.closed = False

    def __repr__(self) -> str:
        return f"Handle({self.name!r})"


class Recorder:
    """Collects start and stop events from resources built with its factories."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self._lock = threading.Lock()

    def add(self, event: str) -> None:
        with self._lock:
            self.events.append(event)

    @property
    def started(self) -> list[str]:
        return [
            event.split(":", 1)[1]
            for event in self.events
            if event.startswith("start:")
        ]

    @property
    def stopped(self) -> list[str]:
        return [
            event.split(":", 1)[1] for event in self.events if event.startswith("stop:")
        ]

    def async_resource(
        self,
        name: str,
        *,
        delay: float = 0.0,
        fail_start: BaseException | None = None,
        fail_stop: BaseException | None = None,
        stop_delay: float = 0.0,
    ) -> Callable[..., Any]:
        """An async context manager resource."""

        @asynccontextmanager
        async def resource(**deps: Any) -> AsyncIterator[Handle]:
            await asyncio.sleep(delay)
            if fail_start is not None:
                raise fail_start
            self.add(f"start:{name}")
            handle = Handle(name, deps)
            yield handle
            await asyncio.sleep(stop_delay)
            handle.closed = True
            self.add(f"stop:{name}")
            if fail_stop is not None:
                raise fail_stop

        return resource

    def sync_resource(
        self,
        name: str,
        *,
        delay: float = 0.0,
        fail_start: BaseException | None = None,
        fail_stop: BaseException | None = None,
        stop_delay: float = 0.0,
    ) -> Callable[..., Any]:
        """A sync context manager resource."""

        @contextmanager
        def resource(**deps: Any) -> Iterator[Handle]:
            time.sleep(delay)
            if fail_start is not None:
                raise fail_start
            self.add(f"start:{name}")
            handle = Handle(name, deps)
            yield handle
            time.sleep(stop_delay)
            handle.closed = True
            self.add(f"stop:{name}")
            if fail_stop is not None:
                raise fail_stop

        return resource
